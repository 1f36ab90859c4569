package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	S "github.com/sessiontrace/sessiontrace/schema"
)

var fuzzTypes = S.Types()

var disconnectReasons = [...]string{"client_quit", "kicked", "crash"}

// fuzzEvents decodes fuzz bytes into events, 3 bytes an event: the type and
// player, a signed time step (some steps jump far enough to expire sessions),
// and bits for session ID, a repeated event ID and attributes; the type
// byte's top bits give some events a trace link (of three traces).
func fuzzEvents(data []byte) []*S.Event {
	var events []*S.Event
	ts := sec(0)
	for i := 0; i+3 <= len(data); i += 3 {
		a, d, f := data[i], int8(data[i+1]), data[i+2]
		ev := &S.Event{
			Type:     fuzzTypes[int(a&0x0f)%len(fuzzTypes)],
			PlayerID: fmt.Sprintf("p%d", a>>4&3),
			EventID:  fmt.Sprintf("e%d", i),
		}
		switch {
		case d == -128:
			ts += int64(2000 * time.Second) // beyond max duration
		case d > 100:
			ts += int64(d-100) * int64(10*time.Second) // up to idle
		default:
			ts += int64(d) * int64(time.Second) // may go backwards
		}
		ev.TS = ts
		if f&1 != 0 {
			ev.SessionID = fmt.Sprintf("s%d", f>>1&1)
		}
		if f&4 != 0 && i >= 3 {
			ev.EventID = fmt.Sprintf("e%d", i-3*int(f>>3&3)) // maybe a duplicate
		}
		if l := a >> 6; l != 0 {
			ev.Link = S.TraceLink{TraceID: [16]byte{l, 0xee}, SpanID: [8]byte{l, byte(i)}, Flags: l & 1}
		}
		if f&32 != 0 {
			ev.Attributes = []S.Attr{strAttr("k", "v"), strAttr(string(KeyPlayerID), "spoof")}
		}
		switch ev.Type {
		case S.SessionDisconnect:
			ev.Reason = disconnectReasons[int(f>>6)%len(disconnectReasons)]
		case S.MatchmakingEnter:
			ev.GameMode = "m"
		case S.GameEnter:
			ev.ServerID, ev.Map = "srv", fmt.Sprintf("map%d", f>>6)
		case S.MatchmakingComplete:
			ev.LobbyID = "l"
		case S.LoadingStart:
			ev.LoadingType = "t"
		}
		events = append(events, ev)
	}
	return events
}

func FuzzMachine(f *testing.F) {
	f.Add([]byte{0x01, 1, 0, 0x02, 5, 0, 0x03, 5, 0, 0x09, 5, 0})
	f.Add([]byte{0x01, 1, 1, 0x11, 1, 0, 0x07, 0x80, 0, 0x18, 0xf0, 5, 0x05, 3, 12, 0x19, 0xff, 0x60})
	f.Add([]byte{0x07, 200, 33, 0x05, 0x80, 0, 0x26, 150, 1, 0x39, 0xfe, 0xc4, 0x01, 2, 4, 0x01, 2, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		events := fuzzEvents(data)
		first := checkMachineRun(t, events)
		if second := checkMachineRun(t, events); !spansEqual(first, second) {
			t.Fatal("two runs over the same events differ")
		}
	})
}

// checkMachineRun applies events to a fresh Machine, checks the invariants
// after each one, closes what is left and returns every span.
func checkMachineRun(t *testing.T, events []*S.Event) []Span {
	t.Helper()
	m := newMachine(t, func(c *Config) {
		c.IdleTimeout, c.MaxDuration, c.DedupWindow = 300*time.Second, 1000*time.Second, 4
	})
	var all []Span
	for i, ev := range events {
		n := len(all)
		var o Outcome
		all, o = m.Apply(ev, int64(i), all)
		out := all[n:]
		checkSpans(t, out)
		if ev.Type == S.SessionDisconnect && !o.Dropped() {
			found := 0
			for _, r := range roots(out) {
				if attr(r, KeyEndReason) == ev.Reason && attr(r, KeyPlayerID) == ev.PlayerID {
					found++
				}
			}
			if found != 1 || !o.Has(Ended) {
				t.Fatalf("event %d (%v): disconnect gave %d roots, outcome %v", i, ev, found, o)
			}
		}
		if o.Dropped() && len(out) > 0 && !o.Has(Expired) {
			t.Fatalf("event %d: dropped (%v) but emitted %v", i, o, names(out))
		}
		checkOpen(t, m)
	}
	all = m.CloseAll(EndOfInput, all)
	checkSpans(t, all)
	st := m.Stats()
	if len(m.exts) != 0 || m.idx.n != 0 || m.slab.live != 0 || len(m.links) != 0 {
		t.Fatalf("after CloseAll: %d extensions, %d index entries, %d records, %d trace links left", len(m.exts), m.idx.n, m.slab.live, len(m.links))
	}
	if m.Open() != 0 || st.SessionsStarted != st.SessionsEnded || uint64(len(roots(all))) != st.SessionsEnded ||
		st.Spans != uint64(len(all)) {
		t.Fatalf("after CloseAll: open %d, stats %+v, %d roots, %d spans", m.Open(), st, len(roots(all)), len(all))
	}
	return all
}

func checkSpans(t *testing.T, spans []Span) {
	t.Helper()
	for _, s := range spans {
		if s.End < s.Start || !s.TraceID.IsValid() || !s.SpanID.IsValid() {
			t.Fatalf("bad span %s %s/%s %d..%d", s.Name, s.TraceID, s.SpanID, s.Start, s.End)
		}
		if !s.IsRoot() && s.ParentSpanID != spanIDFor(s.TraceID, rootIndex) {
			t.Fatalf("%s parent %s is not its root", s.Name, s.ParentSpanID)
		}
	}
}

func checkOpen(t *testing.T, m *Machine) {
	t.Helper()
	lowest, ok := m.LowestOffset()
	n := 0
	keys := map[[2]string]bool{}
	m.OpenSessions(func(s OpenSession) {
		n++
		if !ok || s.FirstOffset < lowest {
			t.Fatalf("LowestOffset %d,%t above open session's first offset %d", lowest, ok, s.FirstOffset)
		}
		k := [2]string{s.PlayerID, s.SessionID}
		if keys[k] {
			t.Fatalf("two open sessions for %v", k)
		}
		keys[k] = true
		if l, _ := m.lookup(s.PlayerID, s.SessionID); l < 0 {
			t.Fatalf("open session %v not in the index", k)
		}
	})
	if n != m.Open() || ok != (n > 0) {
		t.Fatalf("OpenSessions saw %d, Open() = %d, LowestOffset ok=%t", n, m.Open(), ok)
	}
	// Trace links are kept only for open spans of open sessions, and the
	// flag says exactly which sessions have one.
	kept := 0
	for i := m.offHead; i >= 0; i = m.slab.at(i).offNext {
		s := m.slab.at(i)
		if s.flags&flagLinks != 0 != m.hasLinks(i) {
			t.Fatalf("slot %d: flagLinks %t, links kept %t", i, s.flags&flagLinks != 0, m.hasLinks(i))
		}
		for role := range numLinkRoles {
			if _, has := m.links[linkKey(i, role)]; has {
				kept++
				if role == linkMain && s.flags&(flagMM|flagGame) == 0 || role == linkLoad && s.flags&flagLoad == 0 {
					t.Fatalf("slot %d keeps a link of role %d for a span that is not open", i, role)
				}
			}
		}
	}
	if kept != len(m.links) {
		t.Fatalf("%d trace links kept, %d of them for open sessions", len(m.links), kept)
	}
}

// TestStoreStress drives enough sessions through a Machine to grow the index
// several times and compact the key arena, checking against a map of the keys
// that should be open.
func TestStoreStress(t *testing.T) {
	m := newMachine(t, func(c *Config) { c.DedupWindow = 0 })
	r := rand.New(rand.NewPCG(1, 2))
	open := map[string]bool{}
	compactions, lastUsed := 0, 0
	for i := range 400_000 {
		p := fmt.Sprintf("player-%010d", r.IntN(30_000))
		typ := S.SessionLogin
		if open[p] && r.IntN(2) == 0 {
			typ = S.SessionDisconnect
		}
		ev := &S.Event{Type: typ, PlayerID: p, EventID: "x", TS: sec(float64(i) / 1000)}
		_, o := m.Apply(ev, int64(i), nil)
		if o.Has(Superseded) != (open[p] && typ == S.SessionLogin) || o.Has(UnknownSession) {
			t.Fatalf("event %d (%s %s): outcome %v, open=%t", i, typ, p, o, open[p])
		}
		open[p] = typ == S.SessionLogin
		if !open[p] {
			delete(open, p)
		}
		if m.keys.used < lastUsed {
			compactions++
		}
		lastUsed = m.keys.used
	}
	if m.Open() != len(open) {
		t.Fatalf("Open() = %d, want %d", m.Open(), len(open))
	}
	checkOpen(t, m)
	if compactions == 0 {
		t.Error("the key arena never compacted")
	}
	if m.keys.used > 2*arenaMinCompact && m.keys.garbage > m.keys.used/2 {
		t.Errorf("arena %d bytes with %d garbage", m.keys.used, m.keys.garbage)
	}
}
