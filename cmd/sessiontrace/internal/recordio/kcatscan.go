package recordio

import (
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// scanKcat reads a well-formed envelope in the shape kcat and Writer print
// without encoding/json, which costs about ten times as much per line. It
// accepts only what it fully understands and returns ok=false for anything
// else, including every malformed line, which then takes parseKcatJSON: that
// path owns the error messages, and FuzzScanKcat checks that both paths agree
// on every valid UTF-8 line the scanner accepts. Unlike encoding/json it
// keeps bytes that are not UTF-8 inside strings as they are, which is how
// kcat writes binary keys and values.
func scanKcat(line []byte) (rec Record, ok bool) {
	s := kscan{b: line}
	var h kcatHead
	if !s.fields(&rec, &h, false) {
		return Record{}, false
	}
	s.ws()
	if s.i != len(s.b) || !h.seen[fieldOffset] || !h.payloadSet {
		return Record{}, false
	}
	if err := h.finish(&rec); err != nil {
		return Record{}, false
	}
	return rec, true
}

// scanKcatHead reads the fields of an envelope that come before its
// payload string, for a line too long to keep: it returns the record's
// metadata, the payload's encoding and the index of the first byte inside
// the payload string. ok is false unless the payload is a string preceded
// only by fields the scanner understands, and the offset was seen.
// envelope says whether the line looks like an envelope even when ok is
// false: it had an offset before anything the scanner could not read.
func scanKcatHead(prefix []byte) (rec Record, base64 bool, payloadAt int, ok, envelope bool) {
	s := kscan{b: prefix}
	var h kcatHead
	if !s.fields(&rec, &h, true) || !h.seen[fieldOffset] || h.payloadAt == 0 {
		return Record{}, false, 0, false, h.seen[fieldOffset]
	}
	base64 = h.payloadEnc == encodingBase64
	h.payloadEnc = "" // the payload is not there to decode
	if err := h.finish(&rec); err != nil {
		return Record{}, false, 0, false, true
	}
	return rec, base64, h.payloadAt, true, true
}

// The members of an envelope that may appear once, as indices of
// kcatHead.seen.
const (
	fieldTopic = iota
	fieldPartition
	fieldOffset
	fieldTS
	fieldKey
	fieldPayload
	fieldTSType
	fieldHeaders
	fieldKeyEncoding
	fieldPayloadEncoding
	fieldHeadersEncoding
	fieldCount
)

// kcatHead is what fields saw besides the record's own fields.
type kcatHead struct {
	seen                          [fieldCount]bool
	payloadSet                    bool
	payloadAt                     int // with stopAtPayload: where the payload string's bytes start
	ts                            int64
	tsSet                         bool
	keyEnc, payloadEnc, headerEnc string
	headers                       [][]byte
	headerNull                    []bool
}

// finish sets the timestamp and headers and decodes what was base64.
func (h *kcatHead) finish(rec *Record) error {
	if h.tsSet {
		rec.Timestamp = time.UnixMilli(h.ts).UTC()
	} else {
		rec.LogAppendTime = false
	}
	if len(h.headers)%2 != 0 {
		return errHeaders
	}
	var err error
	if rec.Key, err = decodeField("key", h.keyEnc, rec.Key); err != nil {
		return err
	}
	if rec.Value, err = decodeField("payload", h.payloadEnc, rec.Value); err != nil {
		return err
	}
	for i := 0; i < len(h.headers); i += 2 {
		if h.headerNull[i] {
			return errHeaders // a header always has a name
		}
		k, err := decodeField("headers", h.headerEnc, h.headers[i])
		if err != nil {
			return err
		}
		var v []byte
		if !h.headerNull[i+1] {
			if v, err = decodeField("headers", h.headerEnc, h.headers[i+1]); err != nil {
				return err
			}
		}
		rec.Headers = append(rec.Headers, Header{Key: string(k), Value: v})
	}
	return nil
}

// fields reads the members of an envelope object. With stopAtPayload it
// stops inside the payload string, noting where its bytes start.
func (s *kscan) fields(rec *Record, h *kcatHead, stopAtPayload bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.peek() == '}' {
		return false // no offset, no payload: the slow path says so
	}
	for {
		key, ok := s.plainKey()
		if !ok || !s.byte(':') {
			return false
		}
		idx := -1
		switch string(key) {
		case "topic":
			idx = fieldTopic
			v, null, ok := s.stringOrNull()
			if !ok {
				return false
			}
			if !null {
				rec.Topic = string(v)
			}
		case "partition":
			idx = fieldPartition
			n, ok := s.nonNegInt()
			if !ok || n > 1<<31-1 {
				return false
			}
			rec.Partition = int32(n)
		case "offset":
			idx = fieldOffset
			n, ok := s.nonNegInt()
			if !ok {
				return false
			}
			rec.Offset = n
		case "ts":
			idx = fieldTS
			n, ok := s.nonNegInt()
			if !ok {
				return false
			}
			h.ts, h.tsSet = n, true
		case "key":
			idx = fieldKey
			v, null, ok := s.stringOrNull()
			if !ok {
				return false
			}
			if !null {
				rec.Key = v
			}
		case "payload":
			idx = fieldPayload
			if stopAtPayload {
				if s.peek() != '"' {
					return false
				}
				h.payloadAt = s.i + 1
				return !h.seen[fieldPayload]
			}
			v, null, ok := s.stringOrNull()
			if !ok {
				return false
			}
			h.payloadSet = true
			if !null {
				rec.Value = v
			}
		case "tstype":
			idx = fieldTSType
			v, _, ok := s.stringOrNull()
			if !ok {
				return false
			}
			rec.LogAppendTime = string(v) == "logappend"
		case "broker":
			if !s.integer() {
				return false
			}
		case "headers":
			idx = fieldHeaders
			if !s.stringArray(h) {
				return false
			}
		case "key_encoding", "payload_encoding", "headers_encoding":
			v, null, ok := s.stringOrNull()
			if !ok || null || string(v) != encodingBase64 {
				return false // the slow path names what is wrong
			}
			switch string(key) {
			case "key_encoding":
				idx, h.keyEnc = fieldKeyEncoding, encodingBase64
			case "payload_encoding":
				idx, h.payloadEnc = fieldPayloadEncoding, encodingBase64
			default:
				idx, h.headerEnc = fieldHeadersEncoding, encodingBase64
			}
		default:
			return false
		}
		if idx >= 0 {
			if h.seen[idx] {
				return false // encoding/json keeps the last; leave that to it
			}
			h.seen[idx] = true
		}
		s.ws()
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

type kscan struct {
	b []byte
	i int
}

func (s *kscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *kscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// byte consumes c after optional whitespace.
func (s *kscan) byte(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// plainKey reads a member name made of lower-case ASCII letters and
// underscores only, so that encoding/json's case-insensitive field matching
// cannot map it to a field differently.
func (s *kscan) plainKey() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] >= 'a' && s.b[s.i] <= 'z' || s.b[s.i] == '_') {
		s.i++
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	k := s.b[start:s.i]
	s.i++
	return k, true
}

func (s *kscan) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// stringOrNull reads a JSON string into fresh bytes, or null.
func (s *kscan) stringOrNull() (v []byte, null, ok bool) {
	switch s.peek() {
	case 'n':
		return nil, true, s.literal("null")
	case '"':
		s.i++
	default:
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v = append(make([]byte, 0, s.i-start), s.b[start:s.i]...)
			s.i++
			return v, false, true
		case c == '\\':
			return s.escapedString(start)
		case c < 0x20:
			return nil, false, false
		}
		s.i++
	}
	return nil, false, false
}

// escapedString finishes a string that has escapes, from its first byte.
func (s *kscan) escapedString(start int) (v []byte, null, ok bool) {
	v = append(make([]byte, 0, len(s.b)-start), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return v, false, true
		case c < 0x20:
			return nil, false, false
		case c != '\\':
			v = append(v, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			v = append(v, e)
		case 'b':
			v = append(v, '\b')
		case 'f':
			v = append(v, '\f')
		case 'n':
			v = append(v, '\n')
		case 'r':
			v = append(v, '\r')
		case 't':
			v = append(v, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false, false
			}
			if utf16.IsSurrogate(r) {
				// Only a proper pair; encoding/json's handling of lone
				// surrogates is left to encoding/json.
				if !s.literal(`\u`) {
					return nil, false, false
				}
				r2, ok := s.hex4()
				if !ok {
					return nil, false, false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return nil, false, false
				}
			}
			v = utf8.AppendRune(v, r)
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

func (s *kscan) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// nonNegInt reads a JSON integer without sign, fraction or exponent that
// fits in int64.
func (s *kscan) nonNegInt() (int64, bool) {
	s.ws()
	start := s.i
	var n int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := int64(s.b[s.i] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// integer reads a possibly negative JSON integer, whose value is not kept.
func (s *kscan) integer() bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	_, ok := s.nonNegInt()
	return ok
}

// stringArray reads kcat's header list, names and values in turn: strings
// and nulls.
func (s *kscan) stringArray(h *kcatHead) bool {
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		v, null, ok := s.stringOrNull()
		if !ok {
			return false
		}
		h.headers = append(h.headers, v)
		h.headerNull = append(h.headerNull, null)
		if s.byte(',') {
			continue
		}
		return s.byte(']')
	}
}
