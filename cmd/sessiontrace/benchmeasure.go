package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is a snapshot of what the bench measures of the whole process: wall
// clock, CPU time (user + system, every thread, so an embedded broker or
// receiver counts too) and heap allocations so far.
type usage struct {
	at      time.Time
	cpu     time.Duration
	mallocs uint64
}

// readUsage takes a snapshot. ReadMemStats stops the world for a moment,
// which is why it is taken only at the edges of a phase.
func readUsage() usage {
	var ru syscall.Rusage
	// RUSAGE_SELF cannot fail with a valid pointer; a zero CPU time would
	// show in the output if it ever did.
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{
		at:      time.Now(),
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		mallocs: ms.Mallocs,
	}
}

// phaseStats is what one phase measured between two snapshots.
type phaseStats struct {
	Wall    time.Duration
	CPU     time.Duration
	Mallocs uint64
	// PeakRSS is the resident set's high-water mark in bytes: over the phase
	// alone when PeakRSSScope is "phase" (Linux, reset through
	// /proc/self/clear_refs), otherwise since the process started.
	PeakRSS      uint64
	PeakRSSScope string
}

func measured(from, to usage, peak peakRSS) phaseStats {
	rss, scope := peak.read()
	return phaseStats{
		Wall:         to.at.Sub(from.at),
		CPU:          to.cpu - from.cpu,
		Mallocs:      to.mallocs - from.mallocs,
		PeakRSS:      rss,
		PeakRSSScope: scope,
	}
}

// peakRSS reads the resident set's high-water mark. resetPeakRSS starts a
// new one where the kernel allows it, so each phase reports its own peak
// rather than the largest of all phases so far.
type peakRSS struct{ reset bool }

// resetPeakRSS releases what earlier phases left on the heap and resets the
// kernel's high-water mark (Linux 4.0+: "5" to /proc/self/clear_refs).
func resetPeakRSS() peakRSS {
	runtime.GC()
	err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return peakRSS{reset: err == nil}
}

func (p peakRSS) read() (uint64, string) {
	if p.reset {
		if kb, ok := procStatusKB("VmHWM:"); ok {
			return kb << 10, "phase"
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return uint64(ru.Maxrss) << 10, "process" // Linux reports Maxrss in KiB
}

// procStatusKB reads one "Name:   123 kB" line of /proc/self/status.
func procStatusKB(name string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		fields := bytes.Fields(line[len(name):])
		if len(fields) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
		return kb, err == nil
	}
	return 0, false
}

// loadAverage is the one-minute load average, or "" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// startCPUProfile starts a CPU profile into path (nothing when path is
// empty) and returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpu-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("bench: --cpu-profile: %w", err)
		}
		return nil
	}, nil
}
