package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/rekey"
	"github.com/sessiontrace/sessiontrace/consumer/sessionmetrics"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// TestConfigFile loads testdata/config.yaml through the real path (viper,
// mapstructure, secrets, validation) and compares every field.
func TestConfigFile(t *testing.T) {
	t.Chdir(repoFile()) // the file names its password file relative to the repository
	cfg, err := newLoader().load(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Kafka: kafkaConfig{
			Config: consumer.Config{
				Brokers:            []string{"kafka-1:9092", "kafka-2:9092"},
				Topic:              "game.lifecycle",
				Topics:             []string{"game.lifecycle", "game.matches"},
				MergeTopic:         "game.lifecycle.eu.merge",
				MergeWait:          250 * time.Millisecond,
				Group:              "sessiontrace-eu",
				DLQTopic:           "game.lifecycle.dead",
				GroupProtocol:      "classic",
				StartOffset:        "latest",
				CommitInterval:     2 * time.Second,
				SnapshotInterval:   time.Minute,
				SnapshotTopic:      "game.lifecycle.state",
				InstanceID:         "sessiontrace-eu-1",
				SessionTimeout:     30 * time.Second,
				RebalanceTimeout:   45 * time.Second,
				HeartbeatInterval:  2 * time.Second,
				RevokeTimeout:      15 * time.Second,
				ShutdownTimeout:    30 * time.Second,
				ExportQueueSize:    8192,
				ExportBatchSize:    1024,
				ExportBatchTimeout: 500 * time.Millisecond,
				ExportPath:         consumer.ExportSDK,
				RetryInitial:       200 * time.Millisecond,
				RetryMax:           10 * time.Second,
				MaxPollRecords:     5000,
				MaxFutureSkew:      2 * time.Minute,
				MaxPastSkew:        72 * time.Hour,
				Lifecycle: consumer.LifecycleConfig{
					Config:        lifecycle.Config{IdleTimeout: 90 * time.Minute, MaxDuration: 12 * time.Hour, DedupWindow: 1024},
					ReorderWindow: 1500 * time.Millisecond, ReorderMaxEvents: 4096,
				},
				Limits: schema.Limits{MaxRecordBytes: 32768, MaxAttributes: 16, MaxAttrKeyLen: 64, MaxAttrValueLen: 512, MaxFieldLen: 128},
				Mapping: &schema.Mapping{
					Format: schema.FormatJSON, Key: schema.KeyIgnore,
					Type: schema.TypeRule{
						From: []string{"category", "action"},
						Names: []schema.TypeName{
							{Name: "user.login", Type: "session.login"},
							{Name: "user.logout", Type: "session.disconnect"},
						},
						Ignore: []string{"user.heartbeat"},
					},
					EventID:     schema.Source{From: "hash:value"},
					PlayerID:    schema.Source{From: "payload.player.id"},
					TS:          schema.Source{From: "occurredAt", Format: schema.TimeEpochMS},
					Traceparent: schema.Source{From: "payload.trace"},
					Fields: map[string]schema.Source{
						"reason": {From: "payload.code", Values: []schema.ValueName{{From: "USER_QUIT", To: "client_quit"}}},
					},
					Attributes: []schema.AttributeRule{{From: "region"}, {From: "payload.net.ping", Name: "ping_ms"}},
				},
			},
			ClientID: "sessiontrace-eu-1",
			TLS: tlsConfig{Enabled: true, CAFile: "/etc/kafka/ca.pem", CertFile: "/etc/kafka/client.pem",
				KeyFile: "/etc/kafka/client-key.pem", ServerName: "kafka.internal"},
			SASL: saslConfig{Mechanism: "SCRAM-SHA-512", Username: "sessiontrace",
				Password: "not-a-real-password", PasswordFile: "testdata/cli/sasl-password.txt"},
		},
		OTLP: otlpConfig{
			Endpoint:    "otel-collector:4317",
			TLS:         tlsConfig{Enabled: true, CAFile: "/etc/otel/ca.pem", ServerName: "collector.internal"},
			HeadersFile: "/run/secrets/otlp-headers",
			Compression: "gzip",
			Timeout:     5 * time.Second,
		},
		HTTP: httpConfig{Address: "0.0.0.0:8088"},
		Log:  logConfig{Level: "debug", Format: "json"},
		Metrics: metricsConfig{
			Config:   sessionmetrics.Config{MaxClientVersions: 20, MaxValues: 10},
			Interval: 30 * time.Second,
		},
		Privacy: privacyConfig{PlayerID: "hmac-sha256", Key: "not-a-real-pseudonym-key-0123456789", KeyFile: "testdata/cli/pseudonym-key.txt"},
		Rekey: rekey.Config{
			Topics:                []string{"auth-events", "matchmaking-events", "match-events"},
			OutputTopic:           "game.lifecycle",
			Group:                 "sessiontrace-rekey-eu",
			DLQTopic:              "game.lifecycle.rekey.dead",
			TransactionalIDPrefix: "rekey-eu",
			Instance:              "rekey-eu-1",
			TransactionTimeout:    20 * time.Second,
			MaxPollRecords:        2000,
		},
	}
	key, err := schema.NewPseudonymKey([]byte("not-a-real-pseudonym-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	want.Kafka.Pseudonyms = key
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("loaded config differs:\n got %+v\nwant %+v", cfg, want)
	}
	// Validation reads the headers file, which is not on this machine.
	cfg.OTLP.HeadersFile = filepath.Join(t.TempDir(), "otlp-headers")
	if err := os.WriteFile(cfg.OTLP.HeadersFile, []byte("x-api-key=k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validateConsume(); err != nil {
		t.Errorf("validate: %v", err)
	}
	// Every key must be in the file, so that it documents them all.
	raw, err := os.ReadFile(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range configKeys(defaultConfig()) {
		leaf := k.Key[strings.LastIndex(k.Key, ".")+1:]
		if k.Key != "kafka.sasl.password" && k.Key != "privacy.key" && !bytes.Contains(raw, []byte(leaf+":")) {
			t.Errorf("testdata/config.yaml does not set %s", k.Key)
		}
	}
}

// TestConfigPrecedence checks file < environment < flag, for a scalar, a
// list and a nested duration.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	err := os.WriteFile(file, []byte("kafka:\n  topic: from-file\n  group: from-file\n  brokers: [file:1]\n  lifecycle:\n    idle_timeout: 5m\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SESSIONTRACE_KAFKA_GROUP", "from-env")
	t.Setenv("SESSIONTRACE_KAFKA_TOPIC", "from-env")
	t.Setenv("SESSIONTRACE_KAFKA_BROKERS", "env:1,env:2")
	t.Setenv("SESSIONTRACE_KAFKA_LIFECYCLE_IDLE_TIMEOUT", "2h")
	l := newLoader()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addConfigFlags(fs, l, "topic", "brokers", "group")
	if err := fs.Parse([]string{"--topic", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := l.load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"flag wins over env and file", cfg.Kafka.Topic, "from-flag"},
		{"env wins over file", cfg.Kafka.Group, "from-env"},
		{"env list", cfg.Kafka.Brokers, []string{"env:1", "env:2"}},
		{"env nested duration", cfg.Kafka.Lifecycle.IdleTimeout, 2 * time.Hour},
		{"default kept", cfg.Kafka.CommitInterval, consumer.DefaultCommitInterval},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestConfigTopics checks kafka.topics and kafka.merge_topic from each
// source, lists as brokers are, and when kafka.topic may stand beside them.
func TestConfigTopics(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		topic string // kafka.topic loaded
		want  []string
		merge string
		err   string // substring of validateConsume's error; empty: valid
	}{
		{name: "file list", file: "kafka:\n  topics: [auth-events, match-events]\n  merge_topic: m\n",
			topic: consumer.DefaultTopic, want: []string{"auth-events", "match-events"}, merge: "m"},
		{name: "env list", env: map[string]string{"SESSIONTRACE_KAFKA_TOPICS": "auth-events,match-events", "SESSIONTRACE_KAFKA_MERGE_TOPIC": "m"},
			topic: consumer.DefaultTopic, want: []string{"auth-events", "match-events"}, merge: "m"},
		{name: "flag wins over env and file", file: "kafka:\n  topics: [file-a, file-b]\n", env: map[string]string{"SESSIONTRACE_KAFKA_TOPICS": "env-a,env-b"},
			flags: []string{"--topics", "flag-a,flag-b"}, topic: consumer.DefaultTopic, want: []string{"flag-a", "flag-b"}},
		{name: "topic one of them", flags: []string{"--topic", "match-events", "--topics", "auth-events,match-events"},
			topic: "match-events", want: []string{"auth-events", "match-events"}},
		{name: "topic alone", flags: []string{"--topic", "game.lifecycle"}, topic: "game.lifecycle"},
		{name: "one topic in the list", flags: []string{"--topics", "auth-events"}, topic: consumer.DefaultTopic, want: []string{"auth-events"}},
		{name: "topic not one of them", flags: []string{"--topic", "game.lifecycle", "--topics", "auth-events,match-events"},
			topic: "game.lifecycle", want: []string{"auth-events", "match-events"}, err: "not one of kafka.topics"},
		{name: "merge topic is a source", flags: []string{"--topics", "auth-events,match-events"}, env: map[string]string{"SESSIONTRACE_KAFKA_MERGE_TOPIC": "match-events"},
			topic: consumer.DefaultTopic, want: []string{"auth-events", "match-events"}, merge: "match-events", err: "kafka.merge_topic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SESSIONTRACE_KAFKA_BROKERS", "a:1")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			path := configFile(t, c.file)
			l := newLoader()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			addConfigFlags(fs, l, "topic", "topics")
			if err := fs.Parse(c.flags); err != nil {
				t.Fatal(err)
			}
			cfg, err := l.load(path)
			if err != nil {
				t.Fatal(err)
			}
			k := cfg.Kafka
			if k.Topic != c.topic || !slices.Equal(k.Topics, c.want) || k.MergeTopic != c.merge {
				t.Errorf("topic %q, topics %q, merge_topic %q; want %q, %q, %q", k.Topic, k.Topics, k.MergeTopic, c.topic, c.want, c.merge)
			}
			err = cfg.validateConsume()
			switch {
			case c.err == "" && err != nil:
				t.Errorf("validate: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("validate: %v, want an error mentioning %q", err, c.err)
			case c.err != "" && !errors.Is(err, errInvalidConfig):
				t.Errorf("validate: %v does not wrap errInvalidConfig", err)
			}
		})
	}
}

// TestConsumeSources checks the topics the start line names.
func TestConsumeSources(t *testing.T) {
	k := defaultConfig().Kafka
	if got := k.sources(); !slices.Equal(got, []string{consumer.DefaultTopic}) {
		t.Errorf("default: %q", got)
	}
	k.Topics = []string{"auth-events", "match-events"}
	if got := k.sources(); !slices.Equal(got, k.Topics) {
		t.Errorf("with kafka.topics: %q", got)
	}
}

// TestConfigErrors checks that invalid settings fail at start with the key
// and what is allowed.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		file string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown key", "kafka:\n  brokers: [a:1]\n  topik: x\n", nil, []string{"topik"}},
		{"bad group protocol", "kafka:\n  brokers: [a:1]\n  group_protocol: eager\n", nil, []string{"kafka.group_protocol", "classic or consumer"}},
		{"bad start offset", "", map[string]string{"SESSIONTRACE_KAFKA_BROKERS": "a:1", "SESSIONTRACE_KAFKA_START_OFFSET": "middle"}, []string{"kafka.start_offset", "earliest or latest"}},
		{"no brokers", "", nil, []string{"kafka.brokers"}},
		{"bad duration", "kafka:\n  brokers: [a:1]\n  commit_interval: soon\n", nil, []string{"commit_interval"}},
		{"zero idle timeout", "kafka:\n  brokers: [a:1]\n  lifecycle:\n    idle_timeout: 0s\n", nil, []string{"kafka.lifecycle", "idle_timeout"}},
		{"batch larger than queue", "kafka:\n  brokers: [a:1]\n  export_batch_size: 10000\n", nil, []string{"export_batch_size"}},
		{"bad sasl mechanism", "kafka:\n  brokers: [a:1]\n  sasl:\n    mechanism: GSSAPI\n", nil, []string{"kafka.sasl.mechanism", "SCRAM-SHA-512"}},
		{"sasl without password", "kafka:\n  brokers: [a:1]\n  sasl:\n    mechanism: PLAIN\n    username: u\n", nil, []string{"kafka.sasl.password", "SESSIONTRACE_KAFKA_SASL_PASSWORD"}},
		{"password in file", "kafka:\n  brokers: [a:1]\n  sasl:\n    password: hunter2\n", nil, []string{"kafka.sasl.password", "not read from the config file"}},
		{"tls keys without enabled", "kafka:\n  brokers: [a:1]\n  tls:\n    ca_file: x.pem\n", nil, []string{"kafka.tls.enabled"}},
		{"cert without key", "otlp:\n  tls:\n    enabled: true\n    cert_file: c.pem\n", map[string]string{"SESSIONTRACE_KAFKA_BROKERS": "a:1"}, []string{"otlp.tls.cert_file", "key_file"}},
		{"bad compression", "otlp:\n  compression: zstd\n", map[string]string{"SESSIONTRACE_KAFKA_BROKERS": "a:1"}, []string{"otlp.compression", "gzip"}},
		{"bad log level", "log:\n  level: loud\n", map[string]string{"SESSIONTRACE_KAFKA_BROKERS": "a:1"}, []string{"log.level", "debug, info, warn, error"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			path := configFile(t, c.file)
			cfg, err := newLoader().load(path)
			if err == nil {
				err = cfg.validateConsume()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errInvalidConfig) {
				t.Errorf("error does not wrap errInvalidConfig: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestSecretRedacted checks that a password never prints.
func TestSecretRedacted(t *testing.T) {
	s := saslConfig{Mechanism: saslPlain, Username: "u", Password: "hunter2"}
	var buf bytes.Buffer
	log := newLogger(logConfig{Level: "info", Format: "json"}, &buf)
	log.Info("x", "sasl", s.Password, "cfg", s)
	for _, out := range []string{buf.String(), s.Password.String(), s.Password.GoString()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
}

const (
	readmeBegin = "<!-- config:begin -->\n"
	readmeEnd   = "<!-- config:end -->"
)

// TestConfigDocInREADME fails when the README's configuration reference is
// not what the code renders; -update rewrites the region.
func TestConfigDocInREADME(t *testing.T) {
	var doc bytes.Buffer
	if err := writeConfigDoc(&doc); err != nil {
		t.Fatal(err)
	}
	path := repoFile("README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(readmeBegin), readmeEnd)
	}
	region := s[i+len(readmeBegin) : j]
	if region == doc.String() {
		return
	}
	if *update {
		out := s[:i+len(readmeBegin)] + doc.String() + s[j:]
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md configuration reference is stale: run go test ./cmd/sessiontrace -run TestConfigDocInREADME -update\n%s",
		firstDiff(region, doc.String()))
}

// TestConfigDocCommand checks the hidden command prints the same reference.
func TestConfigDocCommand(t *testing.T) {
	var want bytes.Buffer
	if err := writeConfigDoc(&want); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "config-doc")
	mustSucceed(t, r, "config-doc")
	if r.stdout != want.String() {
		t.Errorf("config-doc output differs from writeConfigDoc:\n%s", firstDiff(want.String(), r.stdout))
	}
}

// configFile writes content to a configuration file of its own and returns
// its path, "" (no file) for no content.
func configFile(t *testing.T, content string) string {
	t.Helper()
	if content == "" {
		return ""
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, path, content)
	return path
}
