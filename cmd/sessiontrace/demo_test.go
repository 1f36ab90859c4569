package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a user would, with fewer
// sessions: it must print session trees and a summary and exit 0 by itself.
func TestDemo(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		trees int
		want  []string
	}{
		{"defaults", []string{"demo"}, demoShow, []string{"summary: 300 of 300 sessions", "end types: ", "in the order their root spans arrive"}},
		{"all trees", []string{"demo", "--sessions", "40", "--players", "10", "--show", "-1", "--seed", "3"}, 40, []string{"summary: 40 of 40 sessions"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, c.args...)
			mustSucceed(t, r, "demo")
			roots := regexp.MustCompile(`(?m)^session\.lifecycle player-\d+  trace [0-9a-f]{32}`).FindAllString(r.stdout, -1)
			if len(roots) != c.trees {
				t.Errorf("%d session trees printed, want %d:\n%s", len(roots), c.trees, r.stdout)
			}
			if !strings.Contains(r.stdout, "├─ session.phase.login") && !strings.Contains(r.stdout, "└─ session.phase.login") {
				t.Errorf("no phase spans in the trees:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout, " 1 matches") {
				t.Errorf("a tree says \"1 matches\":\n%s", r.stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}
