package consumer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/schema"
)

// TestPositionHoldsSessionsWithUnacknowledgedSpans drives one partition
// worker directly: player a logs in (offset 0), player b logs in (1), both
// login spans are acknowledged, the collector goes down and a disconnects
// (2). a's session is closed but its root span is not acknowledged, so the
// commit must stay at a's login: a new owner starting at b's login would
// meet a's disconnect as an event of an unknown session and derive other
// spans than the lost one.
func TestPositionHoldsSessionsWithUnacknowledgedSpans(t *testing.T) {
	rcv := startReceiver(t)
	cfg := testConfig([]string{"127.0.0.1:1"}, "positions", "positions")
	cfg.ExportBatchTimeout = 10 * time.Millisecond
	c, err := New(cfg, exporter(t, rcv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	w, err := newWorker(&c.pipeline, cfg.Topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.lane.close(t.Context()) })

	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	events := []schema.Event{
		{Type: schema.SessionLogin, EventID: "a-0", PlayerID: "a", TS: base, Platform: "pc"},
		{Type: schema.SessionLogin, EventID: "b-0", PlayerID: "b", TS: base + int64(time.Second), Platform: "pc"},
		{Type: schema.SessionDisconnect, EventID: "a-1", PlayerID: "a", TS: base + int64(2*time.Second), Reason: "client_quit"},
	}
	process := func(i int) {
		w.process(t.Context(), &kgo.Record{Topic: cfg.Topic, Offset: int64(i), Key: []byte(events[i].PlayerID), Value: schema.AppendJSON(nil, &events[i])})
	}
	waitAcked := func(n int64) {
		t.Helper()
		waitSpans(t, rcv, int(n), 30*time.Second)
		// The receiver stores a request before answering it, so the lane
		// counts the acknowledgement a moment after the spans arrived.
		deadline := time.Now().Add(30 * time.Second)
		for w.lane.acked() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := w.lane.acked(); got < n {
			t.Fatalf("%d spans acknowledged, want %d", got, n)
		}
	}
	process(0)
	process(1)
	waitAcked(2) // the two login phase spans
	if pos, _ := w.position(); pos != (position{offset: 0, mark: 2}) {
		t.Fatalf("both logins acknowledged: position %+v, want offset 0 (a is open) and mark 2", pos)
	}
	rcv.Stop()
	process(2)
	pos, ok := w.position()
	if !ok || pos != (position{offset: 0, mark: 2}) {
		t.Fatalf("collector down: position %+v (ok %v), want offset 0 (a's login: a's spans are not acknowledged) and mark 2", pos, ok)
	}

	if err := rcv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitAcked(3) // a's root
	if pos, _ := w.position(); pos != (position{offset: 1, mark: 3}) {
		t.Fatalf("after the export: position %+v, want offset 1 (b's login: b is open) and mark 3", pos)
	}
}
