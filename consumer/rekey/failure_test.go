package rekey

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// TestRekeyTopics checks the start: a missing output topic refuses to run
// (its partition count is not rekey's to choose), a missing dead-letter
// topic is created with the output's partition count.
func TestRekeyTopics(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		cfg, _ := testConfig(t, brokers, "a")
		missing := cfg
		missing.OutputTopic = cfg.OutputTopic + "-missing"
		r, err := New(missing)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("Run without an output topic: %v, want a refusal naming it", err)
		}

		cfg.DLQTopic = cfg.OutputTopic + "-dead"
		adm := kadm.NewClient(kafkatest.Client(t, brokers))
		t.Cleanup(func() { _, _ = adm.DeleteTopics(context.WithoutCancel(t.Context()), cfg.DLQTopic) })
		r, stop := startRekeyer(t, cfg)
		waitReady(t, r)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		details, err := adm.ListTopics(ctx, cfg.DLQTopic)
		if err != nil {
			t.Fatal(err)
		}
		if d := details[cfg.DLQTopic]; d.Err != nil || len(d.Partitions) != 3 {
			t.Fatalf("dead-letter topic: %v with %d partitions, want 3", d.Err, len(d.Partitions))
		}
	})
}

// TestRekeyWriteRefused makes the output topic refuse every copy (its
// max.message.bytes below any batch of a record, above a transaction
// marker's, which the broker must still be able to write to end the
// transaction): the transactions abort, /readyz's
// reason says so and nothing is committed; once the topic accepts records
// again, every record is in the output exactly once.
func TestRekeyWriteRefused(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		cfg, s := testConfig(t, brokers, "a")
		adm := kadm.NewClient(kafkatest.Client(t, brokers))
		setMax := func(v string) {
			t.Helper()
			resp, err := adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, cfg.OutputTopic)
			if err == nil {
				err = resp[0].Err
			}
			if err != nil {
				t.Fatalf("set max.message.bytes of %s: %v", cfg.OutputTopic, err)
			}
		}
		setMax("150")
		s.produce(t, brokers, 0, 100)
		r, _ := startRekeyer(t, cfg)
		waitFor(t, "the refused writes to show in readiness", func() bool {
			ok, why := r.Readiness()
			return !ok && strings.Contains(why, "transactions are not committing")
		})
		if got := kafkatest.Committed(t, brokers, cfg.Group, s.topic); len(got) != 0 {
			t.Errorf("committed %v while every write was refused", got)
		}
		setMax("1000012")
		s.produce(t, brokers, 100, 200)
		finish(t, brokers, cfg, s)
		waitFor(t, "readiness after a commit", func() bool { ok, _ := r.Readiness(); return ok })
	})
}

// waitFor polls cond until it holds, failing t after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
