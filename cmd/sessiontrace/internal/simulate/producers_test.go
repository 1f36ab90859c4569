package simulate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

func testProducers(keys string, jitter time.Duration) Producers {
	return Producers{
		Topics: map[string]string{ServiceAuth: "auth-events", ServiceMatchmaking: "matchmaking-events", ServiceMatch: "match-events"},
		Keys:   keys, Jitter: jitter, Seed: 3,
	}
}

func route(t *testing.T, cfg Producers) []Routed {
	t.Helper()
	c := DefaultConfig()
	c.Players, c.Sessions = 50, 200
	gen, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRouter(gen, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Routed
	var r Routed
	for rt.Next(&r) {
		out = append(out, r)
	}
	return out
}

func TestRouter(t *testing.T) {
	inOrder := route(t, testProducers(KeyNone, 0))
	for _, c := range []struct {
		name   string
		keys   string
		jitter time.Duration
	}{
		{"unkeyed, in order", KeyNone, 0},
		{"unkeyed, 500ms", KeyNone, 500 * time.Millisecond},
		{"by entity, 500ms", KeyEntity, 500 * time.Millisecond},
		{"by player, in order", KeyPlayer, 0},
		{"by player, 500ms", KeyPlayer, 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := route(t, testProducers(c.keys, c.jitter))
			if again := route(t, testProducers(c.keys, c.jitter)); !slices.EqualFunc(out, again, sameRouted) {
				t.Fatal("two routers with the same seed differ")
			}
			values := func(rs []Routed) []string {
				var v []string
				for _, r := range rs {
					v = append(v, string(r.Value))
				}
				slices.Sort(v)
				return v
			}
			if !slices.Equal(values(out), values(inOrder)) {
				t.Fatalf("%d records, not the %d events of the generator", len(out), len(inOrder))
			}
			reordered := 0
			last := map[string]int64{} // per player, the latest ts delivered
			dec := newTestDecoder(t)
			var ev schema.Event
			for i, r := range out {
				if i > 0 && r.Delivered < out[i-1].Delivered {
					t.Fatalf("record %d delivered at %d before record %d at %d", i, r.Delivered, i-1, out[i-1].Delivered)
				}
				if d := r.Delivered - r.TS; d < 0 || d > int64(c.jitter) {
					t.Fatalf("record %d delayed %v, want within [0, %v]", i, time.Duration(d), c.jitter)
				}
				if err := dec.Decode(nil, r.Value, &ev); err != nil {
					t.Fatal(err)
				}
				if want := serviceOf(ev.Type); r.Service != want && !(ev.Type == schema.LoadingStart || ev.Type == schema.LoadingFinish) {
					t.Errorf("%s written by %s, want %s", ev.Type, r.Service, want)
				}
				if r.Topic != testProducers(c.keys, 0).Topics[r.Service] {
					t.Errorf("%s record on topic %s", r.Service, r.Topic)
				}
				switch {
				case c.keys == KeyNone && r.Key != nil:
					t.Errorf("unkeyed stream has key %q", r.Key)
				case c.keys == KeyEntity && ev.Type == schema.GameEnter && string(r.Key) != ev.ServerID:
					t.Errorf("game.enter keyed %q, want its server %q", r.Key, ev.ServerID)
				case c.keys == KeyEntity && r.Service == ServiceAuth && r.Key != nil:
					t.Errorf("auth record keyed %q", r.Key)
				case c.keys == KeyPlayer && string(r.Key) != ev.PlayerID:
					t.Errorf("%s record of %s keyed %q, want its player ID", r.Service, ev.PlayerID, r.Key)
				}
				if ev.TS < last[ev.PlayerID] {
					reordered++
				}
				last[ev.PlayerID] = max(last[ev.PlayerID], ev.TS)
			}
			if c.jitter == 0 && reordered != 0 {
				t.Errorf("%d events out of order without jitter", reordered)
			}
			if c.jitter > 0 && reordered == 0 {
				t.Error("no player's events are out of ts order: the jitter did nothing")
			}
			t.Logf("%d records, %d of them behind a later event of their player", len(out), reordered)
		})
	}
}

func sameRouted(a, b Routed) bool {
	return a.Service == b.Service && a.Topic == b.Topic && string(a.Key) == string(b.Key) &&
		string(a.Value) == string(b.Value) && a.TS == b.TS && a.Delivered == b.Delivered
}

func serviceOf(t schema.Type) string {
	switch t {
	case schema.MatchmakingEnter, schema.MatchmakingComplete, schema.MatchmakingCancel:
		return ServiceMatchmaking
	case schema.GameEnter, schema.GameLeave:
		return ServiceMatch
	}
	return ServiceAuth
}

func newTestDecoder(t *testing.T) *schema.Decoder {
	t.Helper()
	d, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestProducersValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Producers)
		want   string
	}{
		{"valid", func(*Producers) {}, ""},
		{"no match topic", func(p *Producers) { delete(p.Topics, ServiceMatch) }, "match service"},
		{"unknown service", func(p *Producers) { p.Topics["gateway"] = "g" }, "only"},
		{"by player", func(p *Producers) { p.Keys = KeyPlayer }, ""},
		{"bad keys", func(p *Producers) { p.Keys = "server" }, "keys"},
		{"negative jitter", func(p *Producers) { p.Jitter = -time.Second }, "jitter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testProducers(KeyNone, time.Second)
			c.change(&p)
			err := p.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("Validate: %v, want %q", err, c.want)
			}
		})
	}
}
