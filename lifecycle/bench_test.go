package lifecycle

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	S "github.com/sessiontrace/sessiontrace/schema"
)

// journey is the script one simulated player follows: two matches, then a
// disconnect. Steps are seconds after the previous event.
var journey = []struct {
	typ  S.Type
	step float64
}{
	{S.SessionLogin, 0}, {S.MatchmakingEnter, 8}, {S.MatchmakingComplete, 35}, {S.LoadingStart, 1},
	{S.LoadingFinish, 20}, {S.GameEnter, 1}, {S.GameLeave, 1200}, {S.MatchmakingEnter, 25},
	{S.MatchmakingComplete, 50}, {S.LoadingStart, 1}, {S.LoadingFinish, 18}, {S.GameEnter, 1},
	{S.GameLeave, 1100}, {S.SessionDisconnect, 30},
}

// mixedStream returns n events of concurrent players following journey,
// interleaved at random, every session complete (so the stream can be replayed
// in a loop with shifted timestamps). About 1 event in 4 carries two
// free-form attributes; every session has a session ID.
func mixedStream(n, concurrent int) []S.Event {
	r := rand.New(rand.NewPCG(7, 11))
	serial := 0
	newPlayer := func(at float64) *simPlayer {
		serial++
		return &simPlayer{
			id:      fmt.Sprintf("player-%010d", r.IntN(1e9)),
			session: fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), serial&0xffff, r.IntN(4096), r.IntN(4096), r.Uint64()&(1<<48-1)),
			next:    at + r.Float64()*60,
		}
	}
	var players simQueue
	for i := range concurrent {
		heap.Push(&players, newPlayer(float64(i)/10))
	}
	modes := []string{"ranked", "casual", "duo"}
	maps := []string{"harbor", "canyon", "dust", "ridge"}
	var events []S.Event
	emit := func(p *simPlayer) {
		j := journey[p.step]
		// Jitter below a second reorders players but never one player's events.
		ev := S.Event{Type: j.typ, EventID: fmt.Sprintf("evt-%012d", len(events)), PlayerID: p.id, SessionID: p.session,
			TS: sec(p.next + r.Float64()*0.4)}
		switch j.typ {
		case S.SessionLogin:
			ev.AuthMethod, ev.ClientVersion, ev.Platform = "oauth", "2.4.1", []string{"pc", "ps5", "xbox"}[r.IntN(3)]
		case S.MatchmakingEnter:
			ev.GameMode = modes[r.IntN(len(modes))]
		case S.MatchmakingComplete:
			ev.LobbyID, ev.WaitSeconds, ev.HasWait = fmt.Sprintf("lobby-%d", r.IntN(1e6)), 35, true
		case S.LoadingStart:
			ev.LoadingType = "map"
		case S.LoadingFinish:
			ev.AssetsLoaded, ev.HasAssetsLoaded, ev.TotalSizeMB, ev.HasTotalSizeMB = 1432, true, 812.5, true
		case S.GameEnter:
			ev.ServerID, ev.Map = fmt.Sprintf("gs-eu-%02d", r.IntN(64)), maps[r.IntN(len(maps))]
		case S.GameLeave:
			ev.Result, ev.Score, ev.HasScore = "win", int64(r.IntN(3000)), true
		case S.SessionDisconnect:
			ev.Reason = "client_quit"
		}
		if r.IntN(4) == 0 {
			ev.Attributes = []S.Attr{strAttr("region", "eu-west"), schema_int("build", 4711)}
		}
		events = append(events, ev)
		p.step++
		if p.step < len(journey) {
			p.next += journey[p.step].step * (0.5 + r.Float64())
		}
	}
	for len(events) < n {
		p := heap.Pop(&players).(*simPlayer)
		emit(p)
		if p.step == len(journey) {
			p = newPlayer(p.next)
		}
		heap.Push(&players, p)
	}
	for players.Len() > 0 { // finish every open journey
		p := heap.Pop(&players).(*simPlayer)
		if p.step > 0 && p.step < len(journey) {
			emit(p)
			heap.Push(&players, p)
		}
	}
	return events
}

type simPlayer struct {
	id, session string
	step        int
	next        float64
}

// simQueue orders simulated players by the time of their next event.
type simQueue []*simPlayer

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].next < q[j].next }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(*simPlayer)) }
func (q *simQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

func BenchmarkApply(b *testing.B) {
	events := mixedStream(200_000, 5_000)
	span := events[len(events)-1].TS - events[0].TS + int64(time.Hour)
	m := newMachine(b)
	var out []Span
	spans := 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % len(events)
		if k == 0 && i > 0 {
			b.StopTimer()
			for j := range events { // the next lap happens later in stream time
				events[j].TS += span
			}
			b.StartTimer()
		}
		out, _ = m.Apply(&events[k], int64(i), out[:0])
		spans += len(out)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(spans)/float64(b.N), "spans/event")
	// allocs/op rounds down to 0; this keeps the fraction (the timestamp
	// shifts between laps allocate nothing).
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/event")
}

// BenchmarkOpenSessions opens 1,000,000 sessions (logins only) in one Machine
// and reports the heap they hold per session: HeapAlloc after GC, minus the
// same before the Machine was created, so the Machine's fixed costs (dedup
// window, intern tables) are included.
func BenchmarkOpenSessions(b *testing.B) {
	const sessions = 1_000_000
	for _, bc := range []struct {
		name      string
		sessionID bool
	}{{"player_id_only", false}, {"with_session_uuid", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var perSession float64
			for range b.N {
				perSession = openSessionsBytes(b, sessions, bc.sessionID)
			}
			b.ReportMetric(perSession, "bytes/session")
		})
	}
}

func openSessionsBytes(b *testing.B, n int, withSession bool) float64 {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := newMachine(b)
	ev := S.Event{Type: S.SessionLogin, AuthMethod: "oauth", ClientVersion: "2.4.1"}
	platforms := []string{"pc", "ps5", "xbox", "switch"}
	var out []Span
	for i := range n {
		ev.PlayerID = fmt.Sprintf("player-%010d", i*7919%9_999_999_999)
		ev.EventID = fmt.Sprintf("evt-%012d", i)
		if withSession {
			ev.SessionID = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", i, i&0xffff, i&0xfff, (i>>3)&0xfff, i*31)
		}
		ev.Platform = platforms[i%len(platforms)]
		ev.TS = sec(float64(i) / 1000)
		out, _ = m.Apply(&ev, int64(i), out[:0])
	}
	if m.Open() != n {
		b.Fatalf("Open() = %d, want %d", m.Open(), n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
