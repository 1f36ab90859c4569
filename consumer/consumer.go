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
// # Co-partitioned topics
//
// With Config.Topics naming several topics, partition n of every topic goes
// to one worker (the group uses the range assignor, which gives partition n
// of every topic to the same member), and the worker merges what it takes
// from its inbox by record timestamp into one stream whose positions
// (package merge) stand in for offsets everywhere downstream: the reorder
// window, the state machine, the ledger, snapshots and quiet flushes see one
// partition. The merge order depends on when records arrived, so each batch
// of it is appended to the merge topic's partition n (mergeLog), and a
// commit is made only at positions up to which the merge log acknowledged
// every entry; the commit rule is otherwise the single topic's. Every
// topic's commit at partition n carries the same metadata (formatMerged):
// the topic list's fingerprint, the position committed and the merge log
// offset a new owner reads from, then the single topic's metadata in
// positions. Each topic's committed offset is that topic's offset at the
// committed position, so lag and offsets read as usual.
//
// A write the merge log refuses for good stops the partition's merge: the
// worker writes every entry from the lost one on again (repairMerge), and a
// reader follows the copies that continue the frontier, so the copies
// written before the repair are skipped (merge.NewPlan).
//
// A new owner appends a claim to the merge log, reads it from the commit's
// entry up to its claim, replays those runs (worker.replayMerged) with its own client
// from the frontier of the position it resumes at (the dedup window's start,
// or the snapshot's position) so that it rebuilds exactly the stream the
// previous owner processed, and only then takes records from the group's
// fetches, which start where the log ends. Entries a previous owner wrote
// after a later claim are ignored by every reader (package merge), so a
// zombie cannot make two readers disagree.
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
	"strings"
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
	"github.com/sessiontrace/sessiontrace/consumer/merge"
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
	// merge writes and reads the merge topic of co-partitioned topics;
	// nil for one topic. Made in New for the same reason as snaps; the
	// topics' partition counts are checked and its topic ensured in Run.
	merge *mergeLog
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
	// gcl is the group's client as the callbacks see it, set by assigned
	// (which runs before adjust) under mu: the group may assign partitions
	// before New has stored cl.
	gcl *kgo.Client
	// owned are the partitions of each topic assigned to this member: a
	// merged partition's worker starts once it owns that partition of
	// every topic.
	owned map[string]map[int32]bool
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
		owned:    map[string]map[int32]bool{},
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
		kgo.ConsumeTopics(cfg.sources()...),
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
	switch {
	case cfg.merged():
		// Only the range assignor gives partition n of every topic to one
		// member (sticky balancers spread them): it is eager, so a
		// rebalance revokes every partition of the member.
		kopts = append(kopts, kgo.Balancers(kgo.RangeBalancer()))
	case cfg.GroupProtocol == ProtocolConsumer:
		kopts = append(kopts, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	default:
		kopts = append(kopts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	// The snapshot and merge log producers write each record to the
	// partition it names, acknowledged by every in-sync replica: a commit
	// depends on what they wrote.
	ownPartition := func() []kgo.Opt {
		opts := append([]kgo.Opt{kgo.ClientID("sessiontrace")}, c.kopts...)
		return append(opts,
			kgo.SeedBrokers(cfg.Brokers...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
		)
	}
	if cfg.SnapshotInterval > 0 {
		scl, err := kgo.NewClient(ownPartition()...)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("consumer: snapshot producer: %w", err)
		}
		c.snaps = &snapshotStore{cl: scl, adm: kadm.NewClient(scl), brokers: cfg.Brokers, kopts: c.kopts, topic: cfg.snapshotTopic()}
	}
	closeAll := func() {
		cancel()
		if c.snaps != nil {
			c.snaps.cl.Close()
		}
		if c.merge != nil {
			c.merge.cl.Close()
		}
	}
	if cfg.merged() {
		mcl, err := kgo.NewClient(ownPartition()...)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("consumer: merge log producer: %w", err)
		}
		c.merge = &mergeLog{cl: mcl, adm: kadm.NewClient(mcl), topic: cfg.mergeTopic(), brokers: cfg.Brokers, kopts: c.kopts, fp: fingerprint(cfg.Topics)}
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		closeAll()
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
	if c.merge != nil {
		if msg := c.merge.failing.Load(); msg != nil {
			return false, "the merge log of the co-partitioned topics failed: " + *msg
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

	if c.merge != nil {
		defer c.merge.cl.Close() // after the final release: the last entries are in flight
		if err := c.startMerge(ctx); err != nil {
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
	c.release(shutdownCtx, c.cl, all, true)
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
			if w.mg != nil {
				if i, ok := w.mg.index[p.Topic]; ok {
					// Reading committed, the fetch ends at the last stable
					// offset: the merge waits for a topic below it.
					w.mg.hws[i] = p.HighWatermark
					if p.LastStableOffset >= 0 {
						w.mg.hws[i] = p.LastStableOffset
					}
				}
			} else {
				w.hw = p.HighWatermark
			}
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
				part := c.topicsAt(w.partition)
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

func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gcl = cl
	sources := c.cfg.sources()
	for _, t := range sources {
		for _, p := range assigned[t] {
			if c.owned[t] == nil {
				c.owned[t] = map[int32]bool{}
			}
			c.owned[t][p] = true
		}
	}
	name := c.cfg.primary()
	if c.cfg.merged() {
		name = strings.Join(sources, "+")
	}
	for _, t := range sources {
		for _, p := range assigned[t] {
			if c.workers[p] != nil || !c.ownsAll(p) {
				continue
			}
			w, err := newWorker(&c.pipeline, name, p)
			if err != nil { // the config was validated in New; this is a bug
				c.log.Error("start partition worker", "error", err)
				continue
			}
			if c.cfg.merged() {
				w.mg = newMerger(c.merge, sources, c.cfg.MergeWait)
			}
			w.resume = func() { cl.ResumeFetchPartitions(c.topicsAt(p)) }
			w.room = c.room
			c.workers[p] = w
			go w.run(c.ctx)
			c.metrics.add(c.metrics.rebalances, 1, attribute.String("kind", "assigned"))
			c.log.Info("partition assigned", "topic", name, "partition", p)
		}
	}
	if c.cfg.merged() {
		for _, t := range sources {
			for _, p := range assigned[t] {
				if c.workers[p] == nil {
					// Another member's assignor spread the topics: this
					// partition waits, unprocessed, for a rebalance that
					// gives this member all of them.
					c.log.Error("partition assigned without the same partition of every co-partitioned topic; it is not processed (is every member of the group a sessiontrace with the same kafka.topics?)", "topic", t, "partition", p)
				}
			}
		}
	}
	if len(c.workers) > 0 { // a cooperative rebalance may assign nothing at first
		c.readyOne.Do(func() { close(c.ready) })
	}
}

// groupClient returns the group's client for the callbacks (gcl).
func (c *Consumer) groupClient() *kgo.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gcl
}

// ownsAll reports whether this member owns partition p of every topic;
// the caller holds mu.
func (c *Consumer) ownsAll(p int32) bool {
	for _, t := range c.cfg.sources() {
		if !c.owned[t][p] {
			return false
		}
	}
	return true
}

// topicsAt returns partition p of every topic consumed.
func (c *Consumer) topicsAt(p int32) map[string][]int32 {
	m := map[string][]int32{}
	for _, t := range c.cfg.sources() {
		m[t] = []int32{p}
	}
	return m
}

// partitionsOf returns the partition numbers named in ps (of any of the
// topics consumed), forgetting that this member owns them.
func (c *Consumer) partitionsOf(ps map[string][]int32) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int32
	for _, t := range c.cfg.sources() {
		for _, p := range ps[t] {
			delete(c.owned[t], p)
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// fetched reads each partition's commit metadata back: the exported-through
// mark, and (version 2) the stream time at the committed offset and where
// the dedup window there starts. It runs after assignment and before the
// first fetch of those partitions, and before adjust.
func (c *Consumer) fetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	// A merged partition's resume is decided once every topic's commit was
	// read: the lowest committed position wins (the topics are committed
	// together, so they differ only after a commit that failed for some).
	type mergedCommit struct {
		w    *worker
		best *mergeMeta
		meta checkpoint.Metadata
	}
	merged := map[int32]*mergedCommit{}
	visit := func(topic string, partition int32, offset int64, meta *string) {
		if !c.cfg.consumes(topic) {
			return
		}
		c.mu.Lock()
		w := c.workers[partition]
		c.mu.Unlock()
		if w == nil {
			return
		}
		if w.mg != nil {
			mc := merged[partition]
			if mc == nil {
				mc = &mergedCommit{w: w}
				merged[partition] = mc
			}
			w.mg.committed[w.mg.index[topic]] = offset
			if offset < 0 || meta == nil {
				return
			}
			if mm, m, ok := parseMerged(*meta); ok && mm.fp == c.merge.fp && (mc.best == nil || mm.position < mc.best.position) {
				mc.best, mc.meta = &mm, m
			}
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
	if len(resp.Groups) == 0 {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				visit(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	for p, mc := range merged {
		w := mc.w
		w.mg.resumed = mc.best
		if mc.best == nil {
			// No commit of this topic list: the partition starts at each
			// topic's committed offset (or start_offset), as a new stream.
			w.exportedThrough.Store(-1)
			w.resumeFrom.Store(nil)
			c.log.Info("resuming merged partition without a merged commit", "topics", c.cfg.Topics, "partition", p, "committed", w.mg.committed)
			continue
		}
		w.exportedThrough.Store(mc.meta.Mark)
		w.resumeFrom.Store(&resume{offset: mc.best.position, meta: mc.meta})
		c.log.Info("resuming merged partition", "topics", c.cfg.Topics, "partition", p, "committed", w.mg.committed,
			"position", mc.best.position, "merge_log_from", mc.best.log, "exported_through", mc.meta.Mark)
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
			"topic", c.cfg.primary(), "partition", w.partition, "committed", res.offset, "snapshot", res.meta.Snapshot, "error", err)
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
	c.log.Info("snapshot loaded", "topic", c.cfg.primary(), "partition", w.partition, "committed", res.offset,
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
	if err := s.ensure(ectx, c.cfg.primary()); err != nil {
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
	if c.merge != nil {
		return c.adjustMerged(ctx, offsets)
	}
	want := map[int32]*resume{}
	var fallback []int32
	for p := range offsets[c.cfg.primary()] {
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
	starts, err := kadm.NewClient(c.groupClient()).ListStartOffsets(ctx, c.cfg.primary())
	for _, p := range fallback {
		// The oldest record the topic still holds: sessions that started
		// there are rebuilt whole, and the mark keeps every span the
		// previous owners exported from being emitted again.
		lo, ok := starts.Lookup(c.cfg.primary(), p)
		if err != nil || !ok || lo.Err != nil {
			offsets[c.cfg.primary()][p] = kgo.NewOffset().AtStart()
			continue
		}
		offsets[c.cfg.primary()][p] = kgo.NewOffset().At(lo.Offset).WithEpoch(-1)
	}
	for p, res := range want {
		from := res.meta.WindowStart
		lo, ok := starts.Lookup(c.cfg.primary(), p)
		switch {
		case err != nil || !ok || lo.Err != nil:
			c.log.Warn("log start unknown: the partition resumes at its commit with an empty dedup window", "topic", c.cfg.primary(), "partition", p, "error", errors.Join(err, lo.Err))
			continue
		case lo.Offset > from:
			from = min(lo.Offset, res.offset)
		}
		offsets[c.cfg.primary()][p] = kgo.NewOffset().At(from).WithEpoch(-1)
	}
	return offsets, nil
}

func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	ps := c.partitionsOf(revoked)
	if len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	c.metrics.add(c.metrics.rebalances, int64(len(ps)), attribute.String("kind", "revoked"))
	c.release(ctx, cl, ps, true)
}

func (c *Consumer) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	ps := c.partitionsOf(lost)
	if len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	c.metrics.add(c.metrics.rebalances, int64(len(ps)), attribute.String("kind", "lost"))
	// Never commit a lost partition: another member may own it already.
	c.release(ctx, cl, ps, false)
}

// release stops the workers of partitions, drains their lanes and their
// dead-letter writes (bounded by ctx), commits what was acknowledged when
// commit is set (with a deadline of its own, so a drain that timed out
// still commits), and drops their state. Sessions are not ended: the next
// owner rebuilds them by replay.
func (c *Consumer) release(ctx context.Context, cl *kgo.Client, partitions []int32, commit bool) {
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
	resume := map[string][]int32{}
	for _, t := range c.cfg.sources() {
		resume[t] = partitions
	}
	cl.ResumeFetchPartitions(resume)
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
	if commit && c.merge != nil {
		// A commit depends on the merge log's entries being stored: wait
		// for those in flight, so the final commit is not held below them.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
		if err := c.merge.cl.Flush(fctx); err != nil {
			c.log.Warn("merge log entries still in flight at release; the final commit stays below them", "error", err)
		}
		cancel()
	}
	if commit {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
		c.commit(cctx, cl, ws)
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
		c.commit(cctx, c.cl, ws)
		cancel()
	}
}

// commit commits the positions of ws that moved since their last commit:
// each worker's offset, or, for merged topics, every topic's offset at the
// worker's position, all with the worker's metadata, in one request.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, ws []*worker) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	type pending struct {
		w     *worker
		pos   checkpoint.Position
		front []int64 // each topic's offset, merged; nil for one topic
		left  int     // topic-partitions not yet acknowledged
		bad   bool
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	marks := map[string]map[int32]string{}
	add := func(topic string, p int32, off int64, meta string) {
		if offsets[topic] == nil {
			offsets[topic], marks[topic] = map[int32]kgo.EpochOffset{}, map[int32]string{}
		}
		offsets[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		marks[topic][p] = meta
	}
	byPartition := map[int32]*pending{}
	for _, w := range ws {
		pos, ok := w.position()
		if !ok {
			continue
		}
		w.mu.Lock()
		committed, open := w.committed, w.open
		var front []int64
		var log int64
		if w.mg != nil && pos != committed {
			// Only positions whose merge order the merge log stored: a
			// new owner must replay the same order up to the mark.
			front, log, ok = w.mg.commitAt(pos)
		}
		w.mu.Unlock()
		c.metrics.openSessions.Record(context.Background(), int64(open), partitionAttrs(w.topic, w.partition))
		// A moved mark alone is worth a commit: open sessions often pin the
		// offset for long, and the mark is what spares the next owner from
		// re-emitting everything since.
		if pos == committed || !ok {
			continue
		}
		pd := &pending{w: w, pos: pos, front: front}
		if w.mg != nil {
			meta := formatMerged(c.merge.fp, log, pos)
			for i, t := range w.mg.topics {
				add(t, w.partition, front[i], meta)
			}
			pd.left = len(w.mg.topics)
		} else {
			add(w.topic, w.partition, pos.Offset, checkpoint.Format(pos))
			pd.left = 1
		}
		byPartition[w.partition] = pd
	}
	if len(byPartition) == 0 {
		return
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				if m, ok := marks[req.Topics[i].Topic][p.Partition]; ok {
					p.Metadata = &m
				}
			}
		}
		return nil
	})
	cl.CommitOffsetsSync(ctx, offsets,
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				c.metrics.add(c.metrics.commits, 1, attribute.String("result", "error"))
				c.log.Warn("offset commit failed", "topics", c.cfg.sources(), "error", err)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					pd := byPartition[p.Partition]
					if pd == nil {
						continue
					}
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						pd.bad = true
						c.metrics.add(c.metrics.commits, 1, attribute.String("result", "error"))
						c.log.Warn("offset commit failed", "topic", t.Topic, "partition", p.Partition, "error", err)
						continue
					}
					pd.left--
					off := offsets[t.Topic][p.Partition].Offset
					attrs := partitionAttrs(t.Topic, p.Partition)
					c.metrics.committed.Record(context.Background(), off, attrs)
					pd.w.mu.Lock()
					hw := pd.w.hw
					if pd.w.mg != nil {
						hw = pd.w.mg.hws[pd.w.mg.index[t.Topic]]
					}
					pd.w.mu.Unlock()
					if hw >= off {
						c.metrics.lag.Record(context.Background(), hw-off, attrs)
					}
				}
			}
			for _, pd := range byPartition {
				if pd.bad || pd.left > 0 {
					// A merged partition whose topics were not all committed
					// keeps its last position: a new owner takes the lowest.
					continue
				}
				w := pd.w
				w.mu.Lock()
				w.committed = pd.pos
				stale := w.superseded(pd.pos.Offset)
				if w.mg != nil {
					w.mg.tbl.Trim(min(pd.pos.WindowStart, pd.pos.Offset))
				}
				w.mu.Unlock()
				// A worker may wait for this commit to apply a quiet
				// flush it names.
				signal(w.wake)
				c.deleteSnapshots(w.partition, stale)
				c.metrics.add(c.metrics.commits, 1, attribute.String("result", "ok"))
				c.log.Debug("committed", "topic", w.topic, "partition", w.partition, "offset", pd.pos.Offset, "offsets", pd.front)
			}
		})
}

// startMerge checks that the topics are co-partitioned and makes sure the
// merge topic exists.
func (c *Consumer) startMerge(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := checkCoPartitioned(ctx, c.merge.adm, c.cfg.Topics)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if err := c.merge.ensure(ctx, c.cfg.Topics, n); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// adjustMerged decides where each merged partition starts (planMerged) and
// sets every topic's fetch offset to where the merge log's runs end: the
// worker replays the runs itself, before the group's records.
func (c *Consumer) adjustMerged(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topics := c.cfg.Topics
	for p := range offsets[topics[0]] {
		c.mu.Lock()
		w := c.workers[p]
		c.mu.Unlock()
		if w == nil || w.mg == nil || w.mg.start.Load() != nil {
			continue
		}
		st := c.planMerged(ctx, w)
		if st.err != nil {
			msg := st.err.Error()
			c.merge.failing.Store(&msg)
			c.log.Error("merged partition not started: its merge log cannot be claimed or read; it waits for its next assignment", "topics", topics, "partition", p, "error", st.err)
			w.mg.start.Store(st)
			continue
		}
		front := st.front
		if st.plan != nil {
			front = st.plan.End
		}
		for i, t := range topics {
			if offsets[t] == nil {
				offsets[t] = map[int32]kgo.Offset{}
			}
			offsets[t][p] = kgo.NewOffset().At(front[i]).WithEpoch(-1)
		}
		c.merge.failing.Store(nil) // a failure of another partition says so again on its next try
		w.mg.start.Store(st)
		signal(w.wake)
	}
	return offsets, nil
}

// planMerged claims partition w.partition of the merge log and reads it to
// plan the replay from the position the commit names: the snapshot's, or
// the dedup window's start. A commit whose snapshot cannot be used
// replays from the oldest entry instead (the fallback of one topic); a
// partition with no commit of this topic list, or whose merge log does not
// hold the position, starts at each topic's committed offset as a new
// stream, with no mark (spans already exported may be exported again).
func (c *Consumer) planMerged(ctx context.Context, w *worker) *mergeStart {
	p, k := w.partition, len(c.cfg.Topics)
	id, end, err := c.merge.claim(ctx, p)
	if err != nil {
		return &mergeStart{err: err}
	}
	st := &mergeStart{claim: id}
	// The merge waits for a topic behind its end: until the first fetch
	// says, the end now is where each topic is behind.
	if ends, err := kadm.NewClient(c.groupClient()).ListEndOffsets(ctx, c.cfg.Topics...); err == nil {
		w.mu.Lock()
		for i, t := range c.cfg.Topics {
			if o, ok := ends.Lookup(t, p); ok && o.Err == nil {
				w.mg.hws[i] = o.Offset
			}
		}
		w.mu.Unlock()
	}
	res, mm := w.resumeFrom.Load(), w.mg.resumed
	if res != nil && mm != nil {
		x, from := res.meta.WindowStart, mm.log
		if res.meta.Snapshot != "" {
			x = mm.position
			if !c.loadSnapshot(ctx, w, res) {
				x, from = -1, -1
			}
		}
		if from < 0 {
			if from, err = c.merge.start(ctx, p); err != nil {
				return &mergeStart{err: err}
			}
		}
		logged, err := c.merge.read(ctx, p, from, end)
		if err != nil {
			return &mergeStart{err: err}
		}
		plan, err := merge.NewPlan(logged, k, x)
		if err == nil {
			if plan.Ignored > 0 || plan.Stopped != "" {
				c.log.Warn("merge log entries not replayed", "topics", c.cfg.Topics, "partition", p,
					"stale_claim", plan.Ignored, "stopped", plan.Stopped)
			}
			st.plan = plan
			return st
		}
		c.metrics.add(c.metrics.fallbacks, 1)
		c.log.Warn("the merge log does not hold the commit's position: the partition starts at the committed offsets, without the sessions open there, and may export spans again",
			"topics", c.cfg.Topics, "partition", p, "position", mm.position, "error", err)
		w.exportedThrough.Store(-1)
		w.resumeFrom.Store(nil)
	}
	st.front, err = c.startOffsets(ctx, w)
	if err != nil {
		return &mergeStart{err: err}
	}
	return st
}

// startOffsets returns where a merged partition without a plan starts:
// each topic's committed offset, or start_offset's for a topic with none.
func (c *Consumer) startOffsets(ctx context.Context, w *worker) ([]int64, error) {
	front := slices.Clone(w.mg.committed)
	var missing []string
	for i, o := range front {
		if o < 0 {
			missing = append(missing, w.mg.topics[i])
		}
	}
	if len(missing) == 0 {
		return front, nil
	}
	adm := kadm.NewClient(c.groupClient())
	list := adm.ListStartOffsets
	if c.cfg.StartOffset == "latest" {
		list = adm.ListEndOffsets
	}
	listed, err := list(ctx, missing...)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %v: %w", missing, err)
	}
	for i, o := range front {
		if o >= 0 {
			continue
		}
		lo, ok := listed.Lookup(w.mg.topics[i], w.partition)
		if !ok || lo.Err != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %v", w.mg.topics[i], w.partition, lo.Err)
		}
		front[i] = lo.Offset
	}
	return front, nil
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
		adm: adm, topic: c.cfg.dlqTopic(), source: c.cfg.primary(),
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
