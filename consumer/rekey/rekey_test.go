package rekey

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Topics = []string{"a", "b"}
		c.OutputTopic = "out"
		return c
	}
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   string
		is     error
	}{
		{"valid", func(*Config) {}, "", nil},
		{"no topics", func(c *Config) { c.Topics = nil }, "topics", ErrNoTopics},
		{"no output", func(c *Config) { c.OutputTopic = "" }, "output_topic", ErrNoOutputTopic},
		{"reads its output", func(c *Config) { c.Topics = []string{"a", "out"} }, "would read its own output", nil},
		{"reads its dead letters", func(c *Config) { c.Topics = []string{"out.rekey.dlq"} }, "dead-letter", nil},
		{"dead letters to the output", func(c *Config) { c.DLQTopic = "out" }, "dlq_topic", nil},
		{"empty topic name", func(c *Config) { c.Topics = []string{""} }, "empty topic", nil},
		{"no group", func(c *Config) { c.Group = "" }, "group", nil},
		{"no prefix", func(c *Config) { c.TransactionalIDPrefix = "" }, "transactional_id_prefix", nil},
		{"short timeout", func(c *Config) { c.TransactionTimeout = time.Millisecond }, "transaction_timeout", nil},
		{"no poll records", func(c *Config) { c.MaxPollRecords = 0 }, "max_poll_records", nil},
		{"bad start", func(c *Config) { c.StartOffset = "middle" }, "start_offset", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.change(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate: %v, want an error naming %q", err, c.want)
			case c.is != nil && !errors.Is(err, c.is):
				t.Fatalf("Validate: %v, want errors.Is %v", err, c.is)
			}
		})
	}
	if got := valid().DLQ(); got != "out.rekey.dlq" {
		t.Errorf("default dead-letter topic %q", got)
	}
}

func TestFindAndReasons(t *testing.T) {
	v1, err := NewV1(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	player, valid := testEvent(5)
	for _, c := range []struct {
		name       string
		find       Finder
		key, value []byte
		player     string
		reason     string
	}{
		{"v1 keyed by server", v1, []byte("server-1"), valid, player, ""},
		{"v1 unkeyed", v1, nil, valid, player, ""},
		{"v1 malformed", v1, nil, []byte("{"), "", string(schema.ReasonMalformed)},
		{"v1 no player", v1, nil, []byte(`{"type":"session.login","event_id":"e","ts":"2026-01-01T00:00:00Z","auth_method":"a","client_version":"1","platform":"pc"}`), "", string(schema.ReasonMissingField)},
		{"mapping with a reason", finderFunc(func(_, _ []byte) (string, error) {
			return "", &Unfound{Reason: "unmapped_shape", Detail: "no rule"}
		}), nil, valid, "", "unmapped_shape"},
		{"plain error", finderFunc(func(_, _ []byte) (string, error) { return "", errors.New("boom") }), nil, valid, "", ReasonNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.find.Find("source", c.key, c.value)
			if c.reason == "" {
				if err != nil || got != c.player {
					t.Fatalf("Find = %q, %v; want %q", got, err, c.player)
				}
				return
			}
			if err == nil {
				t.Fatalf("Find = %q, want an error", got)
			}
			if reason, _ := reasonOf(err); reason != c.reason {
				t.Errorf("reason %q, want %q (%v)", reason, c.reason, err)
			}
		})
	}
}

type finderFunc func(key, value []byte) (string, error)

func (f finderFunc) Find(_ string, key, value []byte) (string, error) { return f(key, value) }

// startRekeyer runs a Rekeyer in this process until the returned stop is
// called (also in t.Cleanup); stop returns Run's error.
func startRekeyer(t *testing.T, cfg Config) (r *Rekeyer, stop func() error) {
	t.Helper()
	r, err := New(cfg, WithKafkaOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return r, stop
}

// testConfig is a rekey config over fresh topics of the test.
func testConfig(t *testing.T, brokers []string, instance string) (Config, *source) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	cfg.Topics = []string{kafkatest.Topic(t, brokers, 3)}
	cfg.OutputTopic = kafkatest.Topic(t, brokers, 3)
	cfg.DLQTopic = kafkatest.Topic(t, brokers, 3)
	cfg.Group = kafkatest.Group(t)
	cfg.TransactionalIDPrefix = cfg.Group
	cfg.Instance = instance
	cfg.TransactionTimeout = 10 * time.Second
	cfg.MaxPollRecords = 50 // many transactions per test
	return cfg, newSource(cfg.Topics[0])
}

// finish waits until group committed everything s wrote, then checks the
// output and dead-letter topics read committed.
func finish(t *testing.T, brokers []string, cfg Config, s *source) {
	t.Helper()
	s.waitCommitted(t, brokers, cfg.Group, 90*time.Second)
	out := readAll(t, brokers, cfg.OutputTopic, 3, kgo.ReadCommitted())
	dlq := readAll(t, brokers, cfg.DLQTopic, 3, kgo.ReadCommitted())
	s.checkExactlyOnce(t, out, dlq)
}

// TestRekeyExactlyOnce copies records keyed by server or unkeyed, with
// records whose player cannot be found among them, and checks the output and
// dead-letter topics hold each exactly once and unchanged.
func TestRekeyExactlyOnce(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		cfg, s := testConfig(t, brokers, "a")
		s.produce(t, brokers, 0, 300)
		r, stop := startRekeyer(t, cfg)
		s.produce(t, brokers, 300, 600)
		finish(t, brokers, cfg, s)
		if ok, why := r.Readiness(); !ok {
			t.Errorf("not ready after committing everything: %s", why)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if ok, _ := r.Readiness(); ok {
			t.Error("ready after leaving the group")
		}
	})
}

// TestRekeyRebalance moves partitions between two members while records
// flow: one joins, then the other leaves; every record is still in the
// output exactly once.
func TestRekeyRebalance(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		cfg, s := testConfig(t, brokers, "a")
		cfg.MaxPollRecords = 10
		ra, stopA := startRekeyer(t, cfg)
		waitReady(t, ra)
		flowing := s.flow(t, brokers, 0, 3000)
		waitOutput(t, brokers, cfg.Group, s.topic, 300)
		b := cfg
		b.Instance = "b"
		rb, stopB := startRekeyer(t, b) // takes partitions from a mid-stream
		waitReady(t, rb)
		waitOutput(t, brokers, cfg.Group, s.topic, 1200)
		if err := stopA(); err != nil { // its partitions move to b mid-stream
			t.Fatalf("Run of a: %v", err)
		}
		flowing()
		finish(t, brokers, cfg, s)
		uncommitted := readAll(t, brokers, cfg.OutputTopic, 3, kgo.ReadUncommitted())
		t.Logf("read uncommitted, the output holds %d records for %d events (aborted by the moves)", len(uncommitted), len(s.events))
		if err := stopB(); err != nil {
			t.Fatalf("Run of b: %v", err)
		}
	})
}

func waitReady(t *testing.T, r *Rekeyer) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for {
		if ok, _ := r.Readiness(); ok {
			return
		}
		select {
		case <-deadline:
			_, why := r.Readiness()
			t.Fatalf("member never ready: %s", why)
		case <-tick.C:
		}
	}
}

// TestRekeyKilled kills a rekey process with SIGKILL while it copies, so
// that its open transaction is never ended, and restarts it with the same
// instance: every record is in the output exactly once for a read_committed
// reader. The same output read uncommitted is logged: its duplicates are
// the aborted writes the kill left behind, which shows the kill struck
// inside a transaction.
func TestRekeyKilled(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		cfg, s := testConfig(t, brokers, "killed")
		cfg.MaxPollRecords = 20
		const total = 3000
		s.produce(t, brokers, 0, total/2)
		child := startChild(t, cfg)
		// Kill once part of the input is committed, while the rest flows.
		waitOutput(t, brokers, cfg.Group, s.topic, total/6)
		s.produce(t, brokers, total/2, total)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		startChild(t, cfg)
		finish(t, brokers, cfg, s)
		uncommitted := readAll(t, brokers, cfg.OutputTopic, 3, kgo.ReadUncommitted())
		t.Logf("read uncommitted, the output holds %d records for %d events", len(uncommitted), len(s.events))
	})
}

// waitOutput polls until group has committed at least n source records.
func waitOutput(t *testing.T, brokers []string, group, topic string, n int64) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	for {
		var sum int64
		// Before the first commit some brokers (kfake) do not know the
		// group: that is zero records so far.
		if offs, err := adm.FetchOffsets(t.Context(), group); err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic && o.Err == nil {
					sum += o.At
				}
			})
		}
		if sum >= n {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("group %s committed %d records, want %d", group, sum, n)
		case <-tick.C:
		}
	}
}

func startChild(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_CONFIG="+string(raw))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}
