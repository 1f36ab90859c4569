package rekey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Backoff after a transaction aborted because a write failed: the same
// records are read and written again, so a lasting failure (a deleted
// output topic, a record the output topic refuses) must not spin.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 5 * time.Second
)

// adminTimeout bounds the topic checks at start.
const adminTimeout = 30 * time.Second

// Rekeyer is one member of the rekey group. Build it with New and call Run
// once.
type Rekeyer struct {
	cfg     Config
	txnID   string
	dlq     string
	sess    *kgo.GroupTransactSession
	find    Finder
	log     *slog.Logger
	m       *metrics
	ran     atomic.Bool // Run was called
	started atomic.Bool // the topics were checked: Run copies

	mu    sync.Mutex
	owned map[string]map[int32]struct{}

	// failing is why the last transaction did not commit, nil since one
	// did (or before the first): readiness reports it.
	failing atomic.Pointer[string]
}

// Option configures a Rekeyer beyond its Config.
type Option interface{ apply(*options) }

type options struct {
	log    *slog.Logger
	mp     metric.MeterProvider
	find   Finder
	kopts  []kgo.Opt
	limits schema.Limits
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.log = l }) }

// WithMeterProvider records the Rekeyer's metrics into mp (default: none).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.mp = mp })
}

// WithFinder sets how the player of a record is found (default: the v1
// contract under schema.DefaultLimits(), see NewV1).
func WithFinder(f Finder) Option { return optionFunc(func(o *options) { o.find = f }) }

// WithKafkaOptions adds franz-go options (TLS, SASL, client ID, group
// timeouts). Options that would break exactly-once (isolation level,
// transactional ID, topics, group) are set by New after these and win.
func WithKafkaOptions(opts ...kgo.Opt) Option {
	return optionFunc(func(o *options) { o.kopts = append(o.kopts, opts...) })
}

// New validates cfg and returns a Rekeyer; it does not talk to Kafka yet.
func New(cfg Config, opts ...Option) (*Rekeyer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("rekey: no brokers")
	}
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.find == nil {
		v1, err := NewV1(schema.DefaultLimits())
		if err != nil {
			return nil, err
		}
		o.find = v1
	}
	m, err := newMetrics(o.mp)
	if err != nil {
		return nil, err
	}
	instance := cfg.Instance
	if instance == "" {
		if instance, err = os.Hostname(); err != nil || instance == "" {
			return nil, fmt.Errorf("rekey: instance is empty and the host name is unknown (%v); set it", err)
		}
	}
	r := &Rekeyer{
		cfg:   cfg,
		txnID: cfg.TransactionalIDPrefix + "-" + instance,
		dlq:   cfg.DLQ(),
		find:  o.find,
		log:   o.log,
		m:     m,
		owned: map[string]map[int32]struct{}{},
	}
	reset := kgo.NewOffset().AtStart()
	if cfg.StartOffset == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	kopts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, o.kopts...)
	kopts = append(kopts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.TransactionalID(r.txnID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		// The sources may themselves be written transactionally: an
		// aborted record must not be copied.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { r.track("assigned", a) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { r.track("revoked", a) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { r.track("lost", a) }),
	)
	sess, err := kgo.NewGroupTransactSession(kopts...)
	if err != nil {
		return nil, fmt.Errorf("rekey: kafka client: %w", err)
	}
	r.sess = sess
	return r, nil
}

// TransactionalID is this member's transactional ID.
func (r *Rekeyer) TransactionalID() string { return r.txnID }

// track keeps the owned partitions for readiness and the gauge. It runs in
// the session's rebalance callbacks, which must not end a transaction.
func (r *Rekeyer) track(kind string, ps map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for topic, parts := range ps {
		n += len(parts)
		for _, p := range parts {
			if kind == "assigned" {
				if r.owned[topic] == nil {
					r.owned[topic] = map[int32]struct{}{}
				}
				r.owned[topic][p] = struct{}{}
			} else {
				delete(r.owned[topic], p)
			}
		}
	}
	r.m.add(r.m.rebalances, int64(n), attribute.String("kind", kind))
	total := 0
	for _, parts := range r.owned {
		total += len(parts)
	}
	r.m.owned.Record(context.Background(), int64(total))
	if n > 0 {
		r.log.Info("rekey partitions "+kind, "partitions", ps, "owned", total)
	}
}

// Readiness reports whether the member owns partitions and its last
// transaction committed, and why not.
func (r *Rekeyer) Readiness() (bool, string) {
	r.mu.Lock()
	n := 0
	for _, parts := range r.owned {
		n += len(parts)
	}
	r.mu.Unlock()
	if !r.started.Load() {
		return false, "starting: checking the output and dead-letter topics"
	}
	if n == 0 {
		return false, "no partitions assigned"
	}
	if msg := r.failing.Load(); msg != nil {
		return false, "transactions are not committing: " + *msg
	}
	return true, ""
}

// Run checks the topics, then copies records until ctx is cancelled: each
// poll is one transaction. On cancellation the transaction in progress is
// still ended (committed when its writes succeeded), bounded by
// TransactionTimeout, and the member leaves the group. Run returns nil after
// a clean stop and an error when the transactional producer failed for
// good (fenced by another member with the same transactional ID, or out of
// retries): such errors are not retryable in this process.
func (r *Rekeyer) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return errors.New("rekey: Run called twice")
	}
	defer r.sess.Close()
	if err := r.ensureTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: nothing was copied
		}
		return err
	}
	// The group may assign partitions while the topics are checked; the
	// member is ready only once it can write.
	r.started.Store(true)
	r.log.Info("rekeying", "topics", r.cfg.Topics, "output", r.cfg.OutputTopic, "dead_letter", r.dlq,
		"group", r.cfg.Group, "transactional_id", r.txnID)
	backoff := retryInitial
	for {
		fetches := r.sess.PollRecords(ctx, r.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			// Polled records not yet in a transaction are not committed:
			// the next owner reads them.
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("rekey fetch", "topic", topic, "partition", p, "error", err)
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		committed, writeErr, err := r.transact(ctx, fetches)
		if err != nil {
			msg := err.Error()
			r.failing.Store(&msg)
			r.m.add(r.m.transactions, 1, attribute.String("outcome", "failed"))
			return fmt.Errorf("rekey: end transaction (%s): %w", r.txnID, err)
		}
		if committed {
			r.failing.Store(nil)
			backoff = retryInitial
			continue
		}
		if writeErr == nil {
			continue // a rebalance aborted it: read again from the commits
		}
		msg := writeErr.Error()
		r.failing.Store(&msg)
		r.log.Warn("rekey transaction aborted; retrying", "error", writeErr, "backoff", backoff)
		if waitErr := wait(ctx, backoff); waitErr != nil {
			return nil
		}
		backoff = min(2*backoff, retryMax)
	}
}

// transact writes one poll's records in one transaction with the group's
// offsets. committed is whether it committed; writeErr is the first write
// that failed (the transaction then aborts); err is a failure of the
// transaction itself, which ends Run.
func (r *Rekeyer) transact(ctx context.Context, fetches kgo.Fetches) (committed bool, writeErr, err error) {
	if err := r.sess.Begin(); err != nil {
		return false, nil, fmt.Errorf("begin: %w", err)
	}
	// Shutdown lets the transaction in progress end: it is one flush and
	// two requests, bounded by the transaction timeout the broker enforces
	// anyway.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
	defer cancel()

	var (
		w         = newWrites()
		inByTopic = map[string]int64{}
		out       int64
		dead      = map[string]int64{}
	)
	promise := w.promise
	fetches.EachRecord(func(src *kgo.Record) {
		w.add()
		inByTopic[src.Topic]++
		player, ferr := r.find.Find(src.Topic, src.Key, src.Value)
		if ferr == nil && player != "" {
			out++
			r.sess.Produce(tctx, &kgo.Record{
				Topic:     r.cfg.OutputTopic,
				Key:       []byte(player),
				Value:     src.Value,
				Headers:   src.Headers,
				Timestamp: src.Timestamp,
			}, promise)
			return
		}
		reason, detail := ReasonNotFound, "no player"
		if ferr != nil {
			reason, detail = reasonOf(ferr)
		}
		dead[reason]++
		r.sess.Produce(tctx, deadLetterCopy(r.dlq, src, reason, detail), promise)
	})
	for topic, n := range inByTopic {
		r.m.add(r.m.in, n, attribute.String("topic", topic))
	}
	// End flushes too, but commits whatever was flushed: a failed write
	// must turn the end into an abort. So wait for every write first, and
	// stop at the first failure: the transaction aborts anyway, and the
	// other writes (which the client may be retrying) would only delay it.
	writeErr = w.wait(tctx)
	try := kgo.TryCommit
	if writeErr != nil {
		try = kgo.TryAbort
	}
	committed, err = r.sess.End(tctx, try)
	if err != nil {
		return false, writeErr, err
	}
	if !committed {
		r.m.add(r.m.transactions, 1, attribute.String("outcome", "aborted"))
		return false, writeErr, nil
	}
	r.m.add(r.m.transactions, 1, attribute.String("outcome", "committed"))
	r.m.add(r.m.out, out)
	for reason, n := range dead {
		r.m.add(r.m.deadLettered, n, attribute.String("reason", reason))
	}
	return true, nil, nil
}

// writes tracks one transaction's produce promises.
type writes struct {
	pending  atomic.Int64
	sealed   atomic.Bool
	done     chan struct{} // closed when sealed and nothing is pending
	failed   chan struct{} // closed at the first failure
	failOnce sync.Once
	doneOnce sync.Once
	err      error // the first failure; written before failed is closed
}

func newWrites() *writes {
	return &writes{done: make(chan struct{}), failed: make(chan struct{})}
}

// add counts one write before it is produced.
func (w *writes) add() { w.pending.Add(1) }

// promise is the produce callback of every write.
func (w *writes) promise(rec *kgo.Record, err error) {
	if err != nil {
		w.failOnce.Do(func() {
			w.err = fmt.Errorf("write to %s: %w", rec.Topic, err)
			close(w.failed)
		})
	}
	if w.pending.Add(-1) == 0 && w.sealed.Load() {
		w.doneOnce.Do(func() { close(w.done) })
	}
}

// wait seals w (no more writes) and returns nil once every write was
// acknowledged, the first failure as soon as there is one, or ctx's error.
func (w *writes) wait(ctx context.Context) error {
	w.sealed.Store(true)
	if w.pending.Load() == 0 {
		w.doneOnce.Do(func() { close(w.done) })
	}
	select {
	case <-w.failed:
		return w.err
	case <-w.done:
		select {
		case <-w.failed: // the last write failed
			return w.err
		default:
			return nil
		}
	case <-ctx.Done():
		return fmt.Errorf("writes not acknowledged: %w", ctx.Err())
	}
}

// deadLetterCopy is src unchanged for the dead-letter topic, with the
// reason headers the consumer's dead-letter copies carry.
func deadLetterCopy(topic string, src *kgo.Record, reason, detail string) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(src.Headers)+5)
	h = append(h, src.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: consumer.HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: consumer.HeaderDetail, Value: []byte(detail)},
		kgo.RecordHeader{Key: consumer.HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: consumer.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
		kgo.RecordHeader{Key: consumer.HeaderSourceOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
	)
	return &kgo.Record{Topic: topic, Key: src.Key, Value: src.Value, Headers: h, Timestamp: src.Timestamp}
}

// ensureTopics refuses to start without the output topic (its partition
// count is the consumer's parallelism, not rekey's to choose) and creates
// the dead-letter topic when missing, with the output's partition count.
func (r *Rekeyer) ensureTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	adm := kadm.NewClient(r.sess.Client())
	details, err := adm.ListTopics(ctx, r.cfg.OutputTopic, r.dlq)
	if err != nil {
		return fmt.Errorf("rekey: list topics %s, %s: %w", r.cfg.OutputTopic, r.dlq, err)
	}
	outDetail, ok := details[r.cfg.OutputTopic]
	if !ok || errors.Is(outDetail.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("rekey: output topic %s does not exist; create it with the partition count the consumer should run with", r.cfg.OutputTopic)
	}
	if outDetail.Err != nil {
		return fmt.Errorf("rekey: output topic %s: %w", r.cfg.OutputTopic, outDetail.Err)
	}
	if d, ok := details[r.dlq]; ok && d.Err == nil {
		return nil
	}
	resp, err := adm.CreateTopic(ctx, int32(len(outDetail.Partitions)), -1, nil, r.dlq)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("rekey: create dead-letter topic %s: %w", r.dlq, err)
	}
	r.log.Info("rekey created the dead-letter topic", "topic", r.dlq, "partitions", len(outDetail.Partitions))
	return nil
}

// wait waits for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
