package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/report"
	"github.com/sessiontrace/sessiontrace/consumer"
)

type reportFlags struct {
	html                string
	baseline, candidate string
	from, to            string
	closeOpen           bool
}

func newReportCmd(a *app) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report [FILE | --topic TOPIC [--from B] [--to B] | --baseline A --candidate B]",
		Short: "Summarise recorded sessions: durations, matches, end reasons, time per phase, over time; compare two with confidence intervals",
		Long: `report replays its input through the same pipeline as replay and prints: median and p90
session duration by client.platform × client.version, matches played per session (games entered,
0 to 5+), end types and end reasons with their shares, the share of session time spent in each
phase, and a time axis: for every hour of session start (UTC), or every UTC day when the first and
last session start lie more than 7 days apart (up to 400 days; beyond that it only says the span),
the sessions started, their median duration, crash share and games entered per session. Buckets
run without gaps, so a bad build shows as a step at the hour it shipped; the heading names the
bucket where the crash share changes most (the largest two-proportion z over every split), when
that change passes a Bonferroni threshold (family-wise 5%).

Its input is a FILE (as for replay; "-" is stdin) or, with --topic, a range of a Kafka topic. With
--baseline and --candidate it prints, row by row, how the candidate differs from the baseline
instead: two files, or with --topic two ranges FROM..TO of the topic, each bound as --from and --to
take it (report --topic lifecycle --baseline 2026-11-01T00:00:00Z..2026-11-08T00:00:00Z
--candidate 2026-11-08T00:00:00Z..end compares the week before a patch with the days after it).
Every compared row has the sessions of each side and a 95% confidence interval of the difference,
candidate minus baseline: shares of sessions by Wilson intervals combined with Newcombe's method,
median and p90 durations by a percentile bootstrap (10000 resamples a side, seeded, so the output
is the same every time; at least 20 sessions a side, else "-"), phase shares of session time by a
delta-method interval (also 20 sessions a side). A row whose interval includes zero is marked
"n.s.", not significant: the difference may be noise. --html FILE also writes the same as one
self-contained HTML page with charts (inline SVG, no scripts, no external requests).

Durations are exact nearest-rank quantiles of session.duration_seconds. Sessions still open at the
end of the input are left out of every figure and counted; --close-open ends them as end_of_input
instead, so that they count. Phase shares are phase span time over session time: matchmaking,
in_game and other (menu, gaps) add up to 100%; loading runs beside them and is shown on its own.
Producers' values are printed with control characters escaped.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
	}
	l := a.loader(cmd, "brokers", "topic")
	fl := cmd.Flags()
	fl.StringVar(&f.html, "html", "", "also write the report as a self-contained HTML page to this file")
	fl.StringVar(&f.baseline, "baseline", "", "compare: the baseline recording, a file, or with --topic a range FROM..TO (needs --candidate)")
	fl.StringVar(&f.candidate, "candidate", "", "compare: the candidate recording, a file, or with --topic a range FROM..TO (needs --baseline)")
	fl.StringVar(&f.from, "from", "start", "with --topic: first record to read: start, end, an offset (every partition) or an RFC 3339 time (of the Kafka record timestamps, not the events' ts)")
	fl.StringVar(&f.to, "to", "end", "with --topic: where to stop (exclusive): start, end (the end when the report starts), an offset or an RFC 3339 time (of the Kafka record timestamps)")
	fl.BoolVar(&f.closeOpen, "close-open", false, "end the sessions still open at the end of the input as end_of_input and count them (default: leave them out, only count them)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fromTopic := cmd.Flags().Changed("topic")
		compare := f.baseline != "" || f.candidate != ""
		switch {
		case compare && (f.baseline == "" || f.candidate == ""):
			return fmt.Errorf("%w: report: --baseline and --candidate go together", errUsage)
		case compare && len(args) == 1:
			return fmt.Errorf("%w: report: give a FILE, --topic, or --baseline with --candidate, not several", errUsage)
		case compare && fromTopic && (cmd.Flags().Changed("from") || cmd.Flags().Changed("to")):
			return fmt.Errorf("%w: report: with --topic, --baseline and --candidate are ranges FROM..TO; --from and --to do not apply", errUsage)
		case !compare && fromTopic == (len(args) == 1):
			return fmt.Errorf("%w: report: give either a FILE or --topic (or --baseline and --candidate)", errUsage)
		case !fromTopic && (cmd.Flags().Changed("from") || cmd.Flags().Changed("to")):
			return fmt.Errorf("%w: report: --from and --to apply to --topic only", errUsage)
		}
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validatePipeline(); err != nil {
			return err
		}
		ctx := cmd.Context()
		if compare {
			side := func(flag, arg string) (*report.Report, error) {
				if fromTopic {
					return reportRange(ctx, cfg, f, flag, arg, a.stderr)
				}
				return reportFile(ctx, cfg, f, arg, cmd.InOrStdin(), a.stderr)
			}
			base, err := side("--baseline", f.baseline)
			if err != nil {
				return err
			}
			cand, err := side("--candidate", f.candidate)
			if err != nil {
				return err
			}
			c := report.Compare(base, cand)
			if err := report.WriteComparisonText(a.stdout, c); err != nil {
				return err
			}
			return writeHTMLFile(f.html, func(w io.Writer) error { return report.WriteComparisonHTML(w, c) })
		}
		var r *report.Report
		if fromTopic {
			src, err := newTopicSource(cfg.Kafka, f.from, f.to)
			if err != nil {
				return err
			}
			r, err = buildReport(ctx, cfg, f.closeOpen, src, fmt.Sprintf("topic %s [%s, %s)", cfg.Kafka.Topic, f.from, f.to), a.stderr)
			if err != nil {
				return err
			}
		} else {
			r, err = reportFile(ctx, cfg, f, args[0], cmd.InOrStdin(), a.stderr)
			if err != nil {
				return err
			}
		}
		if err := report.WriteText(a.stdout, r); err != nil {
			return err
		}
		return writeHTMLFile(f.html, func(w io.Writer) error { return report.WriteHTML(w, r) })
	}
	return cmd
}

func reportFile(ctx context.Context, cfg config, f reportFlags, path string, stdin io.Reader, stderr io.Writer) (*report.Report, error) {
	src, err := newFileSource(path, stdin)
	if err != nil {
		return nil, err
	}
	name := path
	if path == "-" {
		name = "stdin"
	}
	return buildReport(ctx, cfg, f.closeOpen, src, name, stderr)
}

// reportRange reports on the range FROM..TO of the topic, as the compare
// flag names it; each bound is what --from and --to accept.
func reportRange(ctx context.Context, cfg config, f reportFlags, flag, arg string, stderr io.Writer) (*report.Report, error) {
	from, to, ok := strings.Cut(arg, "..")
	if !ok || from == "" || to == "" {
		return nil, fmt.Errorf("%w: report: %s %q: with --topic, a range FROM..TO (e.g. start..1000 or 2026-11-01T00:00:00Z..end)", errUsage, flag, arg)
	}
	for _, b := range []string{from, to} {
		if _, err := recordio.ParseBound(b); err != nil {
			return nil, fmt.Errorf("%w: report: %s: %w", errUsage, flag, err)
		}
	}
	src, err := newTopicSource(cfg.Kafka, from, to)
	if err != nil {
		return nil, err
	}
	return buildReport(ctx, cfg, f.closeOpen, src, fmt.Sprintf("topic %s [%s, %s)", cfg.Kafka.Topic, from, to), stderr)
}

// buildReport replays src into a report.Collector, the same way replay
// feeds its sinks, and prints the replay summary on stderr.
func buildReport(ctx context.Context, cfg config, closeOpen bool, src source, name string, stderr io.Writer) (*report.Report, error) {
	defer src.close()
	col := report.NewCollector()
	rp, err := consumer.NewReplayer(cfg.Kafka.Config, col)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	runErr := src.each(ctx, func(rec recordio.Record) error {
		return rp.Process(ctx, consumer.Record{
			Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value,
			Headers: replayHeaders(rec.Headers),
		})
	})
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Kafka.ShutdownTimeout)
	defer cancel()
	stats, finErr := rp.Finish(fctx, closeOpen && runErr == nil)
	if err := errors.Join(runErr, finErr); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "%s: ", name)
	reportReplay(stderr, stats, closeOpen)
	open := len(stats.Open)
	if closeOpen {
		open = 0 // they were ended and are counted as sessions
	}
	return col.Report(name, open), nil
}

// writeHTMLFile writes the HTML page to path, when one was asked for.
func writeHTMLFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(fh); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
