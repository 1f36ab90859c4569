package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Defaults for Config, in one place so the command line and the docs read the same values.
const (
	DefaultGroup              = "sessiontrace"
	DefaultTopic              = "player-lifecycle"
	DefaultGroupProtocol      = ProtocolClassic
	DefaultStartOffset        = "earliest"
	DefaultCommitInterval     = time.Second
	DefaultRevokeTimeout      = 10 * time.Second
	DefaultSessionTimeout     = 45 * time.Second
	DefaultRebalanceTimeout   = 60 * time.Second
	DefaultHeartbeatInterval  = 3 * time.Second
	DefaultShutdownTimeout    = 20 * time.Second
	DefaultExportQueueSize    = 4096
	DefaultExportBatchSize    = 512
	DefaultExportBatchTimeout = time.Second
	DefaultRetryInitial       = 100 * time.Millisecond
	DefaultRetryMax           = 5 * time.Second
	DefaultMaxPollRecords     = 10000
	DefaultWorkerQueue        = 4
	DefaultExportPath         = ExportDirect
	// DefaultMaxFutureSkew allows producer clocks a few minutes ahead of
	// the record's Kafka timestamp.
	DefaultMaxFutureSkew = 5 * time.Minute
	// DefaultMaxPastSkew is generous: only an absurdly old ts is refused.
	DefaultMaxPastSkew = 7 * 24 * time.Hour
	// DefaultReorderWindow absorbs several producers' order: their events
	// for one player are rarely more than a few hundred milliseconds apart
	// in arrival.
	DefaultReorderWindow    = 2 * time.Second
	DefaultReorderMaxEvents = 1 << 16
)

// Export paths accepted by Config.ExportPath.
const (
	// ExportDirect builds OTLP protobuf spans straight from the state
	// machine's spans and uploads them through the OTLP client: the same
	// request bytes as ExportSDK at a fraction of the CPU.
	ExportDirect = "direct"
	// ExportSDK emits each span through an OpenTelemetry SDK tracer provider
	// and blocking batch processor, exported by the SDK's OTLP exporter: the
	// reference path.
	ExportSDK = "sdk"
)

// Group protocols accepted by Config.GroupProtocol.
const (
	// ProtocolClassic is the client-driven protocol with the cooperative-sticky balancer.
	ProtocolClassic = "classic"
	// ProtocolConsumer is KIP-848's broker-driven protocol; franz-go's maintainer
	// advises it only against Kafka 4.3 or newer.
	ProtocolConsumer = "consumer"
)

// Sentinel errors returned (wrapped) by Config.Validate.
var (
	ErrNoBrokers     = errors.New("no brokers")
	ErrNoTopic       = errors.New("no topic")
	ErrNoGroup       = errors.New("no group")
	ErrBadProtocol   = errors.New("unknown group protocol")
	ErrBadStart      = errors.New("unknown start offset")
	ErrBadDuration   = errors.New("duration must be positive")
	ErrBadSize       = errors.New("size must be positive")
	ErrDLQIsSource   = errors.New("dead-letter topic equals the source topic")
	ErrBatchTooLarge = errors.New("export batch size exceeds export queue size")
	ErrBadExportPath = errors.New("unknown export path")
	ErrBadHeartbeat  = errors.New("heartbeat interval must be shorter than the session timeout")
	ErrNegative      = errors.New("must not be negative")
	ErrSnapshotTopic = errors.New("snapshot topic equals the source or dead-letter topic")
	ErrTopics        = errors.New("invalid topic list")
	// ErrNotCoPartitioned is returned (wrapped) by Run when the topics of
	// Topics have different partition counts.
	ErrNotCoPartitioned = errors.New("topics are not co-partitioned")
)

// MaxTopics bounds Config.Topics: every commit's metadata carries one
// offset per topic, below Kafka's default offset.metadata.max.bytes.
const MaxTopics = 16

// Config configures a Consumer. The zero value is not valid: start from
// DefaultConfig. ExportPath picks how spans become OTLP requests, "direct"
// (the default) or "sdk"; both keep the delivery contract and send the same
// bytes, and each needs its own dependency of New (see New).
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `mapstructure:"brokers"`
	// Topic is the lifecycle topic to consume.
	Topic string `mapstructure:"topic"`
	// Topics, when it names two or more topics, replaces Topic: the topics
	// are co-partitioned (the same partition count, every record keyed by
	// player ID with the same partitioner), and partition n of every one
	// of them feeds one worker and one state machine, merged by record
	// timestamp and then through the reorder window. The order the worker
	// merged them in is written to MergeTopic before any commit depends on
	// it, so a new owner replays it exactly. Run refuses to start when the
	// partition counts differ. One topic here is the same as Topic.
	Topics []string `mapstructure:"topics"`
	// MergeTopic records, with Topics, the order in which each partition's
	// topics were merged. Empty means the first topic + "." + Group +
	// ".merge" (the order is the group's own); created when missing with
	// the first topic's partition count and the longest retention.ms of
	// the topics.
	MergeTopic string `mapstructure:"merge_topic"`
	// MergeWait is how long, with Topics, the merge holds the records of
	// some topics while another, caught up as far as its last fetch said,
	// has none queued: Kafka Streams' max.task.idle.ms. 0 (the default)
	// merges at once, which suits producers that publish as events happen
	// (the reorder window absorbs their jitter); a topic whose producer
	// delivers a backlog later than the others' needs a wait as long as
	// that delay. A topic behind its high watermark is always waited for,
	// up to half a second.
	MergeWait time.Duration `mapstructure:"merge_wait"`
	// Group is the consumer group.
	Group string `mapstructure:"group"`
	// DLQTopic receives records that cannot be traced, with the reason in
	// headers. Empty means Topic + ".dlq".
	DLQTopic string `mapstructure:"dlq_topic"`
	// GroupProtocol is "classic" (cooperative-sticky, the default) or
	// "consumer" (KIP-848; Kafka 4.3+ advised).
	GroupProtocol string `mapstructure:"group_protocol"`
	// StartOffset is where a partition with no committed offset starts:
	// "earliest" (default: nothing is skipped) or "latest".
	StartOffset string `mapstructure:"start_offset"`
	// CommitInterval is how often acknowledged positions are committed. It
	// bounds the duplicates a crash can cause.
	CommitInterval time.Duration `mapstructure:"commit_interval"`
	// SnapshotInterval is how often (of processing) each partition writes a
	// snapshot of its open sessions to SnapshotTopic, and it writes one at
	// revoke and shutdown too. Once Kafka acknowledged a snapshot the commit
	// may pass the sessions it holds, so a new owner loads it and replays
	// only the records after it, whatever the age of the oldest open
	// session. Writing one pauses the partition while it encodes (about
	// 100 bytes an open session). 0 (the default) writes none: the
	// committed offset then never passes an open session's first record.
	SnapshotInterval time.Duration `mapstructure:"snapshot_interval"`
	// SnapshotTopic holds the snapshots: compacted, created with the source
	// topic's partition count when missing. Empty means Topic + ".snapshots".
	SnapshotTopic string `mapstructure:"snapshot_topic"`
	// InstanceID, when set, makes this member static (KIP-345): a member
	// that restarts with the same ID (a pod name, say) gets its partitions
	// back at once, without a rebalance and without waiting for the session
	// timeout of its previous incarnation. Every member needs its own. A
	// static member does not leave the group when it stops: its partitions
	// wait for it for up to SessionTimeout, which is the point for a
	// restart and the cost for a member that is gone for good.
	InstanceID string `mapstructure:"instance_id"`
	// SessionTimeout is how long the group waits for a member's heartbeat
	// before it takes the member's partitions away: after a kill -9 of a
	// dynamic member its partitions are idle for this long. With
	// group_protocol "consumer" (KIP-848) the broker's
	// group.consumer.session.timeout.ms decides instead.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	// RebalanceTimeout is how long the group waits for every member to
	// rejoin (after revoking what it must) during a rebalance; a member
	// slower than that is removed from the group.
	RebalanceTimeout time.Duration `mapstructure:"rebalance_timeout"`
	// HeartbeatInterval is how often the member heartbeats; shorter than
	// SessionTimeout (a third of it, usually). With KIP-848 the broker's
	// group.consumer.heartbeat.interval.ms decides instead.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`
	// RevokeTimeout bounds how long a revoked partition waits for its spans
	// to be acknowledged before committing what was acknowledged.
	RevokeTimeout time.Duration `mapstructure:"revoke_timeout"`
	// ShutdownTimeout bounds the drain on shutdown.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// ExportQueueSize is each partition's span queue; when it is full the
	// partition blocks (and stops fetching) instead of dropping spans.
	ExportQueueSize int `mapstructure:"export_queue_size"`
	// ExportBatchSize is the most spans one OTLP export carries.
	ExportBatchSize int `mapstructure:"export_batch_size"`
	// ExportBatchTimeout is how long a partial batch waits before export.
	ExportBatchTimeout time.Duration `mapstructure:"export_batch_timeout"`
	// ExportPath is how spans become OTLP requests: "direct" (the default)
	// builds the OTLP messages straight from the spans, "sdk" goes through
	// an OpenTelemetry SDK tracer provider, batch processor and exporter.
	// Both send the same requests byte for byte over the same OTLP client
	// and keep the same delivery contract; direct costs far less CPU per
	// span (no SDK span, no conversion) and sdk is kept as the reference.
	ExportPath string `mapstructure:"export_path"`
	// RetryInitial and RetryMax bound the backoff between retries of a
	// failed export; a failed export is retried until it succeeds or the
	// partition is closed, and its spans are never acknowledged before.
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	// MaxPollRecords caps the records taken per poll.
	MaxPollRecords int `mapstructure:"max_poll_records"`
	// MaxFutureSkew and MaxPastSkew bound an event's ts by its record's
	// Kafka timestamp: an event more than MaxFutureSkew ahead of it goes to
	// the dead-letter topic as future_timestamp, one more than MaxPastSkew
	// behind as past_timestamp, and neither is applied, so one bad producer
	// clock cannot advance stream time and end every session of its
	// partition. 0 disables a bound; a record without a timestamp is not
	// checked. On a CreateTime topic the bound is against the producer's
	// clock, on a LogAppendTime topic against the broker's (then a backlog
	// replayed long after it was written is behind by its age: raise
	// MaxPastSkew or disable it).
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
	MaxPastSkew   time.Duration `mapstructure:"max_past_skew"`
	// Lifecycle configures the per-partition session state machine and
	// the reorder window in front of it.
	Lifecycle LifecycleConfig `mapstructure:"lifecycle"`
	// Limits bound what one record may carry.
	Limits schema.Limits `mapstructure:"limits"`
	// Mapping, when set, decodes the topic's records in the producer's own
	// shape (JSON or CloudEvents) instead of the v1 contract.
	Mapping *schema.Mapping `mapstructure:"mapping"`
	// Pseudonyms, when set, replaces every player ID with its pseudonym
	// right after decoding (spans, trace IDs, dead-letter details and logs
	// then carry only the pseudonym; the dead-letter copy keeps the
	// original record). Set by the command from its privacy settings.
	Pseudonyms *schema.PseudonymKey `mapstructure:"-"`
}

// LifecycleConfig is the state machine's configuration and the reorder
// window that orders its events.
type LifecycleConfig struct {
	lifecycle.Config `mapstructure:",squash"`
	// ReorderWindow is how long, in stream time, each partition holds
	// decoded events before applying them in (ts, offset) order (default
	// 2s): events that reach the partition out of order by less than this
	// (several producers writing one player's events) build the same
	// session as in order. Every span waits for it: a root span is
	// exported within export_batch_timeout + the window + 1s of its last
	// event. A held record is not committed past. When the partition goes
	// quiet (nothing fetched for the window in wall time), its
	// held events are applied once a commit names that flush (package
	// doc, Quiet flushes). 0 turns the window off: records are applied in
	// arrival order, and an event that arrives before one its phase needs
	// is an out_of_phase dead letter.
	ReorderWindow time.Duration `mapstructure:"reorder_window"`
	// ReorderMaxEvents caps the events one partition holds (default
	// 65536); when it is exceeded the event due first is applied early.
	ReorderMaxEvents int `mapstructure:"reorder_max_events"`
}

// DefaultLifecycleConfig returns the state machine's defaults and a 2s
// reorder window.
func DefaultLifecycleConfig() LifecycleConfig {
	return LifecycleConfig{Config: lifecycle.DefaultConfig(), ReorderWindow: DefaultReorderWindow, ReorderMaxEvents: DefaultReorderMaxEvents}
}

// DefaultConfig returns a Config with every default set and no brokers.
func DefaultConfig() Config {
	return Config{
		Topic:              DefaultTopic,
		Group:              DefaultGroup,
		GroupProtocol:      DefaultGroupProtocol,
		StartOffset:        DefaultStartOffset,
		CommitInterval:     DefaultCommitInterval,
		RevokeTimeout:      DefaultRevokeTimeout,
		SessionTimeout:     DefaultSessionTimeout,
		RebalanceTimeout:   DefaultRebalanceTimeout,
		HeartbeatInterval:  DefaultHeartbeatInterval,
		ShutdownTimeout:    DefaultShutdownTimeout,
		ExportQueueSize:    DefaultExportQueueSize,
		ExportBatchSize:    DefaultExportBatchSize,
		ExportBatchTimeout: DefaultExportBatchTimeout,
		ExportPath:         DefaultExportPath,
		RetryInitial:       DefaultRetryInitial,
		RetryMax:           DefaultRetryMax,
		MaxPollRecords:     DefaultMaxPollRecords,
		MaxFutureSkew:      DefaultMaxFutureSkew,
		MaxPastSkew:        DefaultMaxPastSkew,
		Lifecycle:          DefaultLifecycleConfig(),
		Limits:             schema.DefaultLimits(),
	}
}

// dlqTopic returns the dead-letter topic with its default applied.
func (c Config) dlqTopic() string {
	if c.DLQTopic != "" {
		return c.DLQTopic
	}
	return c.primary() + ".dlq"
}

// sources returns the topics consumed: Topics when set, else Topic.
func (c Config) sources() []string {
	if len(c.Topics) > 0 {
		return c.Topics
	}
	return []string{c.Topic}
}

// primary returns the first topic consumed: the one the dead-letter,
// snapshot and merge topics are named after and sized like.
func (c Config) primary() string { return c.sources()[0] }

// merged reports whether several topics are merged per partition.
func (c Config) merged() bool { return len(c.Topics) > 1 }

// mergeTopic returns the merge topic with its default applied.
func (c Config) mergeTopic() string {
	if c.MergeTopic != "" {
		return c.MergeTopic
	}
	return c.primary() + "." + c.Group + ".merge"
}

// consumes reports whether topic is one of the topics consumed.
func (c Config) consumes(topic string) bool {
	for _, t := range c.sources() {
		if t == topic {
			return true
		}
	}
	return false
}

// snapshotTopic returns the snapshot topic with its default applied.
func (c Config) snapshotTopic() string {
	if c.SnapshotTopic != "" {
		return c.SnapshotTopic
	}
	return c.primary() + ".snapshots"
}

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("brokers: %w", ErrNoBrokers)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"session_timeout", c.SessionTimeout},
		{"rebalance_timeout", c.RebalanceTimeout},
		{"heartbeat_interval", c.HeartbeatInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: %w", d.key, d.v, ErrBadDuration)
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("heartbeat_interval %v >= session_timeout %v: %w", c.HeartbeatInterval, c.SessionTimeout, ErrBadHeartbeat)
	}
	return c.ValidatePipeline()
}

// ValidatePipeline validates everything but the Kafka group settings; replay
// uses it because it neither joins a group nor needs brokers.
func (c Config) ValidatePipeline() error {
	if len(c.Topics) == 0 && c.Topic == "" {
		return fmt.Errorf("topic: %w", ErrNoTopic)
	}
	if c.Group == "" {
		return fmt.Errorf("group: %w", ErrNoGroup)
	}
	if len(c.Topics) > MaxTopics {
		return fmt.Errorf("topics: %d topics, at most %d: %w", len(c.Topics), MaxTopics, ErrTopics)
	}
	for i, t := range c.Topics {
		if t == "" {
			return fmt.Errorf("topics: topic %d is empty: %w", i, ErrTopics)
		}
		for _, u := range c.Topics[:i] {
			if u == t {
				return fmt.Errorf("topics: %q is listed twice: %w", t, ErrTopics)
			}
		}
	}
	if c.consumes(c.dlqTopic()) {
		return fmt.Errorf("dlq_topic %q: %w", c.dlqTopic(), ErrDLQIsSource)
	}
	if c.merged() && c.GroupProtocol == ProtocolConsumer {
		// The broker-driven protocol hands a member partitions as others
		// release them, so partition n of one topic can arrive before the
		// same partition of another, which a merged worker cannot start
		// without.
		return fmt.Errorf("topics: group_protocol %q cannot merge co-partitioned topics, use %q: %w", c.GroupProtocol, ProtocolClassic, ErrTopics)
	}
	if c.merged() && (c.consumes(c.mergeTopic()) || c.mergeTopic() == c.dlqTopic() || c.SnapshotInterval > 0 && c.mergeTopic() == c.snapshotTopic()) {
		return fmt.Errorf("merge_topic %q: equals a source, dead-letter or snapshot topic: %w", c.mergeTopic(), ErrTopics)
	}
	switch c.GroupProtocol {
	case ProtocolClassic, ProtocolConsumer:
	default:
		return fmt.Errorf("group_protocol %q (want classic or consumer): %w", c.GroupProtocol, ErrBadProtocol)
	}
	switch c.ExportPath {
	case ExportDirect, ExportSDK:
	default:
		return fmt.Errorf("export_path %q (want direct or sdk): %w", c.ExportPath, ErrBadExportPath)
	}
	switch c.StartOffset {
	case "earliest", "latest":
	default:
		return fmt.Errorf("start_offset %q (want earliest or latest): %w", c.StartOffset, ErrBadStart)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"commit_interval", c.CommitInterval},
		{"revoke_timeout", c.RevokeTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"export_batch_timeout", c.ExportBatchTimeout},
		{"retry_initial", c.RetryInitial},
		{"retry_max", c.RetryMax},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: %w", d.key, d.v, ErrBadDuration)
		}
	}
	if c.MergeWait < 0 {
		return fmt.Errorf("merge_wait %v: %w", c.MergeWait, ErrNegative)
	}
	if c.SnapshotInterval < 0 {
		return fmt.Errorf("snapshot_interval %v: %w", c.SnapshotInterval, ErrNegative)
	}
	if c.SnapshotInterval > 0 && (c.consumes(c.snapshotTopic()) || c.snapshotTopic() == c.dlqTopic()) {
		return fmt.Errorf("snapshot_topic %q: %w", c.snapshotTopic(), ErrSnapshotTopic)
	}
	if c.MaxFutureSkew < 0 {
		return fmt.Errorf("max_future_skew %v: %w", c.MaxFutureSkew, ErrNegative)
	}
	if c.MaxPastSkew < 0 {
		return fmt.Errorf("max_past_skew %v: %w", c.MaxPastSkew, ErrNegative)
	}
	if c.Lifecycle.ReorderWindow < 0 {
		return fmt.Errorf("lifecycle.reorder_window %v: %w", c.Lifecycle.ReorderWindow, ErrNegative)
	}
	for _, s := range []struct {
		key string
		v   int
	}{
		{"lifecycle.reorder_max_events", c.Lifecycle.ReorderMaxEvents},
		{"export_queue_size", c.ExportQueueSize},
		{"export_batch_size", c.ExportBatchSize},
		{"max_poll_records", c.MaxPollRecords},
	} {
		if s.v <= 0 {
			return fmt.Errorf("%s %d: %w", s.key, s.v, ErrBadSize)
		}
	}
	if c.ExportBatchSize > c.ExportQueueSize {
		return fmt.Errorf("export_batch_size %d > export_queue_size %d: %w", c.ExportBatchSize, c.ExportQueueSize, ErrBatchTooLarge)
	}
	if err := c.Lifecycle.Validate(); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	if c.Mapping != nil {
		if _, err := schema.CompileMapping(*c.Mapping, c.Limits); err != nil {
			return fmt.Errorf("mapping: %w", err)
		}
	}
	return nil
}
