package sessionmetrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/consumer/sessionmetrics"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// point is one data point as the tests compare it: the count and sum of a
// histogram, or the value of a counter (count 0).
type point struct {
	count uint64
	sum   float64
}

// series maps a metric name to its data points keyed by their attributes,
// rendered as sorted "key=value" pairs.
type series map[string]map[string]point

// TestGoldenScenarios runs recorded scenarios through the real decoder and
// state machine, records their spans, exports the metrics over OTLP/gRPC to a
// real receiver on 127.0.0.1 and compares what arrived with values computed
// by hand from the scenario files (the comments show the arithmetic).
func TestGoldenScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		want     series
		matches  point // checked with the totals when want is nil
	}{
		{
			scenario: "full_journey",
			want: series{
				// login 03:00:00, disconnect 03:43:54.2.
				sessionmetrics.MetricSessionDuration: {
					"client.platform=pc,client.version=2.4.1,session.end_type=graceful": {1, 2634.2},
				},
				sessionmetrics.MetricSessionMatches: {"": {1, 2}},
				sessionmetrics.MetricSessionsEnded: {
					"session.end_phase=menu,session.end_reason=client_quit,session.end_type=graceful": {0, 1},
				},
				sessionmetrics.MetricPhaseDuration: {
					"phase=login": {1, 0},
					// 03:00:12→03:00:47.5 and 03:21:40→03:22:41.2
					"game.mode=ranked,phase=matchmaking": {2, 35.5 + 61.2},
					// 03:00:48→03:01:11.25 and 03:22:42→03:23:10
					"loading.type=map,phase=loading": {2, 23.25 + 28},
					// 03:01:12→03:21:12 and 03:23:11→03:43:31
					"phase=in_game": {2, 1200 + 1220},
				},
				// 35.5 is the event's wait_seconds; 61.2 is computed from
				// the timestamps, the second complete carries none.
				sessionmetrics.MetricMatchmakingWait: {"game.mode=ranked": {2, 35.5 + 61.2}},
			},
		},
		{
			scenario: "end_types",
			want: series{
				// nine sessions of 100 s each, two per class but one crash.
				sessionmetrics.MetricSessionDuration: {
					"client.platform=pc,client.version=2.4.1,session.end_type=graceful":           {2, 200},
					"client.platform=pc,client.version=2.4.1,session.end_type=connection_failure": {2, 200},
					"client.platform=pc,client.version=2.4.1,session.end_type=enforcement":        {2, 200},
					"client.platform=pc,client.version=2.4.1,session.end_type=crash":              {1, 100},
					"client.platform=pc,client.version=2.4.1,session.end_type=unknown":            {2, 200},
				},
				sessionmetrics.MetricSessionMatches: {"": {9, 0}},
				sessionmetrics.MetricSessionsEnded: {
					"session.end_phase=login,session.end_reason=client_quit,session.end_type=graceful":               {0, 1},
					"session.end_phase=login,session.end_reason=logout,session.end_type=graceful":                    {0, 1},
					"session.end_phase=login,session.end_reason=timeout,session.end_type=connection_failure":         {0, 1},
					"session.end_phase=login,session.end_reason=connection_lost,session.end_type=connection_failure": {0, 1},
					"session.end_phase=login,session.end_reason=kicked,session.end_type=enforcement":                 {0, 1},
					"session.end_phase=login,session.end_reason=banned,session.end_type=enforcement":                 {0, 1},
					"session.end_phase=login,session.end_reason=crash,session.end_type=crash":                        {0, 1},
					"session.end_phase=login,session.end_reason=server_shutdown,session.end_type=unknown":            {0, 1},
					"session.end_phase=login,session.end_reason=unknown,session.end_type=unknown":                    {0, 1},
				},
				sessionmetrics.MetricPhaseDuration: {"phase=login": {9, 0}},
			},
		},
		{
			scenario: "disconnect_every_phase",
			want:     nil, // checked for totals only, below
			// five sessions; matches count games entered: p-ingame entered
			// one and was disconnected in it, p-menu entered one and left.
			matches: point{5, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			spans := runScenario(t, tt.scenario)
			got := exportThroughReceiver(t, spans)
			if tt.want == nil {
				// Every root span is one session and every phase span one
				// phase, whatever the attributes.
				roots := 0
				for _, s := range spans {
					if s.IsRoot() {
						roots++
					}
				}
				if c := total(got[sessionmetrics.MetricSessionDuration]); c != uint64(roots) {
					t.Errorf("%s: %d sessions, want %d", sessionmetrics.MetricSessionDuration, c, roots)
				}
				if c := total(got[sessionmetrics.MetricPhaseDuration]); c != uint64(len(spans)-roots) {
					t.Errorf("%s: %d phases, want %d", sessionmetrics.MetricPhaseDuration, c, len(spans)-roots)
				}
				if g := got[sessionmetrics.MetricSessionMatches][""]; g != tt.matches {
					t.Errorf("%s = count %d sum %g, want count %d sum %g", sessionmetrics.MetricSessionMatches, g.count, g.sum, tt.matches.count, tt.matches.sum)
				}
				return
			}
			compare(t, got, tt.want)
		})
	}
}

func total(points map[string]point) uint64 {
	var n uint64
	for _, p := range points {
		n += p.count
	}
	return n
}

func compare(t *testing.T, got, want series) {
	t.Helper()
	for name, wp := range want {
		gp := got[name]
		for attrs, w := range wp {
			g, ok := gp[attrs]
			if !ok {
				t.Errorf("%s{%s}: missing; got %v", name, attrs, gp)
				continue
			}
			if g.count != w.count || math.Abs(g.sum-w.sum) > 1e-6 {
				t.Errorf("%s{%s} = count %d sum %g, want count %d sum %g", name, attrs, g.count, g.sum, w.count, w.sum)
			}
		}
		for attrs := range gp {
			if _, ok := wp[attrs]; !ok {
				t.Errorf("%s{%s}: unexpected data point %+v", name, attrs, gp[attrs])
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected metric %v", name, got[name])
		}
	}
}

// runScenario decodes testdata/lifecycle/NAME.jsonl with the real decoder
// (the key is the player ID, as on the topic) and returns the spans the
// state machine finishes.
func runScenario(t *testing.T, name string) []lifecycle.Span { return runScenarioB(t, name) }

func runScenarioB(t testing.TB, name string) []lifecycle.Span {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "lifecycle", name+".jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var spans []lifecycle.Span
	sc := bufio.NewScanner(f)
	for off := int64(0); sc.Scan(); off++ {
		var probe struct {
			PlayerID string `json:"player_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("%s:%d: %v", path, off+1, err)
		}
		var ev schema.Event
		if err := dec.Decode([]byte(probe.PlayerID), sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s:%d: decode: %v", path, off+1, err)
		}
		spans, _ = m.Apply(&ev, off, spans)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(spans) == 0 {
		t.Fatalf("%s: no spans", path)
	}
	return spans
}

// exportThroughReceiver records spans into a meter provider whose only
// reader pushes over OTLP/gRPC to a receiver on 127.0.0.1, flushes once and
// returns what the receiver got.
func exportThroughReceiver(t *testing.T, spans []lifecycle.Span) series {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithEndpoint(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	// Only ForceFlush exports: the interval is longer than the test.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rec, err := sessionmetrics.New(mp, sessionmetrics.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// One Record call per span, as the consumer calls it per record.
	for i := range spans {
		rec.Record(ctx, spans[i:i+1])
	}
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	var got series
	if err := r.WaitMetrics(ctx, func(rms []*metricpb.ResourceMetrics) bool {
		got = fromOTLP(rms)
		return len(got) > 0
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// fromOTLP reads the data points of the last export of every metric: the
// exporter is cumulative, so the last one holds everything.
func fromOTLP(rms []*metricpb.ResourceMetrics) series {
	out := series{}
	for _, rm := range rms {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				points := map[string]point{}
				for _, dp := range m.GetHistogram().GetDataPoints() {
					points[attrKey(dp.GetAttributes())] = point{count: dp.GetCount(), sum: dp.GetSum()}
				}
				for _, dp := range m.GetSum().GetDataPoints() {
					points[attrKey(dp.GetAttributes())] = point{sum: float64(dp.GetAsInt())}
				}
				out[m.GetName()] = points
			}
		}
	}
	return out
}

func attrKey(kvs []*commonpb.KeyValue) string {
	parts := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		parts = append(parts, kv.GetKey()+"="+kv.GetValue().GetStringValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// TestCaps checks that values past a cap fold into "other" and that the
// values seen first keep their own series.
func TestCaps(t *testing.T) {
	tests := []struct {
		name     string
		versions []string
		cap      int
		want     map[string]uint64 // client.version -> sessions
	}{
		{name: "under the cap", versions: []string{"1.0", "1.1", "1.0"}, cap: 2, want: map[string]uint64{"1.0": 2, "1.1": 1}},
		{name: "over the cap", versions: []string{"1.0", "1.1", "1.2", "1.3", "1.0"}, cap: 2,
			want: map[string]uint64{"1.0": 2, "1.1": 1, sessionmetrics.Other: 2}},
		{name: "missing version", versions: []string{""}, cap: 1, want: map[string]uint64{sessionmetrics.Unknown: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			cfg := sessionmetrics.DefaultConfig()
			cfg.MaxClientVersions = tt.cap
			rec, err := sessionmetrics.New(mp, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range tt.versions {
				root := lifecycle.Span{Name: lifecycle.SpanLifecycle, Start: 0, End: int64(i+1) * int64(time.Second),
					Attrs: []attribute.KeyValue{lifecycle.KeyClientPlatform.String("pc"), lifecycle.KeyEndType.String("graceful")}}
				if v != "" {
					root.Attrs = append(root.Attrs, lifecycle.KeyClientVersion.String(v))
				}
				rec.Record(t.Context(), []lifecycle.Span{root})
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(t.Context(), &rm); err != nil {
				t.Fatal(err)
			}
			got := map[string]uint64{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != sessionmetrics.MetricSessionDuration {
						continue
					}
					for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
						v, _ := dp.Attributes.Value(lifecycle.KeyClientVersion)
						got[v.AsString()] += dp.Count
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("sessions by client.version = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sessionmetrics.Config)
		want error
	}{
		{name: "defaults", edit: func(*sessionmetrics.Config) {}},
		{name: "no versions", edit: func(c *sessionmetrics.Config) { c.MaxClientVersions = 0 }, want: sessionmetrics.ErrBadCap},
		{name: "negative values", edit: func(c *sessionmetrics.Config) { c.MaxValues = -1 }, want: sessionmetrics.ErrBadCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sessionmetrics.DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if _, err := sessionmetrics.New(nil, cfg); (err == nil) != (tt.want == nil) {
				t.Fatalf("New() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// BenchmarkRecord measures the cost the session metrics add per finished
// span, with the SDK aggregating into a manual reader.
func BenchmarkRecord(b *testing.B) {
	spans := runScenarioB(b, "full_journey")
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	rec, err := sessionmetrics.New(mp, sessionmetrics.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	ctx := b.Context()
	for b.Loop() {
		for i := range spans {
			rec.Record(ctx, spans[i:i+1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}
