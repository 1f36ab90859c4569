package simulate

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// Services of a multi-producer backend: who writes which events.
const (
	// ServiceAuth writes logins, the loading screen right after a login and
	// disconnects (the gateway's, folded in).
	ServiceAuth = "auth"
	// ServiceMatchmaking writes matchmaking.enter, .complete and .cancel.
	ServiceMatchmaking = "matchmaking"
	// ServiceMatch is the game servers: the loading screen of a match,
	// game.enter and game.leave.
	ServiceMatch = "match"
)

// Keyings of a multi-producer stream.
const (
	// KeyNone publishes every record without a key.
	KeyNone = "none"
	// KeyEntity keys each record by what its service knows it by: none for
	// auth, the lobby (or "queue-<mode>" before one is found) for
	// matchmaking, the server (or the lobby while loading) for match.
	KeyEntity = "entity"
	// KeyPlayer keys every record by its player ID, whatever its service:
	// topics created with the same partition count are then co-partitioned
	// (the default partitioner hashes the key as Kafka's does), which
	// consume's kafka.topics needs.
	KeyPlayer = "player"
)

// DefaultJitter is the default bound of each producer's delay.
const DefaultJitter = 500 * time.Millisecond

// Producers configures a multi-producer stream: the events of one backend
// written by three services to topics of their own, each record delayed by
// its service by up to Jitter, so that one player's events reach Kafka out of
// their ts order.
type Producers struct {
	// Topics maps each service (ServiceAuth, ServiceMatchmaking,
	// ServiceMatch) to its topic.
	Topics map[string]string
	// Keys is KeyNone, KeyEntity or KeyPlayer.
	Keys string
	// Jitter bounds the delay of each record, drawn uniformly in
	// [0, Jitter] in simulated time; 0 keeps ts order.
	Jitter time.Duration
	// Seed seeds the delays (the events are the Generator's).
	Seed int64
}

// Validate reports a missing service topic, an unknown keying or a negative
// jitter.
func (p Producers) Validate() error {
	for _, s := range []string{ServiceAuth, ServiceMatchmaking, ServiceMatch} {
		if p.Topics[s] == "" {
			return fmt.Errorf("simulate: producers: no topic for the %s service", s)
		}
	}
	if len(p.Topics) != 3 {
		return errors.New("simulate: producers: topics for auth, matchmaking and match only")
	}
	switch p.Keys {
	case KeyNone, KeyEntity, KeyPlayer:
	default:
		return fmt.Errorf("simulate: producers: keys %q (want %s, %s or %s)", p.Keys, KeyNone, KeyEntity, KeyPlayer)
	}
	if p.Jitter < 0 || p.Jitter > time.Hour {
		return fmt.Errorf("simulate: producers: jitter %s must be between 0 and 1h", p.Jitter)
	}
	return nil
}

// Routed is one record of a multi-producer stream.
type Routed struct {
	Service string
	Topic   string
	Key     []byte // nil: unkeyed
	Value   []byte // the event's JSON
	// TS is the event's ts; Delivered is when its service published it
	// (ts plus its delay), the order of the stream.
	TS, Delivered int64
}

// Router turns a Generator's events into a multi-producer stream, ordered by
// delivery time (ties in generation order). It holds an event only until no
// later event can be delivered before it: at most the events of one Jitter.
// It is deterministic and not safe for concurrent use.
type Router struct {
	gen  *Generator
	cfg  Producers
	r    *rand.Rand
	held routedHeap
	seq  uint64
	done bool
	ev   schema.Event
	// lastTS is the ts of the last generated event.
	lastTS int64

	// Per player: its current lobby and server, for KeyEntity, and whether
	// a loading screen belongs to a match.
	state map[string]*playerRoute
}

type playerRoute struct {
	lobby, server, mode string
	inMatch             bool
}

// NewRouter returns a Router over gen, or cfg's validation error.
func NewRouter(gen *Generator, cfg Producers) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{gen: gen, cfg: cfg, r: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9a0d_0ce5)), state: map[string]*playerRoute{}}, nil
}

// Next fills out with the next record and reports whether there was one.
func (rt *Router) Next(out *Routed) bool {
	for !rt.done {
		if len(rt.held) > 0 && rt.held[0].r.Delivered <= rt.horizon() {
			break
		}
		if !rt.gen.Next(&rt.ev) {
			rt.done = true
			break
		}
		rt.hold(&rt.ev)
	}
	if len(rt.held) == 0 {
		return false
	}
	h := heap.Pop(&rt.held).(heldRecord)
	*out = h.r
	return true
}

// horizon is the delivery time no event still to be generated can precede:
// events come in ts order and are never delivered before their ts.
func (rt *Router) horizon() int64 { return rt.lastTS }

func (rt *Router) hold(ev *schema.Event) {
	rt.lastTS = ev.TS
	service, key := rt.route(ev)
	delay := int64(0)
	if rt.cfg.Jitter > 0 {
		delay = rt.r.Int64N(int64(rt.cfg.Jitter) + 1)
	}
	rec := Routed{
		Service: service, Topic: rt.cfg.Topics[service], Value: schema.AppendJSON(nil, ev),
		TS: ev.TS, Delivered: ev.TS + delay,
	}
	switch {
	case rt.cfg.Keys == KeyEntity && key != "":
		rec.Key = []byte(key)
	case rt.cfg.Keys == KeyPlayer:
		rec.Key = []byte(ev.PlayerID)
	}
	heap.Push(&rt.held, heldRecord{r: rec, seq: rt.seq})
	rt.seq++
}

// route names the service that writes ev and the key it knows it by.
func (rt *Router) route(ev *schema.Event) (service, key string) {
	st := rt.state[ev.PlayerID]
	if st == nil {
		st = &playerRoute{}
		rt.state[ev.PlayerID] = st
	}
	switch ev.Type {
	case schema.SessionLogin:
		*st = playerRoute{}
		return ServiceAuth, ""
	case schema.SessionDisconnect:
		delete(rt.state, ev.PlayerID)
		return ServiceAuth, ""
	case schema.MatchmakingEnter:
		st.mode, st.lobby = ev.GameMode, ""
		return ServiceMatchmaking, "queue-" + st.mode
	case schema.MatchmakingCancel:
		return ServiceMatchmaking, "queue-" + st.mode
	case schema.MatchmakingComplete:
		st.lobby, st.inMatch = ev.LobbyID, true
		return ServiceMatchmaking, st.lobby
	case schema.LoadingStart, schema.LoadingFinish:
		if !st.inMatch {
			return ServiceAuth, ""
		}
		return ServiceMatch, st.lobby
	case schema.GameEnter:
		st.server = ev.ServerID
		return ServiceMatch, st.server
	case schema.GameLeave:
		st.inMatch = false
		return ServiceMatch, st.server
	}
	return ServiceAuth, ""
}

type heldRecord struct {
	r   Routed
	seq uint64
}

// routedHeap orders held records by delivery time, then generation order.
type routedHeap []heldRecord

func (h routedHeap) Len() int { return len(h) }
func (h routedHeap) Less(i, j int) bool {
	if h[i].r.Delivered != h[j].r.Delivered {
		return h[i].r.Delivered < h[j].r.Delivered
	}
	return h[i].seq < h[j].seq
}
func (h routedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *routedHeap) Push(x any)   { *h = append(*h, x.(heldRecord)) }
func (h *routedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
