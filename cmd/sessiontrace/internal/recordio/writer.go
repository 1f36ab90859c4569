package recordio

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Writer writes records as `kcat -J` envelopes, one per line, in the field
// order kcat uses:
//
//	{"topic":"t","partition":0,"offset":12,"tstype":"create","ts":1700000000000,"broker":-1,"key":"p1","payload":"{…}"}
//
// "tstype" and "ts" are left out when the record has no timestamp, as kcat
// does; "broker" is always -1 because the broker a record came from is not
// kept. Key and payload are JSON strings, null when nil. JSON strings carry
// only valid UTF-8, so invalid bytes in a key or value are written as U+FFFD;
// v1 events are UTF-8 JSON and are not affected. A Writer is not safe for
// concurrent use.
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
		b = append(b, `,"tstype":"create","ts":`...)
		b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	}
	b = append(b, `,"broker":-1,"key":`...)
	b = appendOptString(b, rec.Key)
	b = append(b, `,"payload":`...)
	b = appendOptString(b, rec.Value)
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

func appendOptString(b, s []byte) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone, so a recorded payload reads the same as kcat's.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
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
