// Package consumer turns a Kafka topic of player lifecycle events into
// OpenTelemetry traces under one delivery contract: a record's offset is
// committed only once every span derived from the records below it was
// acknowledged by its export lane (accepted by the OTLP endpoint, or refused
// for good and accounted for).
//
// Each assigned partition gets one worker goroutine that owns the partition's
// pure logic (decoder, timestamp bounds and session state machine, package
// lifecycle; partition.go), its ledger (package checkpoint) and its export
// lane (package consumer/export, no Kafka there, which classifies every
// export outcome the same way on both paths): its own bounded queue and
// export goroutine, either building OTLP messages straight from the spans
// (the direct path, the default) or through an SDK tracer provider and
// blocking batch processor (the sdk path, the reference the direct path
// matches byte for byte).
//
// The commit rule is package checkpoint's: the committable offset is the
// lowest of the offset after the last processed record, the first offset of
// every open session, the offset of every record whose spans or dead-letter
// write are not yet acknowledged, and the first offset of every session open
// just before such a record. The commit metadata carries the
// exported-through mark H, and the stream time and dedup window start at the
// committed offset: the next owner starts fetching at the window start,
// re-reads up to the committed offset only to refill the dedup window,
// applies from there with the carried stream time, and rebuilds silently
// (no anomaly, dead letter, session metric or per-record log) up to H,
// emitting only the spans closed by records at or after H. It then decides
// as the previous owner would have (checkpoint's package doc says where it
// cannot).
//
// With Config.SnapshotInterval set, each worker also writes snapshots of its
// partition's open sessions to a compacted topic (snapshots.go), and a
// commit may then be made at a durable snapshot, past open sessions; its
// metadata names the snapshot, which the next owner loads and verifies
// (adjust) before it replays only the records after it. A snapshot that is
// missing or corrupt makes the partition replay from the oldest record the
// topic holds instead, counted and logged. Package checkpoint's doc says why
// writing the snapshot before the commit that names it is safe without a
// Kafka transaction.
//
// # The reorder window
//
// With Config.Lifecycle.ReorderWindow set (default 2s), each partition holds
// decoded events until stream time passes them by the window and applies
// them in (ts, offset) order (reorder.go, partition.go), so one player's
// events written by several producers build the same session as in order.
// The contract holds because of three rules:
//
//   - Held records are never committed past. Every event is applied at the
//     latest cut, a point before which every record was applied and none
//     after it; sessions, pending records and marks are positioned at cuts,
//     so the ledger never names a point above the first held record, and a
//     new owner reading from a cut holds exactly the records held there.
//   - Stream time is event time: what the window releases is a function of
//     the events given to it, in offset order, never of the clock.
//   - The same records give the same spans: replay applies what is held at
//     the end of its input, as a run that went quiet there does.
//
// # Quiet flushes
//
// A partition's newest events are never passed by stream time until more
// events come, so on a partition that goes quiet they would wait, with their
// sessions and the commit, for the next record. The worker therefore plans
// a quiet flush before the next offset F when its inbox is empty and a
// window of wall time passed since it last took a batch (worker.planQuiet
// says why the high watermark is no test of being caught up). That decision depends on the
// clock, so a new owner cannot derive it from the records: it is recorded.
// The ledger names F in every commit below it (metadata version 4, at most
// checkpoint.MaxFlushes above the committed offset; beyond that no flush is
// planned and held events wait for the next record), the commit loop
// commits at once, and the worker applies the flush, and processes any
// record at or after F, only once a commit naming F was acknowledged. A new
// owner starting below F reads F from the commit and flushes before the
// record at F (or once it caught up to F), so it decides as the old owner
// did. If the old owner dies after planning F but before that commit, it
// applied nothing of the flush, so the new owner, which never hears of it,
// decides as a run without the flush would: nothing emitted contradicts
// it. The wait costs a flush at most one commit round trip.
//
// Snapshots are taken with events held too, and then hold them (and the
// cut) besides the machine's state: under steady traffic something is
// always held. A commit names such a snapshot once the cut passed it, so
// that the held events' side effects are acknowledged (package checkpoint,
// Snapshots with held events), and a new owner restoring it puts them back
// in its window and applies them as replayed records. The cut moves only
// when every applied event is below the first held one, so when producers'
// clocks disagree by more than the window (late events applied at once
// between held ones) or on a heavily jittered busy partition the cut, and
// the commit with it, can stay behind until the partition goes quiet: the
// commit is safe (lower), the replay after a crash longer.
//
// An event whose ts is further than Config.MaxFutureSkew ahead of, or
// Config.MaxPastSkew behind, its record's Kafka timestamp is dead-lettered
// and never applied, so one bad producer clock cannot move a partition's
// stream time.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/consumer/sessionmetrics"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// Option configures optional dependencies of a Consumer.
type Option interface{ apply(*pipeline) }

type optionFunc func(*pipeline)

func (f optionFunc) apply(p *pipeline) { f(p) }

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(p *pipeline) { p.log = l }) }

// WithMeterProvider sets where the consumer's own metrics go (default: none).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(p *pipeline) { p.mp = mp })
}

// WithSessionMetrics records the session metrics (durations, matches, end
// reasons, phases) of every span the consumer exports, once, when it is
// first emitted: spans rebuilt by a replay below the exported-through mark
// are not counted again.
func WithSessionMetrics(r *sessionmetrics.Recorder) Option {
	return optionFunc(func(p *pipeline) { p.sessions = r })
}

// WithResource sets the OTel resource of the exported spans.
func WithResource(r *resource.Resource) Option {
	return optionFunc(func(p *pipeline) { p.resource = r })
}

// WithOTLPClient sets the OTLP trace client the direct export path uploads
// through (Config.ExportPath "direct", the default). Give it the client the
// process's SDK exporter is built on (otlptrace.New(ctx, client)), so both
// paths share the connection, TLS, headers, compression, timeout and the
// OTEL_EXPORTER_OTLP_* settings. Build it with export.ClientOptions (the
// lanes see partial successes only through them) and start it; the Consumer
// and OTLPSink never stop it.
func WithOTLPClient(c otlptrace.Client) Option {
	return optionFunc(func(p *pipeline) { p.client = c })
}

// WithKafkaOptions adds franz-go client options (TLS, SASL, client ID...).
// Options that would break the delivery contract (group callbacks, auto
// commit) are set after these and win.
func WithKafkaOptions(opts ...kgo.Opt) Option {
	return optionFunc(func(p *pipeline) { p.kopts = append(p.kopts, opts...) })
}

// pipeline is what every partition worker shares.
type pipeline struct {
	cfg      Config
	exporter sdktrace.SpanExporter // the sdk path's
	client   otlptrace.Client      // the direct path's
	resource *resource.Resource
	log      *slog.Logger
	mp       metric.MeterProvider
	metrics  *metrics
	sessions *sessionmetrics.Recorder // nil: no session metrics
	dlq      *deadLetter
	// snaps writes and reads the snapshot topic; nil when snapshots are off
	// (SnapshotInterval 0). Made in New, because the group may assign
	// partitions (and adjust read their snapshots) before Run; its topic is
	// ensured and its chunk size set in Run, before the first poll hands a
	// worker a record.
	snaps *snapshotStore
	kopts []kgo.Opt

	failedExports atomic.Int64 // export attempts that failed, for tests and readiness
	exportLog     *rateLog
	// exportRefused is why the endpoint refuses exports for a reason no
	// retry can fix by itself (authentication, permission, an unknown
	// service), nil while it accepts them: readiness reports it.
	exportRefused atomic.Pointer[string]
	// commitSoon asks the commit loop for a commit now, without waiting
	// for the interval: a worker that planned a quiet flush waits for a
	// commit naming it before it applies it.
	commitSoon chan struct{}
}

// check reports a missing dependency of the configured export path.
func (p *pipeline) check() error {
	switch p.cfg.ExportPath {
	case ExportSDK:
		if p.exporter == nil {
			return errors.New("export_path sdk: nil span exporter")
		}
	case ExportDirect:
		if p.client == nil {
			return errors.New("export_path direct: no OTLP client (consumer.WithOTLPClient)")
		}
	}
	return nil
}

// newLane builds one partition's lane on the configured export path.
func (p *pipeline) newLane(cfg export.Config) export.Lane {
	if p.cfg.ExportPath == ExportSDK {
		return export.NewSDK(p.exporter, cfg)
	}
	return export.NewDirect(p.client, cfg)
}

func (p *pipeline) laneConfig(topic string, partition int32) export.Config {
	attrs := partitionAttrs(topic, partition)
	return export.Config{
		QueueSize:    p.cfg.ExportQueueSize,
		BatchSize:    p.cfg.ExportBatchSize,
		BatchTimeout: p.cfg.ExportBatchTimeout,
		RetryInitial: p.cfg.RetryInitial,
		RetryMax:     p.cfg.RetryMax,
		Resource:     p.resource,
		Observer:     p.observer(topic, partition, attrs),
	}
}

// Consumer is a consumer-group member that traces the lifecycle topic.
type Consumer struct {
	pipeline
	cl *kgo.Client

	mu      sync.Mutex
	workers map[int32]*worker
	// room is signalled by a worker that took its inbox back to
	// DefaultWorkerQueue batches; the poll loop waits on it (waitForRoom).
	room chan struct{}
	// ctx is the workers' context. It exists from New on because the client
	// may be assigned partitions before Run starts; Run ties it to its own.
	ctx    context.Context
	cancel context.CancelFunc

	commitMu sync.Mutex // serialises commits, so a revoke never races a periodic commit
	ready    chan struct{}
	readyOne sync.Once

	// fetchRefused is the last authentication or authorization error of a
	// fetch or of the group, nil once a later poll returned records.
	fetchRefused atomic.Pointer[string]
}

// finalCommitTimeout bounds the commit that ends a revoke or a shutdown. It
// has a deadline of its own, after the drain's: a drain that used all of its
// time must still commit what was acknowledged.
const finalCommitTimeout = 5 * time.Second

// fetchMaxWait bounds how long the broker holds a fetch for partitions with
// no new data.
const fetchMaxWait = 500 * time.Millisecond

// New validates cfg and builds a Consumer. The sdk export path exports
// through exporter (the process's shared OTLP exporter), the direct path
// through the client of WithOTLPClient; the one the configured path needs
// must be given, the other may be nil. The Consumer never shuts either down.
func New(cfg Config, exporter sdktrace.SpanExporter, opts ...Option) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{
		pipeline: pipeline{cfg: cfg, exporter: exporter, log: slog.Default(), commitSoon: make(chan struct{}, 1)},
		workers:  map[int32]*worker{},
		ready:    make(chan struct{}),
		room:     make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
	}
	for _, o := range opts {
		o.apply(&c.pipeline)
	}
	if err := c.check(); err != nil {
		cancel()
		return nil, fmt.Errorf("consumer: %w", err)
	}
	m, err := newMetrics(c.mp)
	if err != nil {
		cancel()
		return nil, err
	}
	c.metrics = m
	c.exportLog = newRateLog(c.log, 10*time.Second)

	start := kgo.NewOffset().AtStart()
	if cfg.StartOffset == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	// The group timeouts come first so that WithKafkaOptions may override
	// them; the options the contract needs come last and win.
	kopts := []kgo.Opt{
		kgo.ClientID("sessiontrace"),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		// A partition resumed after back-pressure is fetched again only
		// with the broker's next fetch request; with franz-go's default
		// 5 s long poll on the other, caught-up partitions, it would wait
		// that long and miss the latency target (batch timeout + 1 s).
		kgo.FetchMaxWait(fetchMaxWait),
	}
	if cfg.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(cfg.InstanceID))
	}
	kopts = append(kopts, c.kopts...)
	kopts = append(kopts,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.OnOffsetsFetched(c.fetched),
		kgo.AdjustFetchOffsetsFn(c.adjust),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if cfg.GroupProtocol == ProtocolConsumer {
		kopts = append(kopts, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	} else {
		kopts = append(kopts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if cfg.SnapshotInterval > 0 {
		sopts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, c.kopts...)
		sopts = append(sopts,
			kgo.SeedBrokers(cfg.Brokers...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
		)
		scl, err := kgo.NewClient(sopts...)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("consumer: snapshot producer: %w", err)
		}
		c.snaps = &snapshotStore{cl: scl, adm: kadm.NewClient(scl), brokers: cfg.Brokers, kopts: c.kopts, topic: cfg.snapshotTopic()}
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		cancel()
		if c.snaps != nil {
			c.snaps.cl.Close()
		}
		return nil, fmt.Errorf("consumer: kafka client: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Ready is closed once the consumer has joined its group and been assigned
// partitions for the first time. Whether it is ready now is Readiness.
func (c *Consumer) Ready() <-chan struct{} { return c.ready }

// Readiness reports whether the consumer is doing its job now and, when it
// is not, why: no partition is assigned (before the first assignment, after
// every partition was revoked or lost, as in a broker outage), fetches or
// the group fail with an authentication or authorization error, the OTLP
// endpoint refuses exports for a reason retries cannot fix, or dead-letter
// writes keep failing.
func (c *Consumer) Readiness() (bool, string) {
	c.mu.Lock()
	n, d := len(c.workers), c.dlq
	c.mu.Unlock()
	if n == 0 {
		return false, "no partitions assigned"
	}
	if msg := c.fetchRefused.Load(); msg != nil {
		return false, "kafka refuses the consumer: " + *msg
	}
	if msg := c.exportRefused.Load(); msg != nil {
		return false, "the OTLP endpoint refuses exports: " + *msg
	}
	if d != nil {
		if msg := d.failing.Load(); msg != nil {
			return false, "dead-letter writes are failing: " + *msg
		}
	}
	return true, ""
}

// Run consumes until ctx is cancelled, then shuts down gracefully: it stops
// fetching, drains every partition's spans (bounded by ShutdownTimeout),
// commits what was acknowledged and leaves the group. It returns nil after a
// clean shutdown.
func (c *Consumer) Run(ctx context.Context) error {
	stopCtx := context.AfterFunc(ctx, c.cancel)
	defer stopCtx()
	defer c.cancel()
	dlq, err := c.startDLQ(ctx)
	if err != nil {
		c.cl.Close()
		if ctx.Err() != nil {
			// Shut down before it started: nothing was consumed, so
			// nothing is lost, and that is a clean shutdown.
			return nil
		}
		return err
	}
	// Under mu for Readiness; the workers read it only after the poll loop
	// below handed them records, which orders their reads after this write.
	c.mu.Lock()
	c.dlq = dlq
	c.mu.Unlock()
	defer dlq.cl.Close() // after the final release below: it flushed the partitions' writes
	if c.snaps != nil {
		defer c.snaps.cl.Close() // after the final release: it writes the last snapshots
		if err := c.startSnapshots(ctx); err != nil {
			c.cl.Close()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	var wg sync.WaitGroup
	commitCtx, stopCommits := context.WithCancel(context.Background())
	wg.Go(func() { c.commitLoop(commitCtx) })

	err = c.poll(ctx)

	stopCommits()
	wg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	c.mu.Lock()
	all := make([]int32, 0, len(c.workers))
	for p := range c.workers {
		all = append(all, p)
	}
	c.mu.Unlock()
	c.release(shutdownCtx, all, true)
	// Our revoke callback finds no workers left, so leaving commits nothing
	// more; leaving promptly lets the partitions move without a session timeout.
	c.cl.Close()
	return err
}

// poll is the fetch loop: it hands each partition's records to its worker and
// allows rebalances after every poll, so callbacks never run while records
// are being dispatched. It never blocks on a worker inside the rebalance
// gate: it waits for a full worker only after AllowRebalance, and pauses the
// partition of a worker still full after stallAfter (back-pressure), so a
// rebalance completes even while every worker waits on a collector outage.
func (c *Consumer) poll(ctx context.Context) error {
	var full []*worker
	for {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return nil
		}
		refused := false
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if isAuthError(err) {
				refused = true
				msg := err.Error()
				c.fetchRefused.Store(&msg)
				c.exportLog.warn("fetch-refused", "kafka refuses the consumer", "topic", t, "partition", p, "error", err)
				return
			}
			c.exportLog.warn("fetch-error", "fetch error", "topic", t, "partition", p, "error", err)
		})
		got := false
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			got = true
			c.mu.Lock()
			w := c.workers[p.Partition]
			c.mu.Unlock()
			if w == nil {
				return
			}
			w.mu.Lock()
			w.hw = p.HighWatermark
			w.mu.Unlock()
			if w.deliver(p.Records) {
				full = append(full, w)
			}
		})
		if got && !refused {
			c.fetchRefused.Store(nil)
		}
		c.cl.AllowRebalance()
		c.waitForRoom(ctx, full)
		full = full[:0]
	}
}

// stallAfter is how long the poll loop waits for a full worker to take a
// batch before it pauses that worker's partition and polls for the others.
// A busy worker takes one within milliseconds; one that has not is stuck.
const stallAfter = 500 * time.Millisecond

// waitForRoom holds the next poll, outside the rebalance gate, while a
// worker in full still holds more than DefaultWorkerQueue batches: not
// polling is what stops the client fetching, without dropping what it
// buffered. Workers still full after stallAfter get their partitions paused.
// It returns at once when ctx ends.
func (c *Consumer) waitForRoom(ctx context.Context, full []*worker) {
	var stall <-chan time.Time
	for {
		full = slices.DeleteFunc(full, func(w *worker) bool { return !w.full() })
		if len(full) == 0 {
			return
		}
		if stall == nil {
			t := time.NewTimer(stallAfter)
			defer t.Stop()
			stall = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-c.room:
		case <-stall:
			for _, w := range full {
				part := map[string][]int32{c.cfg.Topic: {w.partition}}
				w.pauseIfFull(func() { c.cl.PauseFetchPartitions(part) })
				// A partition revoked meanwhile was resumed by release
				// (pauses outlive assignments); undo a pause that came
				// after it.
				c.mu.Lock()
				current := c.workers[w.partition] == w
				c.mu.Unlock()
				if !current {
					c.cl.ResumeFetchPartitions(part)
				}
			}
			return
		}
	}
}

// isAuthError reports whether err is Kafka refusing who the consumer is or
// what it asks for: no retry fixes it until an operator does.
func isAuthError(err error) bool {
	for _, target := range []error{
		kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism,
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range assigned[c.cfg.Topic] {
		if c.workers[p] != nil {
			continue
		}
		w, err := newWorker(&c.pipeline, c.cfg.Topic, p)
		if err != nil { // the config was validated in New; this is a bug
			c.log.Error("start partition worker", "error", err)
			continue
		}
		w.resume = func() { c.cl.ResumeFetchPartitions(map[string][]int32{c.cfg.Topic: {p}}) }
		w.room = c.room
		c.workers[p] = w
		go w.run(c.ctx)
		c.metrics.add(c.metrics.rebalances, 1, attribute.String("kind", "assigned"))
		c.log.Info("partition assigned", "topic", c.cfg.Topic, "partition", p)
	}
	if len(c.workers) > 0 { // a cooperative rebalance may assign nothing at first
		c.readyOne.Do(func() { close(c.ready) })
	}
}

// fetched reads each partition's commit metadata back: the exported-through
// mark, and (version 2) the stream time at the committed offset and where
// the dedup window there starts. It runs after assignment and before the
// first fetch of those partitions, and before adjust.
func (c *Consumer) fetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	visit := func(topic string, partition int32, offset int64, meta *string) {
		if topic != c.cfg.Topic {
			return
		}
		c.mu.Lock()
		w := c.workers[partition]
		c.mu.Unlock()
		if w == nil {
			return
		}
		h := int64(-1)
		res := &resume{offset: offset}
		if offset >= 0 && meta != nil {
			if m, ok := checkpoint.Parse(*meta, offset); ok {
				h, res.meta = m.Mark, m
			}
		}
		res.meta.Mark = h
		w.exportedThrough.Store(h)
		w.resumeFrom.Store(res)
		args := []any{"topic", topic, "partition", partition, "committed", offset, "exported_through", h}
		if res.meta.Resume {
			args = append(args, "stream_time", time.Unix(0, res.meta.StreamTime).UTC(), "dedup_window_from", res.meta.WindowStart)
		}
		c.log.Info("resuming partition", args...)
	}
	// Newer protocol versions answer per group (authoritative: the top-level
	// copy can lack topic names once topic IDs are used), older ones only at
	// the top level.
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				visit(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	if len(resp.Groups) > 0 {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			visit(t.Topic, p.Partition, p.Offset, p.Metadata)
		}
	}
	return nil
}

// loadSnapshot reads and verifies the snapshot res names, for the worker
// to restore before its first record, and reports whether it could; when it
// cannot (missing, corrupt, snapshots off), the worker resumes without it,
// with the mark of the commit, from the oldest record the caller can still
// read, and the fallback is counted and logged.
func (c *Consumer) loadSnapshot(ctx context.Context, w *worker, res *resume) bool {
	fail := func(err error) bool {
		c.metrics.add(c.metrics.fallbacks, 1)
		c.log.Warn("the commit's snapshot cannot be used: the partition replays from the oldest record the topic holds",
			"topic", c.cfg.Topic, "partition", w.partition, "committed", res.offset, "snapshot", res.meta.Snapshot, "error", err)
		// Stream time and the window were those of the snapshot's offset,
		// which the fallback does not start at.
		w.resumeFrom.Store(&resume{offset: res.offset, meta: checkpoint.Metadata{Mark: res.meta.Mark}})
		return false
	}
	if c.snaps == nil {
		return fail(errors.New("snapshots are off (snapshot_interval 0)"))
	}
	ref, err := parseSnapshotRef(res.meta.Snapshot)
	if err != nil {
		return fail(err)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	start := time.Now()
	b, info, err := c.snaps.read(rctx, ref, w.partition, res.offset)
	if err != nil {
		return fail(err)
	}
	if info.Held > 0 && c.cfg.Lifecycle.ReorderWindow <= 0 {
		return fail(fmt.Errorf("%w: it holds %d events of a reorder window, which is off here (lifecycle.reorder_window 0)", lifecycle.ErrSnapshotMismatch, info.Held))
	}
	w.resumeFrom.Store(&resume{offset: res.offset, meta: res.meta, snap: b})
	c.log.Info("snapshot loaded", "topic", c.cfg.Topic, "partition", w.partition, "committed", res.offset,
		"sessions", info.Sessions, "held", info.Held, "bytes", info.Bytes, "took", time.Since(start).Round(time.Millisecond))
	return true
}

// startSnapshots makes sure the snapshot topic exists and sizes a chunk so
// that a record batch fits its max.message.bytes (the broker's limit is on
// the batch, not the record): the producer batches the chunks in flight
// together (up to snapshotInFlight) and with tombstones, so a chunk is a
// share of the limit, less each record's framing. A chunk of the whole limit
// made every batch of two or more chunks MESSAGE_TOO_LARGE on a topic whose
// max.message.bytes is below franz-go's 1 MB batch limit
// (TestKilledMidSnapshotChunks).
func (c *Consumer) startSnapshots(ctx context.Context) error {
	s := c.snaps
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.ensure(ectx, c.cfg.Topic); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	s.chunk = max(int(min(maxMessageBytes(ctx, s.adm, s.topic), DefaultDLQMaxBytes))/(snapshotInFlight+1)-recordOverhead, 64)
	return nil
}

// adjust starts each resumed partition at its dedup window's start, below
// the committed offset: the records in between only refill the window, so
// the new owner drops exactly the redeliveries the previous one would have.
// A window start that retention already deleted is raised to the log start
// (fetching it would reset the partition to start_offset, possibly the end);
// when the log start cannot be read the partition starts at its commit, with
// an empty window.
func (c *Consumer) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	want := map[int32]*resume{}
	var fallback []int32
	for p := range offsets[c.cfg.Topic] {
		c.mu.Lock()
		w := c.workers[p]
		c.mu.Unlock()
		if w == nil {
			continue
		}
		res := w.resumeFrom.Load()
		if res != nil && res.meta.Snapshot != "" {
			if c.loadSnapshot(ctx, w, res) {
				// The snapshot holds the dedup window and stream time: the
				// partition starts at the committed offset.
				continue
			}
			fallback = append(fallback, p)
			continue
		}
		if res != nil && res.meta.Resume && res.meta.WindowStart < res.offset {
			want[p] = res
		}
	}
	if len(want) == 0 && len(fallback) == 0 {
		return offsets, nil
	}
	starts, err := kadm.NewClient(c.cl).ListStartOffsets(ctx, c.cfg.Topic)
	for _, p := range fallback {
		// The oldest record the topic still holds: sessions that started
		// there are rebuilt whole, and the mark keeps every span the
		// previous owners exported from being emitted again.
		lo, ok := starts.Lookup(c.cfg.Topic, p)
		if err != nil || !ok || lo.Err != nil {
			offsets[c.cfg.Topic][p] = kgo.NewOffset().AtStart()
			continue
		}
		offsets[c.cfg.Topic][p] = kgo.NewOffset().At(lo.Offset).WithEpoch(-1)
	}
	for p, res := range want {
		from := res.meta.WindowStart
		lo, ok := starts.Lookup(c.cfg.Topic, p)
		switch {
		case err != nil || !ok || lo.Err != nil:
			c.log.Warn("log start unknown: the partition resumes at its commit with an empty dedup window", "topic", c.cfg.Topic, "partition", p, "error", errors.Join(err, lo.Err))
			continue
		case lo.Offset > from:
			from = min(lo.Offset, res.offset)
		}
		offsets[c.cfg.Topic][p] = kgo.NewOffset().At(from).WithEpoch(-1)
	}
	return offsets, nil
}

func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked[c.cfg.Topic]) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	c.metrics.add(c.metrics.rebalances, int64(len(revoked[c.cfg.Topic])), attribute.String("kind", "revoked"))
	c.release(ctx, revoked[c.cfg.Topic], true)
}

func (c *Consumer) lost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost[c.cfg.Topic]) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	c.metrics.add(c.metrics.rebalances, int64(len(lost[c.cfg.Topic])), attribute.String("kind", "lost"))
	// Never commit a lost partition: another member may own it already.
	c.release(ctx, lost[c.cfg.Topic], false)
}

// release stops the workers of partitions, drains their lanes and their
// dead-letter writes (bounded by ctx), commits what was acknowledged when
// commit is set (with a deadline of its own, so a drain that timed out
// still commits), and drops their state. Sessions are not ended: the next
// owner rebuilds them by replay.
func (c *Consumer) release(ctx context.Context, partitions []int32, commit bool) {
	c.mu.Lock()
	ws := make([]*worker, 0, len(partitions))
	for _, p := range partitions {
		if w := c.workers[p]; w != nil {
			ws = append(ws, w)
			delete(c.workers, p)
		}
	}
	c.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	// Pauses persist in the client: a partition paused by back-pressure
	// would stay paused when it is assigned to this member again.
	c.cl.ResumeFetchPartitions(map[string][]int32{c.cfg.Topic: partitions})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			w.stop(ctx)
			if !commit {
				return
			}
			if err := w.lane.Flush(ctx); err != nil {
				c.log.Warn("partition released before all spans were acknowledged; they stay uncommitted", "topic", w.topic, "partition", w.partition, "error", err)
			}
			if err := w.waitDeadLetters(ctx); err != nil {
				c.log.Warn("partition released before all dead-letter copies were written; their records stay uncommitted", "topic", w.topic, "partition", w.partition, "error", err)
			}
			// The worker's goroutine has exited: the machine is ours. A
			// snapshot now lets the next owner start at the last record.
			w.snapshot(ctx, true)
		})
	}
	wg.Wait()
	for _, w := range ws {
		w.dlqCancel()
	}
	if commit {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
		c.commit(cctx, ws)
		cancel()
	}
	for _, w := range ws {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
		_ = w.lane.Close(cctx)
		cancel()
		c.log.Info("partition released", "topic", w.topic, "partition", w.partition, "committed", commit)
	}
}

// commitLoop commits every worker's acknowledged position each interval,
// and at once when a worker asks (commitSoon).
func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.commitSoon:
		}
		c.mu.Lock()
		ws := make([]*worker, 0, len(c.workers))
		for _, w := range c.workers {
			ws = append(ws, w)
		}
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
		c.commit(cctx, ws)
		cancel()
	}
}

// commit commits the positions of ws that moved since their last commit.
func (c *Consumer) commit(ctx context.Context, ws []*worker) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	offsets := map[int32]kgo.EpochOffset{}
	marks := map[int32]string{}
	byPartition := map[int32]*worker{}
	positions := map[int32]checkpoint.Position{}
	for _, w := range ws {
		pos, ok := w.position()
		if !ok {
			continue
		}
		w.mu.Lock()
		committed, open := w.committed, w.open
		w.mu.Unlock()
		c.metrics.openSessions.Record(context.Background(), int64(open), partitionAttrs(w.topic, w.partition))
		// A moved mark alone is worth a commit: open sessions often pin the
		// offset for long, and the mark is what spares the next owner from
		// re-emitting everything since.
		if pos == committed {
			continue
		}
		offsets[w.partition] = kgo.EpochOffset{Epoch: -1, Offset: pos.Offset}
		marks[w.partition] = checkpoint.Format(pos)
		byPartition[w.partition] = w
		positions[w.partition] = pos
	}
	if len(offsets) == 0 {
		return
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			if req.Topics[i].Topic != c.cfg.Topic {
				continue
			}
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				if m, ok := marks[p.Partition]; ok {
					p.Metadata = &m
				}
			}
		}
		return nil
	})
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				c.metrics.add(c.metrics.commits, 1, attribute.String("result", "error"))
				c.log.Warn("offset commit failed", "topic", c.cfg.Topic, "error", err)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					w := byPartition[p.Partition]
					if w == nil {
						continue
					}
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						c.metrics.add(c.metrics.commits, 1, attribute.String("result", "error"))
						c.log.Warn("offset commit failed", "topic", t.Topic, "partition", p.Partition, "error", err)
						continue
					}
					off := offsets[p.Partition].Offset
					w.mu.Lock()
					w.committed = positions[p.Partition]
					hw := w.hw
					stale := w.superseded(off)
					w.mu.Unlock()
					// A worker may wait for this commit to apply a quiet
					// flush it names.
					signal(w.wake)
					c.deleteSnapshots(w.partition, stale)
					c.metrics.add(c.metrics.commits, 1, attribute.String("result", "ok"))
					c.log.Debug("committed", "partition", p.Partition, "offset", off, "mark", marks[p.Partition])
					attrs := partitionAttrs(t.Topic, p.Partition)
					c.metrics.committed.Record(context.Background(), off, attrs)
					if hw >= off {
						c.metrics.lag.Record(context.Background(), hw-off, attrs)
					}
				}
			}
		})
}

// deleteSnapshots writes tombstones for the chunks of snapshots no commit
// will name again, so that compaction removes them. A tombstone lost to a
// crash leaves a snapshot that costs space until the partition is
// compacted under a later one; it is never read.
func (c *Consumer) deleteSnapshots(partition int32, stale []writtenSnapshot) {
	if c.snaps == nil {
		return
	}
	for _, s := range stale {
		key := snapshotKey(partition, s.offset)
		for i := range s.ref.chunks {
			c.snaps.cl.Produce(context.Background(), &kgo.Record{Topic: c.snaps.topic, Partition: s.ref.partition,
				Key: []byte(key + strconv.Itoa(i))}, nil)
		}
	}
}

// startDLQ makes sure the dead-letter topic exists (creating it only when a
// metadata request says it is missing, with the source topic's partition
// count) and starts its producer, whose batch limit is the topic's
// max.message.bytes.
func (c *Consumer) startDLQ(ctx context.Context) (*deadLetter, error) {
	adm := kadm.NewClient(c.cl)
	d := &deadLetter{
		adm: adm, topic: c.cfg.dlqTopic(), source: c.cfg.Topic,
		log: newRateLog(c.log, 10*time.Second), m: c.metrics,
		retryInitial: c.cfg.RetryInitial, retryMax: c.cfg.RetryMax,
	}
	if err := d.ensure(ctx, false); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	d.maxBytes = maxMessageBytes(ctx, adm, d.topic)
	opts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, c.kopts...)
	opts = append(opts,
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ProducerBatchMaxBytes(d.maxBytes),
		// The partitions bound their own writes in flight (maxDLQInFlight);
		// a buffer limit here would block a worker inside Produce instead.
		kgo.MaxBufferedRecords(1<<20),
		// A deleted topic fails fast to our retry, which creates it again.
		kgo.UnknownTopicRetries(2),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("consumer: dead-letter producer: %w", err)
	}
	d.fetchOpts = append(append([]kgo.Opt{kgo.ClientID("sessiontrace")}, c.kopts...), kgo.SeedBrokers(c.cfg.Brokers...))
	d.cl = cl
	return d, nil
}
