package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
)

func newRecordCmd(a *app) *cobra.Command {
	var from, to, output, progress string
	cmd := &cobra.Command{
		Use:   "record --brokers B --topic T [--from B] [--to B] [--output FILE]",
		Short: "Copy a topic, or a range of it, to a file that replay reads",
		Long: `record reads every partition of a topic between two bounds, without joining a consumer group, and
writes the records as kcat -J envelopes (topic, partition, offset, timestamp, headers, key, payload),
one per line, so that 'sessiontrace replay FILE' replays them exactly as 'replay --topic' replays the
same range. The copy is byte-faithful: a key, payload or headers that are not valid UTF-8 are written
in base64, marked by "key_encoding", "payload_encoding" or "headers_encoding": "base64" beside them;
text stays text, as kcat writes it.

Bounds: start, end (the end when the copy starts, so it finishes while producers keep writing), an
offset applied to every partition, or an RFC 3339 time, which means the Kafka record timestamp (when
the record was produced, or appended by the broker), not the event's own "ts".`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "topic")
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "start", "first record to copy: start, end, an offset (every partition) or an RFC 3339 time (of the Kafka record timestamp, not the event's ts)")
	fl.StringVar(&to, "to", "end", "where to stop (exclusive): start, end, an offset or an RFC 3339 time (of the Kafka record timestamp)")
	fl.StringVarP(&output, "output", "o", "-", `file to write ("-" is stdout); an existing file is replaced`)
	fl.StringVar(&progress, "progress", "auto", "progress line on stderr: auto (only on a terminal), always or never")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		if err := cfg.validateClients(); err != nil {
			return err
		}
		src, err := newTopicSource(cfg.Kafka, from, to)
		if err != nil {
			return err
		}
		return record(cmd.Context(), src, output, progress, a.stdout, a.stderr)
	}
	return cmd
}

// record copies src to output. The file is written beside its final name
// and renamed when complete, so an interrupted copy never leaves a file that
// looks whole.
func record(ctx context.Context, src *topicSource, output, progress string, stdout, stderr io.Writer) (err error) {
	w := stdout
	var tmp *os.File
	if output != "-" {
		tmp, err = os.CreateTemp(filepath.Dir(output), ".record-*")
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	rw := recordio.NewWriter(w)
	var n atomic.Int64
	start := time.Now()
	stop := startProgress(stderr, progress, &n, func() (float64, bool) { return 0, false })
	err = src.each(ctx, func(rec recordio.Record) error {
		n.Add(1)
		return rw.Write(rec)
	})
	stop()
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := rw.Flush(); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		if err := os.Rename(tmp.Name(), output); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	fmt.Fprintf(stderr, "recorded %d records of %s [%s, %s) in %s\n", n.Load(), src.kafka.Topic, src.from, src.to, time.Since(start).Round(time.Millisecond))
	return nil
}

// readTopic reads a range of the configured topic with the connection
// settings in opts.
func readTopic(ctx context.Context, k kafkaConfig, opts []kgo.Opt, from, to recordio.Bound, fn func(recordio.Record) error) error {
	if k.Topic == "" {
		return errors.New("kafka.topic: no topic")
	}
	opts = append(opts, kgo.SeedBrokers(k.Brokers...))
	if err := recordio.ReadTopic(ctx, opts, k.Topic, from, to, fn); err != nil {
		return err
	}
	return nil
}
