package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryCommand: every command the binary has, and that the
// help or README names, is in the README's command table and in the help;
// none is hidden.
func TestREADMEListsEveryCommand(t *testing.T) {
	raw, err := os.ReadFile(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	root := newRootCmd(io.Discard, io.Discard)
	for _, cmd := range root.Commands() {
		if cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		if cmd.Hidden {
			t.Errorf("%s is hidden, so 'sessiontrace --help' does not list it", cmd.Name())
		}
		if !regexp.MustCompile("(?m)^\\| `sessiontrace " + regexp.QuoteMeta(cmd.Name()) + "[ `]").MatchString(readme) {
			t.Errorf("the README's command table has no row for %s", cmd.Name())
		}
	}
}

// TestREADMEPhaseEndedBy: the README lists every phase.ended_by value the
// state machine and replay write.
func TestREADMEPhaseEndedBy(t *testing.T) {
	raw, err := os.ReadFile(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, bullet, ok := strings.Cut(string(raw), "gets `phase.ended_by`")
	if !ok {
		t.Fatal("the README does not describe phase.ended_by")
	}
	bullet, _, _ = strings.Cut(bullet, "\n- ")
	for _, v := range []string{"disconnect", "timeout", "superseded", "max_duration", "next_phase", "end_of_input"} {
		if !strings.Contains(bullet, "`"+v+"`") {
			t.Errorf("the README's phase.ended_by list lacks %s", v)
		}
	}
	if strings.Contains(string(raw), "(96 bytes)") {
		t.Errorf("the README still says an open session takes 96 bytes; bench --open-sessions measures 121–127")
	}
}
