package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// TestSnapshotShowFile: show verifies a snapshot file and prints what it
// holds, and exits 1 for a corrupt one.
func TestSnapshotShowFile(t *testing.T) {
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"a", "b", "c"} {
		m.Apply(&schema.Event{Type: schema.SessionLogin, PlayerID: p, EventID: p, TS: int64(i+1) * 1e9}, int64(10+i), nil)
	}
	var b bytes.Buffer
	if _, _, err := m.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	corrupt := bytes.Clone(b.Bytes())
	corrupt[len(corrupt)/2] ^= 1
	if err := os.WriteFile(good, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "snapshot", "show", "--file", good)
	if r.code != 0 || !strings.Contains(r.stdout, "open sessions\t3\n") || !strings.Contains(r.stdout, "oldest session's first offset\t10\n") {
		t.Fatalf("show good: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// One taken with events held by the reorder window (version 3).
	var held bytes.Buffer
	ev := schema.Event{Type: schema.SessionDisconnect, PlayerID: "a", EventID: "a-out", TS: 5e9, Reason: "client_quit"}
	if _, _, err := m.WriteSnapshotReorder(&held, &lifecycle.Reorder{Latest: 5e9, Cut: 13, CutLow: 10, Applied: 12,
		Held: []lifecycle.HeldEvent{{Event: ev, Offset: 13, WindowStart: 10}}}); err != nil {
		t.Fatal(err)
	}
	heldFile := filepath.Join(dir, "held")
	if err := os.WriteFile(heldFile, held.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, nil, "snapshot", "show", "--file", heldFile)
	if r.code != 0 || !strings.Contains(r.stdout, "version\t3\n") || !strings.Contains(r.stdout, "held by the reorder window\t1 events\n") {
		t.Fatalf("show held: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(runCLI(t, nil, "snapshot", "show", "--file", good).stdout, "held by the reorder window\t0 events\n") {
		t.Fatal("show good: no held events line")
	}
	r = runCLI(t, nil, "snapshot", "show", "--file", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "snapshot corrupt") {
		t.Fatalf("show corrupt: exit %d, want 1 naming the corruption\n%s%s", r.code, r.stdout, r.stderr)
	}
}
