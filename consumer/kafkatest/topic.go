package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// adminTimeout bounds each administrative step (create, wait, delete).
const adminTimeout = 30 * time.Second

// maxNameLen keeps generated names well inside Kafka's 249-character topic
// name limit, with room for the random suffix.
const maxNameLen = 200

// Topic creates a topic with a unique name derived from t.Name(), the given
// number of partitions and replication factor 1, waits until every partition
// has a leader in the cluster's metadata, and deletes the topic in t.Cleanup.
func Topic(t testing.TB, brokers []string, partitions int32) string {
	t.Helper()
	name := uniqueName(t.Name())
	cl := newClient(t, brokers)
	adm := kadm.NewClient(cl)

	ctx, cancel := context.WithTimeout(t.Context(), adminTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		cl.Close()
		t.Fatalf("kafkatest: create topic %s with %d partitions: %v", name, partitions, err)
	}
	t.Cleanup(func() {
		defer cl.Close()
		// t.Context is already done when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		resp, err := adm.DeleteTopic(ctx, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Errorf("kafkatest: delete topic %s: %v", name, err)
		}
	})
	if err := waitTopic(ctx, adm, name, partitions); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return name
}

// topicPollInterval is how often waitTopic asks for metadata. Creation is
// visible within a few polls on every backend.
const topicPollInterval = 10 * time.Millisecond

// waitTopic waits until metadata shows topic with partitions partitions, each
// with a leader: a real broker answers CreateTopics before the partitions
// have leaders, and producing then fails until they do.
func waitTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	tick := time.NewTicker(topicPollInterval)
	defer tick.Stop()
	var last error
	for {
		last = topicReady(ctx, adm, topic, partitions)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic %s metadata: %w (last: %w)", topic, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func topicReady(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[topic]
	switch {
	case !ok:
		return errors.New("topic not in metadata")
	case td.Err != nil:
		return td.Err
	case int32(len(td.Partitions)) != partitions:
		return fmt.Errorf("%d of %d partitions in metadata", len(td.Partitions), partitions)
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.Partition)
		}
	}
	return nil
}

// Group returns a consumer group name unique to this call, derived from
// t.Name().
func Group(t testing.TB) string {
	t.Helper()
	return uniqueName(t.Name())
}

// uniqueName turns a test name into a legal Kafka name that is readable in
// broker logs and unique thanks to a random suffix. Only letters, digits and
// '-' are kept: Kafka rejects a topic whose name equals an existing one after
// '.' and '_' are unified, so neither is ever produced.
func uniqueName(testName string) string {
	var b strings.Builder
	dash := false
	for _, r := range testName {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			// Collapse runs of anything else (/, _, spaces, #) into one dash.
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = false
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	if name == "" {
		name = "kafkatest"
	}
	return fmt.Sprintf("%s-%08x", name, rand.Uint32())
}
