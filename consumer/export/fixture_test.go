package export

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"

	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// testSpans returns the spans players' sessions (login, matches with
// matchmaking, loading and game, disconnect) make, interleaved in time, in
// the order one machine finishes them.
func testSpans(tb testing.TB, players, matches int) []lifecycle.Span {
	tb.Helper()
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano()
	type timed struct {
		seq int
		ev  schema.Event
	}
	var all []timed
	for p := range players {
		player := fmt.Sprintf("player-%06d", p)
		ts := base + int64(p)*int64(137*time.Millisecond)
		n := 0
		add := func(ev schema.Event, step time.Duration) {
			ts += int64(step)
			ev.PlayerID, ev.TS = player, ts
			ev.EventID = player + "-" + strconv.Itoa(n)
			n++
			all = append(all, timed{seq: len(all), ev: ev})
		}
		add(schema.Event{Type: schema.SessionLogin, AuthMethod: "password", ClientVersion: "1.4.2", Platform: []string{"pc", "ps5", "ios"}[p%3]}, 0)
		for m := range matches {
			add(schema.Event{Type: schema.MatchmakingEnter, GameMode: "ranked"}, 2*time.Second)
			add(schema.Event{Type: schema.MatchmakingComplete, LobbyID: fmt.Sprintf("lobby-%d-%d", p, m)}, 7*time.Second)
			add(schema.Event{Type: schema.LoadingStart, LoadingType: "match"}, time.Second)
			add(schema.Event{Type: schema.LoadingFinish, AssetsLoaded: 120, HasAssetsLoaded: true, TotalSizeMB: 340.5, HasTotalSizeMB: true}, 9*time.Second)
			add(schema.Event{Type: schema.GameEnter, ServerID: "srv-1", Map: "dust"}, time.Second)
			add(schema.Event{Type: schema.GameLeave, Result: "win", Score: 12, HasScore: true}, 300*time.Second)
		}
		add(schema.Event{Type: schema.SessionDisconnect, Reason: []string{"client_quit", "connection_lost", "crash"}[p%3]}, 5*time.Second)
	}
	slices.SortStableFunc(all, func(a, b timed) int {
		if c := cmp.Compare(a.ev.TS, b.ev.TS); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	var out []lifecycle.Span
	for i := range all {
		out, _ = m.Apply(&all[i].ev, int64(i), out)
	}
	if len(out) == 0 {
		tb.Fatal("no spans")
	}
	return out
}

// startReceiver starts a real OTLP receiver on a free port of 127.0.0.1.
func startReceiver(tb testing.TB) *receiver.Receiver {
	tb.Helper()
	r, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("otlp receiver: %v", err)
	}
	tb.Cleanup(r.Close)
	return r
}

// otlpOut is a real OTLP gRPC client aimed at a test receiver, built as
// cmd builds it, and the SDK exporter over it.
type otlpOut struct {
	client otlptrace.Client
	exp    *otlptrace.Exporter
}

// newOut returns the client and exporter aimed at addr, with gRPC's
// reconnect backoff bounded by retryInitial and retryMax.
func newOut(tb testing.TB, addr string, retryInitial, retryMax time.Duration, extra ...otlptracegrpc.Option) *otlpOut {
	tb.Helper()
	opts := append([]otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(addr),
		otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTimeout(5 * time.Second),
	}, extra...)
	client := otlptracegrpc.NewClient(append(opts, ClientOptions(retryInitial, retryMax)...)...)
	exp, err := otlptrace.New(context.Background(), client) // starts the client
	if err != nil {
		tb.Fatalf("otlp exporter: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = exp.Shutdown(ctx)
	})
	return &otlpOut{client: client, exp: exp}
}

// exporter is newOut with fast reconnects, for tests that stop and restart
// the receiver.
func exporter(tb testing.TB, addr string) *otlpOut {
	tb.Helper()
	return newOut(tb, addr, 50*time.Millisecond, 500*time.Millisecond)
}

// paths are the two export paths, which must keep the same contract.
var paths = []struct {
	name string
	lane func(out *otlpOut, cfg Config) Lane
}{
	{"direct", func(out *otlpOut, cfg Config) Lane { return NewDirect(out.client, cfg) }},
	{"sdk", func(out *otlpOut, cfg Config) Lane { return NewSDK(out.exp, cfg) }},
}
