package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// openReport is what --open-sessions measured, for three kinds of session:
// logged in without free-form attributes (as lifecycle's
// BenchmarkOpenSessions builds them), logged in with the simulator's
// attributes (half of its logins carry a region, which the root keeps until
// it ends), and in the phases simulated journeys reach.
type openReport struct {
	Sessions    int         `json:"sessions"`
	Seed        int64       `json:"seed"`
	TargetBytes int         `json:"target_bytes_per_session"`
	LoginBare   openMeasure `json:"login_no_attributes"`
	Login       openMeasure `json:"login"`
	Mixed       openMeasure `json:"mixed_phases"`
}

// openMode says which events of the simulated traffic build the sessions.
type openMode int

const (
	openLoginBare openMode = iota // first logins, free-form attributes removed
	openLogin                     // first logins as simulated
	openMixed                     // every event of each first session but its disconnect
)

// openMeasure is one measurement of open sessions.
type openMeasure struct {
	Sessions        int            `json:"sessions"`
	Events          int            `json:"events_applied"`
	BytesPerSession float64        `json:"bytes_per_session"`
	FixedBytes      int64          `json:"machine_fixed_bytes"`
	MarginalBytes   float64        `json:"marginal_bytes_per_session"`
	HeapBytes       int64          `json:"heap_bytes"`
	Phases          map[string]int `json:"phases"`
	BuildSeconds    float64        `json:"build_seconds"`
}

// Player states while the open sessions are built.
const (
	playerUnseen uint8 = iota
	playerInFirst
	playerDone // the first session would have ended; later events are skipped
)

// benchOpenSessions measures the heap f.openSessions concurrent open
// sessions hold in one lifecycle.Machine, twice: sessions that only logged
// in, and sessions in whatever phase simulated journeys reached (login, menu,
// matchmaking, loading or in game, with real identifiers and free-form
// attributes; see openSessions). The heap is measured after GC, with the
// generator released, from before the Machine was created: the Machine's
// fixed costs (dedup window, intern tables) are included, as in lifecycle's
// BenchmarkOpenSessions, and shown apart as well.
func benchOpenSessions(ctx context.Context, lc lifecycle.Config, f benchFlags, stdout, stderr io.Writer) error {
	n := f.openSessions
	sc := simulate.DefaultConfig()
	sc.Players, sc.Sessions, sc.Seed = n, 0, f.seed
	rep := openReport{Sessions: n, Seed: f.seed, TargetBytes: benchSessionTarget}
	rows := []struct {
		name string
		mode openMode
		m    *openMeasure
	}{
		{"login, no attributes", openLoginBare, &rep.LoginBare},
		{"login", openLogin, &rep.Login},
		{"mixed phases", openMixed, &rep.Mixed},
	}
	for _, r := range rows {
		fmt.Fprintf(stderr, "bench: building %d open sessions: %s\n", n, r.name)
		var err error
		if *r.m, err = measureOpen(ctx, lc, sc, r.mode); err != nil {
			return err
		}
	}
	if f.json {
		return writeJSON(stdout, rep)
	}
	b := bufio.NewWriter(stdout)
	fmt.Fprintf(b, "sessiontrace bench --open-sessions: %d concurrent open sessions in one lifecycle machine (seed %d)\n", n, f.seed)
	fmt.Fprintf(b, "heap after GC per open session, the machine's fixed part (dedup window, intern tables) included;\n"+
		"target ≤ %d bytes at 1,000,000:\n", benchSessionTarget)
	for _, r := range rows {
		m := *r.m
		verdict := "within target"
		if m.BytesPerSession > benchSessionTarget {
			verdict = "over target"
		}
		fmt.Fprintf(b, "  %-21s %7.1f bytes per open session (%.1f without the fixed %s); %s heap, %d events applied in %s; %s\n",
			r.name, m.BytesPerSession, m.MarginalBytes, formatBytes(uint64(max(m.FixedBytes, 0))),
			formatBytes(uint64(max(m.HeapBytes, 0))), m.Events, seconds(m.BuildSeconds), verdict)
		fmt.Fprintf(b, "  %-21s phases: %s\n", "", formatCounts(m.Phases))
	}
	fmt.Fprintf(b, "(half of the simulated logins carry a free-form region attribute, which the open root keeps until it ends)\n")
	return b.Flush()
}

// measureOpen builds sc.Players open sessions in a new Machine and measures
// its heap.
func measureOpen(ctx context.Context, lc lifecycle.Config, sc simulate.Config, mode openMode) (openMeasure, error) {
	var before, fixed, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := lifecycle.New(lc)
	if err != nil {
		return openMeasure{}, fmt.Errorf("%w: kafka.lifecycle: %w", errInvalidConfig, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&fixed)
	start := time.Now()
	events, err := openSessions(ctx, m, sc, mode)
	if err != nil {
		return openMeasure{}, err
	}
	built := time.Since(start)
	// The generator and the player states are garbage now; two cycles so
	// that what finalizers held is gone too.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	open := m.Open()
	om := openMeasure{
		Sessions:        open,
		Events:          events,
		BytesPerSession: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(max(open, 1)),
		FixedBytes:      int64(fixed.HeapAlloc) - int64(before.HeapAlloc),
		MarginalBytes:   float64(int64(after.HeapAlloc)-int64(fixed.HeapAlloc)) / float64(max(open, 1)),
		HeapBytes:       int64(after.HeapAlloc) - int64(before.HeapAlloc),
		Phases:          map[string]int{},
		BuildSeconds:    built.Seconds(),
	}
	// Counted after the measurement: OpenSessions builds strings.
	m.OpenSessions(func(s lifecycle.OpenSession) { om.Phases[s.Phase]++ })
	runtime.KeepAlive(m)
	if open != sc.Players {
		return om, fmt.Errorf("bench: open sessions: built %d of %d", open, sc.Players)
	}
	return om, nil
}

// openSessions applies simulated events to m until every player of sc has
// an open first session, withholding each first session's disconnect and
// every later event of that player (every event after the first login but
// for openMixed). It returns the events applied.
func openSessions(ctx context.Context, m *lifecycle.Machine, sc simulate.Config, mode openMode) (int, error) {
	gen, err := simulate.New(sc)
	if err != nil {
		return 0, fmt.Errorf("%w: bench: %w", errUsage, err)
	}
	state := make([]uint8, sc.Players)
	var ev schema.Event
	var out []lifecycle.Span
	opened, applied := 0, 0
	// Every player logs in within the generator's first-login spread, long
	// before this many events; the bound only keeps a broken generator from
	// looping for ever.
	limit := 100 * sc.Players
	for i := 0; opened < sc.Players && i < limit && gen.Next(&ev); i++ {
		if i%65536 == 0 && ctx.Err() != nil {
			return applied, fmt.Errorf("bench: open sessions: %w", ctx.Err())
		}
		p, err := strconv.Atoi(strings.TrimPrefix(ev.PlayerID, "player-"))
		if err != nil || p < 0 || p >= len(state) {
			return applied, fmt.Errorf("bench: open sessions: unexpected simulated player ID %q", ev.PlayerID)
		}
		switch {
		case state[p] == playerDone:
			continue
		case ev.Type == schema.SessionDisconnect:
			state[p] = playerDone
			continue
		case state[p] == playerUnseen:
			state[p] = playerInFirst
			if mode != openMixed {
				state[p] = playerDone
			}
			if mode == openLoginBare {
				ev.Attributes = ev.Attributes[:0]
			}
			opened++
		}
		out, _ = m.Apply(&ev, int64(i), out[:0])
		applied++
	}
	if opened < sc.Players {
		return applied, fmt.Errorf("bench: open sessions: %d of %d players logged in", opened, sc.Players)
	}
	return applied, nil
}
