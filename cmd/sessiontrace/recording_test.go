package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// largeValueBytes is over 1 MiB, the line length replay used to die on, and
// over max_record_bytes, so the consumer rejects it as too_large.
const largeValueBytes = 1<<20 + 200<<10

// faithfulRecords are the records of sessionsFile plus the ones a recording
// must keep byte for byte: invalid UTF-8 (which the consumer rejects as
// malformed_json and U+FFFD would turn into a valid login), a value over
// 1 MiB, a tombstone, an empty key, a binary key and headers, text and
// binary.
func faithfulRecords(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	recs := fileRecords(t, topic, sessionsFile)
	for _, r := range recs {
		r.Timestamp = time.Time{} // the broker stamps them, as before
	}
	login := func(id, player, extra string) []byte {
		return []byte(`{"type":"session.login","event_id":"` + id + `","player_id":"` + player +
			`","ts":"2026-01-01T00:30:00Z","auth_method":"password","client_version":"1.4.2","platform":"pc"` + extra + `}`)
	}
	for i := range 3 {
		p := "player-bin-" + strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(p + "\xff"), Value: login("bin-"+strconv.Itoa(i), p+"\xff", "")})
	}
	recs = append(recs,
		&kgo.Record{Topic: topic, Key: []byte("player-big"), Value: login("big", "player-big",
			`,"attributes":{"blob":"`+strings.Repeat("\\u0001x", largeValueBytes/7)+`"}`)},
		&kgo.Record{Topic: topic, Key: []byte("player-tomb")},
		&kgo.Record{Topic: topic, Key: []byte{}, Value: []byte("{}")},
		&kgo.Record{Topic: topic, Key: []byte("player-hdr"), Value: login("hdr", "player-hdr", ""),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "empty", Value: []byte{}}, {Key: "none"}}},
		&kgo.Record{Topic: topic, Key: []byte("player-hdr"), Value: []byte("\x00\xfe raw bytes"),
			Headers: []kgo.RecordHeader{{Key: "bin\xff", Value: []byte{0, 0xfe, 0xff}}}},
	)
	return recs
}

// produceLarge produces recs synchronously with a client (and a topic
// setting) that accept records over Kafka's 1 MiB defaults.
func produceLarge(t *testing.T, brokers []string, topic string, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cl := kafkatest.Client(t, brokers, kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedBytes(64<<20))
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr(strconv.Itoa(4 << 20))},
	}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("allow large records on %s: %v", topic, err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(recs), err)
	}
}

// summary is the replay summary without its timing: what a replay of the
// same records must repeat exactly, open sessions included (sorted, since
// partitions interleave differently in a file and in a topic).
func summary(t *testing.T, stderr string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "replayed ") {
		t.Fatalf("no replay summary in:\n%s", stderr)
	}
	first, _, _ := strings.Cut(lines[0], " in ")
	rest := slices.Clone(lines[1:])
	slices.Sort(rest)
	return append([]string{first}, rest...)
}

// TestRecordingIsFaithful: every byte of key, value and headers, and the
// timestamp, partition and offset of every record survive record, and a
// replay of the recording gives exactly the spans, rejected records and
// open sessions of replay --topic over the same range.
func TestRecordingIsFaithful(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 3)
		recs := faithfulRecords(t, topic)
		produceLarge(t, brokers, topic, recs)
		out := filepath.Join(t.TempDir(), "recorded.jsonl")
		bs := strings.Join(brokers, ",")
		mustSucceed(t, runCLI(t, nil, "record", "--brokers", bs, "--topic", topic, "--output", out), "record")

		r, err := recordio.Open(out, recordio.WithMaxValueBytes(8<<20))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		got := map[[2]int64]recordio.Record{}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got[[2]int64{int64(rec.Partition), rec.Offset}] = rec
		}
		if len(got) != len(recs) {
			t.Fatalf("recorded %d records, produced %d", len(got), len(recs))
		}
		for _, want := range recs {
			rec, ok := got[[2]int64{int64(want.Partition), want.Offset}]
			switch {
			case !ok:
				t.Errorf("partition %d offset %d not recorded", want.Partition, want.Offset)
			case rec.Topic != topic || !bytes.Equal(rec.Key, want.Key) || (rec.Key == nil) != (want.Key == nil) ||
				!bytes.Equal(rec.Value, want.Value) || (rec.Value == nil) != (want.Value == nil):
				t.Errorf("partition %d offset %d: recorded key %q value %.80q, produced key %q value %.80q",
					want.Partition, want.Offset, rec.Key, rec.Value, want.Key, want.Value)
			case !rec.Timestamp.Equal(want.Timestamp.Truncate(time.Millisecond)):
				t.Errorf("partition %d offset %d: timestamp %v, produced %v", want.Partition, want.Offset, rec.Timestamp, want.Timestamp)
			case !slices.EqualFunc(rec.Headers, want.Headers, func(a recordio.Header, b kgo.RecordHeader) bool {
				return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
			}):
				t.Errorf("partition %d offset %d: headers %q, produced %q", want.Partition, want.Offset, rec.Headers, want.Headers)
			}
		}

		fromFile := runCLI(t, nil, "replay", "-o", "json", out)
		mustSucceed(t, fromFile, "replay the recording")
		fromTopic := runCLI(t, nil, "replay", "-o", "json", "--brokers", bs, "--topic", topic)
		mustSucceed(t, fromTopic, "replay --topic")
		if !slices.Equal(sortedLines(fromFile.stdout), sortedLines(fromTopic.stdout)) {
			t.Errorf("the recording and the topic replay into different spans")
		}
		if f, tp := summary(t, fromFile.stderr), summary(t, fromTopic.stderr); !slices.Equal(f, tp) {
			t.Errorf("the recording and the topic replay differently:\nrecording:\n%s\ntopic:\n%s",
				strings.Join(f, "\n"), strings.Join(tp, "\n"))
		}
		for _, want := range []string{"too_large=1", "malformed_json=5"} {
			if !strings.Contains(fromFile.stderr, want) {
				t.Errorf("replay of the recording does not count %s:\n%s", want, fromFile.stderr)
			}
		}
		if raw, err := os.ReadFile(out); err == nil && bytes.Contains(raw, []byte("\uFFFD")) {
			t.Errorf("the recording has U+FFFD in it")
		}

		// The same over a range that cuts sessions in two, both ends.
		part := filepath.Join(t.TempDir(), "range.jsonl")
		bounds := []string{"--from", "5", "--to", "30"}
		mustSucceed(t, runCLI(t, nil, append([]string{"record", "--brokers", bs, "--topic", topic, "--output", part}, bounds...)...), "record a range")
		rangeFile := runCLI(t, nil, "replay", "-o", "json", part)
		mustSucceed(t, rangeFile, "replay the recorded range")
		rangeTopic := runCLI(t, nil, append([]string{"replay", "-o", "json", "--brokers", bs, "--topic", topic}, bounds...)...)
		mustSucceed(t, rangeTopic, "replay --topic over the range")
		if !slices.Equal(sortedLines(rangeFile.stdout), sortedLines(rangeTopic.stdout)) {
			t.Errorf("the recorded range and the topic range replay into different spans")
		}
		if f, tp := summary(t, rangeFile.stderr), summary(t, rangeTopic.stderr); !slices.Equal(f, tp) || slices.Equal(f, summary(t, fromFile.stderr)) {
			t.Errorf("the recorded range and the topic range replay differently, or like the whole topic:\nrecording:\n%s\ntopic:\n%s",
				strings.Join(f, "\n"), strings.Join(tp, "\n"))
		}
	})
}
