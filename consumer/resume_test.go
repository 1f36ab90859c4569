package consumer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// The resume property: for every position (C, metadata) an owner could
// commit while processing a stream, a fresh owner that starts at C with that
// metadata emits exactly the spans of the uninterrupted run closed by
// records at or after the mark H (every span the run had not had
// acknowledged, and at most the acknowledged part of the record at H again),
// byte for byte and in the same order, and its rebuild decides as the run
// did: the same stream time after every record from C on, the same
// duplicates, and the same outcome for every record from H on. It is
// checked on the pure partition logic (decoder, bounds, machine, ledger),
// with a simulated lane that acknowledges spans and dead-letter writes at
// random moments.

// chooser is where a generated stream's choices come from: a seeded
// generator for the property test, the fuzzer's bytes for the fuzz target.
type chooser interface{ IntN(n int) int }

// byteChooser reads choices from b, then zeros.
type byteChooser struct{ b []byte }

func (c *byteChooser) IntN(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

// genRecord is one generated Kafka record.
type genRecord struct {
	key, value []byte
	ts         time.Time // the record's Kafka timestamp; zero: none
	at         int64     // when it was generated (Unix ns)
}

// resumeConfig is small enough for idle timeouts, dedup window evictions and
// skew bounds to matter within a few hundred records. MaxDuration is out of
// reach: its expiries are the documented divergence (package checkpoint).
func resumeConfig() Config {
	cfg := DefaultConfig()
	cfg.Lifecycle.IdleTimeout = 10 * time.Minute
	cfg.Lifecycle.MaxDuration = 10000 * time.Hour
	cfg.Lifecycle.DedupWindow = 8
	return cfg
}

// genStream generates n records of one partition: players on two game
// servers whose clocks disagree by two hours (so ts is out of order across
// players, records being in the order events happened), sessions with and
// without logins, some events naming a trace (a link), events out of phase, duplicates near and beyond the dedup
// window, late events, silences longer than the idle timeout, events far in
// the future with sane record timestamps, slightly ahead ones, records
// without a timestamp, and poison.
func genStream(c chooser, n int) []genRecord { return genStreamEvery(c, n, 90*time.Second) }

// genJittered is genStream with events at most step apart, whose records
// reach the partition in the order of their ts plus up to jitter (several
// producers, each with its own delay), so neighbouring events are out of
// order.
func genJittered(c chooser, n int, step, jitter time.Duration) []genRecord {
	recs := genStreamEvery(c, n, step)
	arrival := make([]int64, len(recs))
	for i := range recs {
		arrival[i] = recs[i].at + int64(c.IntN(int(jitter)))
	}
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return arrival[idx[a]] < arrival[idx[b]] })
	out := make([]genRecord, len(recs))
	for i, j := range idx {
		out[i] = recs[j]
	}
	return out
}

// genStreamEvery is genStream with at most step between events.
func genStreamEvery(c chooser, n int, step time.Duration) []genRecord {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano()
	players := 2 + c.IntN(7)
	seq := make([]int, players)
	sess := make([]int, players)
	var out []genRecord
	event := func(p int, ts int64) schema.Event {
		ev := schema.Event{PlayerID: fmt.Sprintf("p%d", p), TS: ts}
		if p%2 == 1 {
			ev.TS += int64(2 * time.Hour) // the second server's clock
		}
		ev.EventID = fmt.Sprintf("p%d-%d", p, seq[p])
		seq[p]++
		if sess[p]%3 != 0 {
			ev.SessionID = fmt.Sprintf("s%d", sess[p])
		}
		switch c.IntN(10) {
		case 0, 1:
			ev.Type, ev.AuthMethod, ev.ClientVersion, ev.Platform = schema.SessionLogin, "password", "1.4.2", "pc"
		case 2:
			ev.Type, ev.GameMode = schema.MatchmakingEnter, []string{"ranked", "casual"}[c.IntN(2)]
		case 3:
			ev.Type, ev.LobbyID = schema.MatchmakingComplete, "lobby"
		case 4:
			ev.Type, ev.LoadingType = schema.LoadingStart, "match"
		case 5:
			ev.Type, ev.AssetsLoaded, ev.HasAssetsLoaded = schema.LoadingFinish, 12, true
		case 6:
			ev.Type, ev.ServerID, ev.Map = schema.GameEnter, "srv-1", "dust"
		case 7:
			ev.Type, ev.Result, ev.Score, ev.HasScore = schema.GameLeave, "win", 3, true
		case 8:
			ev.Type, ev.Reason = schema.SessionDisconnect, "client_quit"
			defer func() { sess[p]++ }()
		default:
			ev.Type, ev.GameMode = schema.MatchmakingCancel, ""
		}
		// Some logins and games name a trace (no choice is drawn for it, so
		// the streams are those without links): the links are kept by open
		// sessions, so a snapshot or a rebuild must bring them back.
		if (ev.Type == schema.SessionLogin || ev.Type == schema.GameEnter || ev.Type == schema.GameLeave) && seq[p]%2 == 0 {
			ev.Link = schema.TraceLink{TraceID: [16]byte{byte(p + 1), byte(seq[p])}, SpanID: [8]byte{7, byte(seq[p])}, Flags: 1}
		}
		return ev
	}
	add := func(ev schema.Event, ts time.Time) {
		out = append(out, genRecord{key: []byte(ev.PlayerID), value: schema.AppendJSON(nil, &ev), ts: ts, at: now})
	}
	for len(out) < n {
		now += int64(c.IntN(int(step/time.Millisecond))) * int64(time.Millisecond)
		p := c.IntN(players)
		switch k := c.IntN(24); {
		case k < 14: // an event, stamped by its server's clock
			ev := event(p, now)
			add(ev, time.Unix(0, ev.TS))
		case k < 16 && len(out) > 0: // a redelivery, near or beyond the window
			back := 1 + c.IntN(min(len(out), 20))
			out = append(out, out[len(out)-back])
		case k == 16: // a silence longer than the idle timeout
			now += int64(10*time.Minute) + int64(c.IntN(20))*int64(time.Minute)
		case k == 17: // a producer clock two centuries ahead
			ev := event(p, time.Date(2262, 4, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			ev.TS = time.Date(2262, 4, 1, 0, 0, 0, 0, time.UTC).UnixNano()
			add(ev, time.Unix(0, now))
		case k == 18: // a late event: its ts is behind the stream
			ev := event(p, now-int64(c.IntN(40))*int64(time.Minute))
			add(ev, time.Unix(0, now))
		case k == 19: // slightly ahead, within max_future_skew
			ev := event(p, now+int64(c.IntN(4))*int64(time.Minute))
			add(ev, time.Unix(0, now))
		case k == 20: // no record timestamp: never bounded
			add(event(p, now), time.Time{})
		case k == 21:
			out = append(out, genRecord{key: []byte("x"), value: []byte(`{"type":"session.login"`), ts: time.Unix(0, now), at: now})
		default:
			ev := event(p, now)
			add(ev, time.Unix(0, ev.TS))
		}
	}
	return out
}

// emittedSpan is a span an owner emitted and the record that closed it.
type emittedSpan struct {
	offset int64
	span   lifecycle.Span
}

// owner runs a stream through the pure partition logic and a ledger as the
// worker does, with a simulated lane: emitted spans are acknowledged in
// order up to acked, dead-letter writes when the test says so.
type owner struct {
	t      testing.TB
	p      *partition[int64]
	steps  []step[int64]
	l      *checkpoint.Ledger[int64]
	mark   int64
	spans  []emittedSpan
	acked  int64
	dlq    []*atomic.Int32 // outstanding dead-letter writes, oldest first
	stream map[int64]int64 // stream time after each applied record
	out    map[int64]lifecycle.Outcome
	buf    []lifecycle.Span
}

func newOwner(t testing.TB, cfg Config) *owner {
	t.Helper()
	p, err := newPartition[int64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &owner{t: t, p: p, l: checkpoint.New[int64](-1), mark: -1, stream: map[int64]int64{}, out: map[int64]lifecycle.Outcome{}}
}

// resumed is a fresh owner for a commit at pos, through the metadata
// codec, and the offset it starts reading at; snaps holds the snapshots by
// ref.
func resumed(t testing.TB, cfg Config, pos checkpoint.Position, snaps map[string][]byte) (*owner, int64) {
	t.Helper()
	o := newOwner(t, cfg)
	meta, ok := checkpoint.Parse(checkpoint.Format(pos), pos.Offset)
	if !ok {
		t.Fatalf("metadata of %+v does not parse back", pos)
	}
	o.mark = meta.Mark
	o.l.Resume(meta.Mark)
	if meta.Snapshot != "" {
		b, ok := snaps[meta.Snapshot]
		if !ok {
			t.Fatalf("commit %+v names an unknown snapshot", pos)
		}
		if _, err := o.p.restore(pos.Offset, meta, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		// The partition's whole state came back: written again, the
		// snapshot is byte for byte the same.
		var again bytes.Buffer
		if _, _, err := o.p.WriteSnapshot(&again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("commit %+v: the restored partition's snapshot differs from the one it was restored from", pos)
		}
		o.l.Restored(checkpoint.Snapshot{Point: pos.Point, Ref: meta.Snapshot})
		return o, pos.Offset
	}
	o.p.resume(pos.Offset, meta)
	from := pos.Offset
	if meta.Resume {
		from = meta.WindowStart
	}
	return o, from
}

// process runs the record at off as worker.process does.
func (o *owner) process(r genRecord, off int64) {
	spans, steps := o.p.process(&schema.Record{Key: r.key, Value: r.value}, r.ts, off, off, o.buf[:0], o.steps[:0])
	o.handle(spans, steps)
}

// flushAt applies what the reorder window holds if a quiet flush is
// planned before the record at next.
func (o *owner) flushAt(next int64) {
	spans, steps := o.p.flushAt(next, o.buf[:0], o.steps[:0])
	o.handle(spans, steps)
}

// finish applies what the reorder window still holds, as at the end of the
// input; next is the offset after the last record.
func (o *owner) finish(next int64) {
	spans, steps := o.p.flush(next, o.buf[:0], o.steps[:0])
	o.handle(spans, steps)
}

// handle does the steps' side effects as worker.apply does.
func (o *owner) handle(spans []lifecycle.Span, steps []step[int64]) {
	from := 0
	for _, st := range steps {
		o.step(st, spans[from:st.spans])
		from = st.spans
	}
	o.buf, o.steps = spans[:0], steps[:0]
}

func (o *owner) step(st step[int64], spans []lifecycle.Span) {
	if st.warm {
		return
	}
	defer o.l.Processed(st.next, st.low)
	if st.held {
		return
	}
	replayed := st.before.Offset < o.mark
	off := st.offset
	o.out[off] = st.out
	if st.applied {
		o.stream[off] = st.stream
	}
	var dlq *atomic.Int32
	if st.reason != "" && !replayed {
		dlq = new(atomic.Int32)
		dlq.Store(1)
		o.dlq = append(o.dlq, dlq)
	}
	if replayed {
		spans = spans[:0]
	}
	if st.out.Has(lifecycle.Started) {
		o.l.Started(st.before)
	}
	emitted := int64(len(o.spans))
	if len(spans) > 0 || dlq != nil {
		o.l.Add(checkpoint.Record[int64]{Point: st.before, SpanStart: emitted, SpanEnd: emitted + int64(len(spans)), DeadLetters: dlq, Payload: off})
	}
	for _, sp := range spans {
		o.spans = append(o.spans, emittedSpan{offset: st.before.Offset, span: sp})
	}
}

// acknowledge lets the simulated lane and dead-letter producer catch up at
// random.
func (o *owner) acknowledge(c chooser) {
	if n := int64(len(o.spans)) - o.acked; n > 0 && c.IntN(3) == 0 {
		o.acked += int64(c.IntN(int(n) + 1))
	}
	for len(o.dlq) > 0 && c.IntN(2) == 0 {
		o.dlq[0].Store(0)
		o.dlq = o.dlq[1:]
	}
}

// checkResume runs the property over stream; it returns how many positions
// it checked, how many of them named a snapshot, and how many named one
// taken while the reorder window held events. With snapshots, the run takes
// snapshots at random moments (as worker.snapshot does: events held or
// not, never with a quiet flush planned before the next record and not yet
// applied), each durable at once, so that commits may name them.
//
// With gaps, offsets skip now and then (a transactional topic's commit
// markers, the positions of merged topics), so a quiet flush is planned
// before an offset no record has.
func checkResume(t testing.TB, cfg Config, stream []genRecord, c chooser, snapshots, gaps bool) (int, int, int) {
	t.Helper()
	offs := make([]int64, len(stream))
	for i, next := range offs {
		offs[i] = next
		if i+1 < len(offs) {
			offs[i+1] = offs[i] + 1
			if gaps && c.IntN(4) == 0 {
				offs[i+1] += 1 + int64(c.IntN(2))
			}
		}
	}
	// at returns the index of the first record at or after offset off.
	at := func(off int64) int {
		k, _ := slices.BinarySearch(offs, off)
		return k
	}
	endOffset := int64(0)
	if len(offs) > 0 {
		endOffset = offs[len(offs)-1] + 1
	}
	run := newOwner(t, cfg)
	type commit struct {
		pos   checkpoint.Position
		acked int64
	}
	var commits []commit
	snaps := map[string][]byte{}
	held := map[string]bool{} // the snapshots taken with events held
	// A quiet flush is planned only with the window on, at random moments
	// with events held (the worker's: caught up, nothing fetched for a
	// window of wall time). The commit naming it is durable before it is
	// applied, as the worker waits for it; the commits before it do not
	// name it, so a fresh owner starting at one of them decides as the run
	// did only up to the flush (nothing the run did after it was emitted
	// before it was committed). upTo[j] is where commit j's check ends: the
	// flush's offset and how many spans the run had emitted before it.
	type limit struct{ offset, spans int64 }
	var upTo []limit
	noLimit := limit{endOffset, -1}
	snapshot := func(next int64) {
		if !snapshots || run.p.planned(next) || c.IntN(6) != 0 {
			return
		}
		var b bytes.Buffer
		if _, _, err := run.p.WriteSnapshot(&b); err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("snap-%d", next)
		if _, ok := snaps[ref]; ok {
			return // one snapshot an offset, as the worker's snapAt keeps it
		}
		snaps[ref], held[ref] = b.Bytes(), run.p.held() > 0
		run.l.Snapshotted(checkpoint.Snapshot{Point: run.p.snapshotPoint(next), Ref: ref})
	}
	for i, r := range stream {
		run.process(r, offs[i])
		run.acknowledge(c)
		// A snapshot before the quiet flush planned at the same offset
		// holds the events the flush applies; one after it, none.
		early := c.IntN(2) == 0
		if early {
			snapshot(offs[i] + 1)
		}
		if cfg.Lifecycle.ReorderWindow > 0 && run.p.held() > 0 && run.l.Flushes() < checkpoint.MaxFlushes && c.IntN(8) == 0 {
			next := offs[i] + 1
			run.l.Flushed(next)
			for j := range commits {
				if upTo[j] == noLimit {
					upTo[j] = limit{next, int64(len(run.spans))}
				}
			}
			pos, _ := run.l.Position(run.acked)
			commits, upTo = append(commits, commit{pos: pos, acked: run.acked}), append(upTo, noLimit)
			run.p.quiet(next)
			run.flushAt(next)
		}
		if !early {
			snapshot(offs[i] + 1)
		}
		if pos, ok := run.l.Position(run.acked); ok && (len(commits) == 0 || commits[len(commits)-1].pos != pos) {
			commits, upTo = append(commits, commit{pos: pos, acked: run.acked}), append(upTo, noLimit)
		}
	}
	for j, cm := range commits {
		pos := cm.pos
		// The spans of the run closed at or after H are a suffix of its
		// emission order.
		k := len(run.spans)
		for k > 0 && run.spans[k-1].offset >= pos.Mark {
			k--
		}
		if int64(k) > cm.acked {
			t.Fatalf("commit %+v: H passes %d unacknowledged spans", pos, int64(k)-cm.acked)
		}
		if held[pos.Snapshot] && pos.Mark < pos.Offset {
			// The restored held events are released at cuts below the
			// snapshot's offset: they must be marked exported.
			t.Fatalf("commit %+v names a snapshot with events held, below its mark", pos)
		}
		fresh, from := resumed(t, cfg, pos, snaps)
		end := upTo[j].offset
		for k := at(from); k < len(stream) && offs[k] < end; k++ {
			off := offs[k]
			fresh.process(stream[k], off)
			if pos.Snapshot == "" {
				continue
			}
			// The resumed owner's own commits never go back below the
			// snapshot it restored, nor its mark, while the events the
			// snapshot held wait at a cut below it.
			if own, ok := fresh.l.Position(int64(len(fresh.spans))); ok && (own.Offset < pos.Offset || own.Mark < pos.Mark) {
				t.Fatalf("commit %+v: the owner resumed from it would commit %+v after record %d", pos, own, off)
			}
		}
		want := run.spans[k:]
		if upTo[j] != noLimit {
			want = run.spans[min(int64(k), upTo[j].spans):upTo[j].spans]
		} else {
			// The end of the stream: a flush the run planned there is the
			// commit's too.
			fresh.flushAt(end)
		}
		if len(fresh.spans) != len(want) {
			t.Fatalf("commit %+v (from %d): resumed owner emitted %d spans, the run %d after H\n%s", pos, from, len(fresh.spans), len(want), spanDiff(fresh.spans, want))
		}
		for i := range want {
			if !reflect.DeepEqual(fresh.spans[i], want[i]) {
				t.Fatalf("commit %+v (from %d): span %d differs\n%s", pos, from, i, spanDiff(fresh.spans, want))
			}
		}
		for k := at(pos.Offset); k < len(stream) && offs[k] < end; k++ {
			off := offs[k]
			if _, ok := fresh.stream[off]; !ok && upTo[j] != noLimit {
				// Held when the check ends; the run applied it at its
				// flush.
				continue
			}
			if fresh.stream[off] != run.stream[off] {
				t.Fatalf("commit %+v: stream time after record %d is %d resumed, %d in the run", pos, off, fresh.stream[off], run.stream[off])
			}
			if got, want := fresh.out[off], run.out[off]; got.Has(lifecycle.Duplicate) != want.Has(lifecycle.Duplicate) || off >= pos.Mark && got != want {
				t.Fatalf("commit %+v: record %d's outcome is %v resumed, %v in the run", pos, off, got, want)
			}
		}
	}
	named, heldNamed := 0, 0
	for _, cm := range commits {
		if cm.pos.Snapshot != "" {
			named++
		}
		if held[cm.pos.Snapshot] {
			heldNamed++
		}
	}
	return len(commits), named, heldNamed
}

func spanDiff(got, want []emittedSpan) string {
	s := ""
	for i := range max(len(got), len(want)) {
		g, w := "-", "-"
		if i < len(got) {
			g = fmt.Sprintf("%d %s %s %v", got[i].offset, got[i].span.Name, got[i].span.SpanID, got[i].span.Attrs)
		}
		if i < len(want) {
			w = fmt.Sprintf("%d %s %s %v", want[i].offset, want[i].span.Name, want[i].span.SpanID, want[i].span.Attrs)
		}
		mark := "  "
		if g != w {
			mark = "!="
		}
		s += fmt.Sprintf("%s resumed %s | run %s\n", mark, g, w)
	}
	return s
}

func TestResumeProperty(t *testing.T) {
	// The first case is the property before the reorder window; the
	// others, slower per stream, run fewer.
	n, more := 200, 50
	if testing.Short() || raceEnabled {
		n, more = 40, 10
	}
	for i, tc := range []struct {
		name   string
		window time.Duration
		gen    func(c chooser, n int) []genRecord
	}{
		{"in order, no window", 0, genStream},
		{"in order, 2s window", 2 * time.Second, genStream},
		{"jittered 500ms, no window", 0, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
		}},
		{"jittered 500ms, 2s window", 2 * time.Second, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
		}},
		{"jittered 5s, 2s window", 2 * time.Second, func(c chooser, n int) []genRecord { return genJittered(c, n, time.Second, 5*time.Second) }},
		{"jittered 500ms, 2s window of 3 events", 2 * time.Second, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 100*time.Millisecond, 500*time.Millisecond)
		}},
		{"jittered 500ms, 2s window, offset gaps", 2 * time.Second, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := resumeConfig()
			cfg.Lifecycle.ReorderWindow = tc.window
			if strings.HasSuffix(tc.name, "of 3 events") {
				cfg.Lifecycle.ReorderMaxEvents = 3
			}
			positions, n := 0, n
			if i > 0 {
				n = more
			}
			for seed := range uint64(n) {
				r := rand.New(rand.NewPCG(seed, 10))
				stream := tc.gen(r, 100+r.IntN(300))
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					p, _, _ := checkResume(t, cfg, stream, r, false, strings.HasSuffix(tc.name, "offset gaps"))
					positions += p
				})
			}
			t.Logf("%d streams, %d committable positions resumed", n, positions)
		})
	}
}

// TestResumePropertySnapshots is the resume property across snapshots:
// resuming from any committed (offset, metadata, snapshot) gives exactly the
// spans of the uninterrupted run.
func TestResumePropertySnapshots(t *testing.T) {
	n, more := 200, 50
	if testing.Short() || raceEnabled {
		n, more = 40, 10
	}
	for i, tc := range []struct {
		name   string
		window time.Duration
		gen    func(c chooser, n int) []genRecord
		// named is the least share of positions that must name a
		// snapshot, held the least share that must name one taken with
		// events held (with the window on, nearly every snapshot is).
		named, held float64
	}{
		{"in order, no window", 0, genStream, 0.25, 0},
		{"in order, 2s window", 2 * time.Second, genStream, 0.25, 0.1},
		{"jittered 500ms, 2s window", 2 * time.Second, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
		}, 0.25, 0.1},
		{"jittered 500ms, 2s window, offset gaps", 2 * time.Second, func(c chooser, n int) []genRecord {
			return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
		}, 0.25, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := resumeConfig()
			cfg.Lifecycle.ReorderWindow = tc.window
			n := n
			if i > 0 {
				n = more
			}
			positions, named, held := 0, 0, 0
			for seed := range uint64(n) {
				r := rand.New(rand.NewPCG(seed, 15))
				stream := tc.gen(r, 100+r.IntN(300))
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					p, s, h := checkResume(t, cfg, stream, r, true, strings.HasSuffix(tc.name, "offset gaps"))
					positions, named, held = positions+p, named+s, held+h
				})
			}
			t.Logf("%d streams, %d committable positions resumed, %d of them from a snapshot, %d from one taken with events held", n, positions, named, held)
			// The property means little unless enough commits pass an
			// open session, and, with the window on, restore held events.
			if float64(named) < tc.named*float64(positions) {
				t.Fatalf("only %d of %d positions named a snapshot", named, positions)
			}
			if float64(held) < tc.held*float64(positions) || tc.held > 0 && held == 0 {
				t.Fatalf("only %d of %d positions named a snapshot taken with events held", held, positions)
			}
		})
	}
}

func FuzzResume(f *testing.F) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 11))
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &byteChooser{b: b}
		// Each committable position is resumed over the rest of the
		// stream: quadratic, so the stream stays short.
		cfg := resumeConfig()
		gen := genStream
		if c.IntN(2) == 1 {
			cfg.Lifecycle.ReorderWindow = 2 * time.Second
			cfg.Lifecycle.ReorderMaxEvents = 1 + c.IntN(8)
			gen = func(c chooser, n int) []genRecord {
				return genJittered(c, n, 300*time.Millisecond, 500*time.Millisecond)
			}
		}
		snapshots := c.IntN(2) == 1
		stream := gen(c, min(1+len(b)/3, 150))
		checkResume(t, cfg, stream, c, snapshots, c.IntN(2) == 1)
	})
}
