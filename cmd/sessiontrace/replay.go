package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Replay outputs.
const (
	outputOTLP = "otlp"
	outputJSON = "json"
	outputTree = "tree"
)

// maxOpenListed bounds the open sessions listed at the end of a replay; the
// count is always given.
const maxOpenListed = 10

type replayFlags struct {
	output    string
	from, to  string
	closeOpen bool
	progress  string
}

func newReplayCmd(a *app) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay [FILE | --topic TOPIC [--from B] [--to B]]",
		Short: "Run recorded records through the pipeline, without a consumer group",
		Long: `replay runs recorded records through the same decoder and session state machine as consume, without
joining a group and without committing. Its input is a FILE (JSONL of event values, or kcat -J
envelopes as kcat or 'sessiontrace record' writes them; "-" is stdin) or, with --topic, a range of a
Kafka topic. A recording replays exactly as the range it was recorded from: a record whose value is
over kafka.limits.max_record_bytes is counted as too_large without being held in memory, and bytes
that are not UTF-8 stay as they are, so such a record is malformed_json as on the topic.

--from and --to are offsets or Kafka record timestamps (set by the producer, or by the broker on a
LogAppendTime topic), not the events' own "ts": a topic filled by a replay, a backfill or
'sessiontrace simulate' has record times long after its events' times.

--output otlp exports to the configured OTLP endpoint (and, with metrics.otlp on, the default, the
session metrics of the replayed sessions once at the end); json prints one finished span per line
with OTLP JSON field names; tree prints a readable tree per session, producer text escaped. The same
input gives the same spans, IDs and timestamps included, and the same OTLP payloads byte for byte.

The summary on stderr counts the records the consumer would dead-letter, by reason (nothing is
written to Kafka), and the anomalies. Sessions still open at the end of the input are listed;
--close-open ends them as end_of_input.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
	}
	l := a.loader(cmd, "brokers", "topic", "otlp-endpoint", "otlp-insecure")
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", outputTree, "where spans go: otlp (the configured endpoint), json (stdout, OTLP JSON lines) or tree (stdout)")
	fl.StringVar(&f.from, "from", "start", "with --topic: first record to read: start, end, an offset (every partition) or an RFC 3339 time (of the Kafka record timestamp, not the event's ts)")
	fl.StringVar(&f.to, "to", "end", "with --topic: where to stop (exclusive): start, end (the end when the replay starts), an offset or an RFC 3339 time (of the Kafka record timestamp)")
	fl.BoolVar(&f.closeOpen, "close-open", false, "end the sessions still open at the end of the input as end_of_input (default: only report them)")
	fl.StringVar(&f.progress, "progress", "auto", "progress line on stderr: auto (only on a terminal), always or never")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch f.output {
		case outputOTLP, outputJSON, outputTree:
		default:
			return fmt.Errorf("%w: --output %q (want otlp, json or tree)", errUsage, f.output)
		}
		if !slices.Contains([]string{"auto", "always", "never"}, f.progress) {
			return fmt.Errorf("%w: --progress %q (want auto, always or never)", errUsage, f.progress)
		}
		fromTopic := cmd.Flags().Changed("topic")
		if fromTopic == (len(args) == 1) {
			return fmt.Errorf("%w: replay: give either a FILE or --topic", errUsage)
		}
		if !fromTopic && (cmd.Flags().Changed("from") || cmd.Flags().Changed("to")) {
			return fmt.Errorf("%w: replay: --from and --to apply to --topic only", errUsage)
		}
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validatePipeline(); err != nil {
			return err
		}
		log := newLogger(cfg.Log, a.stderr)
		var src source
		if fromTopic {
			src, err = newTopicSource(cfg.Kafka, f.from, f.to)
		} else {
			src, err = newFileSource(args[0], cmd.InOrStdin(), recordio.WithMaxValueBytes(cfg.Kafka.Limits.MaxRecordBytes))
		}
		if err != nil {
			return err
		}
		return replay(cmd.Context(), cfg, f, src, a.stdout, a.stderr, log)
	}
	return cmd
}

// source yields records to replay.
type source interface {
	// each calls fn for every record, in partition offset order.
	each(ctx context.Context, fn func(recordio.Record) error) error
	// progress returns the fraction of the input read, when it is known.
	progress() (float64, bool)
	close() error
}

type fileSource struct {
	r     *recordio.Reader
	f     *os.File
	size  int64
	count *countingReader
}

// newFileSource reads the record file at path ("-": stdin) with the reader
// options opts. Replay passes recordio.WithMaxValueBytes with the decoder's
// max_record_bytes, so that a value over it is not kept but comes as an
// oversized record, rejected as too_large (see replayRecord).
func newFileSource(path string, stdin io.Reader, opts ...recordio.Option) (*fileSource, error) {
	if path == "-" {
		return &fileSource{r: recordio.NewReader(stdin, "stdin", opts...)}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("replay: %s is a directory, not a record file", path)
	}
	cr := &countingReader{r: f}
	return &fileSource{r: recordio.NewReader(cr, path, opts...), f: f, size: st.Size(), count: cr}, nil
}

func (s *fileSource) each(ctx context.Context, fn func(recordio.Record) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// A line that is not a record means the file is not what replay
			// reads; stop with its file:line rather than guess.
			return fmt.Errorf("replay: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func (s *fileSource) progress() (float64, bool) {
	if s.count == nil || s.size <= 0 {
		return 0, false
	}
	return min(float64(s.count.n.Load())/float64(s.size), 1), true
}

func (s *fileSource) close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// countingReader counts the bytes read from a file, for the progress line.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type topicSource struct {
	kafka    kafkaConfig
	from, to recordio.Bound
}

func newTopicSource(k kafkaConfig, from, to string) (*topicSource, error) {
	if len(k.Brokers) == 0 {
		return nil, fmt.Errorf("%w: kafka.brokers: no brokers (set --brokers or %s)", errInvalidConfig, envName("kafka.brokers"))
	}
	fb, err := recordio.ParseBound(from)
	if err != nil {
		return nil, fmt.Errorf("%w: --from: %w", errUsage, err)
	}
	tb, err := recordio.ParseBound(to)
	if err != nil {
		return nil, fmt.Errorf("%w: --to: %w", errUsage, err)
	}
	return &topicSource{kafka: k, from: fb, to: tb}, nil
}

func (s *topicSource) each(ctx context.Context, fn func(recordio.Record) error) error {
	opts, err := s.kafka.kafkaOpts()
	if err != nil {
		return err
	}
	return readTopic(ctx, s.kafka, opts, s.from, s.to, fn)
}

func (s *topicSource) progress() (float64, bool) { return 0, false }
func (s *topicSource) close() error              { return nil }

// replay runs src through a Replayer into the sink f.output names.
func replay(ctx context.Context, cfg config, f replayFlags, src source, stdout, stderr io.Writer, log *slog.Logger) (err error) {
	defer src.close()
	var sink consumer.Sink
	switch f.output {
	case outputJSON:
		sink = newJSONSink(stdout)
	case outputTree:
		sink = newTreeSink(stdout)
	case outputOTLP:
		// The exporter's shutdown error joins the named result err, so
		// nothing in this case may declare an err of its own.
		res, rerr := newResource(ctx)
		if rerr != nil {
			return rerr
		}
		exp, client, eerr := cfg.OTLP.newExporter(ctx, cfg.Kafka.RetryInitial, cfg.Kafka.RetryMax)
		if eerr != nil {
			return eerr
		}
		defer func() { // the exporter goes last, after the sink drained through it
			sctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer cancel()
			err = errors.Join(err, exp.Shutdown(sctx))
		}()
		otlpSink, serr := consumer.OTLPSink(exp, cfg.Kafka.Config, consumer.WithOTLPClient(client), consumer.WithResource(res), consumer.WithLogger(log))
		if serr != nil {
			return fmt.Errorf("%w: %w", errInvalidConfig, serr)
		}
		sink = otlpSink
		if cfg.Metrics.OTLP {
			// The session metrics of the replayed sessions go to the same
			// endpoint, pushed at the end (after the spans, since this
			// defer runs before the exporter's).
			pm, merr := newMetrics(ctx, cfg, res, log)
			if merr != nil {
				return merr
			}
			defer pm.shutdown(log)
			sink = metricsSink{Sink: otlpSink, rec: pm.sessions}
		}
	}
	rp, err := consumer.NewReplayer(cfg.Kafka.Config, sink)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	var records atomic.Int64
	stopProgress := startProgress(stderr, f.progress, &records, src.progress)
	runErr := src.each(ctx, func(rec recordio.Record) error {
		records.Add(1)
		return rp.Process(ctx, replayRecord(rec))
	})
	stopProgress()
	// Finish even after a failure, so the sink is closed and what was
	// finished is flushed; its bound is the caller's context plus the
	// shutdown timeout for the drain.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Kafka.ShutdownTimeout)
	defer cancel()
	stats, finErr := rp.Finish(fctx, f.closeOpen && runErr == nil)
	if runErr != nil {
		return errors.Join(runErr, finErr)
	}
	if finErr != nil {
		return finErr
	}
	reportReplay(stderr, stats, f.closeOpen)
	return nil
}

// replayRecord is what the Replayer takes of a record: a value the file
// reader did not keep because it is over max_record_bytes (the reader's
// limit, see newFileSource) is rejected as too_large, as the consumer
// rejects it. Every path that replays records into a Replayer should build
// them here.
func replayRecord(rec recordio.Record) consumer.Record {
	return consumer.Record{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value,
		Headers: replayHeaders(rec.Headers), ValueTooLarge: rec.OversizedValue > 0,
	}
}

// replayHeaders is a recording's headers as the decoders read them: a
// mapping may read any, every decoder reads traceparent.
func replayHeaders(hs []recordio.Header) []schema.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]schema.Header, len(hs))
	for i, h := range hs {
		out[i] = schema.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// reportReplay prints the summary of a replay on stderr, so stdout carries
// only spans.
func reportReplay(w io.Writer, s consumer.ReplayStats, closed bool) {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Records) / s.Elapsed.Seconds()
	}
	fmt.Fprintf(w, "replayed %d records into %d spans in %s (%.0f records/s)\n", s.Records, s.Spans, s.Elapsed.Round(time.Millisecond), rate)
	if len(s.Rejected) > 0 {
		fmt.Fprintf(w, "rejected records (the consumer would dead-letter them): %s\n", formatCounts(s.Rejected))
	}
	if len(s.Anomalies) > 0 {
		fmt.Fprintf(w, "anomalies: %s\n", formatCounts(s.Anomalies))
	}
	if s.InvalidTraceparents > 0 {
		fmt.Fprintf(w, "invalid traceparents ignored (the events were applied without a trace link): %d\n", s.InvalidTraceparents)
	}
	if len(s.Open) == 0 {
		return
	}
	if closed {
		fmt.Fprintf(w, "%d sessions were still open at the end of the input; ended as end_of_input\n", len(s.Open))
		return
	}
	fmt.Fprintf(w, "%d sessions still open at the end of the input (their root spans are not exported; --close-open ends them as end_of_input):\n", len(s.Open))
	for i, o := range s.Open {
		if i == maxOpenListed {
			fmt.Fprintf(w, "  … and %d more\n", len(s.Open)-maxOpenListed)
			break
		}
		sid := ""
		if o.SessionID != "" {
			sid = " session " + safeText(o.SessionID)
		}
		fmt.Fprintf(w, "  %s%s  trace %s  since %s  in %s  first offset %d\n", safeText(o.PlayerID), sid, o.TraceID,
			time.Unix(0, o.Start).UTC().Format(time.RFC3339), safeText(string(o.Phase)), o.FirstOffset)
	}
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", safeText(k), m[k])
	}
	return strings.Join(parts, " ")
}

// progressInterval is how often the progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// startProgress redraws a progress line on w (records/s, and percentage and
// ETA when the input size is known) until the returned function is called.
// With mode auto it does nothing unless w is a terminal.
func startProgress(w io.Writer, mode string, records *atomic.Int64, fraction func() (float64, bool)) (stop func()) {
	if mode == "never" || (mode == "auto" && !isTerminal(w)) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	draw := func() {
		n := records.Load()
		el := time.Since(start)
		rate := float64(n) / max(el.Seconds(), 1e-9)
		line := fmt.Sprintf("%d records  %.0f records/s", n, rate)
		if fr, ok := fraction(); ok {
			line += fmt.Sprintf("  %5.1f%%", fr*100)
			if fr > 0 && fr < 1 {
				eta := time.Duration(float64(el) * (1 - fr) / fr)
				line += "  ETA " + eta.Round(time.Second).String()
			}
		}
		fmt.Fprintf(w, "\r\033[K%s", line)
	}
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				draw()
				fmt.Fprintln(w)
				return
			case <-t.C:
				draw()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// isTerminal reports whether w is a character device, which is how a
// terminal looks without a terminal library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
