package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMappingCheck runs mapping check over the sample files: one line per
// record, rejections explained, producer text escaped, exit 1 when a
// record is rejected.
func TestMappingCheck(t *testing.T) {
	for _, c := range []struct {
		name, mapping, sample string
		code                  int
		summary               string
	}{
		{"playerhub", "playerhub.yaml", "playerhub.jsonl", exitFailure, "10 records: 4 events, 5 rejected, 1 ignored"},
		{"arena", "arena.yaml", "arena.jsonl", exitFailure, "113 records: 111 events, 1 rejected, 1 ignored"},
		{"cloudevents-structured", "cloudevents.yaml", "cloudevents-structured.jsonl", exitFailure, "112 records: 111 events, 1 rejected, 0 ignored"},
		{"cloudevents-binary", "cloudevents.yaml", "cloudevents-binary.jsonl", exitFailure, "112 records: 111 events, 1 rejected, 0 ignored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, "mapping", "check", "--mapping", repoFile("testdata", "mapping", c.mapping), repoFile("testdata", "mapping", c.sample))
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, c.code, r.stderr)
			}
			if !strings.Contains(r.stdout, c.summary+"\n") {
				t.Errorf("no summary %q in:\n%s", c.summary, r.stdout)
			}
			if strings.ContainsFunc(r.stdout, func(r rune) bool { return r < ' ' && r != '\n' }) {
				t.Errorf("control characters in the output:\n%q", r.stdout)
			}
			golden(t, "mapping-check."+c.name+".golden", []byte(r.stdout))
		})
	}
}

// TestMappingCheckInvalid: an invalid mapping fails at start with the key
// and the reason, as consume does with the same mapping in its
// configuration file.
func TestMappingCheckInvalid(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sample := write("s.jsonl", "{}\n")
	for _, c := range []struct {
		name, mapping string
		want          []string
	}{
		{"bad path", "player_id: {from: \"payload..id\"}\n", []string{`player_id.from "payload..id": empty member name`}},
		{"bad type", "type:\n  names: [{name: Login, type: login}]\n", []string{`type.names[0].type "login": not a v1 type`}},
		{"misspelt key", "player_idd: {from: x}\n", []string{"player_idd"}},
		{"bad zone", "ts: {from: t, layout: \"2006-01-02 15:04\", zone: Nowhere/City}\n", []string{`ts.zone "Nowhere/City"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := write(strings.ReplaceAll(c.name, " ", "-")+".yaml", c.mapping)
			r := runCLI(t, nil, "mapping", "check", "--mapping", m, sample)
			if r.code != exitUsage {
				t.Fatalf("mapping check: exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			indented := "    " + strings.ReplaceAll(strings.TrimSpace(c.mapping), "\n", "\n    ")
			cfg := write(strings.ReplaceAll(c.name, " ", "-")+".config.yaml", "kafka:\n  brokers: [127.0.0.1:1]\n  mapping:\n"+indented+"\n")
			rc := runCLI(t, nil, "consume", "--config", cfg)
			if rc.code != exitUsage {
				t.Fatalf("consume: exit %d, want %d; stderr:\n%s", rc.code, exitUsage, rc.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("mapping check stderr does not say %q:\n%s", w, r.stderr)
				}
				if !strings.Contains(rc.stderr, w) {
					t.Errorf("consume stderr does not say %q:\n%s", w, rc.stderr)
				}
			}
		})
	}
}
