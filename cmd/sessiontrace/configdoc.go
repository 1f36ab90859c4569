package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// keyDocs describes every configuration key. The reference in the README is
// rendered from it, and a test fails when a key has no description, so the
// documentation cannot fall behind the code.
var keyDocs = map[string]string{
	"kafka.brokers":                      "Seed brokers, host:port; a comma-separated list in the environment. Required by consume, record, simulate and replay --topic; bench starts an embedded broker when empty.",
	"kafka.topic":                        "The lifecycle topic to consume, record, replay or publish to. `consume` reads `kafka.topics` instead when that is set.",
	"kafka.topics":                       "Topics `consume` reads together, replacing `kafka.topic` (one topic here is the same as `kafka.topic`). Two or more must be co-partitioned: every record keyed by player ID, the same partition count, the same partitioner; partition n of every topic feeds one state machine, merged by Kafka record timestamp and then through the reorder window. `consume` refuses to start when the partition counts differ, with `group_protocol: consumer` (the broker-driven protocol may hand a member partition n of one topic before another's), or when `kafka.topic` is set to a topic other than the default that is not in the list. A comma-separated list in the environment and on the command line. See \"Co-partitioned topics\".",
	"kafka.merge_topic":                  "With `kafka.topics`: the topic recording the order each partition's topics were merged in, so a new owner replays it exactly; empty means `<first topic>.<group>.merge`. Created when missing, with the first topic's partition count and the longest `retention.ms` of the topics.",
	"kafka.merge_wait":                   "With `kafka.topics`: how long the merge holds records of some topics while another, caught up as far as its last fetch said, has none queued (Kafka Streams' `max.task.idle.ms`). `0` merges at once, which suits producers that publish as events happen (the reorder window absorbs their jitter); a producer that delivers a backlog later than the others needs a wait as long as that delay. A topic behind its high watermark is always waited for, up to 500ms.",
	"kafka.group":                        "Consumer group of consume.",
	"kafka.dlq_topic":                    "Dead-letter topic for records that cannot be traced (reason in headers); empty means `<topic>.dlq` (with `kafka.topics`, named after the first of them). Created (with the source topic's partition count) only when a metadata request says it is missing, at start or when it was deleted mid-run.",
	"kafka.group_protocol":               "`classic` (client-side cooperative-sticky balancing) or `consumer` (KIP-848; advised only against Kafka 4.3+).",
	"kafka.start_offset":                 "Where a partition without a committed offset starts: `earliest` (nothing skipped) or `latest`.",
	"kafka.commit_interval":              "How often acknowledged positions are committed; bounds the duplicates a crash can cause.",
	"kafka.snapshot_interval":            "How often (of processing) each partition writes a snapshot of its open sessions to `kafka.snapshot_topic`, and at revoke and shutdown; once Kafka acknowledged one, the commit may pass the sessions it holds, so a restart replays only the records after it. Writing pauses the partition while it encodes (about 100 bytes an open session). 0 writes none: the committed offset never passes an open session's first record.",
	"kafka.snapshot_topic":               "Compacted topic of the snapshots; empty means `<topic>.snapshots` (with `kafka.topics`, named after the first of them). Created (cleanup.policy=compact, the source topic's partition count) when missing.",
	"kafka.instance_id":                  "Static group membership (KIP-345): a stable ID per member, e.g. the pod name, so a restarted member (even after kill -9) gets its partitions back at once instead of after `kafka.session_timeout`. A static member does not leave the group on shutdown. Empty: dynamic membership.",
	"kafka.session_timeout":              "How long the group waits for a silent member before moving its partitions (the wait after a kill -9 without `kafka.instance_id`). Ignored with `group_protocol: consumer`, where the broker's `group.consumer.session.timeout.ms` decides.",
	"kafka.rebalance_timeout":            "How long a rebalance waits for every member to rejoin; a slower member is removed from the group.",
	"kafka.heartbeat_interval":           "How often the member heartbeats; shorter than `kafka.session_timeout`. Ignored with `group_protocol: consumer` (the broker's `group.consumer.heartbeat.interval.ms`).",
	"kafka.revoke_timeout":               "How long a revoked partition waits for its spans and dead-letter copies to be acknowledged; then what was acknowledged is committed, with a 5 s deadline of its own.",
	"kafka.shutdown_timeout":             "Bound on the drain at shutdown (SIGTERM/SIGINT); the final commit of what was acknowledged then gets a 5 s deadline of its own.",
	"kafka.export_queue_size":            "Spans queued per partition; when full the partition stops fetching instead of dropping spans.",
	"kafka.export_batch_size":            "Most spans in one OTLP export request; at most `kafka.export_queue_size`.",
	"kafka.export_batch_timeout":         "How long a partial batch waits before it is exported (replay cuts batches by size only).",
	"kafka.export_path":                  "How spans become OTLP requests: `direct` (OTLP messages built straight from the spans; far less CPU) or `sdk` (through the OpenTelemetry SDK's tracer provider, batch processor and exporter, the reference). Same requests byte for byte, same client and `OTEL_EXPORTER_OTLP_*` settings, same delivery contract.",
	"kafka.retry_initial":                "First backoff after a failed export; a failed export is retried until accepted (or its refused spans isolated) and never committed past. Also the first reconnect backoff of the OTLP connection.",
	"kafka.retry_max":                    "Longest backoff between export retries, and of the OTLP connection's reconnects, so exports resume within about this long after the endpoint comes back.",
	"kafka.max_poll_records":             "Most records taken per poll.",
	"kafka.max_future_skew":              "An event whose `ts` is more than this ahead of its record's Kafka timestamp goes to the dead-letter topic as `future_timestamp` and is never applied (so one bad producer clock cannot end every session of its partition); 0 disables the check. Records without a timestamp, and replays of JSONL files, are not checked.",
	"kafka.max_past_skew":                "An event whose `ts` is more than this behind its record's Kafka timestamp goes to the dead-letter topic as `past_timestamp`; 0 disables the check. On a LogAppendTime topic the timestamp is the broker's append time, so a backlog written long after its events happened needs a larger bound.",
	"kafka.lifecycle.idle_timeout":       "A session with no event for this long in stream time ends as `timeout`; generous because a player is silent for a whole match.",
	"kafka.lifecycle.max_duration":       "A session longer than this (stream time) ends as `max_duration`.",
	"kafka.lifecycle.dedup_window":       "How many recent events per partition have their IDs remembered to drop duplicates (a duplicate takes a place too, so a new owner rebuilds the window exactly by re-reading those events).",
	"kafka.lifecycle.reorder_window":     "How long, in stream time, each partition holds decoded events before applying them in (`ts`, offset) order, so one player's events written by several producers and arriving out of order by less than this build the same session as in order. Root spans wait for it (latency: `kafka.export_batch_timeout` + this + 1 s). A held record is never committed past. When a partition goes quiet (nothing fetched for this long in wall time) its held events are applied, once a commit names that flush so that a new owner flushes at the same record. 0 turns it off: events are applied in arrival order, and one that arrives before the event its phase needs is an `out_of_phase` dead letter.",
	"kafka.lifecycle.reorder_max_events": "Most events one partition holds in the reorder window; beyond it the event due first is applied early (its order is then not guaranteed).",
	"kafka.limits.max_record_bytes":      "Largest record value accepted; larger records go to the dead-letter topic.",
	"kafka.limits.max_attributes":        "Most free-form `attributes` per event.",
	"kafka.limits.max_attr_key_len":      "Longest attribute key, in bytes.",
	"kafka.limits.max_attr_value_len":    "Longest string attribute value, in bytes.",
	"kafka.limits.max_field_len":         "Longest id or other string field, in bytes.",
	"kafka.mapping":                      "Decode the topic's records in the producer's own shape (JSON paths, headers, constants; event-name, value and timestamp tables; CloudEvents 1.0) instead of the v1 contract; empty means v1. See \"Events in your own shape\"; check one against sample records with `sessiontrace mapping check`.",
	"kafka.client_id":                    "Kafka client ID, as brokers log and quota it.",
	"kafka.tls.enabled":                  "Connect to Kafka over TLS (system roots unless `kafka.tls.ca_file`).",
	"kafka.tls.ca_file":                  "PEM file of the CAs that sign the brokers' certificates.",
	"kafka.tls.cert_file":                "PEM client certificate for mutual TLS (with `kafka.tls.key_file`).",
	"kafka.tls.key_file":                 "PEM private key of `kafka.tls.cert_file`.",
	"kafka.tls.server_name":              "Server name to verify instead of the broker's host name.",
	"kafka.tls.insecure_skip_verify":     "Skip verification of the brokers' certificates (testing only).",
	"kafka.sasl.mechanism":               "SASL mechanism: empty (none), `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Use with TLS.",
	"kafka.sasl.username":                "SASL user name.",
	"kafka.sasl.password":                "SASL password. Secret: only from the environment, never from the file or a flag, never logged.",
	"kafka.sasl.password_file":           "File holding the SASL password (e.g. a mounted secret); trailing newlines are ignored.",
	"otlp.endpoint":                      "OTLP/gRPC endpoint, host:port. Empty: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`, else `localhost:4317` (bench: an embedded receiver).",
	"otlp.insecure":                      "Plain-text gRPC (no TLS), e.g. to a collector beside the process. Empty/false leaves `OTEL_EXPORTER_OTLP_INSECURE` in charge.",
	"otlp.tls.enabled":                   "Use the `otlp.tls.*` settings for the exporter's TLS (otherwise the exporter's defaults and `OTEL_EXPORTER_OTLP_CERTIFICATE`...).",
	"otlp.tls.ca_file":                   "PEM file of the CAs that sign the collector's certificate.",
	"otlp.tls.cert_file":                 "PEM client certificate for mutual TLS (with `otlp.tls.key_file`).",
	"otlp.tls.key_file":                  "PEM private key of `otlp.tls.cert_file`.",
	"otlp.tls.server_name":               "Server name to verify instead of the endpoint's host name.",
	"otlp.tls.insecure_skip_verify":      "Skip verification of the collector's certificate (testing only).",
	"otlp.headers_file":                  "File of `name=value` lines sent as gRPC headers (API keys); merged over `OTEL_EXPORTER_OTLP_HEADERS`. Names and values are checked at start against gRPC's rules (lower-case `a-z0-9-_.`, no `grpc-` prefix, printable ASCII values unless the name ends in `-bin`), in the file and the environment alike; a bad one fails naming the key. Never logged.",
	"otlp.compression":                   "`gzip` or `none`; empty leaves `OTEL_EXPORTER_OTLP_COMPRESSION` in charge (default none).",
	"otlp.timeout":                       "Deadline of one export request (the consumer retries failed exports itself).",
	"http.address":                       "Address of `/healthz`, `/readyz` and `/metrics` (consume and rekey); empty disables the endpoint.",
	"log.level":                          "`debug`, `info`, `warn` or `error`.",
	"log.format":                         "`text` or `json` (to stderr).",
	"metrics.otlp":                       "Also push every metric (the session metrics and the consumer's own) over OTLP/gRPC to the span endpoint, with its TLS, headers and compression; `/metrics` serves them either way. An endpoint that answers Unimplemented for metrics (a traces-only collector) is reported once in the log and not pushed to again.",
	"metrics.interval":                   "How often metrics are pushed over OTLP (and once more at shutdown).",
	"metrics.max_client_versions":        "Distinct `client.version` values kept in the session metrics; later ones are counted as `other`, so a bad producer cannot explode cardinality.",
	"metrics.max_values":                 "The same cap for `client.platform`, `session.end_reason`, `game.mode` and `loading.type`.",
	"privacy.player_id":                  "`hmac-sha256` replaces every player ID, right after decoding, with `p_` and 32 hex digits of HMAC-SHA256(key, ID): `player.id` on spans, the derived trace IDs, dead-letter details and logs carry only the pseudonym; the dead-letter copy keeps the original record. Empty: player IDs as sent.",
	"privacy.key":                        "Key of the pseudonyms, at least 16 bytes. Secret: only from the environment, never from the file or a flag, never logged.",
	"privacy.key_file":                   "File holding the pseudonym key (e.g. a mounted secret); trailing newlines are ignored.",
	"rekey.topics":                       "Source topics of `rekey`, keyed any way (by server, by match, or not at all); a comma-separated list in the environment.",
	"rekey.output_topic":                 "Topic `rekey` writes every record to, keyed by player ID; `consume` reads it as `kafka.topic`. It must exist: its partition count is the consumer's parallelism.",
	"rekey.group":                        "Consumer group of `rekey`, distinct from `kafka.group`.",
	"rekey.dlq_topic":                    "Dead-letter topic of `rekey` for records whose player cannot be found (reason in headers, as the consumer's); empty means `<output_topic>.rekey.dlq`. Created when missing, with the output topic's partition count.",
	"rekey.transactional_id_prefix":      "Prefix of the member's Kafka transactional ID, `<prefix>-<instance>`.",
	"rekey.instance":                     "Name of this `rekey` member: unique among running members and stable across restarts (e.g. the pod name), so a restarted member fences its predecessor's open transaction at once. Empty: the host name (set it when several members share a host).",
	"rekey.transaction_timeout":          "The broker aborts a `rekey` transaction open longer than this; after a kill -9, a successor with another `rekey.instance` waits up to this long for the partitions the dead member was writing.",
	"rekey.max_poll_records":             "Most records `rekey` copies in one transaction.",
}

// flagSpec names the flag that sets a configuration key. Each subcommand
// registers the flags it honours; the flag's default is the key's default.
type flagSpec struct {
	Name string
	Key  string
}

// configFlags are the flags bound to configuration keys.
var configFlags = []flagSpec{
	{"brokers", "kafka.brokers"},
	{"topic", "kafka.topic"},
	{"topics", "kafka.topics"},
	{"group", "kafka.group"},
	{"start-offset", "kafka.start_offset"},
	{"otlp-endpoint", "otlp.endpoint"},
	{"otlp-insecure", "otlp.insecure"},
	{"http-address", "http.address"},
	{"source-topics", "rekey.topics"},
	{"output-topic", "rekey.output_topic"},
	{"instance", "rekey.instance"},
	{"log-level", "log.level"},
	{"log-format", "log.format"},
}

// plainDoc is the description of key without Markdown back quotes, which
// pflag would take for the name of the flag's value.
func plainDoc(key string) string { return strings.ReplaceAll(keyDocs[key], "`", "") }

func flagFor(key string) (flagSpec, bool) {
	for _, f := range configFlags {
		if f.Key == key {
			return f, true
		}
	}
	return flagSpec{}, false
}

// addConfigFlags registers the named configuration flags on fs and binds
// them to l, so that a flag given on the command line wins over the file and
// the environment.
func addConfigFlags(fs *pflag.FlagSet, l *loader, names ...string) {
	defaults := map[string]configKey{}
	for _, k := range configKeys(defaultConfig()) {
		defaults[k.Key] = k
	}
	for _, name := range names {
		var spec flagSpec
		for _, f := range configFlags {
			if f.Name == name {
				spec = f
			}
		}
		k, ok := defaults[spec.Key]
		if !ok {
			panic("addConfigFlags: unknown flag " + name) // a programming error caught by every test
		}
		usage := fmt.Sprintf("%s (config key %s, env %s)", plainDoc(k.Key), k.Key, envName(k.Key))
		switch d := k.Default.(type) {
		case []string:
			fs.StringSlice(name, d, usage)
		case string:
			fs.String(name, d, usage)
		case bool:
			fs.Bool(name, d, usage)
		case time.Duration:
			fs.Duration(name, d, usage)
		case int:
			fs.Int(name, d, usage)
		default:
			panic(fmt.Sprintf("addConfigFlags: no flag type for %s (%T)", k.Key, d))
		}
		l.bind(k.Key, fs.Lookup(name))
	}
}

// writeConfigDoc renders the configuration reference as Markdown: every key
// with its environment variable, flag, default and description.
func writeConfigDoc(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Settings come from a YAML file (`--config FILE`), overridden by `SESSIONTRACE_*` environment variables\n")
	b.WriteString("(the key upper-cased, dots as underscores), overridden by flags. Unknown keys in the file are errors.\n")
	b.WriteString("The exporter also honours the standard `OTEL_EXPORTER_OTLP_*` variables where the `otlp.*` keys are empty,\n")
	b.WriteString("and the resource `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (default `service.name=sessiontrace`).\n")
	b.WriteString("See `testdata/config.yaml` for a complete file.\n\n")
	b.WriteString("| Key | Environment | Flag | Default | Description |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, k := range configKeys(defaultConfig()) {
		desc, ok := keyDocs[k.Key]
		if !ok {
			return fmt.Errorf("config key %s has no description in keyDocs", k.Key)
		}
		flag := ""
		if f, ok := flagFor(k.Key); ok {
			flag = "`--" + f.Name + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", k.Key, envName(k.Key), flag, formatDefault(k.Default), desc)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatDefault(v any) string {
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && rv.IsNil():
		return "—"
	case rv.Kind() == reflect.Slice && rv.Len() == 0, rv.Kind() == reflect.String && rv.Len() == 0:
		return "—"
	case rv.Kind() == reflect.Slice:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return "`" + strings.Join(parts, ",") + "`"
	}
	return fmt.Sprintf("`%v`", v)
}

func newConfigDocCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config-doc",
		Short: "Print the configuration reference (every key, its variable, flag and default) as Markdown",
		Long: `config-doc prints the configuration reference as a Markdown table: every configuration key, the
SESSIONTRACE_* environment variable and the flag that set it, its default and what it does. The
README's Configuration section is this output.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeConfigDoc(cmd.OutOrStdout())
		},
	}
}
