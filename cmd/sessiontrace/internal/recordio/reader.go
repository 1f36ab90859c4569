package recordio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// DefaultMaxLineBytes bounds one line of a record file unless WithMaxLineBytes
// says otherwise. A v1 event is about 256 bytes and the schema rejects values
// over 64 KiB, so 1 MiB leaves room for envelopes of oversized poison records
// while still stopping a file without newlines from filling memory.
const DefaultMaxLineBytes = 1 << 20

// ErrLineTooLong is wrapped by the LineError returned for a line longer than
// the Reader's limit. The rest of that line is skipped, so Next may be called
// again to continue with the following line.
var ErrLineTooLong = errors.New("line too long")

// LineError says which line of which file could not be read as a record.
type LineError struct {
	// File is the name the Reader was opened with.
	File string
	// Line is the one-based line number.
	Line int
	// Err is the problem with the line.
	Err error
}

// Error formats e as "recordio: <file>:<line>: <problem>", the form editors
// and terminals turn into a link.
func (e *LineError) Error() string {
	return fmt.Sprintf("recordio: %s:%d: %v", e.File, e.Line, e.Err)
}

// Unwrap returns the problem with the line.
func (e *LineError) Unwrap() error { return e.Err }

// Option configures a Reader.
type Option func(*Reader)

// WithMaxLineBytes bounds the length of one line, newline excluded (default
// DefaultMaxLineBytes). A longer line makes Next return a LineError wrapping
// ErrLineTooLong. Values below 1 are ignored.
func WithMaxLineBytes(n int) Option {
	return func(r *Reader) {
		if n > 0 {
			r.maxLine = n
		}
	}
}

// Reader streams the records of one file, detecting its format from the first
// non-empty line. Blank lines are skipped. A Reader is not safe for concurrent
// use.
type Reader struct {
	name    string
	br      *bufio.Reader
	closer  io.Closer
	maxLine int
	format  Format

	buf    []byte // the current line, reused between calls
	lineNo int
	read   int64 // bytes consumed, line endings included
	size   int64 // file size, or -1 when unknown

	dec *schema.Decoder // reads valid JSONL events fast; see parseJSONL
	ev  schema.Event
}

// Open opens the file at path for reading records.
func Open(path string, opts ...Option) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recordio: open: %w", err)
	}
	r := NewReader(f, path, opts...)
	r.closer = f
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		r.size = st.Size()
	}
	return r, nil
}

// NewReader reads records from src, naming it name in errors (for example
// "-" or "stdin"). Close does not close src.
func NewReader(src io.Reader, name string, opts ...Option) *Reader {
	r := &Reader{name: name, maxLine: DefaultMaxLineBytes, size: -1}
	for _, o := range opts {
		o(r)
	}
	r.br = bufio.NewReaderSize(src, 64<<10)
	// The default limits always validate; a nil decoder would only mean
	// the slower path for every line.
	r.dec, _ = schema.NewDecoder(schema.DefaultLimits())
	return r
}

// Progress returns how many bytes of the input have been consumed and the
// input's size, for a progress line; size is -1 when unknown (a pipe, or a
// Reader made by NewReader).
func (r *Reader) Progress() (read, size int64) { return r.read, r.size }

// Format returns the detected format, FormatUnknown until Next has read the
// first non-empty line.
func (r *Reader) Format() Format { return r.format }

// Next returns the next record, or io.EOF after the last one. A line that is
// not a record gives a *LineError; the Reader then stands on the following
// line, so the caller may skip the bad line or stop. Key and Value are owned
// by the caller.
func (r *Reader) Next() (Record, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			return Record{}, r.lineErr(fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.maxLine))
		}
		if r.lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if r.format == FormatUnknown {
			f, err := detect(line)
			if err != nil {
				return Record{}, r.lineErr(err)
			}
			r.format = f
		}
		var rec Record
		if r.format == FormatKcat {
			rec, err = parseKcat(line)
		} else {
			rec, err = r.parseJSONL(line, int64(r.lineNo-1))
		}
		if err != nil {
			return Record{}, r.lineErr(err)
		}
		return rec, nil
	}
}

// Close closes the file Open opened. It is safe to call more than once.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	if err := c.Close(); err != nil {
		return fmt.Errorf("recordio: close %s: %w", r.name, err)
	}
	return nil
}

func (r *Reader) lineErr(err error) error {
	return &LineError{File: r.name, Line: r.lineNo, Err: err}
}

// readLine returns the next line without its line ending. When the line is
// longer than the limit it reads on to the newline without keeping the bytes,
// so memory stays bounded whatever the input, and reports tooLong.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	read := false
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(frag) > 0 {
			read = true
			r.read += int64(len(frag))
		}
		if !tooLong {
			// One spare byte so that a "\r\n" ending does not count.
			if len(r.buf)+len(frag) > r.maxLine+2 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, frag...)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !read {
				return nil, false, io.EOF
			}
		default:
			return nil, false, fmt.Errorf("recordio: read %s: %w", r.name, err)
		}
		break
	}
	r.lineNo++
	if tooLong {
		return nil, true, nil
	}
	line = bytes.TrimSuffix(r.buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > r.maxLine {
		return nil, true, nil
	}
	return line, false, nil
}

// detect tells the formats apart by the keys of the first line: an envelope
// has "payload" and "offset", an event has neither.
func detect(line []byte) (Format, error) {
	if line[0] != '{' {
		return FormatUnknown, errors.New("expected a JSON object (an event, or a kcat -J envelope)")
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(line, &probe); err != nil {
		return FormatUnknown, fmt.Errorf("invalid JSON: %w", err)
	}
	_, hasPayload := probe["payload"]
	_, hasOffset := probe["offset"]
	if hasPayload && hasOffset {
		return FormatKcat, nil
	}
	return FormatJSONL, nil
}

// parseJSONL makes a record of one event value. Only framing is checked
// here; whether the event is valid is the schema decoder's call downstream,
// so that an invalid event reaches the pipeline and is counted there like one
// from Kafka. A valid event, the common case, is read by the schema decoder,
// which is about ten times faster than encoding/json; anything else takes the
// encoding/json path to find its key.
func (r *Reader) parseJSONL(line []byte, offset int64) (Record, error) {
	if line[0] != '{' {
		return Record{}, errors.New("expected a JSON object (one event per line)")
	}
	if r.dec != nil && r.dec.Decode(nil, line, &r.ev) == nil {
		return Record{
			Offset:    offset,
			Timestamp: time.Unix(0, r.ev.TS).UTC(),
			Key:       []byte(r.ev.PlayerID),
			Value:     bytes.Clone(line),
		}, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return Record{}, fmt.Errorf("invalid JSON: %w", err)
	}
	rec := Record{Offset: offset, Value: bytes.Clone(line)}
	var s string
	if raw, ok := fields["player_id"]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
		rec.Key = []byte(s)
	}
	s = ""
	if raw, ok := fields["ts"]; ok && json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			rec.Timestamp = t
		}
	}
	return rec, nil
}

// envelope is one `kcat -J` line. Pointers tell absent (or null) fields from
// zero values; payload also tells absent from null.
type envelope struct {
	Topic     *string `json:"topic"`
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	TS        *int64  `json:"ts"`
	Key       *string `json:"key"`
	Payload   payload `json:"payload"`
}

type payload struct {
	set   bool
	value []byte // nil for null
}

var errPayload = errors.New(`"payload" must be a string or null`)

func (p *payload) UnmarshalJSON(b []byte) error {
	p.set = true
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errPayload
	}
	p.value = []byte(s)
	return nil
}

// fieldRules words the type errors of an envelope, by JSON field.
var fieldRules = map[string]string{
	"topic":     `"topic" must be a string`,
	"partition": `"partition" must be a non-negative 32-bit integer`,
	"offset":    `"offset" must be a non-negative integer`,
	"ts":        `"ts" must be an integer (milliseconds since the Unix epoch)`,
	"key":       `"key" must be a string or null`,
}

func parseKcat(line []byte) (Record, error) {
	if rec, ok := scanKcat(line); ok {
		return rec, nil
	}
	return parseKcatJSON(line)
}

// parseKcatJSON is the reference reading of an envelope, and the one that
// explains what is wrong with a bad line.
func parseKcatJSON(line []byte) (Record, error) {
	if line[0] != '{' {
		return Record{}, errors.New("expected a kcat -J envelope object")
	}
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && fieldRules[te.Field] != "" {
			return Record{}, errors.New(fieldRules[te.Field])
		}
		if errors.Is(err, errPayload) {
			return Record{}, errPayload
		}
		return Record{}, fmt.Errorf("invalid kcat -J envelope: %w", err)
	}
	var rec Record
	if env.Topic != nil {
		rec.Topic = *env.Topic
	}
	if env.Partition != nil {
		if *env.Partition < 0 {
			return Record{}, errors.New(fieldRules["partition"])
		}
		rec.Partition = *env.Partition
	}
	if env.Offset == nil {
		return Record{}, errors.New(`"offset" is missing or null`)
	}
	if *env.Offset < 0 {
		return Record{}, errors.New(fieldRules["offset"])
	}
	rec.Offset = *env.Offset
	if env.TS != nil && *env.TS >= 0 {
		rec.Timestamp = time.UnixMilli(*env.TS).UTC()
	}
	if env.Key != nil {
		rec.Key = []byte(*env.Key)
	}
	if !env.Payload.set {
		return Record{}, errors.New(`"payload" is missing`)
	}
	rec.Value = env.Payload.value
	return rec, nil
}
