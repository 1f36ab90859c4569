package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// Demo defaults: small enough to finish in seconds on a laptop, large
// enough to show every kind of session end.
const (
	demoTopic      = "player-lifecycle"
	demoPartitions = 3
	demoSessions   = 300
	demoPlayers    = 60
	demoShow       = 12
	demoTimeout    = 60 * time.Second
)

type demoFlags struct {
	sim     simFlags
	show    int
	timeout time.Duration
	verbose bool
}

func newDemoCmd(a *app) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run broker, simulator, consumer and collector in one process and print session traces",
		Long: `demo needs no configuration, no Kafka and no collector. In one process it starts an in-process
Kafka-compatible broker (kfake) and an OTLP/gRPC receiver on 127.0.0.1, publishes simulated
sessions, runs the real consumer group against them, and prints each session's trace as its root
span arrives, then a summary. Trees come in arrival order: sessions end, and their partitions are
exported, concurrently, so they are not sorted by start time and the order may change from one run
to the next (the trees themselves do not). It stops by itself once every simulated session has
arrived, or after --timeout.`,
		Args: usageArgs(cobra.NoArgs),
	}
	d := simulate.DefaultConfig()
	d.Sessions, d.Players = demoSessions, demoPlayers
	f.sim.register(cmd.Flags(), d)
	cmd.Flags().IntVar(&f.show, "show", demoShow, "session trees to print (-1: all); the summary counts every session")
	cmd.Flags().DurationVar(&f.timeout, "timeout", demoTimeout, "stop after this long even if sessions are missing")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log the consumer's own messages to stderr")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		sc, err := f.sim.config(time.Now())
		if err != nil {
			return err
		}
		log := slog.New(slog.DiscardHandler)
		if f.verbose {
			log = newLogger(logConfig{Level: "info", Format: "text"}, a.stderr)
		}
		return demo(cmd.Context(), sc, f, a.stdout, log)
	}
	return cmd
}

// demoStats are the counts the summary prints.
type demoStats struct {
	mu        sync.Mutex
	sessions  int
	spans     int
	endTypes  map[string]int
	lastRoot  time.Time
	printed   int
	completed chan struct{} // closed when every expected session arrived
	expected  int
}

// demo wires the parts together. Shutdown runs in reverse: consumer (drain
// and commit), exporter, receiver, broker.
func demo(ctx context.Context, sc simulate.Config, f demoFlags, stdout io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(demoPartitions, demoTopic))
	if err != nil {
		return fmt.Errorf("demo: start broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer recv.Close()
	recv.KeepSpans(false) // the callback below sees every request; nothing needs keeping

	out := bufio.NewWriter(stdout)
	st := &demoStats{endTypes: map[string]int{}, completed: make(chan struct{}), expected: sc.Sessions}
	var trees treeBuilder
	recv.OnExport(func(req *coltracepb.ExportTraceServiceRequest) {
		// Callbacks run one at a time, so trees and out need no lock of
		// their own; st is read by the summary too.
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					tree, ok := trees.add(spanFromOTLP(sp))
					st.mu.Lock()
					st.spans++
					if ok {
						st.sessions++
						st.lastRoot = time.Now()
						root := tree[len(tree)-1]
						st.endTypes[attrMap(root.Attrs)[string(lifecycle.KeyEndType)]]++
						if f.show < 0 || st.printed < f.show {
							st.printed++
							renderTree(out, tree)
							out.Flush()
						}
						if st.sessions == st.expected {
							close(st.completed)
						}
					}
					st.mu.Unlock()
				}
			}
		}
	})

	client := otlptracegrpc.NewClient(otlptracegrpc.WithEndpoint(recv.Addr()), otlptracegrpc.WithInsecure())
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return fmt.Errorf("demo: exporter: %w", err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer scancel()
		_ = exp.Shutdown(sctx)
	}()
	res, err := newResource(ctx)
	if err != nil {
		return err
	}

	cc := consumer.DefaultConfig()
	cc.Brokers, cc.Topic, cc.Group = brokers, demoTopic, "sessiontrace-demo"
	// Short batches so trees appear as sessions end rather than a second
	// later; the demo's volume does not need large ones.
	cc.ExportBatchTimeout = 100 * time.Millisecond
	cc.CommitInterval = 200 * time.Millisecond
	c, err := consumer.New(cc, exp, consumer.WithOTLPClient(client), consumer.WithLogger(log), consumer.WithResource(res))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(runCtx) }()
	// stopConsumer drains and commits; it runs once, at the end or on an
	// early return, always before the exporter and receiver are closed.
	var stopOnce sync.Once
	var runErr error
	stopConsumer := func() error {
		stopOnce.Do(func() {
			cancelRun()
			runErr = <-runDone
		})
		return runErr
	}
	defer stopConsumer()

	fmt.Fprintf(out, "demo: broker %s, OTLP receiver %s; publishing %d sessions of %d players (seed %d)\n",
		brokers[0], recv.Addr(), sc.Sessions, sc.Players, sc.Seed)
	fmt.Fprintf(out, "session trees follow in the order their root spans arrive, not by start time\n\n")
	out.Flush()
	gen, err := simulate.New(sc)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	k := defaultConfig().Kafka
	k.Brokers, k.Topic = brokers, demoTopic
	start := time.Now()
	events, err := simulateToKafka(ctx, k, gen, sc.Rate)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	timedOut := false
	select {
	case <-st.completed:
	case <-ctx.Done():
		// Interrupted (SIGINT) or timed out: either way, summarise what came.
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	stopConsumer()

	st.mu.Lock()
	defer st.mu.Unlock()
	el := st.lastRoot.Sub(start)
	fmt.Fprintf(out, "\nsummary: %d of %d sessions, %d spans, %d events consumed in %s (%.0f events/s)\n",
		st.sessions, sc.Sessions, st.spans, events, el.Round(time.Millisecond), float64(events)/max(el.Seconds(), 1e-9))
	fmt.Fprintf(out, "end types: %s\n", formatCounts(st.endTypes))
	if st.printed < st.sessions {
		fmt.Fprintf(out, "(%d trees printed; --show -1 prints all)\n", st.printed)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("demo: consumer: %w", runErr)
	}
	if timedOut {
		return fmt.Errorf("demo: timed out after %s with %d of %d sessions", f.timeout, st.sessions, sc.Sessions)
	}
	return nil
}
