package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
)

// Header keys on dead-letter records. The original key and value are kept
// unchanged so a fixed record can be re-published as it is, except when the
// copy would not fit the dead-letter topic: then the value (and, if that is
// not enough, the key and the source headers) is cut to what fits and the
// truncation headers say so.
const (
	HeaderReason          = "sessiontrace.reason"
	HeaderDetail          = "sessiontrace.detail"
	HeaderSourceTopic     = "sessiontrace.source.topic"
	HeaderSourcePartition = "sessiontrace.source.partition"
	HeaderSourceOffset    = "sessiontrace.source.offset"
	// HeaderTruncated is "value", "key" or "headers": the largest part of
	// the original record that was cut so that the copy fits.
	HeaderTruncated = "sessiontrace.truncated"
	// HeaderOriginalSize is the original value's length in bytes.
	HeaderOriginalSize = "sessiontrace.original.size"
	// HeaderOriginalSHA256 is the hex SHA-256 of the original value, so the
	// record can be found again in the source topic.
	HeaderOriginalSHA256 = "sessiontrace.original.sha256"
)

// DefaultDLQMaxBytes is the dead-letter producer's batch limit when the
// topic's max.message.bytes cannot be read: franz-go's and Kafka's default.
const DefaultDLQMaxBytes = 1_000_012

// recordOverhead is a generous bound on what a record batch holding one
// record adds to its key, value and headers (batch header 61 bytes, record
// framing and varints), so a copy cut to the budget is accepted the first
// time.
const recordOverhead = 256

// deadLetter writes the records that cannot be traced to the dead-letter
// topic through a producer client of its own, whose batch limit is the
// topic's max.message.bytes (so batching never makes a batch the broker
// refuses). A write is finished only when Kafka acknowledged it: failures
// are retried with backoff, a copy too large is truncated, a missing topic
// is created again when the cluster allows it.
type deadLetter struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topic  string
	source string // the source topic: its partition count is the dead-letter topic's
	log    *rateLog
	m      *metrics

	maxBytes     int32 // the producer's batch limit, the budget of one copy
	retryInitial time.Duration
	retryMax     time.Duration

	// fetchOpts make a client that re-reads a source record (refetch).
	fetchOpts []kgo.Opt

	// failing is the last write error, nil since a write succeeded:
	// readiness reports it.
	failing atomic.Pointer[string]

	ensureMu   sync.Mutex
	lastEnsure time.Time
}

// dlqWrite is one dead-letter copy in flight.
type dlqWrite struct {
	d      *deadLetter
	ctx    context.Context // the partition's: ends its retries when the partition is released
	src    *kgo.Record
	reason string
	detail string
	budget int // most bytes of the copy's key, value and headers
	wait   time.Duration
	done   func(error)
}

// send produces the dead-letter copy of r asynchronously, retrying until
// Kafka acknowledges it; done runs once, with nil when it was acknowledged
// and with ctx's error when ctx ended first (the copy then stays unwritten,
// and the caller must not commit past r).
func (d *deadLetter) send(ctx context.Context, r *kgo.Record, reason, detail string, done func(error)) {
	w := &dlqWrite{d: d, ctx: ctx, src: r, reason: reason, detail: detail,
		budget: int(d.maxBytes) - recordOverhead, wait: d.retryInitial, done: done}
	w.attempt()
}

func (w *dlqWrite) attempt() {
	if err := w.ctx.Err(); err != nil {
		w.done(err)
		return
	}
	w.d.cl.Produce(w.ctx, w.copy(), w.result)
}

// result runs on the producer's goroutine: it must not block, so retries are
// scheduled on a timer.
func (w *dlqWrite) result(_ *kgo.Record, err error) {
	d := w.d
	switch {
	case err == nil:
		d.failing.Store(nil)
		d.m.add(d.m.dlq, 1, attribute.String("reason", w.reason))
		w.done(nil)
		return
	case w.ctx.Err() != nil:
		w.done(w.ctx.Err())
		return
	}
	msg := err.Error()
	d.failing.Store(&msg)
	switch {
	case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
		// The topic's limit is smaller than we knew (or was lowered since):
		// halve the budget until the copy fits; no wait, nothing was written.
		if w.budget > 0 {
			w.budget = min(w.budget, w.size()) / 2
			d.log.warn("dlq-too-large", "dead-letter copy too large for the topic; writing it truncated", "topic", d.topic,
				"source_partition", w.src.Partition, "source_offset", w.src.Offset, "budget_bytes", w.budget, "error", err)
			d.m.add(d.m.dlqFailed, 1, attribute.String("reason", w.reason), attribute.String("error", "too_large"))
			w.attempt()
			return
		}
	case errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID):
		d.m.add(d.m.dlqFailed, 1, attribute.String("reason", w.reason), attribute.String("error", "unknown_topic"))
		go func() {
			// Creating is a request: not on the producer's goroutine.
			if cerr := d.ensure(w.ctx, true); cerr != nil {
				d.log.warn("dlq-missing", "dead-letter topic is missing and cannot be created; the partition waits for it (its commit cannot pass the record)",
					"topic", d.topic, "source_partition", w.src.Partition, "source_offset", w.src.Offset, "error", cerr)
			}
			w.retryLater()
		}()
		return
	}
	d.m.add(d.m.dlqFailed, 1, attribute.String("reason", w.reason), attribute.String("error", errorClass(err)))
	d.log.warn("dlq-failed", "dead-letter write failed; retrying (the commit cannot pass the record until it is written)",
		"topic", d.topic, "source_partition", w.src.Partition, "source_offset", w.src.Offset, "error", err)
	w.retryLater()
}

func (w *dlqWrite) retryLater() {
	wait := w.wait
	w.wait = min(2*w.wait, w.d.retryMax)
	// One goroutine per write that is waiting to be retried: their number is
	// bounded by the partitions' outstanding dead-letter writes, and a
	// release ends the wait at once rather than after the backoff.
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			w.attempt()
		case <-w.ctx.Done():
			w.done(w.ctx.Err())
		}
	}()
}

// errorClass is a low-cardinality name of a produce error for the metric.
func errorClass(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "other"
}

// size is the bytes of the whole original record's key, value and headers.
func (w *dlqWrite) size() int {
	n := len(w.src.Key) + len(w.src.Value)
	for _, h := range w.src.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// copy builds a fresh record for one attempt (the client owns a produced
// record), cut to the budget when the original does not fit.
func (w *dlqWrite) copy() *kgo.Record {
	r := w.src
	ours := []kgo.RecordHeader{
		{Key: HeaderReason, Value: []byte(w.reason)},
		{Key: HeaderDetail, Value: []byte(w.detail)},
		{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	}
	oursLen := 0
	for _, h := range ours {
		oursLen += len(h.Key) + len(h.Value)
	}
	// The truncation headers' own size, so that adding them keeps the fit.
	const truncHeaders = len(HeaderTruncated) + 7 + len(HeaderOriginalSize) + 20 + len(HeaderOriginalSHA256) + 64
	key, value, headers := r.Key, r.Value, r.Headers
	srcHeaders := 0
	for _, h := range r.Headers {
		srcHeaders += len(h.Key) + len(h.Value)
	}
	if len(key)+len(value)+srcHeaders+oursLen <= w.budget {
		return &kgo.Record{Topic: w.d.topic, Key: key, Value: value, Headers: append(append([]kgo.RecordHeader(nil), headers...), ours...)}
	}
	room := max(w.budget-oursLen-truncHeaders, 0)
	cut := "value"
	switch {
	case len(key)+srcHeaders <= room:
		value = value[:room-len(key)-srcHeaders]
	case len(key) <= room:
		value, headers, cut = nil, nil, "headers"
	default:
		value, headers, cut = nil, nil, "key"
		key = key[:room]
	}
	sum := sha256.Sum256(r.Value)
	out := append(append([]kgo.RecordHeader(nil), headers...), ours...)
	out = append(out,
		kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(cut)},
		kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(r.Value)))},
		kgo.RecordHeader{Key: HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
	)
	return &kgo.Record{Topic: w.d.topic, Key: key, Value: value, Headers: out}
}

// ensure makes sure the dead-letter topic exists: a metadata request first
// (a locked-down cluster may deny creating a topic that exists already),
// then, only when it is missing, a CreateTopics with the source topic's
// partition count. Mid-run (after a write found the topic missing) it asks
// at most once per retryInitial, so a burst of failed writes makes one
// request, and makes the producer forget what it knew of the topic: a
// topic created again has a new topic ID, and the producer would otherwise
// keep writing to the deleted one's.
func (d *deadLetter) ensure(ctx context.Context, midRun bool) error {
	d.ensureMu.Lock()
	defer d.ensureMu.Unlock()
	if midRun {
		if time.Since(d.lastEnsure) < d.retryInitial {
			return nil
		}
		defer d.cl.PurgeTopicsFromProducing(d.topic)
	}
	d.lastEnsure = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := d.adm.ListTopics(ctx, d.topic, d.source)
	if err != nil {
		return fmt.Errorf("describe dead-letter topic %q: %w", d.topic, err)
	}
	if t, ok := topics[d.topic]; ok && t.Err == nil {
		return nil
	} else if ok && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) && !errors.Is(t.Err, kerr.UnknownTopicID) {
		return fmt.Errorf("describe dead-letter topic %q: %w", d.topic, t.Err)
	}
	partitions := int32(-1)
	if s, ok := topics[d.source]; ok && s.Err == nil && len(s.Partitions) > 0 {
		partitions = int32(len(s.Partitions))
	}
	resp, err := d.adm.CreateTopic(ctx, partitions, -1, nil, d.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create dead-letter topic %q with %d partitions: %w", d.topic, partitions, err)
	}
	d.log.info("dlq-created", "dead-letter topic created", "topic", d.topic, "partitions", partitions)
	return nil
}

// maxMessageBytes reads the dead-letter topic's max.message.bytes, the
// largest batch it accepts; DefaultDLQMaxBytes when it cannot be read.
func maxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) int32 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return DefaultDLQMaxBytes
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			if v, err := strconv.ParseInt(*c.Value, 10, 32); err == nil && v > 0 {
				return int32(min(v, DefaultDLQMaxBytes*64))
			}
		}
	}
	return DefaultDLQMaxBytes
}

// refetch reads the record at offset of topic/partition again, retrying
// with backoff until it is read or ctx ends: the worker does not keep the
// records whose spans are in flight, and a refused span (rare) needs its
// record for the dead-letter copy. The record is below the committed
// offset's reach (the commit waits for it), so it is still in the log
// unless retention deleted it, which ends the retries with an error.
func (d *deadLetter) refetch(ctx context.Context, topic string, partition int32, offset int64) (*kgo.Record, error) {
	wait := d.retryInitial
	for {
		r, err := d.fetchOne(ctx, topic, partition, offset)
		if err == nil || ctx.Err() != nil || errors.Is(err, errRecordGone) {
			return r, err
		}
		d.log.warn("refetch", "re-reading a source record failed; retrying", "topic", topic, "partition", partition, "offset", offset, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait = min(2*wait, d.retryMax)
	}
}

// errRecordGone is refetch's answer for a record no longer in the log.
var errRecordGone = errors.New("record no longer in the log")

func (d *deadLetter) fetchOne(ctx context.Context, topic string, partition int32, offset int64) (*kgo.Record, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), d.fetchOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, err)
		}
		var found *kgo.Record
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		fs.EachRecord(func(r *kgo.Record) {
			if found == nil && r.Offset >= offset {
				found = r
			}
		})
		switch {
		case found != nil && found.Offset == offset:
			return found, nil
		case found != nil:
			return nil, fmt.Errorf("read %s/%d@%d: %w (the log continues at %d)", topic, partition, offset, errRecordGone, found.Offset)
		case ferr != nil:
			return nil, fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, ferr)
		}
	}
}
