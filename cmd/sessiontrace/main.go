// Command sessiontrace turns player lifecycle events on a Kafka topic into
// one OpenTelemetry trace per player session.
//
// Subcommands:
//
//	consume    the production mode: a consumer group exporting over OTLP
//	rekey      copy events keyed any way to a topic keyed by player, exactly once
//	replay     run a recorded file or a topic range through the same pipeline
//	simulate   publish realistic game-server traffic to Kafka or a file
//	record     copy a topic range to a file that replay reads, byte for byte
//	report     session statistics of a recording or a topic range, or a comparison of two
//	demo       everything in one process, with no configuration at all
//	bench      throughput, CPU, allocations, memory and latency beside a bare franz-go loop
//	config-doc print the configuration reference
//
// Configuration comes from a YAML file (--config), SESSIONTRACE_* environment
// variables and flags, in increasing precedence; `sessiontrace config-doc`
// prints the reference. Exit status: 0 on success (including a shutdown by
// SIGTERM or SIGINT), 2 for a usage or configuration error, 1 otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks errors in how the command was called.
var errUsage = errors.New("invalid usage")

func main() {
	// SIGTERM and SIGINT cancel the context; each subcommand drains and
	// returns, so the deferred cleanups run and the exit status is 0.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "sessiontrace: %s\n", errorText(err.Error()))
	// Cobra reports an unknown subcommand as a plain error.
	if strings.HasPrefix(err.Error(), "unknown command") {
		err = fmt.Errorf("%w: %w", errUsage, err)
	}
	if errors.Is(err, errUsage) || errors.Is(err, errInvalidConfig) {
		if !errors.Is(err, errInvalidConfig) {
			fmt.Fprintln(stderr, "Run 'sessiontrace --help' or 'sessiontrace <command> --help' for usage.")
		}
		return exitUsage
	}
	return exitFailure
}

// app holds what every subcommand shares.
type app struct {
	root       *cobra.Command
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "sessiontrace",
		Short: "Turn player lifecycle events on Kafka into one OpenTelemetry trace per session",
		Long: `sessiontrace consumes player lifecycle events from Kafka and turns each player session into one
OpenTelemetry trace (root span session.lifecycle, one child span per phase), exported over OTLP/gRPC.
Offsets are committed only after the spans they produced were accepted by the OTLP endpoint.

Start with 'sessiontrace demo': it needs no Kafka and no collector.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", errUsage, err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "YAML configuration file (see 'sessiontrace config-doc'); env and flags override it")
	d := defaultConfig()
	pf.String("log-level", d.Log.Level, plainDoc("log.level")+" (config key log.level, env "+envName("log.level")+")")
	pf.String("log-format", d.Log.Format, plainDoc("log.format")+" (config key log.format, env "+envName("log.format")+")")
	a.root = root
	root.AddCommand(
		newConsumeCmd(a),
		newRekeyCmd(a),
		newReplayCmd(a),
		newSimulateCmd(a),
		newRecordCmd(a),
		newDemoCmd(a),
		newBenchCmd(a),
		newReportCmd(a),
		newMappingCmd(a),
		newSnapshotCmd(a),
		newConfigDocCmd(),
	)
	return root
}

// loader returns a configuration loader with the root's persistent flags and
// the named configuration flags of cmd bound to it. Each subcommand has its
// own, so that flags of one never shadow those of another.
func (a *app) loader(cmd *cobra.Command, flags ...string) *loader {
	l := newLoader()
	addConfigFlags(cmd.Flags(), l, flags...)
	l.bind("log.level", a.root.PersistentFlags().Lookup("log-level"))
	l.bind("log.format", a.root.PersistentFlags().Lookup("log-format"))
	return l
}

// usageArgs wraps a cobra positional-argument check so that a wrong number
// of arguments exits with the usage status.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w: %s: %w", errUsage, cmd.Name(), err)
		}
		return nil
	}
}
