package recordio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// TestScanKcatTakesCommonLines: the fast path must actually take the lines
// kcat and Writer print, or it is dead weight.
func TestScanKcatTakesCommonLines(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testdataDir, "kcat.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, rec := range []Record{
		{Topic: "events", Partition: 2, Offset: 7, Timestamp: time.UnixMilli(1767225600123), Key: []byte("player-000001"),
			Value: []byte(`{"type":"session.login","player_id":"player-000001","attributes":{"note":"tab\there, é, 🎮"}}`)},
		{Topic: "events", Offset: 0},
		{Topic: "t", Key: []byte{}, Value: []byte("\x00\x1f\\\"/")},
	} {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := append(bytes.Split(bytes.TrimSpace(raw), []byte("\n")), bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))...)
	for i, line := range lines {
		if _, ok := scanKcat(line); !ok {
			t.Errorf("line %d not taken by the fast path: %s", i, line)
		}
	}
}

// FuzzScanKcat: whenever the fast path accepts a line, encoding/json reads
// the same record from it.
func FuzzScanKcat(f *testing.F) {
	for _, s := range []string{
		`{"topic":"t","partition":0,"offset":12,"tstype":"create","ts":1700000000000,"broker":1,"key":"p1","payload":"{\"a\":1}"}`,
		`{"topic":"t","partition":1,"offset":0,"broker":-1,"headers":["a","b","c",null],"key":null,"payload":null}`,
		`{"offset":3,"payload":"\ud83c\udfae \u00e9 \/ \b\f\n\r\t"}`,
		`{"offset":3,"payload":"x","Payload":"y"}`,
		`{"offset":01,"payload":""}`,
		`{"offset":9223372036854775807,"partition":2147483647,"payload":""}`,
		`{"offset":1,"payload":"\udc00"}`,
		` { "offset" : 1 , "payload" : "" , "key" : "" } `,
		`{"offset":1,"headers_encoding":"base64","headers":["AA==",null],"key_encoding":"base64","key":"/w==","payload_encoding":"base64","payload":"AP8="}`,
		`{"offset":1,"payload_encoding":"base64","payload":"not base64"}`,
		`{"offset":1,"payload_encoding":"hex","payload":"00"}`,
		`{"offset":1,"headers":["a"],"payload":""}`,
		`{"offset":1,"tstype":"logappend","ts":5,"payload":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := scanKcat(line)
		if !ok {
			return
		}
		if len(line) == 0 || bytes.TrimSpace(line)[0] != '{' {
			t.Fatalf("fast path took a line that is not an object: %q", line)
		}
		if !utf8.Valid(line) {
			return // the fast path keeps raw bytes that encoding/json replaces
		}
		slow, err := parseKcatJSON(bytes.TrimSpace(line))
		if err != nil {
			t.Fatalf("fast path took %q, encoding/json rejects it: %v", line, err)
		}
		if !equalRecord(fast, slow) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", line, fast, slow)
		}
	})
}
