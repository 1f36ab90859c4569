package recordio

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// DefaultMaxValueBytes is the longest value a Reader keeps unless
// WithMaxValueBytes says otherwise: the schema's default max_record_bytes,
// so that every value the consumer would decode is kept and every longer one
// is reported as oversized.
const DefaultMaxValueBytes = schema.DefaultMaxRecordBytes

// envelopeBytes is the room a line has beside its value: the envelope's
// fields, the key and the headers.
const envelopeBytes = 1 << 20

// escapedBytesPerByte is the most bytes one byte of a value takes inside a
// JSON string (a control byte written as \u00XX), so a payload string of n
// bytes holds at least n/6 bytes of value.
const escapedBytesPerByte = 6

// ErrLineTooLong is wrapped by the LineError returned for a line longer than
// the Reader keeps whose length is not that of its value (a key or headers
// of more than a MiB), or a JSON line that is not an object. The rest of
// that line is skipped, so Next may be called again to continue with the
// following line.
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

// WithMaxValueBytes sets the longest value the Reader keeps (default
// DefaultMaxValueBytes); give the decoder's max_record_bytes, so that a
// record the consumer rejects as too large is reported as such. A record
// with a longer value comes back with a nil Value and OversizedValue set,
// and its line is never held in memory whole: a line is kept only up to six
// times n plus a MiB (the longest a value of n bytes can take escaped, and
// the envelope). Values below 1 are ignored.
func WithMaxValueBytes(n int) Option {
	return func(r *Reader) {
		if n > 0 {
			r.maxValue = n
		}
	}
}

// Reader streams the records of one file, detecting its format from the first
// non-empty line. Blank lines are skipped. A Reader is not safe for concurrent
// use.
type Reader struct {
	name     string
	br       *bufio.Reader
	closer   io.Closer
	maxValue int
	maxLine  int
	format   Format

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
	r := &Reader{name: name, maxValue: DefaultMaxValueBytes, size: -1}
	for _, o := range opts {
		o(r)
	}
	r.maxLine = escapedBytesPerByte*r.maxValue + envelopeBytes
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
		line, over, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if over != nil {
			rec, err := r.oversized(over)
			if err != nil {
				return Record{}, r.lineErr(err)
			}
			return rec, nil
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

// oversized makes a record of a line longer than the Reader keeps, from the
// line's beginning and the length of its payload.
func (r *Reader) oversized(o *overlong) (Record, error) {
	tooLong := func(why string) error {
		return fmt.Errorf("%w: %d bytes, more than %d: %s", ErrLineTooLong, o.total, r.maxLine, why)
	}
	if r.format == FormatUnknown {
		r.format = FormatJSONL
		if o.envelope {
			r.format = FormatKcat
		}
	}
	switch {
	case r.format == FormatJSONL:
		// The line is the value; trailing blanks are all it may have
		// besides, and the decoder would count them too.
		if !o.object {
			return Record{}, tooLong("expected a JSON object (one event per line)")
		}
		return Record{Offset: int64(r.lineNo - 1), OversizedValue: o.total}, nil
	case !o.kcat:
		return Record{}, tooLong("the fields before the payload are too long to read (a key or headers of more than a MiB?)")
	case !o.closed:
		return Record{}, errors.New("invalid kcat -J envelope: unterminated payload string")
	}
	n := o.payload / escapedBytesPerByte
	if o.base64 {
		n = o.payload/4*3 - 2
	}
	if n <= int64(r.maxValue) {
		return Record{}, tooLong("the key or headers take most of it")
	}
	rec := o.head
	rec.OversizedValue = n
	return rec, nil
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

// overlong describes a line longer than the Reader keeps: its length, and
// for an envelope, its fields before the payload and the payload's length,
// found by scanning the rest of the line as it streams past.
type overlong struct {
	total    int64 // bytes, line ending excluded
	object   bool  // the line starts with '{'
	kcat     bool  // the beginning reads as an envelope up to its payload string
	envelope bool  // the line is an envelope, even if kcat is false
	head     Record
	base64   bool

	payload int64 // bytes of the payload string seen so far, quotes excluded
	esc     bool  // the last byte seen was a backslash inside the payload
	closed  bool  // the payload string's closing quote was seen
}

func (r *Reader) newOverlong(prefix []byte) *overlong {
	if r.lineNo == 0 {
		prefix = bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf"))
	}
	prefix = bytes.TrimLeft(prefix, " \t\r")
	o := &overlong{object: len(prefix) > 0 && prefix[0] == '{'}
	if r.format == FormatJSONL {
		return o
	}
	head, b64, at, ok, envelope := scanKcatHead(prefix)
	o.envelope = envelope || r.format == FormatKcat
	if !ok {
		return o
	}
	o.kcat, o.head, o.base64 = true, head, b64
	o.scan(prefix[at:])
	return o
}

// scan follows the payload string through b until its closing quote.
func (o *overlong) scan(b []byte) {
	if !o.kcat {
		return
	}
	for _, c := range b {
		switch {
		case o.closed:
			return
		case o.esc:
			o.esc = false
			o.payload++
		case c == '\\':
			o.esc = true
			o.payload++
		case c == '"':
			o.closed = true
		default:
			o.payload++
		}
	}
}

// readLine returns the next line without its line ending. When the line is
// longer than the limit it reads on to the newline without keeping the
// bytes, so memory stays bounded whatever the input, and describes the line
// in over instead.
func (r *Reader) readLine() (line []byte, over *overlong, err error) {
	r.buf = r.buf[:0]
	read := false
	var total int64
	var last []byte
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(frag) > 0 {
			read = true
			r.read += int64(len(frag))
			total += int64(len(frag))
			last = frag
		}
		switch {
		case over != nil:
			over.scan(frag)
		case len(r.buf)+len(frag) > r.maxLine+2: // one spare byte so that a "\r\n" ending does not count
			keep := r.maxLine + 2 - len(r.buf)
			r.buf = append(r.buf, frag[:keep]...)
			over = r.newOverlong(r.buf)
			over.scan(frag[keep:])
			r.buf = r.buf[:0]
		default:
			r.buf = append(r.buf, frag...)
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !read {
				return nil, nil, io.EOF
			}
		default:
			return nil, nil, fmt.Errorf("recordio: read %s: %w", r.name, err)
		}
		break
	}
	r.lineNo++
	if over != nil {
		over.total = total
		if bytes.HasSuffix(last, []byte("\n")) {
			over.total--
		}
		return nil, over, nil
	}
	line = bytes.TrimSuffix(r.buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > r.maxLine {
		over = r.newOverlong(line)
		over.total = int64(len(line))
		return nil, over, nil
	}
	return line, nil, nil
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
	Topic           *string   `json:"topic"`
	Partition       *int32    `json:"partition"`
	Offset          *int64    `json:"offset"`
	TSType          *string   `json:"tstype"`
	TS              *int64    `json:"ts"`
	Headers         []*string `json:"headers"`
	HeadersEncoding *string   `json:"headers_encoding"`
	Key             *string   `json:"key"`
	KeyEncoding     *string   `json:"key_encoding"`
	Payload         payload   `json:"payload"`
	PayloadEncoding *string   `json:"payload_encoding"`
}

type payload struct {
	set   bool
	value []byte // nil for null
}

var (
	errPayload = errors.New(`"payload" must be a string or null`)
	errHeaders = errors.New(`"headers" must be a list of names and values, strings (values may be null)`)
)

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
	"topic":            `"topic" must be a string`,
	"partition":        `"partition" must be a non-negative 32-bit integer`,
	"offset":           `"offset" must be a non-negative integer`,
	"ts":               `"ts" must be an integer (milliseconds since the Unix epoch)`,
	"tstype":           `"tstype" must be a string`,
	"key":              `"key" must be a string or null`,
	"headers":          errHeaders.Error(),
	"key_encoding":     `"key_encoding" must be "base64"`,
	"payload_encoding": `"payload_encoding" must be "base64"`,
	"headers_encoding": `"headers_encoding" must be "base64"`,
}

// decodeField decodes b, the bytes of field name, as its encoding says:
// "" is text, kept as is; base64 is standard base64.
func decodeField(name, enc string, b []byte) ([]byte, error) {
	if enc == "" || b == nil {
		return b, nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		return nil, fmt.Errorf("%q is not valid base64, as %q_encoding says: %w", name, name, err)
	}
	return out[:n], nil
}

// encodingOf checks an encoding marker: absent or base64.
func encodingOf(name string, v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	if *v != encodingBase64 {
		return "", errors.New(fieldRules[name])
	}
	return encodingBase64, nil
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
		rec.LogAppendTime = env.TSType != nil && *env.TSType == "logappend"
	}
	keyEnc, err := encodingOf("key_encoding", env.KeyEncoding)
	if err != nil {
		return Record{}, err
	}
	payloadEnc, err := encodingOf("payload_encoding", env.PayloadEncoding)
	if err != nil {
		return Record{}, err
	}
	headerEnc, err := encodingOf("headers_encoding", env.HeadersEncoding)
	if err != nil {
		return Record{}, err
	}
	if env.Key != nil {
		if rec.Key, err = decodeField("key", keyEnc, []byte(*env.Key)); err != nil {
			return Record{}, err
		}
	}
	if !env.Payload.set {
		return Record{}, errors.New(`"payload" is missing`)
	}
	if rec.Value, err = decodeField("payload", payloadEnc, env.Payload.value); err != nil {
		return Record{}, err
	}
	if len(env.Headers)%2 != 0 {
		return Record{}, errHeaders
	}
	for i := 0; i < len(env.Headers); i += 2 {
		if env.Headers[i] == nil {
			return Record{}, errHeaders
		}
		k, err := decodeField("headers", headerEnc, []byte(*env.Headers[i]))
		if err != nil {
			return Record{}, err
		}
		var v []byte
		if env.Headers[i+1] != nil {
			if v, err = decodeField("headers", headerEnc, []byte(*env.Headers[i+1])); err != nil {
				return Record{}, err
			}
		}
		rec.Headers = append(rec.Headers, Header{Key: string(k), Value: v})
	}
	return rec, nil
}
