package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

func newSnapshotCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Inspect the snapshots of open sessions",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%w: snapshot: a subcommand is required (show)", errUsage)
		},
	}
	cmd.AddCommand(newSnapshotShowCmd(a))
	return cmd
}

func newSnapshotShowCmd(a *app) *cobra.Command {
	var partition int32
	var file string
	cmd := &cobra.Command{
		Use:   "show --partition N | --file FILE",
		Short: "Verify and summarise the snapshot a partition's commit names, or a snapshot file",
		Long: `show reads the commit of kafka.group on kafka.topic's partition N, fetches the snapshot it names
from kafka.snapshot_topic, verifies its SHA-256 and format, and prints what it holds: open sessions,
stream time, dedup window, interned values and size. With --file it reads a snapshot's bytes from a
file ("-" for stdin) instead. The exit status is 1 when the snapshot is missing or corrupt.`,
		Args: usageArgs(cobra.NoArgs),
	}
	l := a.loader(cmd, "brokers", "topic", "group")
	cmd.Flags().Int32Var(&partition, "partition", 0, "partition of kafka.topic whose commit names the snapshot")
	cmd.Flags().StringVar(&file, "file", "", "read a snapshot from this file instead of Kafka")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		if file != "" {
			var r io.Reader = os.Stdin
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			info, err := lifecycle.InspectSnapshot(r)
			if err != nil {
				return err
			}
			printSnapshot(out, info)
			return nil
		}
		cfg, err := l.load(a.configPath)
		if err != nil {
			return err
		}
		opts, err := cfg.Kafka.kafkaOpts()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
		defer cancel()
		cs, err := consumer.ReadCommittedSnapshot(ctx, cfg.Kafka.Config, partition, opts...)
		fmt.Fprintf(out, "partition\t%s/%d\ncommitted\t%d\nmetadata\t%s\n", cfg.Kafka.Topic, partition, cs.Committed, cs.Metadata)
		if err != nil {
			return err
		}
		if cs.Ref == "" {
			fmt.Fprintln(out, "snapshot\tnone (the commit names none)")
			return nil
		}
		fmt.Fprintf(out, "snapshot\t%s\n", cs.Ref)
		printSnapshot(out, cs.Info)
		return nil
	}
	return cmd
}

func printSnapshot(w io.Writer, info lifecycle.SnapshotInfo) {
	st := "none yet"
	if info.StreamTime != math.MinInt64 {
		st = time.Unix(0, info.StreamTime).UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(w, "version\t%d\nbytes\t%d\nsha256\t%x\nopen sessions\t%d\nwith extension records\t%d\nwith trace links\t%d\n",
		info.Version, info.Bytes, info.SHA256, info.Sessions, info.Extensions, info.Links)
	if info.Sessions > 0 {
		fmt.Fprintf(w, "oldest session's first offset\t%d\n", info.LowestOffset)
	}
	fmt.Fprintf(w, "stream time\t%s\ndedup window\t%d of %d event IDs", st, info.Remembered, info.Window)
	if info.Remembered > 0 {
		fmt.Fprintf(w, ", from offset %d", info.WindowStart)
	}
	fmt.Fprintf(w, "\ninterned values\t%d\nidle timeout\t%v\nmax duration\t%v\nheld by the reorder window\t%d events\n",
		info.Interned, time.Duration(info.IdleTimeout), time.Duration(info.MaxDuration), info.Held)
}
