package schema_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// benchEvents returns one realistic session's records: every type once, with
// the attributes a game server typically adds, about 256 bytes each.
func benchEvents(tb testing.TB) [][]byte {
	tb.Helper()
	base := time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC).UnixNano()
	common := func(typ schema.Type, i int) schema.Event {
		return schema.Event{
			Type:      typ,
			EventID:   fmt.Sprintf("01JDQ8Z6T1M3KX9V4R2B7N5C%02d", i),
			PlayerID:  "player-3f9a2c71-5d1e",
			SessionID: "sess-8b41e0d2",
			TS:        base + int64(i)*7_500_000_000,
			Attributes: []schema.Attr{
				{Key: "region", Value: schema.Value{Kind: schema.KindString, Str: "eu-west-1"}},
				{Key: "build", Value: schema.Value{Kind: schema.KindString, Str: "2026.11.3-rc2"}},
				{Key: "ping_ms", Value: schema.Value{Kind: schema.KindInt, Int: 38}},
			},
		}
	}
	evs := []schema.Event{}
	ev := common(schema.SessionLogin, 0)
	ev.AuthMethod, ev.ClientVersion, ev.Platform = "steam", "1.4.2", "pc"
	evs = append(evs, ev)
	ev = common(schema.MatchmakingEnter, 1)
	ev.GameMode = "ranked_5v5"
	evs = append(evs, ev)
	ev = common(schema.MatchmakingComplete, 2)
	ev.LobbyID, ev.WaitSeconds, ev.HasWait = "lobby-77c1", 41.75, true
	evs = append(evs, ev)
	ev = common(schema.LoadingStart, 3)
	ev.LoadingType = "map"
	evs = append(evs, ev)
	ev = common(schema.LoadingFinish, 4)
	ev.AssetsLoaded, ev.HasAssetsLoaded, ev.TotalSizeMB, ev.HasTotalSizeMB = 1342, true, 812.5, true
	evs = append(evs, ev)
	ev = common(schema.GameEnter, 5)
	ev.ServerID, ev.Map = "gs-eu-west-1-017", "dust_valley"
	evs = append(evs, ev)
	ev = common(schema.GameLeave, 6)
	ev.Result, ev.Score, ev.HasScore = "win", 2875, true
	ev.Attributes = append(ev.Attributes, schema.Attr{Key: "premium", Value: schema.Value{Kind: schema.KindBool, Bool: true}})
	evs = append(evs, ev)
	ev = common(schema.SessionDisconnect, 7)
	ev.Reason = "client_quit"
	evs = append(evs, ev)

	out := make([][]byte, len(evs))
	for i := range evs {
		if err := evs[i].Validate(schema.DefaultLimits()); err != nil {
			tb.Fatal(err)
		}
		out[i] = schema.AppendJSON(nil, &evs[i])
	}
	return out
}

// jsonEvent is what a straightforward encoding/json consumer unmarshals into.
type jsonEvent struct {
	Type          string         `json:"type"`
	EventID       string         `json:"event_id"`
	PlayerID      string         `json:"player_id"`
	SessionID     string         `json:"session_id"`
	TS            string         `json:"ts"`
	AuthMethod    string         `json:"auth_method"`
	ClientVersion string         `json:"client_version"`
	Platform      string         `json:"platform"`
	GameMode      string         `json:"game_mode"`
	LobbyID       string         `json:"lobby_id"`
	WaitSeconds   *float64       `json:"wait_seconds"`
	Reason        string         `json:"reason"`
	LoadingType   string         `json:"loading_type"`
	AssetsLoaded  *int64         `json:"assets_loaded"`
	TotalSizeMB   *float64       `json:"total_size_mb"`
	ServerID      string         `json:"server_id"`
	Map           string         `json:"map"`
	Result        string         `json:"result"`
	Score         *int64         `json:"score"`
	Attributes    map[string]any `json:"attributes"`
}

// decodeWithEncodingJSON is the baseline: encoding/json into a struct, then
// the timestamp and type parsed, without the lean decoder's limit checks.
func decodeWithEncodingJSON(value []byte, je *jsonEvent) (schema.Type, int64, error) {
	*je = jsonEvent{}
	if err := json.Unmarshal(value, je); err != nil {
		return 0, 0, err
	}
	typ, ok := schema.ParseType(je.Type)
	if !ok {
		return 0, 0, fmt.Errorf("unknown type %q", je.Type)
	}
	ts, err := time.Parse(time.RFC3339Nano, je.TS)
	if err != nil {
		return 0, 0, err
	}
	return typ, ts.UnixNano(), nil
}

// BenchmarkDecode compares the lean decoder with encoding/json over the same
// records. records/s is per core: the benchmark runs on one goroutine.
func BenchmarkDecode(b *testing.B) {
	recs := benchEvents(b)
	key := []byte("player-3f9a2c71-5d1e")
	total := 0
	for _, r := range recs {
		total += len(r)
	}
	avg := int64(total / len(recs))

	b.Run("lean", func(b *testing.B) {
		d := newDecoder(b)
		var ev schema.Event
		b.ReportAllocs()
		b.SetBytes(avg)
		i := 0
		for b.Loop() {
			if err := d.Decode(key, recs[i%len(recs)], &ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("encoding_json", func(b *testing.B) {
		var je jsonEvent
		b.ReportAllocs()
		b.SetBytes(avg)
		i := 0
		for b.Loop() {
			if _, _, err := decodeWithEncodingJSON(recs[i%len(recs)], &je); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkAppendJSON measures the encoder the simulator uses.
func BenchmarkAppendJSON(b *testing.B) {
	recs := benchEvents(b)
	d := newDecoder(b)
	evs := make([]schema.Event, len(recs))
	for i, r := range recs {
		if err := d.Decode(nil, r, &evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = schema.AppendJSON(buf[:0], &evs[i%len(evs)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
