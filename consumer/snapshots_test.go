package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// snapshotMachine is a machine with n open sessions.
func snapshotMachine(t *testing.T, n int) *lifecycle.Machine {
	t.Helper()
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range n {
		ev := schema.Event{Type: schema.SessionLogin, PlayerID: fmt.Sprintf("player-%d", i), EventID: fmt.Sprintf("e%d", i),
			TS: ts + int64(i)*int64(time.Millisecond), AuthMethod: "oauth", Platform: "pc"}
		m.Apply(&ev, int64(i), nil)
	}
	return m
}

func testSnapshotStore(t *testing.T, brokers []string, chunk int) *snapshotStore {
	t.Helper()
	source := kafkatest.Topic(t, brokers, 3)
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	s := &snapshotStore{cl: cl, adm: kadm.NewClient(cl), brokers: brokers, topic: source + ".snapshots", chunk: chunk}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.ensure(ctx, source); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = s.adm.DeleteTopics(ctx, s.topic)
	})
	return s
}

// TestSnapshotTopic writes snapshots through the topic in chunks and reads
// them back: the compacted topic is created with the source's partition
// count, a snapshot round-trips byte for byte, and a wrong hash, a chunk
// count the topic does not hold, or an offset with nothing behind it is
// refused.
func TestSnapshotTopic(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := testSnapshotStore(t, brokers, 4096)
		if s.partitions != 3 {
			t.Fatalf("snapshot topic has %d partitions, want the source's 3", s.partitions)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cfgs, err := s.adm.DescribeTopicConfigs(ctx, s.topic)
		if err != nil {
			t.Fatal(err)
		}
		policy := ""
		for _, c := range cfgs[0].Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if policy != "compact" {
			t.Fatalf("snapshot topic cleanup.policy %q, want compact", policy)
		}

		m := snapshotMachine(t, 2000)
		var want bytes.Buffer
		if _, _, err := m.WriteSnapshot(&want); err != nil {
			t.Fatal(err)
		}
		// Two snapshots of the same partition, so the reader must pick its
		// own chunks.
		if _, _, err := s.write(ctx, m, 4, 1000); err != nil {
			t.Fatal(err)
		}
		ref, _, err := s.write(ctx, m, 4, 2000)
		if err != nil {
			t.Fatal(err)
		}
		if wantChunks := (want.Len() + s.chunk - 1) / s.chunk; ref.chunks < wantChunks || ref.partition != 1 {
			t.Fatalf("ref %s: want at least %d chunks of %d bytes for %d bytes, in partition 4 mod 3", ref, wantChunks, s.chunk, want.Len())
		}
		back, err := parseSnapshotRef(ref.String())
		if err != nil || back != ref {
			t.Fatalf("ref %s parses back as %s, %v", ref, back, err)
		}
		got, info, err := s.read(ctx, ref, 4, 2000)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) || info.Sessions != 2000 {
			t.Fatalf("read %d bytes, %d sessions; want the %d bytes written, 2000 sessions", len(got), info.Sessions, want.Len())
		}

		bad := ref
		bad.sum[0] ^= 1
		if _, _, err := s.read(ctx, bad, 4, 2000); !errors.Is(err, lifecycle.ErrSnapshotCorrupt) {
			t.Fatalf("a ref with another hash: %v, want ErrSnapshotCorrupt", err)
		}
		short, cancelShort := context.WithTimeout(ctx, 10*time.Second)
		defer cancelShort()
		more := ref
		more.chunks++
		if _, _, err := s.read(short, more, 4, 2000); !errors.Is(err, errSnapshotMissing) {
			t.Fatalf("a ref with more chunks than written: %v, want errSnapshotMissing", err)
		}
		if _, _, err := s.read(short, ref, 4, 1500); !errors.Is(err, errSnapshotMissing) {
			t.Fatalf("the ref of another offset: %v, want errSnapshotMissing", err)
		}
	})
}

// TestSnapshotRestart runs a partition in which one session stays open from
// its first record while many others come and go, with snapshots on: the
// commit passes the open session (it may only with a durable snapshot), and
// a new owner ends that session as the old one would have, whole (started
// by its login, at the login's time), although it never reads the login:
// from the snapshot; when the snapshot is gone, by falling back to the
// oldest record the topic holds; when retention deleted the login, from the
// snapshot still.
func TestSnapshotRestart(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	for _, tc := range []struct {
		name   string
		before func(t *testing.T, brokers []string, topic string, committed int64)
	}{
		{"snapshot", nil},
		{"snapshot topic deleted", func(t *testing.T, brokers []string, topic string, _ int64) {
			adm := kadm.NewClient(kafkatest.Client(t, brokers))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if _, err := adm.DeleteTopics(ctx, topic+".snapshots"); err != nil {
				t.Fatal(err)
			}
		}},
		{"login deleted by retention", func(t *testing.T, brokers []string, topic string, committed int64) {
			adm := kadm.NewClient(kafkatest.Client(t, brokers))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var o kadm.Offsets
			o.Add(kadm.Offset{Topic: topic, Partition: 0, At: committed})
			resp, err := adm.DeleteRecords(ctx, o)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Skipf("delete records: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kafkatest.Each(t, func(t *testing.T, brokers []string) {
				topic := kafkatest.Topic(t, brokers, 1)
				group := kafkatest.Group(t)
				base := time.Now().Add(-time.Hour).UnixNano()
				rec := func(ev schema.Event) *kgo.Record {
					return &kgo.Record{Topic: topic, Partition: 0, Key: []byte(ev.PlayerID), Value: schema.AppendJSON(nil, &ev)}
				}
				login := schema.Event{Type: schema.SessionLogin, PlayerID: "old", EventID: "old-login", TS: base, AuthMethod: "oauth"}
				recs := []*kgo.Record{rec(login)}
				const others = 300
				for i := range others {
					p := fmt.Sprintf("p%d", i)
					ts := base + int64(i+1)*int64(time.Second)
					recs = append(recs,
						rec(schema.Event{Type: schema.SessionLogin, PlayerID: p, EventID: p + "-in", TS: ts}),
						rec(schema.Event{Type: schema.SessionDisconnect, PlayerID: p, EventID: p + "-out", TS: ts + 1, Reason: "client_quit"}))
				}
				kafkatest.Produce(t, brokers, recs...)
				end := int64(len(recs))

				recv := startReceiver(t)
				out := exporter(t, recv.Addr())
				cfg := testConfig(brokers, topic, group)
				cfg.SnapshotInterval = 50 * time.Millisecond
				cfg.Lifecycle.IdleTimeout = 24 * time.Hour
				a := startConsumer(t, cfg, out)
				waitSpans(t, recv, 1+2*others, 60*time.Second)
				waitCommitted(t, brokers, group, topic, map[int32]int64{0: end}, 60*time.Second)
				a.shutdown(t)
				if c := kafkatest.Committed(t, brokers, group, topic)[0]; namesSnapshot(c.Metadata, c.Offset) == "" {
					t.Fatalf("commit metadata %q names no snapshot", c.Metadata)
				}
				if tc.before == nil {
					ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
					defer cancel()
					cs, err := ReadCommittedSnapshot(ctx, cfg, 0)
					if err != nil || cs.Committed != end || cs.Ref == "" || cs.Info.Sessions != 1 || cs.Info.LowestOffset != 0 {
						t.Fatalf("ReadCommittedSnapshot = %+v, %v; want the commit at %d naming a snapshot of old's session", cs.Info, err, end)
					}
					// With the reorder window on (the default) the last
					// events are usually still held when the snapshot is
					// taken, before the quiet flush (the commit names both).
					t.Logf("commit %q: snapshot of %d sessions and %d held events", cs.Metadata, cs.Info.Sessions, cs.Info.Held)
				} else {
					tc.before(t, brokers, topic, end)
				}

				// The new owner writes no snapshot of its own for now: its
				// commits must stay at the one it loaded, never fall back to
				// old's login (or, when the snapshot was lost, they may).
				cfgB := cfg
				cfgB.SnapshotInterval = time.Hour
				b := startConsumer(t, cfgB, out)
				qts := base + int64(others+5)*int64(time.Second)
				kafkatest.Produce(t, brokers,
					rec(schema.Event{Type: schema.SessionLogin, PlayerID: "q", EventID: "q-in", TS: qts}),
					rec(schema.Event{Type: schema.SessionDisconnect, PlayerID: "q", EventID: "q-out", TS: qts + 1, Reason: "client_quit"}))
				waitSpans(t, recv, 3+2*others, 60*time.Second)
				if tc.name != "snapshot topic deleted" {
					deadline := time.Now().Add(30 * time.Second)
					for {
						c := kafkatest.Committed(t, brokers, group, topic)[0]
						if h, ok := parseMetadata(c.Metadata, c.Offset); ok && h == end+2 {
							if c.Offset != end {
								t.Fatalf("the new owner committed %d (%q), want the loaded snapshot's %d", c.Offset, c.Metadata, end)
							}
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("the new owner's commit %+v never reached mark %d", c, end+2)
						}
						select {
						case <-t.Context().Done():
							t.Fatal(t.Context().Err())
						case <-time.After(50 * time.Millisecond): // polling the group's commit, bounded by the deadline
						}
					}
				}
				kafkatest.Produce(t, brokers, rec(schema.Event{Type: schema.SessionDisconnect, PlayerID: "old", EventID: "old-out",
					TS: base + int64(others+10)*int64(time.Second), Reason: "client_quit"}))
				waitCommitted(t, brokers, group, topic, map[int32]int64{0: end + 3}, 60*time.Second)
				b.shutdown(t)
				var roots []any
				for _, s := range recv.Spans() {
					if s.Name == lifecycle.SpanLifecycle && s.Attrs[string(lifecycle.KeyPlayerID)] == "old" {
						roots = append(roots, s.Attrs)
						if s.Start != base || s.Attrs[string(lifecycle.KeyStartObserved)] == false {
							t.Errorf("old's session ended as a fragment: start %d (login %d), attributes %v", s.Start, base, s.Attrs)
						}
					}
				}
				if len(roots) != 1 {
					t.Fatalf("old's session has %d roots, want 1: %v", len(roots), roots)
				}
				if n := recv.Count(); n != 4+2*others {
					t.Errorf("%d spans exported, want %d", n, 4+2*others)
				}
			})
		})
	}
}

// TestKilledWhileSnapshotting kills a consumer (SIGKILL, in a child
// process) that writes a snapshot of every partition each millisecond, so
// the kill lands while snapshots are being written (nothing forces it into
// one; at this rate most of the child's time goes to them). The next owner
// must lose no span and re-emit none closed below the commit's mark,
// whichever snapshot, complete or not, the topic held.
func TestKilledWhileSnapshotting(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 3, players: 90, openAtEnd: 6, matches: 3})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)

		first, second := s.split(0.5)
		first.produce(t, brokers, topic)
		child := startChild(t, brokers, topic, group, path, rcv.Addr(), "CHILD_SNAPSHOT_INTERVAL=1ms")
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		before := rcv.Count()
		second.produce(t, brokers, topic)
		waitSpans(t, rcv, before+1, 60*time.Second)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		atKill := committedWithMarks(t, brokers, group, topic)
		snapshotted := 0
		for _, c := range kafkatest.Committed(t, brokers, group, topic) {
			if namesSnapshot(c.Metadata, c.Offset) != "" {
				snapshotted++
			}
		}

		cfg := pathConfig(brokers, topic, group, path)
		cfg.SnapshotInterval = time.Millisecond
		r := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitDistinct(t, rcv, s, 90*time.Second)
		r.shutdown(t)

		dups := s.check(t, rcv.Spans())
		t.Logf("%d spans expected, %d received, %d duplicates after kill -9; %d of %d partitions' commits named a snapshot at the kill",
			len(s.spans), rcv.Count(), dups, snapshotted, s.partitions)
		counts := map[string]int{}
		for _, sp := range rcv.Spans() {
			counts[sp.SpanID.String()]++
		}
		for id, sp := range s.spans {
			if counts[id.String()] > 1 && s.closedBy[id] < atKill[s.partOf[id]] {
				t.Errorf("span %s %q re-emitted although its record (offset %d) is below the committed mark %d", id, sp.Name, s.closedBy[id], atKill[s.partOf[id]])
			}
		}
	})
}

// waitDistinct waits until the receiver holds every span of s at least once
// (a count would be reached early by duplicates).
func waitDistinct(t *testing.T, rcv *receiver.Receiver, s *scenario, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		seen := map[string]bool{}
		for _, sp := range rcv.Spans() {
			seen[sp.SpanID.String()] = true
		}
		missing := 0
		for id := range s.spans {
			if !seen[id.String()] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spans never arrived", missing, len(s.spans))
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond): // polling the receiver, bounded by the deadline
		}
	}
}

// BenchmarkRecovery measures a restart to caught-up of a partition in which
// one session has been open since its first record, with N records of
// short sessions behind it, with and without snapshots: the time from the
// new owner's start to the span of the open session's next event.
//
//	SESSIONTRACE_TEST_BROKERS=$addr go test ./consumer -run '^$' -bench Recovery -benchtime 1x
func BenchmarkRecovery(b *testing.B) {
	brokers := kafkatest.Backends()[0].Start(b)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, snap := range []bool{false, true} {
			b.Run(fmt.Sprintf("records=%d/snapshots=%t", n, snap), func(b *testing.B) {
				for range b.N {
					topic := kafkatest.Topic(b, brokers, 1)
					group := kafkatest.Group(b)
					base := time.Now().Add(-time.Hour).UnixNano()
					rec := func(ev schema.Event) *kgo.Record {
						return &kgo.Record{Topic: topic, Partition: 0, Key: []byte(ev.PlayerID), Value: schema.AppendJSON(nil, &ev)}
					}
					recs := []*kgo.Record{rec(schema.Event{Type: schema.SessionLogin, PlayerID: "old", EventID: "old-login", TS: base})}
					for i := range n / 2 {
						p := fmt.Sprintf("p%d", i)
						ts := base + int64(i+1)*int64(time.Millisecond)
						recs = append(recs,
							rec(schema.Event{Type: schema.SessionLogin, PlayerID: p, EventID: p + "-in", TS: ts}),
							rec(schema.Event{Type: schema.SessionDisconnect, PlayerID: p, EventID: p + "-out", TS: ts + 1, Reason: "client_quit"}))
					}
					kafkatest.Produce(b, brokers, recs...)
					recv := startReceiver(b)
					out := exporter(b, recv.Addr())
					cfg := testConfig(brokers, topic, group)
					cfg.ExportQueueSize, cfg.ExportBatchSize = 8192, 1024
					cfg.Lifecycle.IdleTimeout = 24 * time.Hour
					if snap {
						cfg.SnapshotInterval = 100 * time.Millisecond
					}
					a := startConsumer(b, cfg, out)
					waitSpans(b, recv, 1+n, 5*time.Minute)
					a.shutdown(b)
					start := time.Now()
					c := startConsumer(b, cfg, out)
					kafkatest.Produce(b, brokers, rec(schema.Event{Type: schema.SessionDisconnect, PlayerID: "old", EventID: "old-out",
						TS: base + int64(n)*int64(time.Millisecond), Reason: "client_quit"}))
					waitSpans(b, recv, 2+n, 5*time.Minute)
					b.ReportMetric(time.Since(start).Seconds(), "s/restart")
					c.shutdown(b)
				}
			})
		}
	}
}

// namesSnapshot returns the ref of the snapshot a commit's metadata names,
// "" when none (version 3, or 4 with quiet flushes).
func namesSnapshot(metadata string, offset int64) string {
	m, _ := checkpoint.Parse(metadata, offset)
	return m.Snapshot
}
