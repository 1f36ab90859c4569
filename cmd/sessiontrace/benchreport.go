package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeBenchText prints the report as a table, saying plainly which figures
// include an in-process broker or receiver.
func writeBenchText(w io.Writer, r benchReport) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "sessiontrace bench: %d events, seed %d, %d players, %d partitions; GOMAXPROCS %d, %d CPUs, %s",
		r.Events, r.Seed, r.Players, r.Partitions, r.GOMAXPROCS, r.NumCPU, runtime.Version())
	if r.LoadAverage != "" {
		// Other work on the machine takes cores from the bench.
		fmt.Fprintf(b, ", load average %s at start", r.LoadAverage)
	}
	fmt.Fprintln(b)
	if r.BrokerInProcess {
		fmt.Fprintf(b, "broker:  %s, in this process: its CPU, allocations and memory are in every figure below;\n"+
			"         quote a run against a real broker (--brokers)\n", r.Broker)
	} else {
		fmt.Fprintf(b, "broker:  %s (another process)\n", r.Broker)
	}
	if r.OTLPInProcess {
		fmt.Fprintf(b, "OTLP:    %s, counting spans without decoding them, in this process\n", r.OTLP)
	} else {
		fmt.Fprintf(b, "OTLP:    %s; a span counts as received when its export is acknowledged\n", r.OTLP)
	}
	fmt.Fprintf(b, "records: %d in topic %s (%s, %.0f B/event) produced in %s; the same records replayed through\n"+
		"         the state machine finish %d spans (%d sessions ended, %d still open at the end)\n\n",
		r.Events, r.Topic, formatBytes(uint64(r.ProducedBytes)), float64(r.ProducedBytes)/float64(max(r.Events, 1)),
		seconds(r.ProduceSeconds), r.Spans.Expected, r.SessionsEnded, r.SessionsOpen)

	fmt.Fprintf(b, "%-22s %9s %11s %10s %10s %13s %10s\n", "phase", "wall", "events/s", "spans/s", "CPU/event", "allocs/event", "peak RSS")
	row := func(name string, p phaseReport) {
		spans := "-"
		if p.SpansPerSec > 0 {
			spans = formatRate(p.SpansPerSec)
		}
		fmt.Fprintf(b, "%-22s %9s %11s %10s %10s %13.2f %10s\n", name, seconds(p.Seconds), formatRate(p.EventsPerSec), spans,
			formatNs(p.CPUNsPerEvent), p.AllocsPerEvent, formatBytes(p.PeakRSSBytes))
	}
	row("bare franz-go loop", r.Bare)
	row("pipeline to OTLP", r.Pipeline)
	fmt.Fprintf(b, "%-22s %9s %10.3f× %10s %9.2f×\n", "pipeline / bare", "", r.Ratio.EventsPerSec, "", r.Ratio.CPUPerEvent)
	fmt.Fprintf(b, "\nspans:   %d expected, %d received, %d dropped, %d duplicates\n",
		r.Spans.Expected, r.Spans.Received, r.Spans.Dropped, r.Spans.Duplicates)
	fmt.Fprintf(b, "CPU is the process's user+system time over the phase, from partition assignment to the last record\n"+
		"(bare) or the last expected span received (pipeline), whose last partial batch waits at most %s\n"+
		"(kafka.export_batch_timeout, capped at %s in this phase) and whose last events wait at most %s\n"+
		"(kafka.lifecycle.reorder_window, capped the same); peak RSS is per phase (%s scope).\n",
		r.PipelineBatchTimeout, throughputBatchTimeout, r.PipelineReorderWindow, r.Pipeline.PeakRSSScope)

	if l := r.Latency; l != nil {
		fmt.Fprintf(b, "\nlatency: record timestamp → %s,\n"+
			"         per session ended while %.0f events/s were produced for %s (%d events, %d of %d sessions timed):\n",
			l.MeasuredAt, l.Rate, seconds(l.Seconds), l.Events, l.Roots, l.ExpectedRoots)
		fmt.Fprintf(b, "         p50 %s  p90 %s  p99 %s  max %s;  target: export_batch_timeout %s + reorder_window %s + 1s = %s, %d of %d within\n",
			msec(l.P50Ms), msec(l.P90Ms), msec(l.P99Ms), msec(l.MaxMs), l.ExportBatchTimeout, l.ReorderWindow, msec(l.TargetMs), l.WithinTarget, l.Roots)
	}
	return b.Flush()
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func msec(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(100 * time.Microsecond).String()
}

func formatRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func formatNs(ns float64) string {
	if ns >= 1000 {
		return fmt.Sprintf("%.2fµs", ns/1000)
	}
	return fmt.Sprintf("%.0fns", ns)
}

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
