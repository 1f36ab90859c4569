package recordio

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/recordio")

// testdataDir is the repository's testdata/recordio, shared with the CLI
// tests that replay the same files.
var testdataDir = filepath.Join("..", "..", "..", "..", "testdata", "recordio")

func readAll(t *testing.T, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, rec)
	}
}

// TestReaderGolden reads every input file and writes what it read through
// Writer, so the golden file shows each record's partition, offset,
// timestamp, key and value as replay will see them.
func TestReaderGolden(t *testing.T) {
	tests := []struct {
		file   string
		format Format
	}{
		{"events.jsonl", FormatJSONL},
		{"crlf-noeol.jsonl", FormatJSONL},
		{"kcat.jsonl", FormatKcat},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Open(filepath.Join(testdataDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := r.Close(); err != nil {
					t.Error(err)
				}
			})
			recs := readAll(t, r)
			if read, size := r.Progress(); read != size || size <= 0 {
				t.Errorf("Progress() = %d, %d at the end, want the file size twice", read, size)
			}
			if r.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", r.Format(), tt.format)
			}
			var got bytes.Buffer
			w := NewWriter(&got)
			for _, rec := range recs {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(testdataDir, tt.file+".golden"), got.Bytes())
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestReaderJSONLFields(t *testing.T) {
	in := "\n" + // a blank first line: offsets still count it
		`{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2025-01-01T10:00:00.5Z"}` + "\n" +
		`{"type":"session.login","event_id":"e2","player_id":7,"ts":1}` + "\n"
	r := NewReader(strings.NewReader(in), "in.jsonl")
	recs := readAll(t, r)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	want0 := Record{
		Offset:    1,
		Timestamp: time.Date(2025, 1, 1, 10, 0, 0, 5e8, time.UTC),
		Key:       []byte("p1"),
		Value:     []byte(`{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2025-01-01T10:00:00.5Z"}`),
	}
	if !equalRecord(recs[0], want0) {
		t.Errorf("record 0 = %+v, want %+v", recs[0], want0)
	}
	// A player_id that is not a string gives no key: the schema decoder,
	// not the reader, rejects the event.
	if recs[1].Key != nil || !recs[1].Timestamp.IsZero() || recs[1].Offset != 2 {
		t.Errorf("record 1 = %+v, want no key, no timestamp, offset 2", recs[1])
	}
}

func equalRecord(a, b Record) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset &&
		a.Timestamp.Equal(b.Timestamp) && a.LogAppendTime == b.LogAppendTime && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		(a.Key == nil) == (b.Key == nil) && (a.Value == nil) == (b.Value == nil) &&
		a.OversizedValue == b.OversizedValue && slices.EqualFunc(a.Headers, b.Headers, func(x, y Header) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value) && (x.Value == nil) == (y.Value == nil)
	})
}

func TestReaderMalformed(t *testing.T) {
	const event = `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2025-01-01T10:00:00Z"}`
	const env = `{"topic":"t","partition":0,"offset":1,"key":"p1","payload":"{}"}`
	tests := []struct {
		name     string
		in       string
		good     int // records read before the error
		line     int
		contains string
	}{
		{"first line not an object", "[1,2]\n", 0, 1, "expected a JSON object"},
		{"first line broken JSON", "{\"type\":\n", 0, 1, "invalid JSON"},
		{"jsonl broken later", event + "\n\n" + `{"type":"x",` + "\n", 1, 3, "invalid JSON"},
		{"jsonl line is a string", event + "\n\"hello\"\n", 1, 2, "one event per line"},
		{"jsonl trailing garbage", event + "\n" + event + " x\n", 1, 2, "invalid JSON"},
		{"kcat broken later", env + "\n" + `{"offset":` + "\n", 1, 2, "invalid kcat -J envelope"},
		{"kcat offset missing", env + "\n" + `{"topic":"t","payload":"{}"}` + "\n", 1, 2, `"offset" is missing or null`},
		{"kcat payload missing", env + "\n" + `{"topic":"t","offset":2}` + "\n", 1, 2, `"payload" is missing`},
		{"kcat offset negative", `{"offset":-1,"payload":"{}"}` + "\n", 0, 1, `"offset" must be a non-negative integer`},
		{"kcat offset not a number", `{"offset":"3","payload":"{}"}` + "\n", 0, 1, `"offset" must be`},
		{"kcat offset null", `{"offset":null,"payload":"{}"}` + "\n", 0, 1, `"offset" is missing or null`},
		{"kcat partition negative", `{"partition":-2,"offset":0,"payload":"{}"}` + "\n", 0, 1, `"partition" must be`},
		{"kcat partition too big", `{"partition":4294967296,"offset":0,"payload":"{}"}` + "\n", 0, 1, `"partition" must be`},
		{"kcat payload is an object", `{"offset":0,"payload":{"type":"x"}}` + "\n", 0, 1, `"payload" must be a string or null`},
		{"kcat key is a number", `{"offset":0,"key":5,"payload":"{}"}` + "\n", 0, 1, `"key" must be a string or null`},
		{"kcat ts is a string", `{"offset":0,"ts":"now","payload":"{}"}` + "\n", 0, 1, `"ts" must be an integer`},
		{"kcat topic is a number", `{"topic":1,"offset":0,"payload":"{}"}` + "\n", 0, 1, `"topic" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), "bad.jsonl")
			for i := range tt.good {
				if _, err := r.Next(); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			_, err := r.Next()
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Next() error = %v, want a *LineError", err)
			}
			if le.File != "bad.jsonl" || le.Line != tt.line {
				t.Errorf("error at %s:%d, want bad.jsonl:%d", le.File, le.Line, tt.line)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "recordio: bad.jsonl:") || !strings.Contains(msg, tt.contains) {
				t.Errorf("error %q: want prefix %q and %q in it", msg, "recordio: bad.jsonl:", tt.contains)
			}
		})
	}
}

// TestReaderOversized: a line longer than the Reader keeps is a record
// with its metadata and OversizedValue, never an error or a whole line in
// memory, when its length is that of its value; otherwise an error naming
// the line, after which reading goes on.
func TestReaderOversized(t *testing.T) {
	const max = 100
	const small = `{"player_id":"p1"}`
	big := strings.Repeat("x", 6*max+envelopeBytes)
	escaped := strings.Repeat(`\u0001`, max+envelopeBytes/6+1) // the most a byte can take escaped
	tests := []struct {
		name    string
		in      string
		want    []Record
		wantErr []int // one-based lines that must fail, in order
	}{
		{name: "jsonl event", in: `{"player_id":"` + big + `"}` + "\n" + small + "\n",
			want: []Record{{Offset: 0, OversizedValue: int64(len(big) + len(`{"player_id":""}`))}, {Offset: 1, Key: []byte("p1"), Value: []byte(small)}}},
		{name: "jsonl with crlf and no final newline", in: small + "\r\n" + `{"a":"` + big + `"}`,
			want: []Record{{Offset: 0, Key: []byte("p1"), Value: []byte(small)}, {Offset: 1, OversizedValue: int64(len(big) + len(`{"a":""}`))}}},
		{name: "jsonl not an object", in: small + "\n" + big + "\n" + small + "\n",
			want: []Record{{Offset: 0, Key: []byte("p1"), Value: []byte(small)}, {Offset: 2, Key: []byte("p1"), Value: []byte(small)}}, wantErr: []int{2}},
		{name: "kcat text payload", in: `{"topic":"t","partition":2,"offset":9,"tstype":"logappend","ts":1000,"broker":-1,"headers":["h","v"],"key":"k","payload":"` + big + `"}` + "\n",
			want: []Record{{Topic: "t", Partition: 2, Offset: 9, Timestamp: time.UnixMilli(1000), LogAppendTime: true,
				Headers: []Header{{"h", []byte("v")}}, Key: []byte("k"), OversizedValue: int64(len(big) / 6)}}},
		{name: "kcat escaped payload", in: `{"offset":3,"key":null,"payload":"` + escaped + `"}` + "\n",
			want: []Record{{Offset: 3, OversizedValue: int64(len(escaped) / 6)}}},
		{name: "kcat base64 payload", in: `{"offset":4,"key_encoding":"base64","key":"/w==","payload_encoding":"base64","payload":"` + big + `"}` + "\n",
			want: []Record{{Offset: 4, Key: []byte{0xff}, OversizedValue: int64(len(big)/4*3 - 2)}}},
		{name: "kcat huge key", in: `{"offset":5,"key":"` + big + `","payload":"{}"}` + "\n" + `{"offset":6,"payload":"{}"}` + "\n",
			want: []Record{{Offset: 6, Value: []byte("{}")}}, wantErr: []int{1}},
		{name: "kcat payload not closed", in: `{"offset":7,"payload":"` + big + "\n",
			wantErr: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), "big.jsonl", WithMaxValueBytes(max))
			var got []Record
			var errLines []int
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					var le *LineError
					if !errors.As(err, &le) {
						t.Fatalf("Next() error = %v, want a LineError", err)
					}
					errLines = append(errLines, le.Line)
					continue
				}
				got = append(got, rec)
			}
			if !slices.EqualFunc(got, tt.want, equalRecord) || !equalInts(errLines, tt.wantErr) {
				t.Errorf("read %+v, errors on lines %v\nwant %+v, errors on %v", got, errLines, tt.want, tt.wantErr)
			}
			for _, rec := range got {
				if rec.OversizedValue != 0 && (rec.OversizedValue <= max || rec.Value != nil) {
					t.Errorf("oversized record %+v: want a nil value and a length above %d", rec, max)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.jsonl"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open() error = %v, want fs.ErrNotExist", err)
	}
}

func TestReaderEmpty(t *testing.T) {
	r := NewReader(strings.NewReader("\n  \n"), "empty")
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next() error = %v, want io.EOF", err)
	}
	if r.Format() != FormatUnknown {
		t.Errorf("Format() = %v, want unknown", r.Format())
	}
	if read, size := r.Progress(); read != 4 || size != -1 {
		t.Errorf("Progress() = %d, %d, want 4 bytes read of an unknown size", read, size)
	}
}
