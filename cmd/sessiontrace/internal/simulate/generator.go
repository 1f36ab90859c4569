package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sessiontrace/sessiontrace/schema"
)

// Generator yields the events of every simulated player merged in timestamp
// order. It is deterministic: the same Config gives the same events. A
// Generator is not safe for concurrent use.
type Generator struct {
	cfg Config
	r   *rand.Rand

	platforms, versions, auths, modes, reasons mix

	players []player
	heap    []int32 // indices into players, ordered by (next, index)

	started   int   // sessions started so far
	lastStart int64 // no session starts at or after this instant (Unix ns)
}

// New returns a Generator for cfg, or cfg's validation error.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg: cfg,
		// PCG is fully specified, so a seed means the same stream on every
		// platform and Go release that keeps the algorithm.
		r:         rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e5510_7ace)),
		platforms: newMix(cfg.Platforms),
		versions:  newMix(cfg.ClientVersions),
		auths:     newMix(cfg.AuthMethods),
		modes:     newMix(cfg.GameModes),
		reasons:   newMix(cfg.DisconnectReasons),
		players:   make([]player, cfg.Players),
		heap:      make([]int32, cfg.Players),
		lastStart: math.MaxInt64,
	}
	start := cfg.StartTime.UnixNano()
	if cfg.Duration > 0 {
		g.lastStart = start + int64(cfg.Duration)
	}
	// First logins are spread over twice the median offline time, so the
	// population ramps up instead of logging in at one instant.
	spread := 2 * cfg.Offline.Median
	for i := range g.players {
		g.players[i] = player{
			id:   fmt.Sprintf("player-%06d", i),
			next: start + int64(between(g.r, 0, spread)),
		}
		g.heap[i] = int32(i)
	}
	for i := len(g.heap)/2 - 1; i >= 0; i-- {
		g.down(i)
	}
	return g, nil
}

// Next fills ev with the next event and reports whether there was one; it
// returns false once the Sessions or Duration limit is reached and every
// started session has ended. ev is overwritten, reusing the backing array of
// its Attributes. Every event passes ev.Validate(schema.DefaultLimits()).
func (g *Generator) Next(ev *schema.Event) bool {
	for len(g.heap) > 0 {
		p := &g.players[g.heap[0]]
		if !p.active {
			if !g.mayStart(p.next) {
				g.pop()
				continue
			}
			g.startSession(p)
		}
		g.emit(p, ev)
		g.down(0)
		return true
	}
	return false
}

// SessionsStarted returns how many sessions have logged in so far.
func (g *Generator) SessionsStarted() int { return g.started }

func (g *Generator) mayStart(at int64) bool {
	return (g.cfg.Sessions == 0 || g.started < g.cfg.Sessions) && at < g.lastStart
}

func (g *Generator) less(i, j int) bool {
	a, b := g.heap[i], g.heap[j]
	na, nb := g.players[a].next, g.players[b].next
	return na < nb || (na == nb && a < b)
}

// down restores the heap order below i after players[heap[i]].next grew.
func (g *Generator) down(i int) {
	n := len(g.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && g.less(r, l) {
			m = r
		}
		if !g.less(m, i) {
			return
		}
		g.heap[i], g.heap[m] = g.heap[m], g.heap[i]
		i = m
	}
}

func (g *Generator) pop() {
	last := len(g.heap) - 1
	g.heap[0] = g.heap[last]
	g.heap = g.heap[:last]
	g.down(0)
}
