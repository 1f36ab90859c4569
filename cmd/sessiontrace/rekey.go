package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/rekey"
)

func newRekeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Copy events keyed any way to a topic keyed by player ID, exactly once",
		Long: `rekey reads the rekey.topics (keyed by server, by match, or not at all) as the consumer group
rekey.group, finds each event's player with the v1 contract, and writes the record unchanged (value,
headers, timestamp) to rekey.output_topic keyed by player ID, so that consume sees every event of a
player on one partition. Each poll is one Kafka transaction holding the copies and the group's
offsets: a crash or a rebalance aborts it and the records are copied again, and a read_committed
reader (consume is one) sees every record exactly once. Records without a player go to the
dead-letter topic in the same transaction.

rekey keeps the order of one source partition; events of one player spread over several source
partitions or topics reach the output in the order they are read.

It serves /healthz, /readyz (owns partitions and its transactions commit) and /metrics on
--http-address. SIGTERM or SIGINT end the transaction in progress, leave the group and exit 0.`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "start-offset", "source-topics", "output-topic", "instance", "http-address")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		rcfg, err := cfg.rekeyConfig()
		if err != nil {
			return err
		}
		return runRekey(cmd.Context(), cfg, rcfg, newLogger(cfg.Log, a.stderr))
	}
	return cmd
}

// rekeyConfig is the validated configuration of rekey: the rekey.* keys
// with the brokers and start offset of the kafka.* keys.
func (c config) rekeyConfig() (rekey.Config, error) {
	if len(c.Kafka.Brokers) == 0 {
		return rekey.Config{}, fmt.Errorf("%w: kafka.brokers: no brokers (set --brokers or %s)", errInvalidConfig, envName("kafka.brokers"))
	}
	r := c.Rekey
	r.Brokers = c.Kafka.Brokers
	r.StartOffset = c.Kafka.StartOffset
	if err := r.Validate(); err != nil {
		return rekey.Config{}, fmt.Errorf("%w: rekey.%w", errInvalidConfig, err)
	}
	if err := c.validateClients(); err != nil {
		return rekey.Config{}, err
	}
	return r, nil
}

// runRekey runs the rekey member until ctx is cancelled.
//
// Shutdown order:
//  1. ctx is cancelled (SIGTERM/SIGINT): /readyz turns 503 at once; Run
//     ends the transaction in progress (bounded by
//     rekey.transaction_timeout) and leaves the group.
//  2. The HTTP server stops; it answered /healthz while the transaction
//     ended.
//  3. The meter provider shuts down and pushes its last metrics.
func runRekey(ctx context.Context, cfg config, rcfg rekey.Config, log *slog.Logger) error {
	res, err := newResource(ctx)
	if err != nil {
		return err
	}
	kopts, err := cfg.Kafka.kafkaOpts()
	if err != nil {
		return err
	}
	kopts = append(kopts,
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		kgo.RebalanceTimeout(cfg.Kafka.RebalanceTimeout),
		kgo.HeartbeatInterval(cfg.Kafka.HeartbeatInterval),
	)
	pm, err := newMetrics(ctx, cfg, res, log)
	if err != nil {
		return err
	}
	defer pm.shutdown(log) // step 3
	find, err := rekey.NewV1(cfg.Kafka.Limits)
	if err != nil {
		return fmt.Errorf("%w: kafka.limits: %w", errInvalidConfig, err)
	}
	r, err := rekey.New(rcfg,
		rekey.WithLogger(log),
		rekey.WithMeterProvider(pm.provider),
		rekey.WithFinder(find),
		rekey.WithKafkaOptions(kopts...),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	// rekey exports no spans: its readiness is the member's alone, and the
	// exporter watch, never fed, always answers.
	h := &health{ready: r.Readiness, stopping: ctx.Done(), exporter: &watchedExporter{}}
	srv, err := startHTTP(cfg.HTTP.Address, h, pm.registry, log)
	if err != nil {
		return err
	}
	defer srv.shutdown(log)            // step 2
	if err := r.Run(ctx); err != nil { // step 1
		return err
	}
	log.Info("rekey stopped; the last transaction ended")
	return nil
}
