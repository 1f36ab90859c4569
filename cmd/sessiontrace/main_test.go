package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// update rewrites golden files and the README's configuration reference
// instead of comparing against them.
var update = flag.Bool("update", false, "rewrite golden files and the README configuration region")

// binPath is the sessiontrace binary the tests run, built once by TestMain
// so that every test drives the command exactly as a user would.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "sessiontrace-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sessiontrace")
	// -race when the tests themselves are built with it costs startup time
	// for every run of the binary; the command's own concurrency is covered
	// by the in-process tests, so the binary is built plainly.
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sessiontrace:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	kafkatest.Main(m)
	os.RemoveAll(dir)
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// cliTimeout bounds every run of the binary.
const cliTimeout = 90 * time.Second

// runCLI runs the binary with args and extra environment variables
// ("NAME=value") and waits for it, failing t if it does not exit in time.
func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := command(ctx, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("sessiontrace %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("sessiontrace %s: did not exit within %s; stderr:\n%s", strings.Join(args, " "), cliTimeout, stderr.String())
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// command prepares a run of the binary with a clean SESSIONTRACE_*/OTEL_*
// environment, so a developer's settings cannot leak into a test.
func command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, args...)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, envPrefix+"_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// mustSucceed fails t unless r exited 0.
func mustSucceed(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstderr:\n%s", what, r.code, r.stderr)
	}
}

// repoFile returns the path of a file relative to the repository root.
func repoFile(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

// golden compares got with the golden file testdata/cli/name, or rewrites
// it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := repoFile("testdata", "cli", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./cmd/sessiontrace -update rewrites it; review the diff)\n%s",
			name, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant: %s\ngot:  %s", i+1, w, g)
		}
	}
	return "(no line differs; line endings?)"
}
