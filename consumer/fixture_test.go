package consumer

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// scenario is a set of records laid out per partition, and the spans a
// reference run of the same decoder and state machine derives from them: the
// exact set a correct consumer must deliver, whatever fails on the way.
type scenario struct {
	partitions int32
	records    map[int32][]*kgo.Record
	spans      map[trace.SpanID]lifecycle.Span
	closedBy   map[trace.SpanID]int64 // offset of the record that closed each span
	partOf     map[trace.SpanID]int32
	roots      int
	poison     int
	future     int // records dead-lettered as future_timestamp
}

type scenarioSpec struct {
	partitions int32
	players    int
	openAtEnd  int // players whose session never ends (they pin the commit)
	poisonEach int // one poison record after every poisonEach good ones (0: none)
	matches    int
	// clockSkew puts every other player on a game server whose clock is
	// this far ahead: their events carry ts (and record timestamps) skewed
	// by it, while records stay in the order they happened, so ts is out of
	// order across players.
	clockSkew time.Duration
	// farFuture spreads this many logins dated 2262-04-01, of players of
	// their own, with sane record timestamps among the records: a producer
	// with a broken clock. They are dead-lettered as future_timestamp.
	farFuture int
	// links gives logins a traceparent field and game events a
	// traceparent header (the match server's trace), so spans carry links.
	links bool
	// stagger is the time between two players' logins (default 137ms:
	// every session overlaps every other). Longer, sessions begin and end
	// all along the stream, so some always span a commit.
	stagger time.Duration
}

// buildScenario generates sessions, interleaves them in time, places each
// player on a partition by key hash, inserts poison records and computes the
// expected spans with a reference machine per partition.
func buildScenario(t testing.TB, spec scenarioSpec) *scenario {
	t.Helper()
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano()
	type timed struct {
		ts  int64 // when it happened: the order records are produced in
		seq int
		ev  schema.Event
		tp  string // a traceparent header, "" for none
	}
	var all []timed
	for p := range spec.players {
		player := fmt.Sprintf("player-%06d", p)
		stagger := cmp.Or(spec.stagger, 137*time.Millisecond)
		ts := base + int64(p)*int64(stagger)
		var skew int64
		if p%2 == 1 {
			skew = int64(spec.clockSkew)
		}
		seq := 0
		add := func(ev schema.Event, step time.Duration) {
			ts += int64(step)
			ev.PlayerID, ev.TS = player, ts+skew
			ev.EventID = player + "-" + strconv.Itoa(seq)
			var tp string
			if spec.links {
				switch ev.Type {
				case schema.SessionLogin:
					ev.Link = schema.TraceLink{TraceID: [16]byte{0xa, byte(p >> 8), byte(p)}, SpanID: [8]byte{1, byte(seq)}, Flags: 1}
				case schema.GameEnter, schema.GameLeave:
					tp = schema.TraceLink{TraceID: [16]byte{0xe, byte(p >> 8), byte(p)}, SpanID: [8]byte{2, byte(seq)}, Flags: byte(seq & 1)}.String()
				}
			}
			seq++
			all = append(all, timed{ts: ts, seq: len(all), ev: ev, tp: tp})
		}
		add(schema.Event{Type: schema.SessionLogin, AuthMethod: "password", ClientVersion: "1.4.2", Platform: []string{"pc", "ps5", "ios"}[p%3]}, 0)
		for m := range spec.matches {
			add(schema.Event{Type: schema.MatchmakingEnter, GameMode: "ranked"}, 2*time.Second)
			add(schema.Event{Type: schema.MatchmakingComplete, LobbyID: fmt.Sprintf("lobby-%d-%d", p, m)}, 7*time.Second)
			add(schema.Event{Type: schema.LoadingStart, LoadingType: "match"}, time.Second)
			add(schema.Event{Type: schema.LoadingFinish, AssetsLoaded: 120, HasAssetsLoaded: true, TotalSizeMB: 340.5, HasTotalSizeMB: true}, 9*time.Second)
			add(schema.Event{Type: schema.GameEnter, ServerID: "srv-1", Map: "dust"}, time.Second)
			add(schema.Event{Type: schema.GameLeave, Result: "win", Score: 12, HasScore: true}, 300*time.Second)
		}
		if p >= spec.players-spec.openAtEnd {
			continue
		}
		add(schema.Event{Type: schema.SessionDisconnect, Reason: []string{"client_quit", "connection_lost", "crash"}[p%3]}, 5*time.Second)
	}
	slices.SortStableFunc(all, func(a, b timed) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})

	s := &scenario{
		partitions: spec.partitions,
		records:    map[int32][]*kgo.Record{},
		spans:      map[trace.SpanID]lifecycle.Span{},
		closedBy:   map[trace.SpanID]int64{},
		partOf:     map[trace.SpanID]int32{},
	}
	good := 0
	future := time.Date(2262, 4, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	futureEach := 0
	if spec.farFuture > 0 {
		futureEach = max(len(all)/(spec.farFuture+1), 1)
	}
	for _, e := range all {
		p := partitionOf(e.ev.PlayerID, spec.partitions)
		// The producer's clock is the event's: a CreateTime topic.
		at := time.Unix(0, e.ev.TS)
		rec := &kgo.Record{Partition: p, Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev), Timestamp: at}
		if e.tp != "" {
			rec.Headers = []kgo.RecordHeader{{Key: schema.HeaderTraceparent, Value: []byte(e.tp)}}
		}
		s.records[p] = append(s.records[p], rec)
		good++
		if spec.poisonEach > 0 && good%spec.poisonEach == 0 {
			bad := []string{`{"type":"session.login"`, `{"type":"teleport","event_id":"x","player_id":"` + e.ev.PlayerID + `","ts":"2026-11-25T10:00:00Z"}`, `not json at all`}[s.poison%3]
			s.records[p] = append(s.records[p], &kgo.Record{Partition: p, Key: []byte(e.ev.PlayerID), Value: []byte(bad), Timestamp: at})
			s.poison++
		}
		if futureEach > 0 && good%futureEach == 0 && s.future < spec.farFuture {
			ev := schema.Event{Type: schema.SessionLogin, PlayerID: fmt.Sprintf("broken-clock-%03d", s.future), TS: future,
				AuthMethod: "password", ClientVersion: "1.4.2", Platform: "pc"}
			ev.EventID = ev.PlayerID + "-0"
			fp := partitionOf(ev.PlayerID, spec.partitions)
			s.records[fp] = append(s.records[fp], &kgo.Record{Partition: fp, Key: []byte(ev.PlayerID), Value: schema.AppendJSON(nil, &ev), Timestamp: at})
			s.future++
		}
	}
	for p, recs := range s.records {
		dec, err := schema.NewDecoder(schema.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		m, err := lifecycle.New(lifecycle.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		var ev schema.Event
		for off, r := range recs {
			if !applies(dec, r, &ev) {
				continue
			}
			spans, _ := m.Apply(&ev, int64(off), nil)
			for _, sp := range spans {
				if _, dup := s.spans[sp.SpanID]; dup {
					t.Fatalf("reference run produced span %s twice", sp.SpanID)
				}
				s.spans[sp.SpanID] = sp
				s.closedBy[sp.SpanID] = int64(off)
				s.partOf[sp.SpanID] = p
				if !sp.ParentSpanID.IsValid() {
					s.roots++
				}
			}
		}
	}
	return s
}

// parseMetadata returns the exported-through mark of a commit's metadata.
func parseMetadata(s string, offset int64) (int64, bool) {
	m, ok := checkpoint.Parse(s, offset)
	return m.Mark, ok
}

// applies decodes r (its traceparent header too) into ev and reports
// whether the consumer, with the default skew bounds, applies it to its
// state machine.
func applies(dec *schema.Decoder, r *kgo.Record, ev *schema.Event) bool {
	return dec.DecodeRecord(&schema.Record{Key: r.Key, Value: r.Value, Headers: headersOf(r)}, ev) == nil &&
		skewReason(ev.TS, r.Timestamp, DefaultMaxFutureSkew, DefaultMaxPastSkew) == ""
}

func headersOf(r *kgo.Record) []schema.Header {
	var hs []schema.Header
	for _, h := range r.Headers {
		hs = append(hs, schema.Header{Key: h.Key, Value: h.Value})
	}
	return hs
}

func partitionOf(player string, n int32) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(player))
	return int32(h.Sum32() % uint32(n))
}

// split returns the scenario's first frac of each partition's records, with
// the spans those records close, and the rest (records only), which a test
// produces after the first so offsets continue.
func (s *scenario) split(frac float64) (first, rest *scenario) {
	first = &scenario{partitions: s.partitions, records: map[int32][]*kgo.Record{}, spans: map[trace.SpanID]lifecycle.Span{},
		closedBy: map[trace.SpanID]int64{}, partOf: map[trace.SpanID]int32{}}
	rest = &scenario{partitions: s.partitions, records: map[int32][]*kgo.Record{}}
	cut := map[int32]int64{}
	for p, recs := range s.records {
		k := int(float64(len(recs)) * frac)
		cut[p] = int64(k)
		first.records[p], rest.records[p] = recs[:k], recs[k:]
	}
	for id, sp := range s.spans {
		if off := s.closedBy[id]; off < cut[s.partOf[id]] {
			first.spans[id], first.closedBy[id], first.partOf[id] = sp, off, s.partOf[id]
		}
	}
	return first, rest
}

// produce writes the scenario's records to topic, partition by partition, in
// order; offsets then equal each record's index in its partition.
func (s *scenario) produce(t testing.TB, brokers []string, topic string) {
	t.Helper()
	var recs []*kgo.Record
	for p := range s.partitions {
		for _, r := range s.records[p] {
			c := *r
			c.Topic = topic
			recs = append(recs, &c)
		}
	}
	// The manual partitioner keeps each record on the partition the
	// reference run computed its offsets for.
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(recs), err)
	}
}

// check asserts that exactly the expected spans were received (every one,
// nothing else), that duplicates are identical re-deliveries, and that every
// trace has exactly one root.
func (s *scenario) check(t testing.TB, got []receiver.Span) (dups int) {
	t.Helper()
	seen := map[trace.SpanID]receiver.Span{}
	roots := map[trace.TraceID]map[trace.SpanID]bool{}
	for _, g := range got {
		want, ok := s.spans[g.SpanID]
		if !ok {
			t.Errorf("unexpected span %s %q (trace %s)", g.SpanID, g.Name, g.TraceID)
			continue
		}
		if g.TraceID != want.TraceID || g.ParentSpanID != want.ParentSpanID || g.Name != want.Name || g.Start != want.Start || g.End != want.End {
			t.Errorf("span %s differs: got %s %q parent %s [%d,%d], want %s %q parent %s [%d,%d]",
				g.SpanID, g.TraceID, g.Name, g.ParentSpanID, g.Start, g.End, want.TraceID, want.Name, want.ParentSpanID, want.Start, want.End)
		}
		if _, again := seen[g.SpanID]; again {
			dups++
		}
		seen[g.SpanID] = g
		if !g.ParentSpanID.IsValid() {
			if roots[g.TraceID] == nil {
				roots[g.TraceID] = map[trace.SpanID]bool{}
			}
			roots[g.TraceID][g.SpanID] = true
		}
	}
	missing := 0
	for id, sp := range s.spans {
		if _, ok := seen[id]; !ok {
			missing++
			if missing <= 10 {
				t.Errorf("span lost: %s %q of trace %s (partition %d, closed by offset %d)", id, sp.Name, sp.TraceID, s.partOf[id], s.closedBy[id])
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d expected spans never arrived", missing, len(s.spans))
	}
	for tr, ids := range roots {
		if len(ids) != 1 {
			t.Errorf("trace %s has %d distinct root spans", tr, len(ids))
		}
	}
	if len(roots) != s.roots {
		t.Errorf("got %d traces with a root, want %d", len(roots), s.roots)
	}
	return dups
}

// endOffsets are the offsets a fully caught-up consumer commits: the end of
// each partition, or the first offset of the oldest session left open.
func (s *scenario) endOffsets(t testing.TB) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p, recs := range s.records {
		// The pure partition logic with the default reorder window, and
		// the quiet flush the consumer takes once it caught up: with the
		// window, a session is positioned at the latest cut before the
		// event that started it, which may be below its own record.
		part, err := newPartition[int](DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		var spans []lifecycle.Span
		var steps []step[int]
		for off, r := range recs {
			spans, steps = part.process(&schema.Record{Key: r.Key, Value: r.Value}, r.Timestamp, int64(off), 0, spans[:0], steps[:0])
		}
		part.flush(int64(len(recs)), spans[:0], steps[:0])
		out[p] = int64(len(recs))
		if lo := part.low(); lo >= 0 {
			out[p] = lo
		}
	}
	return out
}

// otlpOut is a real OTLP gRPC client aimed at a test receiver and the SDK
// exporter built on it, as cmd builds them: the direct export path uploads
// through client, the sdk path exports through exp.
type otlpOut struct {
	client otlptrace.Client
	exp    *otlptrace.Exporter
}

// newOTLP returns the client and exporter aimed at addr, with the client's
// own retries off (the consumer retries) and fast reconnects, so a restarted
// receiver is found again within a second.
func newOTLP(ctx context.Context, addr string) (*otlpOut, error) {
	opts := append([]otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(addr),
		otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTimeout(5 * time.Second),
	}, export.ClientOptions(50*time.Millisecond, 500*time.Millisecond)...)
	client := otlptracegrpc.NewClient(opts...)
	exp, err := otlptrace.New(ctx, client) // starts the client
	if err != nil {
		return nil, err
	}
	return &otlpOut{client: client, exp: exp}, nil
}

// options are what New and OTLPSink need besides the exporter.
func (o *otlpOut) options() []Option { return []Option{WithOTLPClient(o.client)} }

func exporter(t testing.TB, addr string) *otlpOut {
	t.Helper()
	out, err := newOTLP(t.Context(), addr)
	if err != nil {
		t.Fatalf("otlp exporter: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = out.exp.Shutdown(ctx)
	})
	return out
}

// exportPaths are the export paths every delivery-contract suite runs on.
var exportPaths = []string{ExportDirect, ExportSDK}

// eachPath runs fn as a subtest per broker backend and, inside it, per
// export path ("kfake/direct", "kfake/sdk"...): both paths must keep the
// same delivery contract.
func eachPath(t *testing.T, fn func(t *testing.T, brokers []string, path string)) {
	t.Helper()
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		for _, path := range exportPaths {
			t.Run(path, func(t *testing.T) { fn(t, brokers, path) })
		}
	})
}

// pathConfig is testConfig on an export path.
func pathConfig(brokers []string, topic, group, path string) Config {
	cfg := testConfig(brokers, topic, group)
	cfg.ExportPath = path
	return cfg
}

func startReceiver(t testing.TB) *receiver.Receiver {
	t.Helper()
	r, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlp receiver: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func testConfig(brokers []string, topic, group string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	cfg.Topic = topic
	cfg.Group = group
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.ExportBatchTimeout = 50 * time.Millisecond
	cfg.ExportBatchSize = 64
	cfg.ExportQueueSize = 256
	cfg.RetryInitial = 20 * time.Millisecond
	cfg.RetryMax = 200 * time.Millisecond
	cfg.RevokeTimeout = 5 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// running is a Consumer started in the background by a test.
type running struct {
	c    *Consumer
	stop context.CancelFunc
	done chan error
}

func startConsumer(t testing.TB, cfg Config, out *otlpOut, opts ...Option) *running {
	t.Helper()
	var logTo io.Writer = io.Discard
	if os.Getenv("SESSIONTRACE_TEST_LOG") != "" {
		logTo = os.Stderr
	}
	opts = append([]Option{
		WithLogger(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithKafkaOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), kgo.RebalanceTimeout(20*time.Second)),
	}, append(out.options(), opts...)...)
	c, err := New(cfg, out.exp, opts...)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// shutdown stops the consumer gracefully and waits for Run to return.
func (r *running) shutdown(t testing.TB) {
	t.Helper()
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("consumer run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("consumer did not shut down within 30s")
	}
}

// waitSpans waits until the receiver holds at least n spans.
func waitSpans(t testing.TB, r *receiver.Receiver, n int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	if err := r.WaitCount(ctx, n); err != nil {
		t.Fatalf("waiting for %d spans (have %d): %v", n, r.Count(), err)
	}
}

// waitCommitted waits until the group's committed offsets equal want.
func waitCommitted(t testing.TB, brokers []string, group, topic string, want map[int32]int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got map[int32]int64
	for time.Now().Before(deadline) {
		got = committedOffsets(t, brokers, group, topic)
		if maps.Equal(got, want) {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond): // polling an external system, bounded by the deadline
		}
	}
	t.Fatalf("committed offsets %v, want %v", got, want)
}

func committedOffsets(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p, c := range kafkatest.Committed(t, brokers, group, topic) {
		out[p] = c.Offset
	}
	return out
}

// contractWatch polls the group's commits while a test runs and records every
// commit whose exported-through mark H covers a span the receiver has not got:
// a commit ahead of acknowledged spans.
type contractWatch struct {
	mu         sync.Mutex
	violations []string
	commits    int
	stop       context.CancelFunc
	done       chan struct{}
}

func watchContract(t testing.TB, brokers []string, group, topic string, s *scenario, r *receiver.Receiver) *contractWatch {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithCancel(context.Background())
	w := &contractWatch{stop: cancel, done: make(chan struct{})}
	last := map[int32]string{}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for ctx.Err() == nil {
			resp, err := adm.FetchOffsets(ctx, group)
			if err == nil {
				// Offsets first, spans second: spans only ever accumulate,
				// so a span missing now was missing when the commit was made.
				received := map[trace.SpanID]bool{}
				for _, sp := range r.Spans() {
					received[sp.SpanID] = true
				}
				resp.Each(func(o kadm.OffsetResponse) {
					if o.Topic != topic || o.Err != nil {
						return
					}
					key := fmt.Sprintf("%d/%s", o.At, o.Metadata)
					if last[o.Partition] == key {
						return
					}
					last[o.Partition] = key
					h, ok := parseMetadata(o.Metadata, o.At)
					w.mu.Lock()
					defer w.mu.Unlock()
					w.commits++
					if !ok {
						w.violations = append(w.violations, fmt.Sprintf("partition %d: commit %d without our metadata (%q)", o.Partition, o.At, o.Metadata))
						return
					}
					for id, off := range s.closedBy {
						if s.partOf[id] == o.Partition && off < h && !received[id] {
							w.violations = append(w.violations, fmt.Sprintf("partition %d: commit at %d with H=%d before span %s (closed by offset %d) was received", o.Partition, o.At, h, id, off))
							return
						}
					}
				})
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { w.finish(t) })
	return w
}

// finish stops watching and fails t on any violation seen.
func (w *contractWatch) finish(t testing.TB) {
	t.Helper()
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Errorf("delivery contract broken: %s", v)
	}
	w.violations = nil
}
