// Package rekey copies lifecycle records from topics keyed any way (by
// server, by match, or not at all) to one topic keyed by player ID, exactly
// once, so that every event of a player lands on one partition, where the
// consumer's per-partition state machine can see the whole session.
//
// A Rekeyer is a member of its own consumer group. Each poll becomes one
// Kafka transaction: the copies (value, headers and timestamp unchanged, key
// set to the player ID), the dead-letter copies of records whose player
// cannot be found, and the group's offsets are committed together or not at
// all (franz-go's GroupTransactSession). A rebalance or a crash aborts the
// open transaction; the records are read again by the next owner, and a
// reader of the output with read_committed isolation (the consumer is one)
// sees each record exactly once.
package rekey

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultGroup                 = "sessiontrace-rekey"
	DefaultTransactionalIDPrefix = "sessiontrace-rekey"
	// DefaultTransactionTimeout is how long the broker keeps a transaction
	// open before aborting it: after a kill -9 of a member whose successor
	// uses another transactional ID, the partitions are stuck for about this
	// long. A restart with the same ID fences the old transaction at once.
	DefaultTransactionTimeout = 30 * time.Second
	// DefaultMaxPollRecords is the most records in one transaction.
	DefaultMaxPollRecords = 5000
	// dlqSuffix names the default dead-letter topic after the output topic.
	dlqSuffix = ".rekey.dlq"
)

// Sentinel errors of Validate, for callers that branch on them.
var (
	ErrNoTopics      = errors.New("no source topics")
	ErrNoOutputTopic = errors.New("no output topic")
)

// Config configures a Rekeyer. Its mapstructure keys are the rekey.* keys of
// the command line; Brokers and StartOffset come from the kafka.* keys.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string `mapstructure:"-"`
	// StartOffset is where a partition without a committed offset starts:
	// "earliest" (also when empty) or "latest".
	StartOffset string `mapstructure:"-"`

	// Topics are the source topics, keyed any way.
	Topics []string `mapstructure:"topics"`
	// OutputTopic receives every record keyed by player ID. It must exist:
	// its partition count is the consumer's parallelism, which rekey does
	// not choose.
	OutputTopic string `mapstructure:"output_topic"`
	// Group is the rekey consumer group, distinct from the consumer's.
	Group string `mapstructure:"group"`
	// DLQTopic receives the records whose player cannot be found; empty
	// means OutputTopic + ".rekey.dlq". Created when missing, with the
	// output topic's partition count.
	DLQTopic string `mapstructure:"dlq_topic"`
	// TransactionalIDPrefix and Instance make the member's transactional ID,
	// "<prefix>-<instance>".
	TransactionalIDPrefix string `mapstructure:"transactional_id_prefix"`
	// Instance names this member: unique among running members and stable
	// across its restarts (the pod name), so that a restarted member fences
	// its predecessor's open transaction at once. Empty: the host name.
	Instance string `mapstructure:"instance"`
	// TransactionTimeout is the broker's bound on one open transaction.
	TransactionTimeout time.Duration `mapstructure:"transaction_timeout"`
	// MaxPollRecords is the most records taken per poll, and so per
	// transaction.
	MaxPollRecords int `mapstructure:"max_poll_records"`
}

// DefaultConfig returns the defaults; Topics and OutputTopic must be set.
func DefaultConfig() Config {
	return Config{
		Group:                 DefaultGroup,
		TransactionalIDPrefix: DefaultTransactionalIDPrefix,
		TransactionTimeout:    DefaultTransactionTimeout,
		MaxPollRecords:        DefaultMaxPollRecords,
	}
}

// DLQ returns the dead-letter topic: DLQTopic, or its default.
func (c Config) DLQ() string {
	if c.DLQTopic != "" {
		return c.DLQTopic
	}
	return c.OutputTopic + dlqSuffix
}

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	switch {
	case len(c.Topics) == 0:
		return fmt.Errorf("topics: %w", ErrNoTopics)
	case c.OutputTopic == "":
		return fmt.Errorf("output_topic: %w", ErrNoOutputTopic)
	case c.Group == "":
		return errors.New("group: must not be empty")
	case c.TransactionalIDPrefix == "":
		return errors.New("transactional_id_prefix: must not be empty")
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("transaction_timeout %v: must be at least 1s", c.TransactionTimeout)
	case c.MaxPollRecords <= 0:
		return fmt.Errorf("max_poll_records %d: must be positive", c.MaxPollRecords)
	case c.StartOffset != "" && c.StartOffset != "earliest" && c.StartOffset != "latest":
		return fmt.Errorf("start_offset %q (want earliest or latest)", c.StartOffset)
	}
	for _, t := range c.Topics {
		switch t {
		case "":
			return errors.New("topics: an empty topic name")
		case c.OutputTopic:
			return fmt.Errorf("topics: %s is also output_topic; rekey would read its own output", t)
		case c.DLQ():
			return fmt.Errorf("topics: %s is also the dead-letter topic", t)
		}
	}
	if c.DLQ() == c.OutputTopic {
		return fmt.Errorf("dlq_topic: %s is also output_topic", c.OutputTopic)
	}
	return nil
}
