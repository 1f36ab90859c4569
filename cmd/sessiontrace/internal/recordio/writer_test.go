package recordio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestWriterRoundTrip(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)
	tests := []struct {
		name string
		rec  Record
		want Record // what reading it back gives, when not rec itself
	}{
		{name: "event", rec: Record{Topic: "player-events", Partition: 2, Offset: 99, Timestamp: ts,
			Key: []byte("player-000042"), Value: []byte(`{"type":"session.login","player_id":"player-000042"}`)}},
		{name: "tombstone without key or time", rec: Record{Topic: "t", Offset: 0}},
		{name: "empty key and value", rec: Record{Topic: "t", Offset: 1, Key: []byte{}, Value: []byte{}}},
		{name: "escapes", rec: Record{Topic: `we"ird\topic`, Offset: 5, Timestamp: ts,
			Key: []byte("a\tb\nc\x00\x1f"), Value: []byte("<&> \u2028 é 🎮 \"q\" \\")}},
		{name: "large offset and partition", rec: Record{Topic: "t", Partition: 1<<31 - 1, Offset: 1<<63 - 1, Timestamp: ts,
			Value: []byte("{}")}},
		{name: "sub-millisecond time is truncated", rec: Record{Topic: "t", Timestamp: ts.Add(999 * time.Microsecond), Value: []byte("{}")},
			want: Record{Topic: "t", Timestamp: ts, Value: []byte("{}")}},
		{name: "invalid utf-8 is kept, in base64", rec: Record{Topic: "t", Key: []byte("\xc3"), Value: []byte("a\xffb\x00")}},
		{name: "headers", rec: Record{Topic: "t", Offset: 2, Headers: []Header{{"trace", []byte("abc")}, {"empty", []byte{}}, {"none", nil}, {"", []byte("x")}}}},
		{name: "binary headers", rec: Record{Topic: "t", Offset: 3, Headers: []Header{{"k\xff", []byte{0, 0xfe}}, {"plain", nil}}, Value: []byte("{}")}},
		{name: "log append time", rec: Record{Topic: "t", Timestamp: ts, LogAppendTime: true, Value: []byte("{}")}},
		{name: "every byte value", rec: Record{Topic: "t", Key: allBytes(), Value: allBytes()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Write(tt.rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			line := buf.Bytes()
			if !json.Valid(bytes.TrimSpace(line)) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("not one valid JSON line: %q", line)
			}
			r := NewReader(&buf, "roundtrip")
			recs := readAll(t, r)
			want := tt.want
			if want.Topic == "" {
				want = tt.rec
			}
			if len(recs) != 1 || !equalRecord(recs[0], want) {
				t.Fatalf("read back %+v, want %+v", recs, want)
			}
			if r.Format() != FormatKcat {
				t.Errorf("Format() = %v, want kcat", r.Format())
			}
		})
	}
}

// TestWriterMatchesEncodingJSON checks the hand-written string escaper
// against encoding/json for every byte value: both must decode to the same
// string.
func TestWriterMatchesEncodingJSON(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	all = append(all, "é🎮\u2028"...)
	got := appendString(nil, all)
	var s string
	if err := json.Unmarshal(got, &s); err != nil {
		t.Fatalf("appendString produced invalid JSON %q: %v", got, err)
	}
	want, err := json.Marshal(string(all))
	if err != nil {
		t.Fatal(err)
	}
	var ws string
	if err := json.Unmarshal(want, &ws); err != nil {
		t.Fatal(err)
	}
	if s != ws {
		t.Errorf("decoded %q, encoding/json gives %q", s, ws)
	}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterError(t *testing.T) {
	w := NewWriter(failWriter{})
	big := Record{Topic: "t", Partition: 3, Offset: 9, Value: []byte(strings.Repeat("x", 128<<10))}
	err := w.Write(big)
	if err == nil {
		err = w.Flush()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error = %v, want the writer's error", err)
	}
}

// FuzzWriterRoundTrip: whatever the bytes of key, value and headers, the
// line is one valid JSON object and reads back as the same record.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add([]byte("player-1"), []byte(`{"type":"session.login"}`), "h", []byte("v"), false)
	f.Add([]byte("\xff"), []byte("\x00\x1b[2J\n\u2028"), "bin\xfe", []byte{0xc3}, true)
	f.Add([]byte{}, []byte{}, "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte, nilValue bool) {
		rec := Record{Topic: "t", Partition: 1, Offset: 2, Key: key, Value: value, Headers: []Header{{hk, hv}}}
		if nilValue {
			rec.Value = nil
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if !json.Valid(line) || bytes.ContainsAny(line, "\n\r") || !utf8.Valid(line) {
			t.Fatalf("not one valid UTF-8 JSON line: %q", buf.Bytes())
		}
		got := readAll(t, NewReader(&buf, "fuzz"))
		if len(got) != 1 || !equalRecord(got[0], rec) {
			t.Fatalf("read back %+v, want %+v", got, rec)
		}
		slow, err := parseKcatJSON(line)
		if err != nil || !equalRecord(slow, rec) {
			t.Fatalf("encoding/json reads %+v (%v), want %+v", slow, err, rec)
		}
	})
}
