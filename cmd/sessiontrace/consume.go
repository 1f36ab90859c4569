package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiontrace/sessiontrace/consumer"
)

// cleanupTimeout bounds each shutdown step after the consumer has drained;
// the drain itself is bounded by kafka.shutdown_timeout.
const cleanupTimeout = 5 * time.Second

func newConsumeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consume the lifecycle topic as a consumer group and export session traces over OTLP",
		Long: `consume is the production mode. It joins the consumer group, turns every player session into one
trace, exports the spans over OTLP/gRPC and commits offsets only once the spans are accepted.
With --topics A,B,C it reads several co-partitioned topics (keyed by player ID, the same partition
count) together instead of --topic: partition n of every topic feeds one session state machine.

It serves /healthz (live), /readyz (assigned partitions and the exporter answers) and Prometheus
/metrics on --http-address. SIGTERM or SIGINT drain the partitions, commit and exit 0.`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "topic", "topics", "group", "start-offset", "otlp-endpoint", "otlp-insecure", "http-address")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validateConsume(); err != nil {
			return err
		}
		return consume(cmd.Context(), cfg, newLogger(cfg.Log, a.stderr))
	}
	return cmd
}

// consume runs the consumer until ctx is cancelled.
//
// Shutdown order, the one place it is written down:
//  1. ctx is cancelled (SIGTERM/SIGINT): /readyz turns 503 at once, and
//     Consumer.Run stops fetching, drains every partition's spans through
//     the exporter (bounded by kafka.shutdown_timeout), commits what was
//     acknowledged and leaves the group.
//  2. The HTTP server stops; it kept answering /healthz during the drain so
//     that an orchestrator does not kill a process that is still committing.
//  3. The meter provider shuts down, after the consumer stopped recording:
//     its OTLP reader pushes the last session metrics.
//  4. The OTLP exporter shuts down last: every partition was flushed through
//     it in step 1, and it is the one exporter built for the process.
func consume(ctx context.Context, cfg config, log *slog.Logger) error {
	res, err := newResource(ctx)
	if err != nil {
		return err
	}
	kopts, err := cfg.Kafka.kafkaOpts()
	if err != nil {
		return err
	}
	exp, client, err := cfg.OTLP.newExporter(ctx, cfg.Kafka.RetryInitial, cfg.Kafka.RetryMax)
	if err != nil {
		return err
	}
	watched := &watchedExporter{SpanExporter: exp}
	defer func() { // step 4
		sctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := exp.Shutdown(sctx); err != nil {
			log.Warn("otlp exporter shutdown", "error", err)
		}
	}()

	pm, err := newMetrics(ctx, cfg, res, log)
	if err != nil {
		return err
	}
	defer pm.shutdown(log) // step 3

	c, err := consumer.New(cfg.Kafka.Config, watched,
		consumer.WithLogger(log),
		consumer.WithMeterProvider(pm.provider),
		consumer.WithSessionMetrics(pm.sessions),
		consumer.WithResource(res),
		consumer.WithKafkaOptions(kopts...),
		consumer.WithOTLPClient(&watchedClient{Client: client, watch: watched}),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}

	h := &health{ready: c.Readiness, stopping: ctx.Done(), exporter: watched}
	srv, err := startHTTP(cfg.HTTP.Address, h, pm.registry, log)
	if err != nil {
		return err
	}
	defer srv.shutdown(log) // step 2

	log.Info("consuming", "brokers", cfg.Kafka.Brokers, "topics", cfg.Kafka.sources(), "group", cfg.Kafka.Group,
		"otlp_endpoint", cfg.OTLP.Endpoint, "sasl", cfg.Kafka.SASL.Mechanism, "tls", cfg.Kafka.TLS.Enabled)
	if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) { // step 1
		if errors.Is(err, consumer.ErrNotCoPartitioned) {
			// The topics the configuration names cannot be merged: a
			// configuration error (exit 2), like a bad key.
			return fmt.Errorf("%w: kafka.topics: %w", errInvalidConfig, err)
		}
		return fmt.Errorf("consume: %w", err)
	}
	log.Info("consumer stopped; acknowledged offsets committed")
	return nil
}
