package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// TestReorderWindowThreeProducers is the reorder window's done-when: a
// simulated backend whose three producers each delay every event by up to
// 500 ms, on one topic keyed by player (what rekey makes of the producers'
// topics), consumed with the default 2 s window, gives exactly the spans of
// the same sessions produced in order, with no out_of_phase dead letter.
// With the window off, the same stream dead-letters events as out_of_phase
// (the count is logged; the README quotes it).
func TestReorderWindowThreeProducers(t *testing.T) {
	sc := simulate.DefaultConfig()
	sc.Players, sc.Sessions, sc.Seed = 40, 120, 17
	inOrder := simulatedRecords(t, sc, 0)
	jittered := simulatedRecords(t, sc, simulate.DefaultJitter)
	if len(inOrder) != len(jittered) {
		t.Fatalf("%d records in order, %d jittered", len(inOrder), len(jittered))
	}
	moved := 0
	for i := range inOrder {
		if string(inOrder[i].Value) != string(jittered[i].Value) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the jittered stream is in order")
	}

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		type run struct {
			name, window string
			recs         []*kgo.Record
		}
		spans := map[string][]string{}
		outOfPhase := map[string]float64{}
		for _, r := range []run{{"in order", "0s", inOrder}, {"jittered, 2s window", "2s", jittered}, {"jittered, no window", "0s", jittered}} {
			want := 0
			if r.name == "jittered, 2s window" {
				want = len(spans["in order"])
			}
			got, oop := consumeRecords(t, brokers, r.recs, r.window, want)
			spans[r.name], outOfPhase[r.name] = got, oop
			t.Logf("%s (window %s): %d records, %d spans, %v out_of_phase dead letters", r.name, r.window, len(r.recs), len(got), oop)
		}
		if want, got := spans["in order"], spans["jittered, 2s window"]; !slices.Equal(got, want) {
			t.Errorf("jittered with the window: %d spans, in order %d\n%s", len(got), len(want), firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
		if n := outOfPhase["jittered, 2s window"]; n != 0 {
			t.Errorf("jittered with the window: %v out_of_phase dead letters, want 0", n)
		}
		onlyIn, onlyOff := sortedDiff(spans["in order"], spans["jittered, no window"])
		t.Logf("%d of %d records out of order; without the window %d spans of the in-order run are missing or different, %d spans are not the in-order run's", moved, len(inOrder), onlyIn, onlyOff)
		if n := outOfPhase["in order"]; n != 0 {
			t.Errorf("in order: %v out_of_phase dead letters, want 0", n)
		}
	})
}

// simulatedRecords are the events of the simulated backend sc, as the
// Router delivers them with each producer's delay up to jitter (0: in ts
// order), keyed by player with the event's time as the record timestamp.
func simulatedRecords(t *testing.T, sc simulate.Config, jitter time.Duration) []*kgo.Record {
	t.Helper()
	gen, err := simulate.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := simulate.NewRouter(gen, simulate.Producers{
		Topics: map[string]string{simulate.ServiceAuth: "auth", simulate.ServiceMatchmaking: "matchmaking", simulate.ServiceMatch: "match"},
		Keys:   simulate.KeyNone, Jitter: jitter, Seed: sc.Seed,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	var r simulate.Routed
	for rt.Next(&r) {
		var ev struct {
			Player string `json:"player_id"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Player == "" {
			t.Fatalf("routed record %s: no player (%v)", r.Value, err)
		}
		out = append(out, &kgo.Record{Key: []byte(ev.Player), Value: append([]byte(nil), r.Value...), Timestamp: time.Unix(0, r.TS)})
	}
	return out
}

// consumeRecords produces recs to a new topic of three partitions and runs
// consume over it with the reorder window, until it processed every record
// and exported at least wantSpans spans, then stops it (a graceful stop
// drains the lanes). It returns the spans exported (as sorted JSON lines) and the out_of_phase
// dead letters counted.
func consumeRecords(t *testing.T, brokers []string, recs []*kgo.Record, window string, wantSpans int) ([]string, float64) {
	t.Helper()
	topic := kafkatest.Topic(t, brokers, 3)
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		// A produced record is the client's: each run produces copies.
		out[i] = &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	}
	kafkatest.Produce(t, brokers, out...)
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 2*cliTimeout)
	defer cancel()
	group := kafkatest.Group(t)
	cs := startServing(ctx, t, []string{
		"SESSIONTRACE_KAFKA_COMMIT_INTERVAL=200ms",
		"SESSIONTRACE_KAFKA_EXPORT_BATCH_TIMEOUT=100ms",
		"SESSIONTRACE_KAFKA_LIFECYCLE_REORDER_WINDOW=" + window,
		"SESSIONTRACE_METRICS_OTLP=false",
	}, "consume", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--group", group,
		"--otlp-endpoint", recv.Addr(), "--otlp-insecure", "--http-address", "127.0.0.1:0", "--log-format", "json")
	waitStatus(ctx, t, cs.base+"/readyz", http.StatusOK)
	var body string
	for {
		body, _ = get(t, cs.base+"/metrics")
		if int(metricValue(body, "sessiontrace_records_total")) >= len(recs) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consume processed %v of %d records\n%s", metricValue(body, "sessiontrace_records_total"), len(recs), cs.stderr.String())
		case err := <-cs.exited:
			t.Fatalf("consume exited: %v\n%s", err, cs.stderr.String())
		case <-time.After(100 * time.Millisecond): // polling /metrics, not synchronising
		}
	}
	if wantSpans > 0 {
		// The window's last events wait for the quiet flush.
		arrived := make(chan error, 1)
		go func() { arrived <- recv.WaitCount(ctx, wantSpans) }()
		select {
		case err := <-arrived:
			if err != nil {
				t.Fatalf("%v\n%s", err, cs.stderr.String())
			}
		case err := <-cs.exited:
			t.Fatalf("consume exited: %v\n%s", err, cs.stderr.String())
		}
	}
	cs.stop(ctx, t)
	var got []string
	for _, sp := range recv.Spans() {
		ls := spanFromOTLP(sp.Raw)
		got = append(got, strings.TrimSuffix(string(appendSpanJSON(nil, &ls)), "\n"))
	}
	slices.Sort(got)
	oop := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "sessiontrace_records_rejected_total{") && strings.Contains(line, `reason="out_of_phase"`) {
			oop += metricValue(line, "sessiontrace_records_rejected_total")
		}
	}
	return got, oop
}

// sortedDiff returns how many lines of sorted a are not in sorted b, and
// how many of b are not in a.
func sortedDiff(a, b []string) (int, int) {
	onlyA, onlyB := 0, 0
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0] == b[0]:
			a, b = a[1:], b[1:]
		case a[0] < b[0]:
			a, onlyA = a[1:], onlyA+1
		default:
			b, onlyB = b[1:], onlyB+1
		}
	}
	return onlyA + len(a), onlyB + len(b)
}
