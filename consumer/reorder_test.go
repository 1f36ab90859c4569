package consumer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
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

// BenchmarkPartition is the pure partition logic (decode, bounds, dedup,
// window, machine) per record, with the reorder window off and at 2s, over
// a three-producer backend in ts order and jittered by up to 500 ms: the
// window's cost per event, side by side.
func BenchmarkPartition(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 1))
	inOrder := backend(r, 2000)
	jittered := arrival(r, inOrder, 500*time.Millisecond)
	for _, stream := range []struct {
		name string
		evs  []producedEvent
	}{{"in order", inOrder}, {"jittered 500ms", jittered}} {
		recs := make([]schema.Record, len(stream.evs))
		for i, e := range stream.evs {
			recs[i] = schema.Record{Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev)}
		}
		for _, window := range []time.Duration{0, 2 * time.Second} {
			b.Run(fmt.Sprintf("%s/window=%s", stream.name, window), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Lifecycle.ReorderWindow = window
				var spans []lifecycle.Span
				var steps []step[struct{}]
				var p *partition[struct{}]
				b.ReportAllocs()
				b.ResetTimer()
				// The process's CPU time (the GC's included), less noisy
				// than wall time on shared cores.
				cpu := processCPU()
				defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/record") }()
				for i := range b.N {
					off := i % len(recs)
					if off == 0 {
						// A new pass over the stream: a new partition, so
						// the events are not duplicates.
						b.StopTimer()
						var err error
						if p, err = newPartition[struct{}](cfg); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					spans, steps = p.process(&recs[off], time.Time{}, int64(off), struct{}{}, spans[:0], steps[:0])
				}
			})
		}
	}
}

// BenchmarkHeldMemory measures the heap one held event takes: n events in
// a window too long to release any (the records' own bytes are not
// counted; the decoded event's strings are).
func BenchmarkHeldMemory(b *testing.B) {
	const n = 1 << 15
	r := rand.New(rand.NewPCG(7, 1))
	evs := backend(r, n/8+1)[:n]
	recs := make([]schema.Record, n)
	for i, e := range evs {
		recs[i] = schema.Record{Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev)}
	}
	cfg := DefaultConfig()
	cfg.Lifecycle.ReorderWindow = 1000 * time.Hour
	cfg.Lifecycle.DedupWindow = 0 // the dedup window's memory is its own
	var perEvent float64
	for range b.N {
		p, err := newPartition[struct{}](cfg)
		if err != nil {
			b.Fatal(err)
		}
		var spans []lifecycle.Span
		var steps []step[struct{}]
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range recs {
			spans, steps = p.process(&recs[i], time.Time{}, int64(i), struct{}{}, spans[:0], steps[:0])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if p.held() != n {
			b.Fatalf("%d held, want %d", p.held(), n)
		}
		perEvent = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(p)
	}
	b.ReportMetric(perEvent, "B/held")
}
