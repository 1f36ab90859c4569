package recordio

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// encodingBase64 is the value of "key_encoding", "payload_encoding" and
// "headers_encoding" for bytes written in standard base64 because they are
// not valid UTF-8.
const encodingBase64 = "base64"

// Writer writes records as `kcat -J` envelopes, one per line, in the field
// order kcat uses:
//
//	{"topic":"t","partition":0,"offset":12,"tstype":"create","ts":1700000000000,"broker":-1,"headers":["h","v"],"key":"p1","payload":"{…}"}
//
// "tstype" and "ts" are left out when the record has no timestamp, and
// "headers" when it has none, as kcat does; "broker" is always -1 because
// the broker a record came from is not kept. Key and payload are JSON
// strings, null when nil. A key, a payload or a set of headers that is not
// valid UTF-8 is written in base64, with "key_encoding", "payload_encoding"
// or "headers_encoding" set to "base64" just before it, so every byte
// survives. A Writer is not safe for concurrent use.
type Writer struct {
	bw  *bufio.Writer
	buf []byte
}

// NewWriter returns a Writer buffering its output to w. Call Flush when done.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10)}
}

// Write appends rec as one line.
func (w *Writer) Write(rec Record) error {
	b := w.buf[:0]
	b = append(b, `{"topic":`...)
	b = appendString(b, []byte(rec.Topic))
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	if !rec.Timestamp.IsZero() {
		if rec.LogAppendTime {
			b = append(b, `,"tstype":"logappend","ts":`...)
		} else {
			b = append(b, `,"tstype":"create","ts":`...)
		}
		b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	}
	b = append(b, `,"broker":-1`...)
	if len(rec.Headers) > 0 {
		binary := !headersUTF8(rec.Headers)
		if binary {
			b = append(b, `,"headers_encoding":"base64"`...)
		}
		b = append(b, `,"headers":[`...)
		for i, h := range rec.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendBytes(b, []byte(h.Key), binary)
			b = append(b, ',')
			b = appendBytes(b, h.Value, binary)
		}
		b = append(b, ']')
	}
	b = appendField(b, "key", rec.Key)
	b = appendField(b, "payload", rec.Value)
	b = append(b, "}\n"...)
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("recordio: write %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	return nil
}

// Flush writes any buffered lines to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("recordio: flush: %w", err)
	}
	return nil
}

func headersUTF8(hs []Header) bool {
	for _, h := range hs {
		if !utf8.ValidString(h.Key) || !utf8.Valid(h.Value) {
			return false
		}
	}
	return true
}

// appendField appends ,"name":value, preceded by ,"name_encoding":"base64"
// when value is not valid UTF-8.
func appendField(b []byte, name string, value []byte) []byte {
	binary := value != nil && !utf8.Valid(value)
	if binary {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `_encoding":"base64"`...)
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendBytes(b, value, binary)
}

// appendBytes appends s as a JSON string, in base64 when binary, or null
// when nil.
func appendBytes(b, s []byte, binary bool) []byte {
	switch {
	case s == nil:
		return append(b, "null"...)
	case binary:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, s)
		return append(b, '"')
	default:
		return appendString(b, s)
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s, which must be valid UTF-8, as a JSON string.
// Unlike encoding/json it leaves <, > and & alone, so a recorded payload
// reads the same as kcat's.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			_, size := utf8.DecodeRune(s[i:])
			b = append(b, s[i:i+size]...)
			i += size
			continue
		}
		switch {
		case c == '"':
			b = append(b, `\"`...)
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
