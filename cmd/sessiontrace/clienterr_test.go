package main

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// clientErrorBound is how long a command may take to fail on a broker
// that refuses it: the check's own timeout is 10 s, and a refusal is
// answered at once.
const clientErrorBound = 8 * time.Second

// TestClientErrorsNameTheirCause: simulate, record and replay --topic fail
// within seconds when the broker refuses the login, denies the topic or
// does not know it, with one error line that says so and no doubled prefix.
func TestClientErrorsNameTheirCause(t *testing.T) {
	const user, pass, other = "sessiontrace", "correct-horse-battery", "no-acls"
	commands := []struct {
		name string
		args []string
	}{
		{"simulate", []string{"simulate", "--players", "2", "--sessions", "2"}},
		{"record", []string{"record", "--output", "-"}},
		{"replay --topic", []string{"replay", "-o", "json"}},
	}
	cases := []struct {
		name  string
		user  string
		pass  string
		topic string
		want  string
	}{
		{"wrong password", user, "wrong-" + pass, "t", "SASL authentication (SCRAM-SHA-512) failed"},
		{"unknown user", "nobody", pass, "t", "SASL authentication (SCRAM-SHA-512) failed"},
		{"unknown topic", user, pass, "no-such-topic", `topic "no-such-topic" does not exist`},
		{"not authorized", other, pass, "t", `not authorized to use topic "t" with SASL SCRAM-SHA-512`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
				kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("SCRAM-SHA-512", user, pass),
				kfake.User("SCRAM-SHA-512", other, pass))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			for _, cmdc := range commands {
				t.Run(cmdc.name, func(t *testing.T) {
					env := []string{"SESSIONTRACE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
						"SESSIONTRACE_KAFKA_SASL_USERNAME=" + c.user, "SESSIONTRACE_KAFKA_SASL_PASSWORD=" + c.pass}
					args := append(cmdc.args, "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--topic", c.topic, "--log-level", "debug")
					checkFailsFast(t, env, args, c.want, c.pass)
				})
			}
		})
	}
}

// TestSimulateWriteDenied: a user who may describe the topic but not write
// to it gets the broker's authorization error from simulate, once.
func TestSimulateWriteDenied(t *testing.T) {
	const user, pass = "reader", "pw"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", user, pass, kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "t",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	env := []string{"SESSIONTRACE_KAFKA_SASL_MECHANISM=PLAIN", "SESSIONTRACE_KAFKA_SASL_USERNAME=" + user,
		"SESSIONTRACE_KAFKA_SASL_PASSWORD=" + pass}
	checkFailsFast(t, env, []string{"simulate", "--players", "2", "--sessions", "2", "--brokers",
		strings.Join(cluster.ListenAddrs(), ","), "--topic", "t"}, "AUTHORIZATION_FAILED", pass)
}

// checkFailsFast runs the binary and checks it exits 1 within
// clientErrorBound with exactly one error line, containing want, without
// a repeated "<command>: " prefix and without the password.
func checkFailsFast(t *testing.T, env, args []string, want, pass string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*clientErrorBound)
	defer cancel()
	cmd := command(ctx, env, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("%v after %s, want exit %d:\n%s", err, el, exitFailure, stderr.String())
	}
	if el > clientErrorBound {
		t.Errorf("took %s to fail, want at most %s", el.Round(time.Millisecond), clientErrorBound)
	}
	var errLines []string
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if strings.HasPrefix(line, "sessiontrace: ") {
			errLines = append(errLines, line)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], want) {
		t.Fatalf("want one error line saying %q, got:\n%s", want, stderr.String())
	}
	line := strings.TrimPrefix(errLines[0], "sessiontrace: ")
	if first, _, ok := strings.Cut(line, ": "); ok && strings.Count(line, first+": ") > 1 {
		t.Errorf("the prefix %q repeats: %s", first, line)
	}
	if strings.Contains(stderr.String(), pass) {
		t.Errorf("the password appears on stderr:\n%s", stderr.String())
	}
}

// TestUnknownTopicEachBroker: record and replay --topic name a topic that
// does not exist, on every broker kind (a real broker creates topics for
// producers, so simulate is not asked).
func TestUnknownTopicEachBroker(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := "sessiontrace-no-such-topic-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		for _, args := range [][]string{{"record", "--output", "-"}, {"replay", "-o", "json"}} {
			checkFailsFast(t, nil, append(args, "--brokers", strings.Join(brokers, ","), "--topic", topic),
				strconv.Quote(topic)+" does not exist", "\x00no password")
		}
	})
}
