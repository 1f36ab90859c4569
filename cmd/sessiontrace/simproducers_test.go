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
// writes to a file with the same seed, each service's on its topic, keyed
// as --producer-keys says. Keyed by player, every player's records are on
// the same partition number of every topic: the topics are co-partitioned.
func TestSimulateProducers(t *testing.T) {
	sim := []string{"simulate", "--players", "5", "--sessions", "12", "--seed", "9"}
	file := runCLI(t, nil, append(sim, "-o", "-")...)
	mustSucceed(t, file, "simulate to stdout")
	want := sortedLines(file.stdout)

	bad := runCLI(t, nil, append(sim, "--producer-topics", "a,b")...)
	if bad.code != exitUsage || !strings.Contains(bad.stderr, "three topics") {
		t.Errorf("two producer topics: exit %d, %q", bad.code, bad.stderr)
	}
	badKeys := runCLI(t, nil, append(sim, "--brokers", "127.0.0.1:1", "--producer-topics", "a,b,c", "--producer-keys", "server")...)
	if badKeys.code != exitUsage || !strings.Contains(badKeys.stderr, "player") {
		t.Errorf("unknown producer keys: exit %d, %q", badKeys.code, badKeys.stderr)
	}

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		for _, keys := range []string{"none", "player"} {
			t.Run(keys, func(t *testing.T) {
				auth, mm, match := kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 3)
				b := strings.Join(brokers, ",")
				r := runCLI(t, nil, append(sim, "--brokers", b, "--producer-topics", auth+","+mm+","+match,
					"--producer-keys", keys, "--jitter", "500ms")...)
				mustSucceed(t, r, "simulate --producer-topics --producer-keys "+keys)
				var got []string
				partitionOf := map[string]int32{} // player ID -> partition, over the three topics
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
							Partition int32   `json:"partition"`
							Key       *string `json:"key"`
							Payload   string  `json:"payload"`
						}
						if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
							t.Fatal(err)
						}
						var ev struct {
							Type     string `json:"type"`
							PlayerID string `json:"player_id"`
						}
						if err := json.Unmarshal([]byte(env.Payload), &ev); err != nil {
							t.Fatal(err)
						}
						key := ""
						if env.Key != nil {
							key = *env.Key
						}
						switch keys {
						case "none":
							if key != "" {
								t.Errorf("%s: record keyed %q, want unkeyed", topic, key)
							}
						case "player":
							if key != ev.PlayerID {
								t.Errorf("%s: %s record of %s keyed %q, want its player ID", topic, ev.Type, ev.PlayerID, key)
							}
							if p, ok := partitionOf[ev.PlayerID]; ok && p != env.Partition {
								t.Errorf("%s: %s's %s on partition %d, its other records on %d", topic, ev.PlayerID, ev.Type, env.Partition, p)
							}
							partitionOf[ev.PlayerID] = env.Partition
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
				if keys == "player" {
					spread := map[int32]bool{}
					for _, p := range partitionOf {
						spread[p] = true
					}
					// One partition for every player would make the check above vacuous.
					if len(spread) < 2 {
						t.Errorf("%d players all on partition(s) %v: the check proves nothing", len(partitionOf), spread)
					}
				}
			})
		}
	})
}

func equalSorted(a, b []string) bool {
	return strings.Join(sortedLines(strings.Join(a, "\n")+"\n"), "\n") == strings.Join(b, "\n")
}
