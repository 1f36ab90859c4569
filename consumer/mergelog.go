package consumer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/merge"
)

// mergeLog writes and reads the merge topic.
type mergeLog struct {
	cl      *kgo.Client
	adm     *kadm.Client
	topic   string
	brokers []string
	kopts   []kgo.Opt
	// fp names the topic list: a commit made for another list (or order)
	// is not resumed from through the merge log.
	fp string
	// failing is why the last merge log write failed, nil when the last
	// one succeeded: commits cannot pass an entry that is not stored, so
	// readiness reports it.
	failing atomic.Pointer[string]
}

// fingerprint names a topic list in commits.
func fingerprint(topics []string) string {
	sum := sha256.Sum256([]byte(strings.Join(topics, "\x00")))
	return hex.EncodeToString(sum[:6])
}

// checkCoPartitioned returns the topics' partition count, or an error
// wrapping ErrNotCoPartitioned that names every count when they differ
// (Kafka Streams' first co-partitioning rule; the key and the partitioner,
// the other two, cannot be checked from here).
func checkCoPartitioned(ctx context.Context, adm *kadm.Client, topics []string) (int32, error) {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("describe topics %v: %w", topics, err)
	}
	counts := make([]string, 0, len(topics))
	n, same := -1, true
	for _, t := range topics {
		d, ok := details[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			var why error = kerr.UnknownTopicOrPartition
			if ok && d.Err != nil {
				why = d.Err
			}
			return 0, fmt.Errorf("topics: %q: %w (every topic of kafka.topics must exist before the consumer starts: a topic created later by a producer could get another partition count)", t, why)
		}
		counts = append(counts, fmt.Sprintf("%s has %d", t, len(d.Partitions)))
		if n >= 0 && len(d.Partitions) != n {
			same = false
		}
		n = len(d.Partitions)
	}
	if !same {
		return 0, fmt.Errorf("topics: %w: %s partitions; partition n of every topic is merged into one stream, so every topic needs the same partition count (and the same key, the player ID, and the same partitioner)",
			ErrNotCoPartitioned, strings.Join(counts, ", "))
	}
	return int32(n), nil
}

// ensure makes sure the merge topic exists with at least partitions
// partitions, creating it with that many and the longest retention.ms of
// the sources (a new owner that falls back to the oldest entry must find
// the entries of every record the sources still hold).
func (l *mergeLog) ensure(ctx context.Context, sources []string, partitions int32) error {
	topics, err := l.adm.ListTopics(ctx, l.topic)
	if err != nil {
		return fmt.Errorf("describe merge topic %q: %w", l.topic, err)
	}
	if t, ok := topics[l.topic]; ok && t.Err == nil && len(t.Partitions) > 0 {
		if int32(len(t.Partitions)) < partitions {
			return fmt.Errorf("merge topic %q has %d partitions, the topics %d: %w", l.topic, len(t.Partitions), partitions, ErrNotCoPartitioned)
		}
		return nil
	} else if ok && t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) && !errors.Is(t.Err, kerr.UnknownTopicID) {
		return fmt.Errorf("describe merge topic %q: %w", l.topic, t.Err)
	}
	// The longest of the sources' retention.ms, -1 (forever) if any keeps
	// its records forever; a week when none can be read.
	retention := int64(0)
	if rcs, err := l.adm.DescribeTopicConfigs(ctx, sources...); err == nil {
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Key != "retention.ms" || c.Value == nil {
					continue
				}
				if v, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && retention >= 0 && (v < 0 || v > retention) {
					retention = v
				}
			}
		}
	}
	if retention == 0 {
		retention = int64(7 * 24 * time.Hour / time.Millisecond)
	}
	del, ret := "delete", strconv.FormatInt(retention, 10)
	resp, err := l.adm.CreateTopic(ctx, partitions, -1, map[string]*string{"cleanup.policy": &del, "retention.ms": &ret}, l.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create merge topic %q with %d partitions: %w", l.topic, partitions, err)
	}
	return nil
}

// claim appends a claim to partition p of the merge log and returns its ID
// and offset: the log up to that offset is what this owner replays.
func (l *mergeLog) claim(ctx context.Context, p int32) ([16]byte, int64, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, 0, err
	}
	e := merge.Entry{ID: id, Claim: true}
	r, err := l.cl.ProduceSync(ctx, &kgo.Record{Topic: l.topic, Partition: p, Value: e.Append(nil)}).First()
	if err != nil {
		return id, 0, fmt.Errorf("claim merge topic %q partition %d: %w", l.topic, p, err)
	}
	return id, r.Offset, nil
}

// start returns the oldest offset partition p of the merge log holds.
func (l *mergeLog) start(ctx context.Context, p int32) (int64, error) {
	starts, err := l.adm.ListStartOffsets(ctx, l.topic)
	if err != nil {
		return 0, err
	}
	o, ok := starts.Lookup(l.topic, p)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("merge topic %q partition %d: no start offset: %w", l.topic, p, o.Err)
	}
	return o.Offset, nil
}

// read returns the entries of partition p of the merge log from offset
// from up to (not including) to.
func (l *mergeLog) read(ctx context.Context, p int32, from, to int64) ([]merge.Logged, error) {
	if from >= to {
		return nil, nil
	}
	opts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, l.kopts...)
	opts = append(opts, kgo.SeedBrokers(l.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.topic: {p: kgo.NewOffset().At(from)}}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("read merge topic: %w", err)
	}
	defer cl.Close()
	var out []merge.Logged
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read merge topic %q partition %d from %d to %d: %w", l.topic, p, from, to, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("read merge topic %q partition %d: %w", l.topic, p, ferr)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= to {
				done = true
				return
			}
			done = r.Offset >= to-1
			e, err := merge.Decode(r.Value)
			if err != nil {
				// Not ours, or damaged: the plan stops at the entry after it
				// (its base does not continue), and so does every reader's.
				return
			}
			out = append(out, merge.Logged{Offset: r.Offset, Entry: e})
		})
		if done {
			return out, nil
		}
	}
}

// mergeMeta is what a merged commit says besides the single topic's
// metadata.
type mergeMeta struct {
	fp       string
	position int64 // the committed position
	log      int64 // the merge log offset a new owner reads from
}

const prefixMerged = "sessiontrace/m1 "

// formatMerged returns the metadata of every topic's commit at pos, whose
// merge log entry is at log.
func formatMerged(fp string, log int64, pos checkpoint.Position) string {
	return fmt.Sprintf("%sk=%s c=%d m=%d %s", prefixMerged, fp, pos.Offset, log, checkpoint.Format(pos))
}

// parseMerged reads the metadata formatMerged wrote.
func parseMerged(s string) (mergeMeta, checkpoint.Metadata, bool) {
	rest, ok := strings.CutPrefix(s, prefixMerged)
	if !ok {
		return mergeMeta{}, checkpoint.Metadata{}, false
	}
	f := strings.SplitN(rest, " ", 4)
	if len(f) != 4 {
		return mergeMeta{}, checkpoint.Metadata{}, false
	}
	var mm mergeMeta
	var ok1, ok2, ok3 bool
	mm.fp, ok1 = strings.CutPrefix(f[0], "k=")
	c, ok2 := strings.CutPrefix(f[1], "c=")
	m, ok3 := strings.CutPrefix(f[2], "m=")
	if !ok1 || !ok2 || !ok3 {
		return mergeMeta{}, checkpoint.Metadata{}, false
	}
	var err1, err2 error
	mm.position, err1 = strconv.ParseInt(c, 10, 64)
	mm.log, err2 = strconv.ParseInt(m, 10, 64)
	if err1 != nil || err2 != nil || mm.position < 0 || mm.log < 0 {
		return mergeMeta{}, checkpoint.Metadata{}, false
	}
	meta, ok := checkpoint.Parse(f[3], mm.position)
	return mm, meta, ok
}

// merger is a worker's side of co-partitioned topics: the table of its
// merged stream (under the worker's mu: the commit loop reads it), the
// entry it builds, and how it starts.
type merger struct {
	log    *mergeLog
	topics []string
	index  map[string]int
	tbl    *merge.Table
	pend   merge.Pending
	// start is set by adjust: how this owner begins. The worker takes it
	// before its first record.
	start atomic.Pointer[mergeStart]
	// committed are the topics' committed offsets read back (-1: none),
	// and resumed what their metadata said, set by fetched.
	committed []int64
	resumed   *mergeMeta
	// hws are the topics' high watermarks on the last fetch (under mu).
	hws []int64
	// broken is set when a merge log write failed for good; gen counts
	// the repairs (repairMerge), under mu.
	broken atomic.Bool
	gen    int
	// queues hold the records taken from the inbox and not merged yet, per
	// topic; stashed counts them, and blockedSince is when the merge
	// began waiting for a topic (zero when it is not).
	queues       [][]*kgo.Record
	stashed      int
	blockedSince time.Time
	waitFor      time.Duration
	// wait is Config.MergeWait.
	wait time.Duration
	// out and pos are scratch of one merge.
	out []*kgo.Record
	pos []int64
}

// mergeStart is how a merged worker begins: the plan to replay (nil when
// there is nothing to replay) or the frontier to start at, and its claim.
type mergeStart struct {
	plan  *merge.Plan
	front []int64
	claim [16]byte
	// err is why the merge log could not be claimed or read: the worker
	// processes nothing, and readiness says so.
	err error
}

func newMerger(l *mergeLog, topics []string, wait time.Duration) *merger {
	m := &merger{log: l, topics: topics, wait: wait, index: map[string]int{}, committed: make([]int64, len(topics)),
		hws: make([]int64, len(topics)), queues: make([][]*kgo.Record, len(topics))}
	for i, t := range topics {
		m.index[t] = i
		m.committed[i] = -1
	}
	return m
}

// mergeIdle is how long the merge waits for a topic that may have
// records before a later one's (its fetch is behind its high watermark)
// before it merges without it: a transactional topic's commit markers keep
// its high watermark above its last record for good.
const mergeIdle = 500 * time.Millisecond

// mergeStash bounds the records the merge holds while it waits for a
// topic: beyond it, it merges without waiting.
const mergeStash = 1 << 16

// stash adds fetched batches (of any of the topics) to the merge's
// queues; the caller holds the worker's mu.
func (m *merger) stash(batches [][]*kgo.Record) {
	for _, b := range batches {
		for _, r := range b {
			if i, ok := m.index[r.Topic]; ok {
				m.queues[i] = append(m.queues[i], r)
				m.stashed++
			}
		}
	}
}

// release merges what the queues hold by record timestamp, each topic's
// records in offset order, into the table and the pending entry, and
// returns the records and their positions (scratch, valid until the next
// call). The record with the earliest timestamp goes first unless a topic
// whose queue is empty may hold an earlier one: its fetch is behind its
// high watermark (a new owner catching up, one topic's fetch ahead of
// another's). Then the merge waits, for mergeIdle at most (blockedSince),
// or until mergeStash records are queued. The caller holds the worker's mu.
func (m *merger) release(now time.Time) ([]*kgo.Record, []int64, int) {
	m.out, m.pos = m.out[:0], m.pos[:0]
	skipped := 0
	for {
		best := -1
		for i, q := range m.queues {
			if len(q) == 0 {
				continue
			}
			if best < 0 || q[0].Timestamp.Before(m.queues[best][0].Timestamp) {
				best = i
			}
		}
		if best < 0 {
			m.blockedSince = time.Time{}
			break
		}
		if m.waiting(now) {
			break
		}
		r := m.queues[best][0]
		m.queues[best][0] = nil
		m.queues[best] = m.queues[best][1:]
		m.stashed--
		pos, ok := m.tbl.Add(best, r.Offset, &m.pend)
		if !ok {
			skipped++
			continue
		}
		m.out, m.pos = append(m.out, r), append(m.pos, pos)
	}
	return m.out, m.pos, skipped
}

// waiting reports whether the merge waits for a topic with an empty
// queue: one behind its high watermark (for mergeIdle at most), or any
// (for Config.MergeWait); the wait's clock starts with the first call
// that waits.
func (m *merger) waiting(now time.Time) bool {
	var wait time.Duration
	front := m.tbl.Frontier()
	for i, q := range m.queues {
		if len(q) > 0 {
			continue
		}
		// One offset past the frontier is a transaction's commit marker
		// (rekey's output, say), which leaves the last stable offset
		// there for good: not a record to wait for.
		if m.hws[i] > front[i]+1 {
			wait = max(wait, mergeIdle)
		}
		wait = max(wait, m.wait)
	}
	if wait == 0 || m.stashed > mergeStash {
		m.blockedSince = time.Time{}
		return false
	}
	if m.blockedSince.IsZero() {
		m.blockedSince = now
	}
	m.waitFor = wait
	return now.Sub(m.blockedSince) < wait
}

// waitUntil returns when a waiting merge stops waiting, zero when it is
// not waiting; the caller holds the worker's mu.
func (m *merger) waitUntil() time.Time {
	if m.blockedSince.IsZero() || m.stashed == 0 {
		return time.Time{}
	}
	return m.blockedSince.Add(m.waitFor)
}

// locate returns the topic and offset of the record at position x; the
// caller holds the worker's mu.
func (m *merger) locate(x int64) (string, int64, bool) {
	if m.tbl == nil {
		return "", 0, false
	}
	t, off, ok := m.tbl.Locate(x)
	if !ok {
		return "", 0, false
	}
	return m.topics[t], off, true
}

// commitAt returns, for a commit at pos, each topic's offset and the merge
// log offset of the entry a new owner reads from, and false while the merge
// log has not stored every entry the commit depends on. The caller holds
// the worker's mu.
func (m *merger) commitAt(pos checkpoint.Position) ([]int64, int64, bool) {
	if m.tbl == nil {
		return nil, 0, false
	}
	need := max(pos.Offset, pos.Mark)
	if n := pos.Flushes.Len(); n > 0 {
		need = max(need, pos.Flushes.At(n-1))
	}
	if need > m.tbl.Durable() {
		return nil, 0, false
	}
	from := pos.WindowStart
	if pos.Snapshot != "" {
		from = pos.Offset
	}
	from = min(from, pos.Offset)
	log, ok := m.tbl.EntryAt(from)
	if !ok {
		return nil, 0, false
	}
	front, ok := m.tbl.FrontierAt(pos.Offset, nil)
	if !ok {
		return nil, 0, false
	}
	return front, log, true
}
