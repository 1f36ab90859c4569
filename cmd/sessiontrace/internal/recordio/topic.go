package recordio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/kafkacheck"
)

type boundKind uint8

const (
	boundStart boundKind = iota
	boundEnd
	boundOffset
	boundTime
)

// Bound is one end of a range of a topic, applied to every partition alike.
// The zero Bound is Start. Ranges are half-open: records at or after the
// from bound and before the to bound are read.
type Bound struct {
	kind   boundKind
	offset int64
	time   time.Time
}

// Start is the log start offset of each partition.
func Start() Bound { return Bound{kind: boundStart} }

// End is the end offset (high watermark) of each partition when the read
// begins, so a read finishes even while producers keep writing.
func End() Bound { return Bound{kind: boundEnd} }

// AtOffset is offset n in every partition, clamped to the partition's start
// and end.
func AtOffset(n int64) Bound { return Bound{kind: boundOffset, offset: n} }

// AtTime is, in each partition, the first record whose timestamp is at or
// after t, or the end when there is none.
func AtTime(t time.Time) Bound { return Bound{kind: boundTime, time: t} }

// ParseBound reads a bound as a user types it: "start", "end", a
// non-negative offset ("1200"), or an RFC 3339 time
// ("2025-01-01T10:00:00Z").
func ParseBound(s string) (Bound, error) {
	switch s {
	case "start":
		return Start(), nil
	case "end":
		return End(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return Bound{}, fmt.Errorf("recordio: bound %q: offset must not be negative", s)
		}
		return AtOffset(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return AtTime(t), nil
	}
	return Bound{}, fmt.Errorf("recordio: bound %q: want start, end, an offset or an RFC 3339 time", s)
}

// String returns the bound in the form ParseBound reads.
func (b Bound) String() string {
	switch b.kind {
	case boundEnd:
		return "end"
	case boundOffset:
		return strconv.FormatInt(b.offset, 10)
	case boundTime:
		return b.time.Format(time.RFC3339Nano)
	default:
		return "start"
	}
}

// ReadTopic calls fn with every record of every partition of topic between
// from (inclusive) and to (exclusive), without joining a consumer group, and
// returns once each partition has reached its to bound. Records of one
// partition arrive in offset order; partitions interleave. fn runs on the
// calling goroutine and may keep the record; an error from fn stops the read
// and is returned.
//
// opts are the connection settings (seed brokers, TLS, SASL, client ID);
// they must not configure a consumer group or consumed topics, which
// ReadTopic sets itself. ReadTopic opens and closes its own client. It keeps
// transaction control records internally, not passing them to fn, so that a
// range ending on a transaction marker is still seen to end.
func ReadTopic(ctx context.Context, opts []kgo.Opt, topic string, from, to Bound, fn func(Record) error) error {
	if topic == "" {
		return errors.New("recordio: read topic: no topic given")
	}
	var check kafkacheck.Checker
	all := append(append([]kgo.Opt(nil), opts...), kgo.KeepControlRecords(), kgo.WithHooks(&check))
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return fmt.Errorf("recordio: read topic %s: new client: %w", topic, err)
	}
	defer cl.Close()
	if err := directOnly(cl); err != nil {
		return fmt.Errorf("recordio: read topic %s: %w", topic, err)
	}
	// Listing offsets and fetching retry for as long as the context lets
	// them; wrong credentials or a missing topic should fail in seconds,
	// with the broker's reason.
	if err := check.Topic(ctx, cl, topic, false); err != nil {
		return fmt.Errorf("recordio: read topic %s: %w", topic, err)
	}

	ranges, err := resolve(ctx, kadm.NewClient(cl), topic, from, to)
	if err != nil {
		return err
	}
	start := make(map[int32]kgo.Offset)
	end := make(map[int32]int64)
	for p, r := range ranges {
		if r[0] < r[1] {
			start[p] = kgo.NewOffset().At(r[0])
			end[p] = r[1]
		}
	}
	if len(end) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: start})

	for len(end) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("recordio: read topic %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("recordio: fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var done []int32
		for it := fetches.RecordIter(); !it.Done() && ferr == nil; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("recordio: read topic %s: %w", topic, err)
			}
			r := it.Next()
			stop, ok := end[r.Partition]
			if !ok || r.Offset >= stop {
				continue
			}
			if !r.Attrs.IsControl() {
				if err := fn(fromKgo(r)); err != nil {
					ferr = err
				}
			}
			if r.Offset >= stop-1 {
				delete(end, r.Partition)
				done = append(done, r.Partition)
			}
		}
		if ferr != nil {
			return ferr
		}
		if len(done) > 0 {
			// Stop fetching what is no longer wanted instead of buffering it.
			cl.RemoveConsumePartitions(map[string][]int32{topic: done})
		}
	}
	return nil
}

// directOnly refuses client options that would consume anything besides the
// range: their records would be mixed into it, or, for a group, the direct
// partitions would be ignored and the read would never end.
func directOnly(cl *kgo.Client) error {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fmt.Errorf("the client options name consumer group %q; a range read consumes partitions directly", g)
	}
	if ts, _ := cl.OptValue(kgo.ConsumeTopics).([]string); len(ts) > 0 {
		return fmt.Errorf("the client options already consume topics %q", ts)
	}
	if ps, _ := cl.OptValue(kgo.ConsumePartitions).(map[string]map[int32]kgo.Offset); len(ps) > 0 {
		return errors.New("the client options already consume partitions")
	}
	return nil
}

func fromKgo(r *kgo.Record) Record {
	rec := Record{
		Topic:         r.Topic,
		Partition:     r.Partition,
		Offset:        r.Offset,
		Timestamp:     r.Timestamp,
		LogAppendTime: r.Attrs.TimestampType() == 1,
		Key:           r.Key,
		Value:         r.Value,
	}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
	}
	return rec
}

// resolve turns the bounds into [from, to) offsets per partition.
func resolve(ctx context.Context, adm *kadm.Client, topic string, from, to Bound) (map[int32][2]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("recordio: list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("recordio: list end offsets of %s: %w", topic, err)
	}
	if len(ends[topic]) == 0 {
		return nil, fmt.Errorf("recordio: topic %s has no partitions", topic)
	}
	out := make(map[int32][2]int64, len(ends[topic]))
	for p, e := range ends[topic] {
		s, ok := starts.Lookup(topic, p)
		if !ok {
			return nil, fmt.Errorf("recordio: list start offsets of %s: partition %d missing", topic, p)
		}
		out[p] = [2]int64{s.Offset, e.Offset}
	}
	lo, err := bound(ctx, adm, topic, from, out)
	if err != nil {
		return nil, err
	}
	hi, err := bound(ctx, adm, topic, to, out)
	if err != nil {
		return nil, err
	}
	for p := range out {
		out[p] = [2]int64{lo[p], hi[p]}
	}
	return out, nil
}

// bound resolves b for every partition of span, clamped to [start, end].
func bound(ctx context.Context, adm *kadm.Client, topic string, b Bound, span map[int32][2]int64) (map[int32]int64, error) {
	out := make(map[int32]int64, len(span))
	var byTime kadm.ListedOffsets
	if b.kind == boundTime {
		var err error
		byTime, err = adm.ListOffsetsAfterMilli(ctx, b.time.UnixMilli(), topic)
		if err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("recordio: list offsets of %s after %s: %w", topic, b, err)
		}
	}
	for p, se := range span {
		var o int64
		switch b.kind {
		case boundStart:
			o = se[0]
		case boundEnd:
			o = se[1]
		case boundOffset:
			o = b.offset
		case boundTime:
			l, ok := byTime.Lookup(topic, p)
			if !ok || l.Offset < 0 {
				o = se[1]
			} else {
				o = l.Offset
			}
		}
		out[p] = min(max(o, se[0]), se[1])
	}
	return out, nil
}
