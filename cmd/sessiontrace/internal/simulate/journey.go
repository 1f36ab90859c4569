package simulate

import (
	"math"
	"strconv"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// step is the next event a player's session will emit.
type step uint8

const (
	stepLogin step = iota
	stepLoadStart
	stepLoadFinish
	stepMMEnter
	stepMMCancel
	stepMMComplete
	stepGameEnter
	stepGameLeave
	stepDisconnect
)

// Free-form values that are not worth configuring.
var (
	regions  = []string{"ap-southeast", "eu-central", "eu-west", "sa-east", "us-east", "us-west"}
	mapNames = []string{"citadel", "dunes", "frostbite", "harbor", "jungle", "skyline"}
)

const (
	// regionShare of sessions carry a "region" attribute on their login and
	// game.enter events, so that attribute handling is exercised without
	// every event carrying one.
	regionShare = 0.5
	// partyShare of queues carry a "party_size" attribute.
	partyShare = 0.3
)

// player is one simulated player and, while active, its current session.
type player struct {
	id       string
	next     int64 // Unix ns of the next event, or of the next login when !active
	seq      int   // events emitted by this player, for event IDs
	sessions int
	active   bool

	step      step
	sessionID string
	platform  string
	version   string
	auth      string
	region    string // "" when the session carries no region attribute
	reason    string
	abandon   bool
	loginLoad bool

	matchesLeft int
	match       int // matches found so far
	events      int // events emitted in this session
	strikeAfter int // end abruptly after this many events; 0 for a planned end
	crashMatch  int // crash inside this match (1-based); 0 for none

	loadType string
	inMatch  bool
	mode     string
	server   string
	mapName  string
	mmStart  int64
}

func (g *Generator) startSession(p *player) {
	r := g.r
	g.started++
	p.sessions++
	*p = player{id: p.id, next: p.next, seq: p.seq, sessions: p.sessions, active: true, step: stepLogin}
	if g.cfg.SessionIDs {
		p.sessionID = p.id + "-s" + strconv.Itoa(p.sessions)
	}
	p.platform = g.platforms.draw(r)
	p.version = g.versions.draw(r)
	p.auth = g.auths.draw(r)
	if r.Float64() < regionShare {
		p.region = regions[r.IntN(len(regions))]
	}
	p.loginLoad = r.Float64() < g.cfg.LoginLoadingProbability
	p.abandon = r.Float64() < g.cfg.AbandonProbability
	p.matchesLeft = g.cfg.Matches.draw(r)
	p.reason = g.reasons.draw(r)

	// Only sessions that log in once the spike has begun can crash from it.
	if s := g.cfg.CrashSpike; s.Probability > 0 && p.version == s.ClientVersion &&
		(s.From.IsZero() || p.next >= s.From.UnixNano()) && r.Float64() < s.Probability {
		p.reason = "crash"
		p.matchesLeft = max(p.matchesLeft, 1)
		p.crashMatch = 1 + r.IntN(p.matchesLeft)
		return
	}
	if p.reason != "client_quit" && p.reason != "logout" {
		// Strike at any event of the planned journey with equal chance, so
		// abrupt ends are spread over every phase in proportion to how
		// many events it has. Cancelled queues are not planned, so a
		// strike planned late can miss; the session then ends from the
		// menu with the same reason.
		planned := 1 + p.matchesLeft*6
		if p.loginLoad {
			planned += 2
		}
		p.strikeAfter = 1 + r.IntN(planned)
	}
}

// emit writes p's next event into ev and schedules the one after it.
func (g *Generator) emit(p *player, ev *schema.Event) {
	r := g.r
	now := p.next
	*ev = schema.Event{
		EventID:    p.id + "-" + strconv.Itoa(p.seq),
		PlayerID:   p.id,
		SessionID:  p.sessionID,
		TS:         now,
		Attributes: ev.Attributes[:0],
	}
	p.seq++
	p.events++

	switch p.step {
	case stepLogin:
		ev.Type = schema.SessionLogin
		ev.AuthMethod, ev.ClientVersion, ev.Platform = p.auth, p.version, p.platform
		ev.Attributes = p.regionAttr(ev.Attributes)
		if p.loginLoad {
			p.loadType = "initial"
			p.schedule(stepLoadStart, now, between(r, 100*time.Millisecond, time.Second))
		} else {
			g.afterMenu(p, now, g.cfg.LoginGap)
		}
	case stepLoadStart:
		ev.Type = schema.LoadingStart
		ev.LoadingType = p.loadType
		p.schedule(stepLoadFinish, now, g.cfg.Loading.draw(r))
	case stepLoadFinish:
		ev.Type = schema.LoadingFinish
		ev.AssetsLoaded, ev.HasAssetsLoaded = 200+r.Int64N(3000), true
		ev.TotalSizeMB, ev.HasTotalSizeMB = math.Round((50+r.Float64()*2000)*10)/10, true
		if p.inMatch {
			p.schedule(stepGameEnter, now, between(r, 200*time.Millisecond, 2*time.Second))
		} else {
			g.afterMenu(p, now, g.cfg.LoginGap)
		}
	case stepMMEnter:
		ev.Type = schema.MatchmakingEnter
		p.mode = g.modes.draw(r)
		ev.GameMode = p.mode
		if r.Float64() < partyShare {
			ev.Attributes = append(ev.Attributes, schema.Attr{Key: "party_size",
				Value: schema.Value{Kind: schema.KindInt, Int: 2 + r.Int64N(3)}})
		}
		p.mmStart = now
		wait := g.cfg.MatchmakingWait.draw(r)
		if r.Float64() < g.cfg.CancelProbability {
			p.schedule(stepMMCancel, now, between(r, wait/5, wait+time.Millisecond))
		} else {
			p.schedule(stepMMComplete, now, wait)
		}
	case stepMMCancel:
		ev.Type = schema.MatchmakingCancel
		ev.Reason = "player_cancelled"
		g.afterMenu(p, now, g.cfg.MenuTime)
	case stepMMComplete:
		ev.Type = schema.MatchmakingComplete
		ev.LobbyID = "lobby-" + strconv.FormatUint(uint64(r.Uint32()), 16)
		ev.WaitSeconds, ev.HasWait = float64(now-p.mmStart)/1e9, true
		p.match++
		p.inMatch = true
		p.loadType = "map"
		p.mapName = mapNames[r.IntN(len(mapNames))]
		region := p.region
		if region == "" {
			region = regions[r.IntN(len(regions))]
		}
		p.server = "gs-" + region + "-" + strconv.Itoa(10+r.IntN(90))
		p.schedule(stepLoadStart, now, between(r, 100*time.Millisecond, time.Second))
	case stepGameEnter:
		ev.Type = schema.GameEnter
		ev.ServerID, ev.Map = p.server, p.mapName
		ev.Attributes = p.regionAttr(ev.Attributes)
		p.schedule(stepGameLeave, now, g.cfg.MatchLength.draw(r))
	case stepGameLeave:
		ev.Type = schema.GameLeave
		switch u := r.Float64(); {
		case u < 0.45:
			ev.Result = "win"
		case u < 0.9:
			ev.Result = "loss"
		default:
			ev.Result = "draw"
		}
		ev.Score, ev.HasScore = r.Int64N(5000)-200, true
		p.inMatch = false
		p.matchesLeft--
		g.afterMenu(p, now, g.cfg.MenuTime)
	case stepDisconnect:
		ev.Type = schema.SessionDisconnect
		ev.Reason = p.reason
		g.endSession(p, now)
		return
	}

	if !p.active {
		return // abandoned just now
	}
	// An abrupt end replaces the event just scheduled, at a random moment
	// before it: the player is in whatever phase this event left them.
	switch {
	case p.crashMatch > 0 && ev.Type == schema.GameEnter && p.match == p.crashMatch:
		g.finish(p, now+msFraction(p.next-now, 0.1+0.8*r.Float64()))
	case p.strikeAfter > 0 && p.events == p.strikeAfter && p.step != stepDisconnect:
		g.finish(p, now+msFraction(p.next-now, r.Float64()))
	}
}

func (p *player) schedule(s step, now int64, after time.Duration) {
	p.step = s
	p.next = now + int64(after)
}

// afterMenu sends p to the menu for a draw of d, then to the next queue or,
// with no matches left, to the end of the session.
func (g *Generator) afterMenu(p *player, now int64, d DurationDist) {
	at := now + int64(d.draw(g.r))
	if p.matchesLeft > 0 {
		p.step, p.next = stepMMEnter, at
		return
	}
	g.finish(p, at)
}

// finish ends p's session at the given instant: with a disconnect event, or
// silently for an abandoned session.
func (g *Generator) finish(p *player, at int64) {
	if p.abandon {
		g.endSession(p, at)
		return
	}
	p.step, p.next = stepDisconnect, at
}

// endSession takes p offline; its next login is due after a draw of Offline.
func (g *Generator) endSession(p *player, at int64) {
	p.active = false
	p.next = at + int64(g.cfg.Offline.draw(g.r))
}

func (p *player) regionAttr(attrs []schema.Attr) []schema.Attr {
	if p.region == "" {
		return attrs
	}
	return append(attrs, schema.Attr{Key: "region", Value: schema.Value{Kind: schema.KindString, Str: p.region}})
}

// msFraction returns f (in [0, 1]) of gap, rounded to whole milliseconds like
// every other simulated instant; gap is itself whole milliseconds, so the
// result never exceeds it.
func msFraction(gap int64, f float64) int64 {
	return int64(time.Duration(f * float64(gap)).Round(time.Millisecond))
}
