package kafkatest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Main runs the test binary's tests, terminates the testcontainers broker
// if one was started, and says once what ran on which backend. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// The summary is one line, printed only when a suite ran through Each:
//
//	kafkatest: consumer: external 14 skipped (SESSIONTRACE_TEST_BROKERS not set ...); testcontainers 14 passed (image ..., broker localhost:32771); kfake 14 passed
//
// With -v it goes to stdout. Without -v, go test shows a passing package's
// output to no one, so the line is written only when a real-broker backend
// was skipped, and then to the terminal (/dev/tty) when there is one: a
// developer's `go test ./...` says once per test binary that the Kafka
// suites ran on kfake alone, and why. Without a terminal it goes to stdout,
// which go test shows when the package fails.
//
// Main returns rather than exiting, so TestMain may clean up after it; the
// testing package exits with m.Run's code when TestMain returns.
func Main(m *testing.M) {
	inMain.Store(true)
	m.Run()
	terminateContainer()
	line, realSkipped := tally.summary(binaryName())
	if line == "" {
		return
	}
	var w io.Writer = os.Stdout
	if !testing.Verbose() {
		if !realSkipped {
			return
		}
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			w = tty
		}
	}
	fmt.Fprintln(w, line)
}

// inMain says whether the binary's TestMain calls Main, the only place the
// shared container is terminated.
var inMain atomic.Bool

// binaryName is the test binary's package name as go test builds it
// ("consumer.test").
func binaryName() string {
	return filepath.Base(os.Args[0])
}

// tally counts, per backend, how the subtests that Each ran ended, and why a
// backend was skipped.
var tally = &counts{byBackend: map[string]*outcome{}, skipReason: map[string]string{}}

type counts struct {
	mu        sync.Mutex
	byBackend map[string]*outcome
	// skipReason holds, by test name, why Start skipped a test.
	skipReason map[string]string
}

type outcome struct {
	passed, failed, skipped int
	// reason is why Start skipped the backend's subtests, when it did.
	reason string
}

// get returns the backend's outcome; the caller holds c.mu.
func (c *counts) get(backend string) *outcome {
	o := c.byBackend[backend]
	if o == nil {
		o = &outcome{}
		c.byBackend[backend] = o
	}
	return o
}

// record counts how t, a subtest Each ran on backend, ended. It runs in
// t's cleanup, once t and its own subtests are done.
func (c *counts) record(backend string, t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.get(backend)
	switch {
	case t.Failed():
		o.failed++
	case t.Skipped():
		o.skipped++
		if r, ok := c.skipReason[t.Name()]; ok {
			o.reason = r
		}
	default:
		o.passed++
	}
}

// skipped notes why Start skipped the test named name.
func (c *counts) skipped(name, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipReason[name] = reason
}

// summary returns the one-line account of what ran on which backend in
// binary ("" when no suite ran through Each), and whether a real-broker
// backend (external, testcontainers) was skipped as unavailable.
func (c *counts) summary(binary string) (line string, realSkipped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, b := range Backends() {
		o := c.byBackend[b.Name]
		if o == nil || o.passed+o.failed+o.skipped == 0 {
			continue
		}
		var n []string
		for _, k := range []struct {
			count int
			word  string
		}{{o.passed, "passed"}, {o.failed, "failed"}, {o.skipped, "skipped"}} {
			if k.count > 0 {
				n = append(n, fmt.Sprintf("%d %s", k.count, k.word))
			}
		}
		part := b.Name + " " + strings.Join(n, ", ")
		switch {
		case o.reason != "":
			part += " (" + o.reason + ")"
			if b.Name != Kfake {
				realSkipped = true
			}
		case b.Name == Testcontainers && container.image != "":
			part += fmt.Sprintf(" (image %s, broker %s)", container.image, strings.Join(container.brokers, ","))
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "", false
	}
	return "kafkatest: " + binary + ": " + strings.Join(parts, "; "), realSkipped
}

// skip skips t, noting the reason for the summary: t's backend is not
// available here.
func skip(t testing.TB, reason string) {
	t.Helper()
	tally.skipped(t.Name(), reason)
	t.Skip(reason)
}
