package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestHelp checks that --help on every subcommand documents every flag it
// accepts, with its default when it has one.
func TestHelp(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	for _, cmd := range root.Commands() {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		t.Run(cmd.Name(), func(t *testing.T) {
			r := runCLI(t, nil, cmd.Name(), "--help")
			mustSucceed(t, r, cmd.Name()+" --help")
			check := func(f *pflag.Flag) {
				if f.Name == "help" {
					return
				}
				if !strings.Contains(r.stdout, "--"+f.Name) {
					t.Errorf("--help does not list --%s", f.Name)
				}
				if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" &&
					!strings.Contains(r.stdout, "(default "+quoteDefault(f)) {
					t.Errorf("--help does not show the default of --%s (%s)", f.Name, f.DefValue)
				}
			}
			cmd.Flags().VisitAll(check)
			cmd.InheritedFlags().VisitAll(check)
		})
	}
}

// quoteDefault is how pflag prints a default: strings quoted.
func quoteDefault(f *pflag.Flag) string {
	if f.Value.Type() == "string" {
		return `"` + f.DefValue + `"`
	}
	return f.DefValue
}

// TestUsageErrors drives the binary with bad flags, arguments and files:
// each must fail with a clear message and a non-zero status.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "not-json.jsonl")
	writeFile(t, notJSON, "this is not a record file\n")
	badLine := filepath.Join(dir, "bad-line.jsonl")
	writeFile(t, badLine, `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-01-01T00:00:00Z","auth_method":"token","client_version":"1","platform":"pc"}`+"\n{broken\n")
	badEnvelope := filepath.Join(dir, "bad-envelope.jsonl")
	writeFile(t, badEnvelope, `{"topic":"t","partition":0,"offset":-3,"key":"p1","payload":"{}"}`+"\n")
	badConfig := filepath.Join(dir, "bad.yaml")
	writeFile(t, badConfig, "kafka:\n  brokers: [a:1]\n  start_offset: sideways\n")
	notYAML := filepath.Join(dir, "not.yaml")
	writeFile(t, notYAML, "kafka: [unclosed\n")

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string // substrings of stderr
	}{
		{"unknown command", []string{"consum"}, exitUsage, []string{`unknown command "consum"`}},
		{"unknown flag", []string{"consume", "--brokerz", "x:1"}, exitUsage, []string{"unknown flag: --brokerz"}},
		{"bad flag value", []string{"simulate", "--players", "many"}, exitUsage, []string{"--players", "many"}},
		{"consume without brokers", []string{"consume"}, exitUsage, []string{"kafka.brokers", "no brokers"}},
		{"consume topic not in topics", []string{"consume", "--brokers", "a:1", "--topic", "game.lifecycle", "--topics", "auth-events,match-events"}, exitUsage,
			[]string{"kafka.topic \"game.lifecycle\"", "kafka.topics [auth-events match-events]"}},
		{"consume topic listed twice", []string{"consume", "--brokers", "a:1", "--topics", "auth-events,auth-events"}, exitUsage, []string{"kafka.topics", "listed twice"}},
		{"consume bad config value", []string{"consume", "--config", badConfig}, exitUsage, []string{"kafka.start_offset", "earliest or latest"}},
		{"config file missing", []string{"consume", "--config", filepath.Join(dir, "nope.yaml")}, exitUsage, []string{"nope.yaml"}},
		{"config file not yaml", []string{"consume", "--config", notYAML}, exitUsage, []string{"not.yaml"}},
		{"consume extra argument", []string{"consume", "extra"}, exitUsage, []string{"consume", "extra"}},
		{"replay nothing", []string{"replay"}, exitUsage, []string{"either a FILE or --topic"}},
		{"replay file and topic", []string{"replay", notJSON, "--topic", "t"}, exitUsage, []string{"either a FILE or --topic"}},
		{"replay bad output", []string{"replay", "--output", "xml", notJSON}, exitUsage, []string{"--output", "otlp, json or tree"}},
		{"replay from without topic", []string{"replay", "--from", "10", notJSON}, exitUsage, []string{"--from and --to apply to --topic only"}},
		{"replay bad bound", []string{"replay", "--topic", "t", "--brokers", "127.0.0.1:1", "--from", "yesterday"}, exitUsage, []string{"--from", "start, end, an offset or an RFC 3339 time"}},
		{"replay missing file", []string{"replay", filepath.Join(dir, "missing.jsonl")}, exitFailure, []string{"missing.jsonl", "no such file"}},
		{"replay directory", []string{"replay", dir}, exitFailure, []string{"is a directory"}},
		{"replay not json", []string{"replay", notJSON}, exitFailure, []string{"not-json.jsonl:1"}},
		{"replay broken line", []string{"replay", "-o", "json", badLine}, exitFailure, []string{"bad-line.jsonl:2", "invalid JSON"}},
		{"replay bad envelope", []string{"replay", badEnvelope}, exitFailure, []string{"bad-envelope.jsonl:1", `"offset"`}},
		{"record without brokers", []string{"record", "--topic", "t"}, exitUsage, []string{"kafka.brokers"}},
		{"simulate bad start time", []string{"simulate", "-o", "-", "--start-time", "noon"}, exitUsage, []string{"--start-time", "RFC 3339"}},
		{"simulate bad probability", []string{"simulate", "-o", "-", "--crash-probability", "2"}, exitUsage, []string{"simulate"}},
		{"simulate without brokers", []string{"simulate"}, exitUsage, []string{"kafka.brokers"}},
		{"demo bad flag", []string{"demo", "--sessions", "-1"}, exitUsage, []string{"simulate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, c.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "sessiontrace: ") {
				t.Errorf("stderr does not start with the error: %q", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("stderr has a stack trace:\n%s", r.stderr)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInvalidSettingsFromEnvironment checks that settings only the
// environment or the file set fail at start, naming the key and what it
// accepts.
func TestInvalidSettingsFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		env  string
		want []string
	}{
		{"SESSIONTRACE_METRICS_MAX_CLIENT_VERSIONS=0", []string{"metrics.max_client_versions", "at least 1"}},
		{"SESSIONTRACE_METRICS_MAX_VALUES=-2", []string{"metrics.max_values", "at least 1"}},
		{"SESSIONTRACE_METRICS_INTERVAL=0s", []string{"metrics.interval", "must be positive"}},
		{"SESSIONTRACE_KAFKA_EXPORT_PATH=fast", []string{"export_path", "direct", "sdk"}},
	} {
		t.Run(c.env, func(t *testing.T) {
			r := runCLI(t, []string{c.env}, "replay", "-o", "json", sessionsFile)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestInvalidOTLPHeadersFailAtStart checks that a header gRPC would refuse
// to send (which would fail every export at run time) fails at start, from
// otlp.headers_file or the environment, naming the key and not its value.
func TestInvalidOTLPHeadersFailAtStart(t *testing.T) {
	headers := filepath.Join(t.TempDir(), "headers")
	writeFile(t, headers, "x-api-key=fine\nbad key=s3cret\n")
	for _, c := range []struct {
		name string
		env  []string
		want []string
	}{
		{"headers file", []string{"SESSIONTRACE_OTLP_HEADERS_FILE=" + headers}, []string{"otlp.headers_file", headers + ":2", `"bad key"`}},
		{"environment", []string{"OTEL_EXPORTER_OTLP_HEADERS=Tenant=a,bad key=s3cret"}, []string{"OTEL_EXPORTER_OTLP_HEADERS", `"bad key"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, "replay", "-o", "json", sessionsFile)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("stderr leaks a header value:\n%s", r.stderr)
			}
		})
	}
}
