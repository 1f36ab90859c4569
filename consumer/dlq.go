package consumer

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header keys on dead-letter records. The original key and value are kept
// unchanged so a fixed record can be re-published as it is.
const (
	HeaderReason          = "sessiontrace.reason"
	HeaderDetail          = "sessiontrace.detail"
	HeaderSourceTopic     = "sessiontrace.source.topic"
	HeaderSourcePartition = "sessiontrace.source.partition"
	HeaderSourceOffset    = "sessiontrace.source.offset"
)

// deadLetter produces records that cannot be traced to the dead-letter topic.
type deadLetter struct {
	cl    *kgo.Client
	topic string
}

// send produces the dead-letter copy of r asynchronously; done runs once the
// broker acknowledged it or the client gave up.
func (d *deadLetter) send(r *kgo.Record, reason, detail string, done func(error)) {
	out := &kgo.Record{
		Topic: d.topic,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
			kgo.RecordHeader{Key: HeaderDetail, Value: []byte(detail)},
			kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		),
	}
	// The client's own context: a dead-letter write must outlive the poll
	// that read its record, and is bounded by the client's delivery retries.
	d.cl.Produce(context.Background(), out, func(_ *kgo.Record, err error) { done(err) })
}
