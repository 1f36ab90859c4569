package lifecycle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	S "github.com/sessiontrace/sessiontrace/schema"
)

func snapshotConfig(c *Config) {
	c.IdleTimeout, c.MaxDuration, c.DedupWindow = 300*time.Second, 1000*time.Second, 4
}

// checkSnapshotResume runs events through one Machine, and through a Machine
// that takes a snapshot before event split and hands it to a new Machine for
// the rest: the spans and outcomes must be the same, and a snapshot of the
// new Machine straight after loading must be byte for byte the old one's.
func checkSnapshotResume(t *testing.T, events []*S.Event, split int, mods ...func(*Config)) {
	t.Helper()
	whole := newMachine(t, mods...)
	wantSpans, wantOuts := run(t, whole, events)
	wantSpans = whole.CloseAll(EndOfInput, wantSpans)

	old := newMachine(t, mods...)
	var got []Span
	outs := make([]Outcome, len(events))
	for i := range split {
		got, outs[i] = old.Apply(events[i], int64(i), got)
	}
	var snap bytes.Buffer
	n, sum, err := old.WriteSnapshot(&snap)
	if err != nil {
		t.Fatalf("split %d: WriteSnapshot: %v", split, err)
	}
	if n != int64(snap.Len()) || !bytes.Equal(snap.Bytes()[snap.Len()-len(sum):], sum[:]) {
		t.Fatalf("split %d: WriteSnapshot says %d bytes ending %x; wrote %d", split, n, sum, snap.Len())
	}
	info, err := InspectSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatalf("split %d: InspectSnapshot: %v", split, err)
	}
	if info.Sessions != old.Open() || info.StreamTime != old.StreamTime() || info.SHA256 != sum || info.Bytes != n {
		t.Fatalf("split %d: info %+v; machine has %d open, stream time %d", split, info, old.Open(), old.StreamTime())
	}
	if lo, ok := old.LowestOffset(); ok && lo != info.LowestOffset {
		t.Fatalf("split %d: info.LowestOffset %d, machine %d", split, info.LowestOffset, lo)
	}

	m := newMachine(t, mods...)
	// Some state first, which loading must replace.
	m.Apply(&S.Event{Type: S.SessionLogin, PlayerID: "stale", EventID: "stale", TS: sec(1)}, 0, nil)
	if _, err := m.ReadSnapshot(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatalf("split %d: ReadSnapshot: %v", split, err)
	}
	var again bytes.Buffer
	if _, _, err := m.WriteSnapshot(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), snap.Bytes()) {
		t.Fatalf("split %d: the loaded machine's snapshot differs from the one it loaded", split)
	}
	small := len(events) < 1000 // checkOpen is O(open sessions)
	if small {
		checkOpen(t, m)
	}
	for i := split; i < len(events); i++ {
		got, outs[i] = m.Apply(events[i], int64(i), got)
		if small {
			checkOpen(t, m)
		}
	}
	got = m.CloseAll(EndOfInput, got)
	for i := range outs {
		if outs[i] != wantOuts[i] {
			t.Fatalf("split %d: event %d outcome %v, want %v", split, i, outs[i], wantOuts[i])
		}
	}
	if !spansEqual(got, wantSpans) {
		t.Fatalf("split %d: %d spans %v, want %d %v", split, len(got), names(got), len(wantSpans), names(wantSpans))
	}
}

// TestSnapshotResume is the property over generated streams: a Machine
// restored from a snapshot taken after any event, then fed the rest of the
// stream, emits exactly the spans of the uninterrupted Machine.
func TestSnapshotResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 7))
	for run := range 120 {
		data := make([]byte, 3*(1+rng.IntN(60)))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		events := fuzzEvents(data)
		t.Run(strconv.Itoa(run), func(t *testing.T) {
			for split := 0; split <= len(events); split++ {
				checkSnapshotResume(t, events, split, snapshotConfig)
			}
		})
	}
}

func FuzzSnapshot(f *testing.F) {
	f.Add([]byte{0x01, 1, 0, 0x02, 5, 0, 0x03, 5, 0, 0x09, 5, 0}, uint8(2))
	f.Add([]byte{0x07, 200, 33, 0x05, 0x80, 0, 0x26, 150, 1, 0x39, 0xfe, 0xc4, 0x01, 2, 4, 0x01, 2, 4}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		events := fuzzEvents(data)
		checkSnapshotResume(t, events, int(split)%(len(events)+1), snapshotConfig)
	})
}

// overflowStream opens more sessions than an intern table holds, each with
// its own profile, attributes, game mode, loading type, server and map, so
// that snapshots carry full tables and overflowed values in extension
// records.
func overflowStream() []*S.Event {
	var b evb
	var events []*S.Event
	n := internCap + 40
	for i := range n {
		p := "p" + strconv.Itoa(i)
		u := func(k string) string { return fmt.Sprintf("%s-%d", k, i) }
		at := float64(i) / 100
		attrs := withAttrs(strAttr("unique", u("a")))
		login := b.ev(S.SessionLogin, p, at, attrs)
		login.ClientVersion = u("v")
		events = append(events, login)
		switch i % 3 {
		case 0:
			mm := b.ev(S.MatchmakingEnter, p, at, attrs)
			mm.GameMode = u("mode")
			events = append(events, mm)
		case 1:
			g := b.ev(S.GameEnter, p, at, attrs)
			g.ServerID, g.Map = u("srv"), u("map")
			events = append(events, g)
		}
		if i%2 == 0 {
			l := b.ev(S.LoadingStart, p, at, attrs)
			l.LoadingType = u("load")
			events = append(events, l)
		}
	}
	// Close some of them through every closing path, the rest at the end.
	for i := 0; i < n; i += 7 {
		p := "p" + strconv.Itoa(i)
		at := float64(n)/100 + float64(i)/1000
		events = append(events, b.ev(S.LoadingFinish, p, at), b.ev(S.GameLeave, p, at),
			b.ev(S.MatchmakingCancel, p, at), b.ev(S.SessionDisconnect, p, at, withReason("client_quit")))
	}
	return events
}

func TestSnapshotResumeOverflow(t *testing.T) {
	events := overflowStream()
	for _, split := range []int{internCap / 2, 2 * internCap, len(events) - 200} {
		t.Run(strconv.Itoa(split), func(t *testing.T) {
			checkSnapshotResume(t, events, split)
		})
	}
}

// TestSnapshotCorrupt: any flipped byte or truncation is refused, and leaves
// the Machine as it was.
func TestSnapshotCorrupt(t *testing.T) {
	events := fuzzEvents([]byte{0x01, 1, 33, 0x02, 5, 1, 0x03, 5, 32, 0x17, 5, 0, 0x09, 5, 0, 0x21, 1, 4})
	src := newMachine(t, snapshotConfig)
	run(t, src, events)
	var snap bytes.Buffer
	if _, _, err := src.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()

	m := newMachine(t, snapshotConfig)
	run(t, m, events[:2])
	var before bytes.Buffer
	if _, _, err := m.WriteSnapshot(&before); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, b []byte, want error) {
		t.Helper()
		if _, err := m.ReadSnapshot(bytes.NewReader(b)); !errors.Is(err, want) {
			t.Fatalf("ReadSnapshot = %v, want %v", err, want)
		}
		if _, err := InspectSnapshot(bytes.NewReader(b)); !errors.Is(err, want) {
			t.Fatalf("InspectSnapshot = %v, want %v", err, want)
		}
		var after bytes.Buffer
		if _, _, err := m.WriteSnapshot(&after); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.Bytes(), before.Bytes()) {
			t.Fatal("a refused snapshot changed the machine")
		}
	}
	for i := range good {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			t.Run(fmt.Sprintf("flip%d^%x", i, bit), func(t *testing.T) { check(t, b, ErrSnapshotCorrupt) })
		}
	}
	t.Run("version", func(t *testing.T) {
		b := bytes.Clone(good[:len(good)-sha256.Size])
		b[len(snapshotMagic)] = snapshotVersion + 1
		sum := sha256.Sum256(b)
		check(t, append(b, sum[:]...), ErrSnapshotMismatch)
	})
	for _, n := range []int{0, 3, len(good) / 2, len(good) - 1} {
		t.Run(fmt.Sprintf("truncated%d", n), func(t *testing.T) { check(t, good[:n], ErrSnapshotCorrupt) })
	}
	t.Run("trailing", func(t *testing.T) { check(t, append(bytes.Clone(good), 0), ErrSnapshotCorrupt) })
	t.Run("window", func(t *testing.T) {
		w := newMachine(t, func(c *Config) { snapshotConfig(c); c.DedupWindow = 5 })
		if _, err := w.ReadSnapshot(bytes.NewReader(good)); !errors.Is(err, ErrSnapshotMismatch) {
			t.Fatalf("ReadSnapshot with another dedup window = %v, want ErrSnapshotMismatch", err)
		}
	})
}

// BenchmarkSnapshot writes and reads a snapshot of a million open sessions
// (as BenchmarkOpenSessions opens them), reporting its bytes per session and
// the time per session.
func BenchmarkSnapshot(b *testing.B) {
	const n = 1_000_000
	m := newMachine(b)
	ev := S.Event{Type: S.SessionLogin, AuthMethod: "oauth", ClientVersion: "2.4.1", Platform: "pc"}
	for i := range n {
		ev.PlayerID = fmt.Sprintf("player-%010d", i*7919%9_999_999_999)
		ev.EventID = fmt.Sprintf("evt-%012d", i)
		ev.TS = sec(float64(i) / 1000)
		m.Apply(&ev, int64(i), nil)
	}
	var snap bytes.Buffer
	if _, _, err := m.WriteSnapshot(&snap); err != nil {
		b.Fatal(err)
	}
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.WriteSnapshot(discard{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(snap.Len())/n, "bytes/session")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/session")
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		r := newMachine(b)
		for b.Loop() {
			if _, err := r.ReadSnapshot(bytes.NewReader(snap.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/session")
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestSnapshotTraceLinks: the links opening events carried travel with the
// snapshot, at every split of a stream that opens and closes every kind of
// span with links (testdata/lifecycle/trace_links.jsonl).
func TestSnapshotTraceLinks(t *testing.T) {
	events := readScenario(t, goldenDir+"/trace_links.jsonl")
	for split := 0; split <= len(events); split++ {
		checkSnapshotResume(t, events, split)
	}
	m := newMachine(t)
	run(t, m, events[:9]) // login and in_game links kept
	var snap bytes.Buffer
	if _, _, err := m.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	info, err := InspectSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil || info.Links != 1 || info.Version != snapshotV2 {
		t.Fatalf("InspectSnapshot = %+v, %v; want version %d with one session holding links", info, err, snapshotV2)
	}
}

// TestSnapshotVersion1 reads a snapshot in the format before trace links
// (version 1: the same without link records); one whose session claims
// links is corrupt.
func TestSnapshotVersion1(t *testing.T) {
	asV1 := func(b []byte) []byte {
		b = bytes.Clone(b[:len(b)-sha256.Size])
		b[len(snapshotMagic)] = snapshotV1
		sum := sha256.Sum256(b)
		return append(b, sum[:]...)
	}
	events := fuzzEvents([]byte{0x01, 1, 33, 0x02, 5, 1, 0x03, 5, 32, 0x17, 5, 0, 0x09, 5, 0, 0x21, 1, 4})
	for _, ev := range events {
		ev.Link = S.TraceLink{}
	}
	whole := newMachine(t, snapshotConfig)
	want, _ := run(t, whole, events)
	want = whole.CloseAll(EndOfInput, want)

	old := newMachine(t, snapshotConfig)
	got, _ := run(t, old, events[:3])
	var snap bytes.Buffer
	if _, _, err := old.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, snapshotConfig)
	info, err := m.ReadSnapshot(bytes.NewReader(asV1(snap.Bytes())))
	if err != nil || info.Version != snapshotV1 {
		t.Fatalf("ReadSnapshot of version 1 = %+v, %v", info, err)
	}
	for i := 3; i < len(events); i++ {
		got, _ = m.Apply(events[i], int64(i), got)
	}
	if got = m.CloseAll(EndOfInput, got); !spansEqual(got, want) {
		t.Fatalf("resumed from version 1: %v, want %v", names(got), names(want))
	}

	linked := newMachine(t)
	run(t, linked, readScenario(t, goldenDir+"/trace_links.jsonl")[:2])
	snap.Reset()
	if _, _, err := linked.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectSnapshot(bytes.NewReader(asV1(snap.Bytes()))); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("version 1 with trace links = %v, want ErrSnapshotCorrupt", err)
	}
}
