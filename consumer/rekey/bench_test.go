package rekey

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

// BenchmarkRekey measures, on the same broker and the same records (v1
// logins, two thirds keyed by server, one third unkeyed), a bare franz-go
// group consume loop that does nothing with the records, a plain copy loop
// (consume, produce keyed by player, no transactions, autocommit), and
// rekey at two transaction sizes. Each iteration reads the whole source
// with a fresh group, from the first poll to the last record (bare) or to
// the group's commit of the last offset (copy, rekey). The broker is
// SESSIONTRACE_TEST_BROKERS when set, kfake in this process otherwise.
// Besides records/s each case reports cpu-µs/record, this process's CPU time
// (getrusage) over the loop per record.
//
//	SESSIONTRACE_TEST_BROKERS=$addr go test ./consumer/rekey -run '^$' -bench Rekey -benchtime 3x
func BenchmarkRekey(b *testing.B) {
	backend := kafkatest.Kfake
	if os.Getenv(kafkatest.BrokersEnv) != "" {
		backend = kafkatest.External
	}
	var brokers []string
	for _, be := range kafkatest.Backends() {
		if be.Name == backend {
			brokers = be.Start(b)
		}
	}
	const total = 500_000
	src := kafkatest.Topic(b, brokers, 3)
	out := kafkatest.Topic(b, brokers, 3)
	end := map[int32]int64{}
	for from := 0; from < total; from += 20_000 {
		var recs []*kgo.Record
		for i := from; i < from+20_000; i++ {
			_, v := testEvent(i)
			r := &kgo.Record{Topic: src, Value: v}
			if i%3 != 0 {
				r.Key = []byte("server-" + strconv.Itoa(i%5))
			}
			recs = append(recs, r)
		}
		kafkatest.Produce(b, brokers, recs...)
		for _, r := range recs {
			end[r.Partition] = max(end[r.Partition], r.Offset+1)
		}
	}
	b.Logf("%s broker, %d records per pass", backend, total)
	adm := kadm.NewClient(kafkatest.Client(b, brokers))

	b.Run("bare_franz_go", func(b *testing.B) {
		cpu := processCPU()
		for b.Loop() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(kafkatest.Group(b)),
				kgo.ConsumeTopics(src), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
			n := 0
			for n < total {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					b.Fatalf("consumed %d of %d records", n, total)
				}
				n += fs.NumRecords()
			}
			cancel()
			cl.Close()
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		reportCPU(b, cpu, total*b.N)
	})

	b.Run("copy_no_transactions", func(b *testing.B) {
		find, err := NewV1(schema.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		cpu := processCPU()
		for b.Loop() {
			group := kafkatest.Group(b)
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(src), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
			n := 0
			for n < total {
				fs := cl.PollRecords(ctx, DefaultMaxPollRecords)
				if ctx.Err() != nil {
					b.Fatalf("copied %d of %d records", n, total)
				}
				fs.EachRecord(func(r *kgo.Record) {
					player, _ := find.Find(r.Topic, r.Key, r.Value)
					cl.Produce(ctx, &kgo.Record{Topic: out, Key: []byte(player), Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}, nil)
				})
				if err := cl.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					b.Fatal(err)
				}
				n += fs.NumRecords()
			}
			cancel()
			cl.Close()
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		reportCPU(b, cpu, total*b.N)
	})

	for _, poll := range []int{1000, DefaultMaxPollRecords} {
		b.Run("rekey_txn_"+strconv.Itoa(poll), func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				cfg := DefaultConfig()
				cfg.Brokers, cfg.Topics, cfg.OutputTopic = brokers, []string{src}, out
				cfg.Group = kafkatest.Group(b)
				cfg.TransactionalIDPrefix, cfg.Instance = cfg.Group, "bench"
				cfg.MaxPollRecords = poll
				r, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				waitGroupAt(b, adm, cfg.Group, src, end)
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, cpu, total*b.N)
		})
	}
}

// waitGroupAt polls until group has committed end on every partition of
// topic.
func waitGroupAt(b *testing.B, adm *kadm.Client, group, topic string, end map[int32]int64) {
	b.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Minute)
	for {
		if offs, err := adm.FetchOffsets(b.Context(), group); err == nil {
			done := true
			for p, e := range end {
				if o, ok := offs.Lookup(topic, p); !ok || o.At < e {
					done = false
				}
			}
			if done {
				return
			}
		}
		select {
		case <-deadline:
			b.Fatalf("group %s did not commit %v in time", group, end)
		case <-tick.C:
		}
	}
}

// processCPU is the process's user and system CPU time, every thread.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU time since start per record as cpu-µs/record; with
// kfake the broker's CPU is in it too.
func reportCPU(b *testing.B, start time.Duration, records int) {
	b.ReportMetric(float64(processCPU()-start)/float64(time.Microsecond)/float64(records), "cpu-µs/record")
}
