package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Bench defaults and bounds, in one place so --help and the README agree.
const (
	benchEvents          = 500_000
	benchMaxEvents       = 100_000_000
	benchPlayers         = 10_000
	benchPartitions      = 4
	benchMaxPartitions   = 1_000
	benchLatencyRate     = 5_000
	benchLatencyDuration = 10 * time.Second
	benchTimeout         = 15 * time.Minute
	// benchLatencyPlayers is the population of the latency phase: small
	// enough that sessions end every few events, so a short phase yields
	// thousands of root spans to time.
	benchLatencyPlayers = 1_000
	// benchMaxOpenSessions bounds --open-sessions; the simulator holds about
	// 300 bytes per player while the sessions are built.
	benchMaxOpenSessions = 10_000_000
	// benchSessionTarget is the memory target per open session (at most 128 bytes at a million sessions).
	benchSessionTarget = 128
	// latencySlack is what the latency target allows on top of the batch
	// timeout and the reorder window: a root span arrives within
	// export_batch_timeout + reorder_window + 1 s.
	latencySlack = time.Second
	// throughputBatchTimeout caps kafka.export_batch_timeout in the
	// throughput phase. Under load every batch fills before it times out;
	// the timeout only delays the last partial batch, which would add up to
	// a second of idle wall time to a run of a few seconds. The latency
	// phase keeps the configured value, which is what it measures.
	throughputBatchTimeout = 100 * time.Millisecond
)

type benchFlags struct {
	events          int
	seed            int64
	players         int
	partitions      int
	openSessions    int
	latencyRate     float64
	latencyDuration time.Duration
	timeout         time.Duration
	json            bool
	verbose         bool
	cpuProfile      string
	// recovery switches to the restart bench (benchrecovery.go).
	recovery        bool
	recoveryRecords []int
	recoveryRate    float64
}

// validate checks the flags; each error names its flag and exits 2.
func (f benchFlags) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench: "+format, append([]any{errUsage}, args...)...)
	}
	switch {
	case f.events < 1 || f.events > benchMaxEvents:
		return bad("--events must be between 1 and %d, got %d", benchMaxEvents, f.events)
	case f.players < 1 || f.players > benchMaxOpenSessions:
		return bad("--players must be between 1 and %d, got %d", benchMaxOpenSessions, f.players)
	case f.partitions < 1 || f.partitions > benchMaxPartitions:
		return bad("--partitions must be between 1 and %d, got %d", benchMaxPartitions, f.partitions)
	case f.openSessions < 0 || f.openSessions > benchMaxOpenSessions:
		return bad("--open-sessions must be between 0 (off) and %d, got %d", benchMaxOpenSessions, f.openSessions)
	case f.latencyDuration < 0:
		return bad("--latency-duration must not be negative (0 skips the latency phase), got %s", f.latencyDuration)
	case f.latencyDuration > 0 && (!(f.latencyRate > 0) || math.IsInf(f.latencyRate, 0) || f.latencyRate > 1e7):
		return bad("--latency-rate must be above 0 and at most 1e7 events/s, got %v", f.latencyRate)
	case f.timeout <= 0:
		return bad("--timeout must be positive, got %s", f.timeout)
	case f.recovery:
		return f.validateRecovery()
	}
	return nil
}

func newBenchCmd(a *app) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, CPU, allocations, memory and latency against a bare franz-go loop",
		Long: `bench produces --events seeded simulated events once into a fresh topic, then consumes the same
records twice, one phase after the other: with a bare franz-go consume loop (fresh group, no
decoding), and with the full pipeline (group consumer, decoding, state machine, export over the
same OTLP/gRPC exporter as consume) until every expected span is received. For each it prints
wall time, events/s, spans/s, process CPU per event, allocations per event and peak RSS, and the
pipeline's ratio to the bare loop. The expected spans are counted by replaying the records through
the same state machine; spans dropped (expected minus received) must be 0, or bench exits 1. In
this phase kafka.export_batch_timeout and kafka.lifecycle.reorder_window are capped at 100ms: full
batches never wait for the timeout, and the window only delays the last events (released a window of
wall time after the last fetch); either would otherwise add idle time to the wall clock. --cpu-profile FILE writes a pprof
CPU profile of the pipeline phase.

A latency phase follows: events are produced at --latency-rate for --latency-duration on another
fresh topic while the pipeline runs, each stamped with the wall-clock instant it is produced (as its
ts and record timestamp), so a root span's end time is the produce time of the record that closed
the session. The latency of a session is the instant its root span is received minus that time,
reported as percentiles against the target kafka.export_batch_timeout +
kafka.lifecycle.reorder_window + 1s.

Without --brokers, an in-process kfake broker is used and its CPU and memory count in every figure:
quote the figures of a run against a real broker. Without --otlp-endpoint, an embedded OTLP/gRPC
receiver on 127.0.0.1 counts spans without decoding them (in this process too). With an endpoint,
a span counts as received when the endpoint acknowledged its export. Topics and groups the bench
creates are deleted at the end.

--open-sessions N measures memory instead, without Kafka: it builds N concurrent open sessions in
one lifecycle machine from simulated traffic, three times (logins without free-form attributes,
logins as simulated, and each player's first session in whatever phase it reached), and prints the
heap they hold per session after GC; the target is 128 bytes at 1,000,000.

--recovery measures restarts instead: against --brokers (kfake in this process without), two topics of
one partition, each with one session open since its first record, are consumed by 'sessiontrace
consume' processes (this binary; kafka.instance_id set, so a restart takes the partition back at
once), without snapshots on one and with them on the other (kafka.snapshot_interval, 1s when it is
0). For each amount of --recovery-records behind the open session (the last 1,000 produced just
before the kill), the process is killed with SIGKILL while it processes them, a marker session is
produced and a new process started; the restart is timed from its start until the embedded OTLP
receiver holds every span of those records and of the marker, with the new process's CPU. Spans lost
(must be 0) and duplicates (each must be closed at or above the commit's exported-through mark,
i.e. within one commit interval) are counted by span ID; either failing exits 1. --recovery-rate
states the records/s a partition takes, to print the event time the records stand for (and space
the events' timestamps).`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "otlp-endpoint", "otlp-insecure")
	fs := cmd.Flags()
	fs.IntVar(&f.events, "events", benchEvents, "simulated events to produce and consume in each throughput phase")
	fs.Int64Var(&f.seed, "seed", simulate.DefaultSeed, "random seed of the simulated traffic")
	fs.IntVar(&f.players, "players", benchPlayers, "concurrent simulated players in the throughput phases")
	fs.IntVar(&f.partitions, "partitions", benchPartitions, "partitions of the bench topics")
	fs.IntVar(&f.openSessions, "open-sessions", 0, "measure bytes per open session at this many concurrent sessions instead (no Kafka)")
	fs.Float64Var(&f.latencyRate, "latency-rate", benchLatencyRate, "events per second produced during the latency phase")
	fs.DurationVar(&f.latencyDuration, "latency-duration", benchLatencyDuration, "length of the latency phase (0 skips it)")
	fs.DurationVar(&f.timeout, "timeout", benchTimeout, "give up after this long")
	fs.BoolVar(&f.json, "json", false, "print the results as one JSON object instead of a table")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the pipeline phase to this file")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log the consumer's own messages (otherwise only warnings)")
	fs.BoolVar(&f.recovery, "recovery", false, "measure kill -9 and restart to caught-up, without and with snapshots, instead")
	fs.IntSliceVar(&f.recoveryRecords, "recovery-records", recoveryDefaultRecords, "with --recovery: records behind the open session at each kill")
	fs.Float64Var(&f.recoveryRate, "recovery-rate", recoveryRate, "with --recovery: records per second of a partition, to state the records as event time")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.validate(); err != nil {
			return err
		}
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validateClients(); err != nil {
			return err
		}
		level := "warn"
		if f.verbose {
			level = cfg.Log.Level
		}
		log := newLogger(logConfig{Level: level, Format: cfg.Log.Format}, a.stderr)
		if !f.recovery {
			for _, name := range []string{"recovery-records", "recovery-rate"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("%w: bench: --%s needs --recovery", errUsage, name)
				}
			}
		} else {
			for _, name := range []string{"otlp-endpoint", "events", "players", "partitions", "open-sessions", "latency-rate", "latency-duration", "cpu-profile", "seed"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("%w: bench: --%s does not apply to --recovery", errUsage, name)
				}
			}
		}
		if f.openSessions > 0 {
			for _, name := range []string{"brokers", "otlp-endpoint", "events", "partitions", "latency-rate", "latency-duration", "cpu-profile"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("%w: bench: --%s does not apply to --open-sessions, which measures memory without Kafka", errUsage, name)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			return benchOpenSessions(ctx, cfg.Kafka.Lifecycle.Config, f, a.stdout, a.stderr)
		}
		cfg.Kafka.Config.Brokers = slices.DeleteFunc(cfg.Kafka.Config.Brokers, func(s string) bool { return s == "" })
		probe := cfg.Kafka.Config
		probe.Brokers = []string{"placeholder:9092"} // the broker may be embedded
		if err := probe.Validate(); err != nil {
			return fmt.Errorf("%w: kafka.%w", errInvalidConfig, err)
		}
		if f.recovery {
			return benchRecovery(cmd.Context(), cfg, a.configPath, f, a.stdout, a.stderr, f.verbose)
		}
		return bench(cmd.Context(), cfg, f, a.stdout, a.stderr, log)
	}
	return cmd
}

// benchReport is everything one run measured; --json prints it as is.
type benchReport struct {
	Events     int   `json:"events"`
	Seed       int64 `json:"seed"`
	Players    int   `json:"players"`
	Partitions int   `json:"partitions"`
	GOMAXPROCS int   `json:"gomaxprocs"`
	// LoadAverage is /proc/loadavg's one-minute figure at the start: other
	// work on the machine shares its cores with the bench.
	LoadAverage     string  `json:"load_average,omitempty"`
	NumCPU          int     `json:"num_cpu"`
	Broker          string  `json:"broker"`
	BrokerInProcess bool    `json:"broker_in_process"`
	OTLP            string  `json:"otlp"`
	OTLPInProcess   bool    `json:"otlp_in_process"`
	Topic           string  `json:"topic"`
	ProducedBytes   int64   `json:"produced_bytes"`
	ProduceSeconds  float64 `json:"produce_seconds"`
	SessionsEnded   int     `json:"sessions_ended"`
	SessionsOpen    int     `json:"sessions_open"`

	// PipelineBatchTimeout is the export batch timeout of the throughput
	// phase (see throughputBatchTimeout).
	PipelineBatchTimeout string `json:"pipeline_export_batch_timeout"`
	// PipelineReorderWindow is the reorder window of the throughput phase
	// (capped like the batch timeout).
	PipelineReorderWindow string `json:"pipeline_reorder_window"`

	Bare     phaseReport  `json:"bare"`
	Pipeline phaseReport  `json:"pipeline"`
	Ratio    ratioReport  `json:"pipeline_vs_bare"`
	Spans    spanReport   `json:"spans"`
	Latency  *latencyJSON `json:"latency,omitempty"`
}

type phaseReport struct {
	Seconds        float64 `json:"seconds"`
	EventsPerSec   float64 `json:"events_per_second"`
	SpansPerSec    float64 `json:"spans_per_second,omitempty"`
	CPUNsPerEvent  float64 `json:"cpu_ns_per_event"`
	AllocsPerEvent float64 `json:"allocs_per_event"`
	PeakRSSBytes   uint64  `json:"peak_rss_bytes"`
	PeakRSSScope   string  `json:"peak_rss_scope"`
}

type ratioReport struct {
	EventsPerSec float64 `json:"events_per_second"`
	CPUPerEvent  float64 `json:"cpu_per_event"`
}

type spanReport struct {
	Expected int `json:"expected"`
	Received int `json:"received"`
	Dropped  int `json:"dropped"`
	// Duplicates are spans received beyond the expected: the delivery
	// contract allows them after a crash or rebalance, neither of which a
	// bench run has.
	Duplicates int `json:"duplicates"`
}

type latencyJSON struct {
	MeasuredAt         string  `json:"measured_at"`
	Rate               float64 `json:"rate"`
	Seconds            float64 `json:"seconds"`
	Events             int     `json:"events"`
	ExpectedRoots      int     `json:"expected_roots"`
	Roots              int     `json:"roots"`
	P50Ms              float64 `json:"p50_ms"`
	P90Ms              float64 `json:"p90_ms"`
	P99Ms              float64 `json:"p99_ms"`
	MaxMs              float64 `json:"max_ms"`
	TargetMs           float64 `json:"target_ms"`
	WithinTarget       int     `json:"within_target"`
	ExportBatchTimeout string  `json:"export_batch_timeout"`
	ReorderWindow      string  `json:"reorder_window"`
}

func phaseOf(s phaseStats, events, spans int) phaseReport {
	sec := max(s.Wall.Seconds(), 1e-9)
	p := phaseReport{
		Seconds:        s.Wall.Seconds(),
		EventsPerSec:   float64(events) / sec,
		CPUNsPerEvent:  float64(s.CPU.Nanoseconds()) / float64(max(events, 1)),
		AllocsPerEvent: float64(s.Mallocs) / float64(max(events, 1)),
		PeakRSSBytes:   s.PeakRSS,
		PeakRSSScope:   s.PeakRSSScope,
	}
	if spans > 0 {
		p.SpansPerSec = float64(spans) / sec
	}
	return p
}

// benchBroker starts an embedded kfake broker into cfg when it names no
// brokers, and says which broker the bench uses in broker and inProcess;
// the returned func closes the embedded one.
func benchBroker(cfg *config, broker *string, inProcess *bool) (func(), error) {
	if len(cfg.Kafka.Brokers) > 0 {
		*broker = strings.Join(cfg.Kafka.Brokers, ",")
		return func() {}, nil
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("bench: start embedded broker: %w", err)
	}
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	// The embedded broker speaks plain Kafka; security settings meant for a
	// real cluster do not apply to it.
	cfg.Kafka.TLS, cfg.Kafka.SASL = tlsConfig{}, saslConfig{}
	*broker, *inProcess = "embedded kfake "+cfg.Kafka.Brokers[0], true
	return cluster.Close, nil
}

// bench runs the throughput phases and the latency phase. Shutdown runs in
// reverse of start-up: each phase's consumer stops (drain, commit, leave)
// before the next phase starts; then the bench topics and groups are
// deleted, the meter provider and the exporter shut down, and the receiver
// and the embedded broker close.
func bench(ctx context.Context, cfg config, f benchFlags, stdout, stderr io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	rep := benchReport{
		Events: f.events, Seed: f.seed, Players: f.players, Partitions: f.partitions,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAverage: loadAverage(),
	}

	stopBroker, err := benchBroker(&cfg, &rep.Broker, &rep.BrokerInProcess)
	if err != nil {
		return err
	}
	defer stopBroker()
	var recv *receiver.Receiver
	if cfg.OTLP.Endpoint == "" {
		var err error
		if recv, err = receiver.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer recv.Close()
		recv.KeepSpans(false) // count only, so the receiver costs little of the CPU measured
		cfg.OTLP.Endpoint, cfg.OTLP.Insecure, cfg.OTLP.TLS = recv.Addr(), true, tlsConfig{}
		rep.OTLP, rep.OTLPInProcess = "embedded receiver "+recv.Addr(), true
	} else {
		rep.OTLP = cfg.OTLP.Endpoint
	}

	kopts, err := cfg.Kafka.kafkaOpts()
	if err != nil {
		return err
	}
	res, err := newResource(ctx)
	if err != nil {
		return err
	}
	exp, client, err := cfg.OTLP.newExporter(ctx, cfg.Kafka.RetryInitial, cfg.Kafka.RetryMax)
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer scancel()
		if err := exp.Shutdown(sctx); err != nil {
			log.Warn("otlp exporter shutdown", "error", err)
		}
	}()
	counted := newCountingExporter(exp)
	// The metrics consume records (consumer instruments and session
	// metrics, pushed over OTLP to the same endpoint when metrics.otlp is on),
	// so the pipeline measured pays for them as in production.
	pm, err := newMetrics(ctx, cfg, res, log)
	if err != nil {
		return err
	}
	defer pm.shutdown(log)
	copts := []consumer.Option{
		consumer.WithLogger(log), consumer.WithResource(res), consumer.WithMeterProvider(pm.provider),
		consumer.WithSessionMetrics(pm.sessions), consumer.WithKafkaOptions(kopts...),
	}
	if recv == nil {
		// Only an endpoint of the user's needs counting on the way out; the
		// embedded receiver counts what it takes, and decoding the direct
		// path's uploads again would cost more than the pipeline measured.
		copts = append(copts, consumer.WithOTLPClient(&countingClient{Client: client, e: counted}))
	} else {
		copts = append(copts, consumer.WithOTLPClient(client))
	}

	admCl, err := cfg.Kafka.kafkaClient()
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	name := fmt.Sprintf("sessiontrace-bench-%d-%08x", time.Now().Unix(), rand.Uint32())
	var made benchResources
	defer made.delete(adm, log)

	rep.Topic = name
	made.topics = append(made.topics, name, name+".dlq")
	if err := createBenchTopic(ctx, adm, name, f.partitions); err != nil {
		return err
	}

	sc := simulate.DefaultConfig()
	sc.Players, sc.Sessions, sc.Seed = f.players, 0, f.seed
	cc := cfg.Kafka.Config
	cc.Topic = name
	progress("producing %d events to %s on %s", f.events, name, rep.Broker)
	prod, err := produceBench(ctx, cfg.Kafka, name, f.partitions, sc, f.events, cc)
	if err != nil {
		return err
	}
	rep.ProducedBytes, rep.ProduceSeconds = prod.bytes, prod.elapsed.Seconds()
	rep.SessionsEnded, rep.SessionsOpen = prod.roots, prod.open
	rep.Spans.Expected = prod.spans

	progress("bare franz-go loop")
	made.groups = append(made.groups, name+"-bare")
	bare, err := bareLoop(ctx, cfg.Kafka, kopts, name, name+"-bare", f.events)
	if err != nil {
		return err
	}
	rep.Bare = phaseOf(bare, f.events, 0)

	progress("full pipeline to %s until %d spans are received", rep.OTLP, prod.spans)
	cc.Group = name + "-pipeline"
	cc.ExportBatchTimeout = min(cc.ExportBatchTimeout, throughputBatchTimeout)
	rep.PipelineBatchTimeout = cc.ExportBatchTimeout.String()
	// The reorder window is capped for the same reason: under load it only
	// delays the last window of events, which a quiet partition applies a
	// window of wall time after its last fetch.
	cc.Lifecycle.ReorderWindow = min(cc.Lifecycle.ReorderWindow, throughputBatchTimeout)
	rep.PipelineReorderWindow = cc.Lifecycle.ReorderWindow.String()
	made.groups = append(made.groups, cc.Group)
	received := func() int { return int(counted.acked.Load()) }
	wait := func(ctx context.Context, n int) error { return counted.wait(ctx, int64(n)) }
	if recv != nil {
		received, wait = recv.Count, recv.WaitCount
	}
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	pipe, waitErr := pipelinePhase(ctx, cc, counted, copts, prod.spans, wait)
	if err := stopProfile(); err != nil {
		return err
	}
	rep.Spans.Received = received()
	rep.Spans.Dropped = max(prod.spans-rep.Spans.Received, 0)
	rep.Spans.Duplicates = max(rep.Spans.Received-prod.spans, 0)
	if waitErr != nil && pipe == (phaseStats{}) {
		return waitErr
	}
	rep.Pipeline = phaseOf(pipe, f.events, rep.Spans.Received)
	rep.Ratio = ratioReport{
		EventsPerSec: rep.Pipeline.EventsPerSec / max(rep.Bare.EventsPerSec, 1e-9),
		CPUPerEvent:  rep.Pipeline.CPUNsPerEvent / max(rep.Bare.CPUNsPerEvent, 1e-9),
	}

	var latErr error
	if waitErr == nil && f.latencyDuration > 0 {
		lt := name + "-latency"
		made.topics = append(made.topics, lt, lt+".dlq")
		made.groups = append(made.groups, lt)
		if err := createBenchTopic(ctx, adm, lt, f.partitions); err != nil {
			return err
		}
		lc := cfg.Kafka.Config
		lc.Topic, lc.Group = lt, lt
		progress("latency: %.0f events/s for %s", f.latencyRate, f.latencyDuration)
		var lat latencySummary
		lat, latErr = latencyPhase(ctx, cfg.Kafka, lc, counted, copts, recv, f)
		rep.Latency = &latencyJSON{
			MeasuredAt: lat.MeasuredAt, Rate: f.latencyRate, Seconds: lat.Duration.Seconds(), Events: lat.EventsProduced,
			ExpectedRoots: lat.ExpectedRoots, Roots: lat.Roots,
			P50Ms: ms(lat.P50), P90Ms: ms(lat.P90), P99Ms: ms(lat.P99), MaxMs: ms(lat.Max),
			TargetMs: ms(lat.Target), WithinTarget: lat.WithinTarget, ExportBatchTimeout: lc.ExportBatchTimeout.String(),
			ReorderWindow: lc.Lifecycle.ReorderWindow.String(),
		}
	}

	if f.json {
		err = writeJSON(stdout, rep)
	} else {
		err = writeBenchText(stdout, rep)
	}
	switch {
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case waitErr != nil:
		return fmt.Errorf("bench: pipeline: %d of %d spans dropped: %w", rep.Spans.Dropped, rep.Spans.Expected, waitErr)
	case rep.Spans.Dropped > 0:
		return fmt.Errorf("bench: pipeline: %d of %d spans dropped", rep.Spans.Dropped, rep.Spans.Expected)
	case latErr != nil:
		return fmt.Errorf("bench: latency: %w", latErr)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchResources are the topics and groups a run created, deleted at the
// end so that a real broker is left as it was found.
type benchResources struct {
	topics, groups []string
}

func (r *benchResources) delete(adm *kadm.Client, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if len(r.groups) > 0 {
		if _, err := adm.DeleteGroups(ctx, r.groups...); err != nil {
			log.Warn("bench: delete groups", "groups", r.groups, "error", err)
		}
	}
	if len(r.topics) > 0 {
		// A dead-letter topic exists only if a consumer created it; a
		// missing one is not worth a warning.
		if _, err := adm.DeleteTopics(ctx, r.topics...); err != nil {
			log.Warn("bench: delete topics", "topics", r.topics, "error", err)
		}
	}
}

// topicPoll is how often createBenchTopic asks whether the topic is ready.
const topicPoll = 20 * time.Millisecond

// createBenchTopic creates topic and waits until every partition has a
// leader: a real broker answers CreateTopics before it can take records.
func createBenchTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	// Replication factor -1 is the broker's default, so a cluster that
	// requires more than one in-sync replica still accepts the records.
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("bench: create topic %s with %d partitions: %w", topic, partitions, err)
	}
	tick := time.NewTicker(topicPoll)
	defer tick.Stop()
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			ready := ok && td.Err == nil && len(td.Partitions) == partitions
			for _, p := range td.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: wait for topic %s: %w", topic, ctx.Err())
		case <-tick.C:
		}
	}
}

// produced is what the production step did and expects.
type produced struct {
	bytes   int64
	spans   int // spans the records finish, per the replay
	roots   int // sessions they end
	open    int // sessions still open after the last record
	elapsed time.Duration
}

// countingSink counts what a replay finishes.
type countingSink struct{ spans, roots int }

func (s *countingSink) Write(_ context.Context, spans []lifecycle.Span) error {
	s.spans += len(spans)
	for i := range spans {
		if spans[i].IsRoot() {
			s.roots++
		}
	}
	return nil
}

func (s *countingSink) Close(context.Context) error { return nil }

// produceBench produces n events of gen to topic and, record by record,
// replays them through the consumer's decoder and state machine to count the
// spans the pipeline must deliver. Partitions are chosen here (with Kafka's
// own key hash), so the replay sees each partition's records in the order the
// broker stores them.
func produceBench(ctx context.Context, k kafkaConfig, topic string, partitions int, sc simulate.Config, n int, cc consumer.Config) (produced, error) {
	var out produced
	gen, err := simulate.New(sc)
	if err != nil {
		return out, fmt.Errorf("%w: bench: %w", errUsage, err)
	}
	sink := &countingSink{}
	rp, err := consumer.NewReplayer(cc, sink)
	if err != nil {
		return out, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	cl, err := k.kafkaClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return out, err
	}
	defer cl.Close()
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	next := make([]int64, partitions)

	var (
		acked    atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("bench: produce to %s partition %d: %w", topic, r.Partition, err)
		}
	}
	start := time.Now()
	var ev schema.Event
	for i := 0; i < n && gen.Next(&ev); i++ {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("bench: produce: %w", err)
		}
		value := schema.AppendJSON(make([]byte, 0, 320), &ev)
		rec := &kgo.Record{Topic: topic, Key: []byte(ev.PlayerID), Value: value, Timestamp: time.Unix(0, ev.TS)}
		rec.Partition = int32(part.Partition(rec, partitions))
		if err := rp.Process(ctx, consumer.Record{Topic: topic, Partition: rec.Partition, Offset: next[rec.Partition], Key: rec.Key, Value: value}); err != nil {
			return out, fmt.Errorf("bench: replay for the expected spans: %w", err)
		}
		next[rec.Partition]++
		out.bytes += int64(len(value) + len(rec.Key))
		cl.Produce(ctx, rec, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return out, fmt.Errorf("bench: produce to %s: flush: %w", topic, err)
	}
	out.elapsed = time.Since(start)
	mu.Lock()
	err = firstErr
	mu.Unlock()
	if err != nil {
		return out, err
	}
	if got := int(acked.Load()); got != n {
		return out, fmt.Errorf("bench: produce to %s: %d of %d records acknowledged", topic, got, n)
	}
	stats, err := rp.Finish(ctx, false)
	if err != nil {
		return out, fmt.Errorf("bench: replay for the expected spans: %w", err)
	}
	out.spans, out.roots, out.open = sink.spans, sink.roots, len(stats.Open)
	return out, nil
}

// bareLoop consumes want records with a plain franz-go group consumer that
// does nothing with them: the floor the pipeline is compared with. The clock
// starts when the group assigns the partitions, as the pipeline's does.
func bareLoop(ctx context.Context, k kafkaConfig, kopts []kgo.Opt, topic, group string, want int) (phaseStats, error) {
	var start usage
	assigned := make(chan struct{})
	var once sync.Once
	opts := append(slices.Clone(kopts),
		kgo.SeedBrokers(k.Brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { start = readUsage(); close(assigned) })
		}),
	)
	peak := resetPeakRSS()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return phaseStats{}, fmt.Errorf("bench: bare loop: kafka client: %w", err)
	}
	defer cl.Close()
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return phaseStats{}, fmt.Errorf("bench: bare loop: consumed %d of %d records: %w", n, want, err)
		}
		n += fs.NumRecords()
	}
	end := readUsage()
	// Closed before the first record could be fetched; the select only
	// keeps a broken assumption from hanging the bench.
	select {
	case <-assigned:
	case <-ctx.Done():
		return phaseStats{}, fmt.Errorf("bench: bare loop: records consumed without an assignment: %w", ctx.Err())
	}
	return measured(start, end, peak), nil
}

// pipelinePhase runs the consumer until wait sees want spans received, and
// measures from the group's assignment to then. It returns zero stats only
// when nothing could be measured.
func pipelinePhase(ctx context.Context, cc consumer.Config, exp *countingExporter, opts []consumer.Option, want int,
	wait func(context.Context, int) error) (phaseStats, error) {
	peak := resetPeakRSS()
	c, err := consumer.New(cc, exp, opts...)
	if err != nil {
		return phaseStats{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	run := startConsumer(ctx, c)
	defer run.stop()
	if err := run.ready(ctx); err != nil {
		return phaseStats{}, fmt.Errorf("bench: pipeline: %w", err)
	}
	start := readUsage()
	werr := wait(ctx, want)
	end := readUsage()
	// Drain and commit before the next phase, so its CPU is not measured
	// there either.
	if err := run.stop(); err != nil {
		werr = errors.Join(werr, fmt.Errorf("bench: pipeline: consumer: %w", err))
	}
	return measured(start, end, peak), werr
}

// runningConsumer is a Consumer.Run in its own goroutine, stopped once.
type runningConsumer struct {
	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startConsumer(ctx context.Context, c *consumer.Consumer) *runningConsumer {
	// Run's context is not the bench's: a timeout must still let the
	// consumer drain and commit, which Run does when its own is cancelled.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &runningConsumer{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(runCtx) }()
	return r
}

// ready waits for the first assignment, Run to fail, or ctx.
func (r *runningConsumer) ready(ctx context.Context) error {
	select {
	case <-r.c.Ready():
		return nil
	case err := <-r.done:
		r.done <- err // for stop
		return fmt.Errorf("consumer stopped before it was assigned partitions: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("wait for partition assignment: %w", ctx.Err())
	}
}

// stop cancels Run and waits for it to drain and commit; it is idempotent.
func (r *runningConsumer) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
		if errors.Is(r.err, context.Canceled) {
			r.err = nil
		}
	})
	return r.err
}
