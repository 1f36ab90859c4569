package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/kafkacheck"
	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
)

// simFlags are the simulator settings a user sets on the command line.
type simFlags struct {
	players      int
	sessions     int
	seed         int64
	rate         float64
	startTime    string
	crashVersion string
	crashProb    float64
	sessionIDs   bool
}

// register adds the simulator flags to fs with the simulator's defaults.
func (f *simFlags) register(fs *pflag.FlagSet, d simulate.Config) {
	fs.IntVar(&f.players, "players", d.Players, "concurrent players")
	fs.IntVar(&f.sessions, "sessions", d.Sessions, "sessions to generate in total")
	fs.Int64Var(&f.seed, "seed", d.Seed, "random seed: the same seed and flags give the same events")
	fs.Float64Var(&f.rate, "rate", d.Rate, "events per second to publish (0: as fast as possible)")
	fs.StringVar(&f.startTime, "start-time", d.StartTime.UTC().Format(time.RFC3339), `simulated clock start, RFC 3339, or "now"`)
	fs.StringVar(&f.crashVersion, "crash-version", d.CrashSpike.ClientVersion, "client version whose sessions crash mid-game (the bad-build scenario)")
	fs.Float64Var(&f.crashProb, "crash-probability", d.CrashSpike.Probability, "probability that a session on --crash-version crashes mid-game")
	fs.BoolVar(&f.sessionIDs, "session-ids", d.SessionIDs, "set session_id on every event")
}

// config applies the flags to the simulator's defaults.
func (f *simFlags) config(now time.Time) (simulate.Config, error) {
	c := simulate.DefaultConfig()
	c.Players, c.Sessions, c.Seed, c.Rate = f.players, f.sessions, f.seed, f.rate
	c.CrashSpike.ClientVersion, c.CrashSpike.Probability = f.crashVersion, f.crashProb
	c.SessionIDs = f.sessionIDs
	if f.startTime == "now" {
		c.StartTime = now.UTC().Truncate(time.Millisecond)
	} else {
		t, err := time.Parse(time.RFC3339Nano, f.startTime)
		if err != nil {
			return c, fmt.Errorf("%w: --start-time %q: want RFC 3339 or \"now\"", errUsage, f.startTime)
		}
		c.StartTime = t
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

func newSimulateCmd(a *app) *cobra.Command {
	var f simFlags
	var output string
	var pf producerFlags
	cmd := &cobra.Command{
		Use:   "simulate (--brokers B --topic T | --output FILE)",
		Short: "Publish realistic game-server traffic to Kafka, or write it to a file",
		Long: `simulate generates valid v1 lifecycle events for a population of concurrent players: logins,
matchmaking, loading screens, matches and disconnects with a realistic mix of platforms, client
versions and disconnect reasons, and optionally a crash spike for one client version. It is seeded:
the same flags give the same events. Records are keyed by player ID.

With --output FILE the events are written as JSONL (one event per line, "-" is stdout), which
'sessiontrace replay FILE' reads; otherwise they are published to --topic on --brokers, with the
time of publishing as their Kafka record timestamps: the simulated times are in each event's "ts",
so the times of record and replay --from/--to select by when events were published, not by "ts".
Before publishing it checks, within 10 s, that the brokers accept the credentials and know (or
create) the topic.

With --producer-topics AUTH,MATCHMAKING,MATCH the same events are published as a backend of three
services would write them: each service to its own topic, unkeyed or keyed by what it knows
(--producer-keys), each record delayed by up to --jitter, so that one player's events are spread
over partitions and out of order. 'sessiontrace rekey' turns that back into one topic keyed by
player. With --producer-keys player every service keys its records by player ID instead, so
topics with the same partition count are co-partitioned and 'sessiontrace consume --topics' reads
them as they are.`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "topic")
	f.register(cmd.Flags(), simulate.DefaultConfig())
	cmd.Flags().StringVarP(&output, "output", "o", "", `write JSONL to this file ("-" is stdout) instead of publishing to Kafka`)
	pf.register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validateClients(); err != nil {
			return err
		}
		sc, err := f.config(time.Now())
		if err != nil {
			return err
		}
		gen, err := simulate.New(sc)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		start := time.Now()
		var n int
		switch {
		case pf.on() && output != "":
			return fmt.Errorf("%w: --producer-topics publishes to Kafka; it cannot be combined with --output", errUsage)
		case pf.on():
			p, perr := pf.config(sc.Seed)
			if perr != nil {
				return perr
			}
			n, err = simulateProducers(cmd.Context(), cfg.Kafka, gen, p, sc.Rate)
		case output != "":
			n, err = simulateToFile(gen, output, a.stdout)
		default:
			n, err = simulateToKafka(cmd.Context(), cfg.Kafka, gen, sc.Rate)
		}
		if err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Fprintf(a.stderr, "simulated %d sessions of %d players: %d events in %s (%.0f events/s)\n",
			sc.Sessions, sc.Players, n, el.Round(time.Millisecond), float64(n)/max(el.Seconds(), 1e-9))
		return nil
	}
	return cmd
}

func simulateToFile(gen *simulate.Generator, output string, stdout io.Writer) (int, error) {
	w := stdout
	var f *os.File
	if output != "-" {
		var err error
		if f, err = os.Create(output); err != nil {
			return 0, fmt.Errorf("simulate: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	n, err := simulate.WriteJSONL(bw, gen)
	if err != nil {
		return n, fmt.Errorf("simulate: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("simulate: %w", err)
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return n, fmt.Errorf("simulate: %w", err)
		}
	}
	return n, nil
}

func simulateToKafka(ctx context.Context, k kafkaConfig, gen *simulate.Generator, rate float64) (int, error) {
	if k.Topic == "" {
		return 0, fmt.Errorf("%w: kafka.topic: no topic", errInvalidConfig)
	}
	// A generator should work against a fresh broker: let the first
	// produce create the topic where the broker allows it.
	var check kafkacheck.Checker
	cl, err := k.kafkaClient(kgo.AllowAutoTopicCreation(), kgo.WithHooks(&check))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	// A produce waits as long as it takes for a broker that accepts it, so
	// ask first: wrong credentials or a topic that cannot be written fail
	// here, in seconds, with the broker's reason.
	if err := check.Topic(ctx, cl, k.Topic, true); err != nil {
		return 0, fmt.Errorf("simulate: publish to %s: %w", k.Topic, err)
	}
	// Publish's errors name the operation and topic already.
	return simulate.Publish(ctx, cl, k.Topic, gen, rate)
}
