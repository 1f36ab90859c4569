package consumer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// producedEvent is an event of a simulated backend and the producer that
// wrote it.
type producedEvent struct {
	ev       schema.Event
	producer int
}

// backend simulates a game backend whose services write one player's
// lifecycle: the auth service the login and the gateway the disconnect
// (producer 0), the matchmaker the matchmaking events (1), the game server
// loading and the match (2). Players overlap in time; every ts is unique.
func backend(r *rand.Rand, players int) []producedEvent {
	start := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC).UnixNano()
	var out []producedEvent
	for p := range players {
		ts := start + int64(p)*int64(700*time.Millisecond) + int64(p) // unique
		id := fmt.Sprintf("player-%d", p)
		n := 0
		add := func(producer int, ev schema.Event) {
			ts += int64(50*time.Millisecond) + int64(r.IntN(int(400*time.Millisecond)))
			ev.PlayerID, ev.TS, ev.EventID = id, ts, fmt.Sprintf("%s-%d", id, n)
			n++
			out = append(out, producedEvent{ev: ev, producer: producer})
		}
		add(0, schema.Event{Type: schema.SessionLogin, AuthMethod: "password", ClientVersion: "1.4.2", Platform: "pc"})
		for range 1 + r.IntN(2) {
			add(1, schema.Event{Type: schema.MatchmakingEnter, GameMode: "ranked"})
			add(1, schema.Event{Type: schema.MatchmakingComplete, LobbyID: "lobby"})
			add(2, schema.Event{Type: schema.LoadingStart, LoadingType: "match"})
			add(2, schema.Event{Type: schema.LoadingFinish, AssetsLoaded: 12, HasAssetsLoaded: true})
			add(2, schema.Event{Type: schema.GameEnter, ServerID: "srv-1", Map: "dust"})
			add(2, schema.Event{Type: schema.GameLeave, Result: "win", Score: 3, HasScore: true})
		}
		add(0, schema.Event{Type: schema.SessionDisconnect, Reason: "client_quit"})
	}
	return out
}

// arrival orders events as a partition receives them: each producer
// delays every event by up to jitter, so events of one player written by
// different producers (and by one) arrive out of ts order.
func arrival(r *rand.Rand, evs []producedEvent, jitter time.Duration) []producedEvent {
	at := make([]int64, len(evs))
	for i := range evs {
		at[i] = evs[i].ev.TS + int64(r.IntN(int(jitter)))
	}
	idx := make([]int, len(evs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return at[idx[a]] < at[idx[b]] })
	out := make([]producedEvent, len(evs))
	for i, j := range idx {
		out[i] = evs[j]
	}
	return out
}

// runPartition runs evs through one partition with the reorder window,
// flushes it at the end, and returns the spans in emission order and the
// count of records with each outcome kind.
func runPartition(t *testing.T, evs []producedEvent, window time.Duration) ([]lifecycle.Span, map[string]int) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Lifecycle.ReorderWindow = window
	p, err := newPartition[struct{}](cfg)
	if err != nil {
		t.Fatal(err)
	}
	var spans []lifecycle.Span
	var steps []step[struct{}]
	kinds := map[string]int{}
	count := func() {
		for _, st := range steps {
			for _, k := range outcomeKinds {
				if st.out.Has(k.flag) {
					kinds[k.name]++
				}
			}
		}
		steps = steps[:0]
	}
	for i, e := range evs {
		rec := &schema.Record{Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev)}
		spans, steps = p.process(rec, time.Unix(0, e.ev.TS), int64(i), struct{}{}, spans, steps)
		count()
	}
	spans, steps = p.flush(int64(len(evs)), spans, steps)
	count()
	if held := p.held(); held != 0 {
		t.Fatalf("%d events still held after the flush", held)
	}
	return spans, kinds
}

func TestReorderWindowThreeProducers(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 6))
	inOrder := backend(r, 300)
	sort.Slice(inOrder, func(a, b int) bool { return inOrder[a].ev.TS < inOrder[b].ev.TS })
	jittered := arrival(r, inOrder, 500*time.Millisecond)
	if reflect.DeepEqual(jittered, inOrder) {
		t.Fatal("the jittered stream is in order: the test would prove nothing")
	}
	want, wantKinds := runPartition(t, inOrder, 0)
	if wantKinds["out_of_phase"] != 0 || len(want) == 0 {
		t.Fatalf("in order without a window: %d spans, outcomes %v", len(want), wantKinds)
	}

	for _, tc := range []struct {
		name       string
		window     time.Duration
		same       bool // exactly the spans of the in-order run
		outOfPhase bool // some out_of_phase records
	}{
		{"in order, 2s window", 2 * time.Second, true, false},
		{"jittered, 2s window", 2 * time.Second, true, false},
		{"jittered, no window", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := jittered
			if tc.name == "in order, 2s window" {
				in = inOrder
			}
			got, kinds := runPartition(t, in, tc.window)
			if same := reflect.DeepEqual(got, want); same != tc.same {
				t.Errorf("spans equal to the in-order run's: %v, want %v (%d spans, in order %d)", same, tc.same, len(got), len(want))
			}
			if n := kinds["out_of_phase"]; (n > 0) != tc.outOfPhase {
				t.Errorf("%d out_of_phase records (outcomes %v), want some: %v", n, kinds, tc.outOfPhase)
			}
			t.Logf("%d records, %d spans, outcomes %v", len(in), len(got), kinds)
		})
	}
}

func TestReorderCapReleasesTheEventDueFirst(t *testing.T) {
	w := newReorder[int](int64(time.Hour), 2)
	for i, ts := range []int64{30, 10, 20} {
		w.add(&schema.Event{TS: ts}, int64(i), 0, i)
	}
	var got []int
	for h := w.due(false); h != nil; h = w.due(false) {
		w.release(h)
		got = append(got, h.payload)
	}
	if want := []int{1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("released %v over the cap, want %v", got, want)
	}
	if f := w.first(); f == nil || f.offset != 0 {
		t.Fatalf("first held record %+v, want offset 0", f)
	}
	for h := w.due(true); h != nil; h = w.due(true) {
		w.release(h)
		got = append(got, h.payload)
	}
	if want := []int{1, 2, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("released %v, want %v", got, want)
	}
	if w.first() != nil || w.len() != 0 {
		t.Fatal("the window is not empty after releasing all")
	}
}
