package consumer

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// holdSnapshotEnv names, in a child process (runChild), a file whose
// existence arms holdChunk: from then on, the acknowledgement of the second
// chunk of a snapshot that has more is held for ever, after the child
// printed heldPrefix and the chunk's key on stdout. The snapshot is then
// partly written: its first chunks are in the topic, acknowledged, its last
// never, and no commit can name it (write waits for every chunk).
const holdSnapshotEnv = "CHILD_HOLD_SNAPSHOT"

// heldPrefix starts the line holdChunk prints.
const heldPrefix = "held snapshot chunk "

// holdChunk is the produce hook holdSnapshotEnv installs.
type holdChunk struct{ armed string }

// OnProduceRecordUnbuffered runs just before a record's promise, so holding
// it keeps the snapshot writer from ever seeing the chunk acknowledged.
func (h holdChunk) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil || !strings.HasSuffix(r.Topic, ".snapshots") || !strings.HasSuffix(string(r.Key), "/1") {
		return
	}
	for _, hd := range r.Headers {
		if hd.Key == HeaderSnapshotLast {
			return // a snapshot of two chunks: complete with this one
		}
	}
	if _, err := os.Stat(h.armed); err != nil {
		return
	}
	fmt.Printf("%s%s\n", heldPrefix, r.Key)
	select {} // until the parent's SIGKILL
}

// childHoldOptions returns the options holdSnapshotEnv asks for.
func childHoldOptions() []Option {
	armed := os.Getenv(holdSnapshotEnv)
	if armed == "" {
		return nil
	}
	return []Option{WithKafkaOptions(kgo.WithHooks(holdChunk{armed: armed}))}
}

// TestKilledMidSnapshotChunks kills a consumer (SIGKILL, in a child
// process) deterministically in the middle of a snapshot write: the
// snapshot topic's max.message.bytes makes every snapshot dozens of chunks,
// and the child holds the acknowledgement of a snapshot's second chunk and
// is killed then, so the snapshot is partly in the topic (its first chunks
// acknowledged, its last never written) and no commit names it. Either a
// commit named an earlier snapshot (which the new owner must load, not the
// partial one) or none did (the new owner replays from the open sessions'
// first records). Either way no span may be lost, none closed below the
// commit's mark re-emitted, and none may differ from the replay of the same
// records: no session of those open at the kill is cut into a fragment.
func TestKilledMidSnapshotChunks(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	for _, tc := range []struct {
		name string
		// afterCommit arms the hold only once a commit names a snapshot.
		afterCommit bool
	}{
		{"an earlier snapshot committed", true},
		{"no snapshot committed yet", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kafkatest.Each(t, func(t *testing.T, brokers []string) {
				testKilledMidSnapshotChunks(t, brokers, tc.afterCommit)
			})
		})
	}
}

func testKilledMidSnapshotChunks(t *testing.T, brokers []string, afterCommit bool) {
	topic := kafkatest.Topic(t, brokers, 1)
	group := kafkatest.Group(t)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Chunks of 256 bytes (startSnapshots: a fifth of the limit, less a
	// record's framing), so a snapshot of these sessions is dozens.
	maxBytes, compact := strconv.Itoa((snapshotInFlight+1)*(recordOverhead+256)), "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact, "max.message.bytes": &maxBytes}, topic+".snapshots")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic+".snapshots")
	})

	cfg := testConfig(brokers, topic, group)
	cfg.SnapshotInterval = 20 * time.Millisecond
	cfg.Lifecycle.IdleTimeout = 24 * time.Hour
	rp := newSpanReplay(t, cfg)
	base := time.Now().Add(-time.Hour).UnixNano()
	ev := func(typ schema.Type, player, id string, sec int) schema.Event {
		e := schema.Event{Type: typ, PlayerID: player, EventID: id, TS: base + int64(sec)*int64(time.Second)}
		if typ == schema.SessionLogin {
			e.AuthMethod = "oauth"
		} else {
			e.Reason = "client_quit"
		}
		return e
	}
	sec := 0
	var phaseA []schema.Event
	const open, short = 200, 300
	for i := range open {
		phaseA = append(phaseA, ev(schema.SessionLogin, fmt.Sprintf("open-%d", i), fmt.Sprintf("open-%d-in", i), sec))
		sec++
	}
	for i := range short {
		p := fmt.Sprintf("a%d", i)
		phaseA = append(phaseA, ev(schema.SessionLogin, p, p+"-in", sec), ev(schema.SessionDisconnect, p, p+"-out", sec))
		sec++
	}
	rp.produce(t, brokers, topic, phaseA)

	rcv := startReceiver(t)
	armed := t.TempDir() + "/armed"
	if !afterCommit {
		if err := os.WriteFile(armed, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	child, held := startHoldingChild(t, brokers, topic, group, rcv.Addr(), armed)

	var prev checkpoint.Metadata
	if afterCommit {
		waitSpans(t, rcv, len(rp.spans), 60*time.Second)
		prev = waitSnapshotCommit(t, brokers, group, topic, rp.next, 60*time.Second)
		if err := os.WriteFile(armed, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		// New records, so that a new snapshot is written: half of the
		// open sessions end, more short ones come and go.
		var phaseB []schema.Event
		for i := range open / 2 {
			phaseB = append(phaseB, ev(schema.SessionDisconnect, fmt.Sprintf("open-%d", i), fmt.Sprintf("open-%d-out", i), sec))
		}
		for i := range 50 {
			p := fmt.Sprintf("b%d", i)
			phaseB = append(phaseB, ev(schema.SessionLogin, p, p+"-in", sec), ev(schema.SessionDisconnect, p, p+"-out", sec))
			sec++
		}
		rp.produce(t, brokers, topic, phaseB)
	}
	var key string
	select {
	case key = <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the child never held a snapshot chunk")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	// The snapshot is partly written and no commit names it.
	heldOffset, err := strconv.ParseInt(strings.Split(key, "/")[1], 10, 64)
	if err != nil {
		t.Fatalf("held chunk key %q: %v", key, err)
	}
	chunks, last := snapshotChunks(t, brokers, topic+".snapshots", strings.TrimSuffix(key, "1"))
	if chunks < 2 || last {
		t.Fatalf("held snapshot %q: %d chunks in the topic, last chunk written %t; want at least 2 and no last", key, chunks, last)
	}
	c := kafkatest.Committed(t, brokers, group, topic)[0]
	// No commit at all is possible too: the first snapshot may be held
	// before the first commit (the mark is then 0).
	atKill, ok := checkpoint.Parse(c.Metadata, c.Offset)
	if c.Metadata != "" && !ok {
		t.Fatalf("commit at the kill %d %q unreadable", c.Offset, c.Metadata)
	}
	if atKill.Snapshot != "" && c.Offset == heldOffset {
		t.Fatalf("the commit %d %q names the snapshot that was never completed", c.Offset, c.Metadata)
	}
	if afterCommit && atKill.Snapshot == "" {
		t.Fatalf("commit at the kill %d %q names no snapshot; %q was committed before", c.Offset, c.Metadata, prev.Snapshot)
	}
	t.Logf("held %s (%d chunks written, no last); commit at the kill %d %q", key, chunks, c.Offset, c.Metadata)

	// The new owner: everything, then the remaining open sessions end.
	out := exporter(t, rcv.Addr())
	r := startConsumer(t, cfg, out)
	var phaseC []schema.Event
	for i := range open {
		if afterCommit && i < open/2 {
			continue
		}
		phaseC = append(phaseC, ev(schema.SessionDisconnect, fmt.Sprintf("open-%d", i), fmt.Sprintf("open-%d-out", i), sec))
	}
	rp.produce(t, brokers, topic, phaseC)
	waitEvery(t, rcv, slices.Collect(maps.Keys(rp.spans)), 90*time.Second)
	waitCommitted(t, brokers, group, topic, map[int32]int64{0: rp.next}, 60*time.Second)
	r.shutdown(t)

	seen := map[string]int{}
	for _, sp := range rcv.Spans() {
		id := sp.SpanID.String()
		seen[id]++
		want, ok := rp.spans[id]
		if !ok {
			t.Errorf("span %s %q %v received, which the replay of the records never makes (a fragment?)", id, sp.Name, sp.Attrs)
			continue
		}
		if sp.Name != want.span.Name || sp.Start != want.span.Start || sp.End != want.span.End || sp.ParentSpanID != want.span.ParentSpanID {
			t.Errorf("span %s %q [%d, %d] contradicts the replay's %q [%d, %d]", id, sp.Name, sp.Start, sp.End, want.span.Name, want.span.Start, want.span.End)
		}
		if seen[id] == 2 && want.closedBy < atKill.Mark {
			t.Errorf("span %s %q re-emitted although its record (offset %d) is below the committed mark %d", id, sp.Name, want.closedBy, atKill.Mark)
		}
	}
	dups := 0
	for id := range rp.spans {
		switch n := seen[id]; {
		case n == 0:
			t.Errorf("span %s %q lost", id, rp.spans[id].span.Name)
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("%d spans expected, %d received, %d duplicates", len(rp.spans), rcv.Count(), dups)
}

// spanReplay produces records and runs them through the decoder and state
// machine the consumer uses, for the spans it must export.
type spanReplay struct {
	m     *lifecycle.Machine
	dec   *schema.Decoder
	next  int64
	spans map[string]replayedSpan
}

type replayedSpan struct {
	span     lifecycle.Span
	closedBy int64 // the offset of the record that closed it
}

func newSpanReplay(t *testing.T, cfg Config) *spanReplay {
	t.Helper()
	m, err := lifecycle.New(cfg.Lifecycle.Config)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := schema.NewDecoder(cfg.Limits)
	if err != nil {
		t.Fatal(err)
	}
	return &spanReplay{m: m, dec: dec, spans: map[string]replayedSpan{}}
}

// produce produces evs to partition 0 of topic and replays them.
func (rp *spanReplay) produce(t *testing.T, brokers []string, topic string, evs []schema.Event) {
	t.Helper()
	recs := make([]*kgo.Record, 0, len(evs))
	var got schema.Event
	for i := range evs {
		value := schema.AppendJSON(nil, &evs[i])
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(evs[i].PlayerID), Value: value, Timestamp: time.Unix(0, evs[i].TS)})
		if err := rp.dec.Decode(recs[i].Key, value, &got); err != nil {
			t.Fatal(err)
		}
		spans, _ := rp.m.Apply(&got, rp.next, nil)
		for _, s := range spans {
			rp.spans[s.SpanID.String()] = replayedSpan{span: s, closedBy: rp.next}
		}
		rp.next++
	}
	kafkatest.Produce(t, brokers, recs...)
}

// waitEvery waits until the receiver holds every span of want, by span ID
// (a count would be reached early by duplicates).
func waitEvery(t *testing.T, rcv *receiver.Receiver, want []string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		count := rcv.Count()
		seen := map[string]bool{}
		for _, sp := range rcv.Spans() {
			seen[sp.SpanID.String()] = true
		}
		missing := 0
		for _, id := range want {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if err := rcv.WaitCount(ctx, count+1); err != nil {
			t.Fatalf("%d of %d spans never arrived: %v", missing, len(want), err)
		}
	}
}

// startHoldingChild starts runChild with holdSnapshotEnv set to armed, and
// returns it with the channel that receives the key of the chunk it holds.
func startHoldingChild(t *testing.T, brokers []string, topic, group, otlp, armed string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"CHILD_BROKERS="+strings.Join(brokers, ","), "CHILD_TOPIC="+topic, "CHILD_GROUP="+group, "CHILD_EXPORT_PATH="+ExportDirect,
		"CHILD_OTLP="+otlp, "CHILD_SNAPSHOT_INTERVAL=20ms", holdSnapshotEnv+"="+armed)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	held := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), heldPrefix); ok {
				held <- k
				return
			}
		}
	}()
	return cmd, held
}

// waitSnapshotCommit waits until the group's commit of partition 0 names a
// snapshot and its mark reaches end, and returns its metadata.
func waitSnapshotCommit(t *testing.T, brokers []string, group, topic string, end int64, within time.Duration) checkpoint.Metadata {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := kafkatest.Committed(t, brokers, group, topic)[0]
		if m, ok := checkpoint.Parse(c.Metadata, c.Offset); ok && m.Snapshot != "" && m.Mark >= end {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no commit naming a snapshot at mark %d: %+v", end, c)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond): // polling the group's commit, bounded by the deadline
		}
	}
}

// snapshotChunks reads the snapshot topic and counts the chunks under
// prefix, and whether one of them is the last.
func snapshotChunks(t *testing.T, brokers []string, topic, prefix string) (n int, last bool) {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	got := map[int32]int64{}
	done := func() bool {
		for p, e := range want {
			if got[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v (at %v of %v)", topic, ctx.Err(), got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = r.Offset + 1
			if !strings.HasPrefix(string(r.Key), prefix) || r.Value == nil {
				return
			}
			n++
			for _, h := range r.Headers {
				if h.Key == HeaderSnapshotLast {
					last = true
				}
			}
		})
	}
	return n, last
}
