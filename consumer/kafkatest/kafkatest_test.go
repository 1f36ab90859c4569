package kafkatest

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMain(m *testing.M) { Main(m) }

// TestGroupCommitMetadata is the round trip the consumer's delivery contract
// rests on, on every backend: consume as a group, commit offsets with
// per-partition metadata set in PreCommitFnContext, read them back through
// kadm and through a new member's OnOffsetsFetched, and resume from them.
func TestGroupCommitMetadata(t *testing.T) {
	Each(t, func(t *testing.T, brokers []string) {
		const (
			partitions = 3
			records    = 30
		)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		topic := Topic(t, brokers, partitions)
		group := Group(t)

		recs := make([]*kgo.Record, records)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "player-%d", i%10), Value: fmt.Appendf(nil, "event-%d", i)}
		}
		Produce(t, brokers, recs...)
		// The next offset to consume per partition once everything is read.
		end := map[int32]int64{}
		for _, r := range recs {
			end[r.Partition] = max(end[r.Partition], r.Offset+1)
		}
		if len(end) < 2 {
			t.Fatalf("records landed in %d partition(s); keys should spread over %d", len(end), partitions)
		}

		// First member: read everything, commit with metadata, leave.
		first, err := kgo.NewClient(
			kgo.SeedBrokers(brokers...),
			kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(group),
			kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			t.Fatal(err)
		}
		joinStart := time.Now()
		got := 0
		for got < records {
			fetches := first.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				first.Close()
				t.Fatalf("consumed %d of %d records: %v", got, records, err)
			}
			fetches.EachError(func(topic string, p int32, err error) {
				t.Errorf("fetch %s[%d]: %v", topic, p, err)
			})
			if got == 0 {
				t.Logf("first member: first records %v after the client was created", time.Since(joinStart).Round(time.Millisecond))
			}
			got += fetches.NumRecords()
		}
		if got != records {
			t.Errorf("consumed %d records, want %d", got, records)
		}
		commitCtx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
			for i := range req.Topics {
				for j := range req.Topics[i].Partitions {
					p := &req.Topics[i].Partitions[j]
					p.Metadata = kmsg.StringPtr(metadataFor(p.Partition, p.Offset))
				}
			}
			return nil
		})
		commitErr := first.CommitUncommittedOffsets(commitCtx)
		first.Close()
		if commitErr != nil {
			t.Fatalf("commit: %v", commitErr)
		}

		want := map[int32]Commit{}
		for p, off := range end {
			want[p] = Commit{Offset: off, Metadata: metadataFor(p, off)}
		}
		if got := Committed(t, brokers, group, topic); !maps.Equal(got, want) {
			t.Errorf("Committed = %v, want %v", got, want)
		}

		// Second member: the metadata comes back with the fetched offsets,
		// and consumption resumes after the commit.
		fetched := make(chan map[int32]Commit, 1)
		joinStart = time.Now()
		second := Client(t, brokers,
			kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(group),
			kgo.DisableAutoCommit(),
			kgo.OnOffsetsFetched(func(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
				t.Logf("OffsetFetch v%d: top level %d, under Groups %d", resp.Version, len(fetchedCommits(&kmsg.OffsetFetchResponse{Topics: resp.Topics}, group, topic)), len(fetchedCommits(&kmsg.OffsetFetchResponse{Groups: resp.Groups}, group, topic)))
				select {
				case fetched <- fetchedCommits(resp, group, topic):
				default: // a later rebalance; the first fetch is the one checked
				}
				return nil
			}),
		)
		var onFetched map[int32]Commit
		select {
		case onFetched = <-fetched:
			t.Logf("second member: offsets fetched %v after the client was created", time.Since(joinStart).Round(time.Millisecond))
		case <-ctx.Done():
			t.Fatalf("OnOffsetsFetched not called: %v", ctx.Err())
		}
		if !maps.Equal(onFetched, want) {
			t.Errorf("OnOffsetsFetched saw %v, want %v", onFetched, want)
		}

		extra := &kgo.Record{Topic: topic, Key: []byte("player-0"), Value: []byte("after-commit")}
		Produce(t, brokers, extra)
		fetches := second.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("poll after commit: %v", err)
		}
		var resumed []string
		fetches.EachRecord(func(r *kgo.Record) { resumed = append(resumed, string(r.Value)) })
		if len(resumed) != 1 || resumed[0] != "after-commit" {
			t.Errorf("second member read %q, want only the record produced after the commit", resumed)
		}
	})
}

func metadataFor(p int32, offset int64) string {
	return fmt.Sprintf("v1;p=%d;h=%d", p, offset)
}

// fetchedCommits extracts topic's offsets and metadata from an OffsetFetch
// response. Before version 8 the response lists topics at its top level;
// from version 8 (batched groups) it lists them under Groups.
func fetchedCommits(resp *kmsg.OffsetFetchResponse, group, topic string) map[int32]Commit {
	out := map[int32]Commit{}
	add := func(p int32, offset int64, meta *string) {
		if offset < 0 {
			return // no commit for this partition
		}
		c := Commit{Offset: offset}
		if meta != nil {
			c.Metadata = *meta
		}
		out[p] = c
	}
	for _, t := range resp.Topics {
		if t.Topic == topic {
			for _, p := range t.Partitions {
				add(p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	for _, g := range resp.Groups {
		if g.Group != group {
			continue
		}
		for _, t := range g.Topics {
			if t.Topic == topic {
				for _, p := range t.Partitions {
					add(p.Partition, p.Offset, p.Metadata)
				}
			}
		}
	}
	return out
}

func TestUniqueName(t *testing.T) {
	legal := regexp.MustCompile(`^[a-zA-Z0-9-]+-[0-9a-f]{8}$`)
	cases := []struct {
		name, in, prefix string
	}{
		{"plain", "TestConsume", "TestConsume-"},
		{"subtests", "TestConsume/kfake/two_partitions", "TestConsume-kfake-two-partitions-"},
		{"odd characters", "TestX/a b#01/é.c", "TestX-a-b-01-c-"},
		{"only odd characters", "/#/", "kafkatest-"},
		{"long", "Test" + strings.Repeat("x", 300), "Test" + strings.Repeat("x", maxNameLen-4) + "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := uniqueName(tc.in), uniqueName(tc.in)
			if !strings.HasPrefix(a, tc.prefix) || !legal.MatchString(a) {
				t.Errorf("uniqueName(%q) = %q, want prefix %q and only [a-zA-Z0-9-]", tc.in, a, tc.prefix)
			}
			if len(a) > 249 {
				t.Errorf("uniqueName(%q) is %d characters, over Kafka's 249", tc.in, len(a))
			}
			if a == b {
				t.Errorf("two calls both returned %q", a)
			}
		})
	}
}

func TestExternalSkipsWhenUnset(t *testing.T) {
	t.Setenv(BrokersEnv, " , ")
	var skipped bool
	t.Run("external", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Backend{Name: External, start: startExternal}.Start(t)
	})
	if !skipped {
		t.Fatalf("external backend did not skip with %s unset", BrokersEnv)
	}
}

func TestBackends(t *testing.T) {
	var names []string
	for _, b := range Backends() {
		names = append(names, b.Name)
	}
	if got, want := strings.Join(names, ","), "external,testcontainers,kfake"; got != want {
		t.Fatalf("Backends() = %s, want %s", got, want)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name            string
		counts          map[string]*outcome
		want            string
		wantRealSkipped bool
	}{
		{
			name: "no suite ran",
			want: "",
		},
		{
			name: "kfake only",
			counts: map[string]*outcome{
				External:       {skipped: 3, reason: BrokersEnv + " not set"},
				Testcontainers: {skipped: 3, reason: "no Docker engine answers"},
				Kfake:          {passed: 2, failed: 1},
			},
			want:            "kafkatest: x.test: external 3 skipped (SESSIONTRACE_TEST_BROKERS not set); testcontainers 3 skipped (no Docker engine answers); kfake 2 passed, 1 failed",
			wantRealSkipped: true,
		},
		{
			name: "skipped by the test, not the backend",
			counts: map[string]*outcome{
				External: {passed: 2, skipped: 1},
				Kfake:    {passed: 2, skipped: 1},
			},
			want: "kafkatest: x.test: external 2 passed, 1 skipped; kfake 2 passed, 1 skipped",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &counts{byBackend: map[string]*outcome{}, skipReason: map[string]string{}}
			maps.Copy(c.byBackend, tc.counts)
			got, realSkipped := c.summary("x.test")
			if got != tc.want || realSkipped != tc.wantRealSkipped {
				t.Errorf("summary() = %q, %v\nwant       %q, %v", got, realSkipped, tc.want, tc.wantRealSkipped)
			}
		})
	}
}

// TestEachCountsOutcomes runs Each on an isolated tally: a backend that
// Start skipped carries its reason, one that a test skipped does not.
func TestEachCountsOutcomes(t *testing.T) {
	c := &counts{byBackend: map[string]*outcome{}, skipReason: map[string]string{}}
	t.Run("suite", func(t *testing.T) {
		t.Run("unavailable", func(t *testing.T) {
			t.Cleanup(func() { c.record(External, t) })
			c.skipped(t.Name(), "not here")
			t.SkipNow()
		})
		t.Run("skipped by the test", func(t *testing.T) {
			t.Cleanup(func() { c.record(Kfake, t) })
			t.SkipNow()
		})
		t.Run("passed", func(t *testing.T) {
			t.Cleanup(func() { c.record(Kfake, t) })
		})
	})
	got, realSkipped := c.summary("x.test")
	if want := "kafkatest: x.test: external 1 skipped (not here); kfake 1 passed, 1 skipped"; got != want || !realSkipped {
		t.Errorf("summary() = %q, %v\nwant       %q, true", got, realSkipped, want)
	}
}
