package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// TestSimulateProducers publishes a multi-producer backend and reads the
// three topics back: together they hold exactly the events the simulator
// writes to a file with the same seed, each service's on its topic,
// unkeyed.
func TestSimulateProducers(t *testing.T) {
	sim := []string{"simulate", "--players", "5", "--sessions", "12", "--seed", "9"}
	file := runCLI(t, nil, append(sim, "-o", "-")...)
	mustSucceed(t, file, "simulate to stdout")
	want := sortedLines(file.stdout)

	bad := runCLI(t, nil, append(sim, "--producer-topics", "a,b")...)
	if bad.code != exitUsage || !strings.Contains(bad.stderr, "three topics") {
		t.Errorf("two producer topics: exit %d, %q", bad.code, bad.stderr)
	}

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		auth, mm, match := kafkatest.Topic(t, brokers, 2), kafkatest.Topic(t, brokers, 2), kafkatest.Topic(t, brokers, 2)
		b := strings.Join(brokers, ",")
		r := runCLI(t, nil, append(sim, "--brokers", b, "--producer-topics", auth+","+mm+","+match, "--jitter", "500ms")...)
		mustSucceed(t, r, "simulate --producer-topics")
		var got []string
		for topic, types := range map[string][]string{
			auth:  {"session.login", "session.disconnect", "loading.start", "loading.finish"},
			mm:    {"matchmaking.enter", "matchmaking.complete", "matchmaking.cancel"},
			match: {"game.enter", "game.leave", "loading.start", "loading.finish"},
		} {
			rec := runCLI(t, nil, "record", "--brokers", b, "--topic", topic)
			mustSucceed(t, rec, "record "+topic)
			sc := bufio.NewScanner(strings.NewReader(rec.stdout))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var env struct {
					Key     *string `json:"key"`
					Payload string  `json:"payload"`
				}
				if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
					t.Fatal(err)
				}
				if env.Key != nil && *env.Key != "" {
					t.Errorf("%s: record keyed %q, want unkeyed", topic, *env.Key)
				}
				var ev struct {
					Type string `json:"type"`
				}
				if err := json.Unmarshal([]byte(env.Payload), &ev); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(strings.Join(types, " "), ev.Type) {
					t.Errorf("%s holds a %s event", topic, ev.Type)
				}
				got = append(got, env.Payload)
			}
		}
		if !equalSorted(got, want) {
			t.Errorf("the three topics hold %d events, which differ from the %d the file holds", len(got), len(want))
		}
	})
}

func equalSorted(a, b []string) bool {
	return strings.Join(sortedLines(strings.Join(a, "\n")+"\n"), "\n") == strings.Join(b, "\n")
}
