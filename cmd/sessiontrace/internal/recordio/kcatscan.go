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
// on every line the scanner accepts.
func scanKcat(line []byte) (rec Record, ok bool) {
	if !utf8.Valid(line) {
		return Record{}, false // encoding/json would substitute U+FFFD
	}
	s := kscan{b: line}
	if !s.byte('{') {
		return Record{}, false
	}
	var seen [6]bool
	var payloadSet bool
	var ts int64 = -1
	if s.peek() == '}' {
		return Record{}, false // no offset, no payload: the slow path says so
	}
	for {
		key, ok := s.plainKey()
		if !ok || !s.byte(':') {
			return Record{}, false
		}
		idx := -1
		switch string(key) {
		case "topic":
			idx = 0
			v, null, ok := s.stringOrNull()
			if !ok {
				return Record{}, false
			}
			if !null {
				rec.Topic = string(v)
			}
		case "partition":
			idx = 1
			n, ok := s.nonNegInt()
			if !ok || n > 1<<31-1 {
				return Record{}, false
			}
			rec.Partition = int32(n)
		case "offset":
			idx = 2
			n, ok := s.nonNegInt()
			if !ok {
				return Record{}, false
			}
			rec.Offset = n
		case "ts":
			idx = 3
			n, ok := s.nonNegInt()
			if !ok {
				return Record{}, false
			}
			ts = n
		case "key":
			idx = 4
			v, null, ok := s.stringOrNull()
			if !ok {
				return Record{}, false
			}
			if !null {
				rec.Key = v
			}
		case "payload":
			idx = 5
			v, null, ok := s.stringOrNull()
			if !ok {
				return Record{}, false
			}
			payloadSet = true
			if !null {
				rec.Value = v
			}
		case "tstype":
			if _, _, ok := s.stringOrNull(); !ok {
				return Record{}, false
			}
		case "broker":
			if !s.integer() {
				return Record{}, false
			}
		case "headers":
			if !s.stringArray() {
				return Record{}, false
			}
		default:
			return Record{}, false
		}
		if idx >= 0 {
			if seen[idx] {
				return Record{}, false // encoding/json keeps the last; leave that to it
			}
			seen[idx] = true
		}
		s.ws()
		if s.byte(',') {
			continue
		}
		if !s.byte('}') {
			return Record{}, false
		}
		break
	}
	s.ws()
	if s.i != len(s.b) || !seen[2] || !payloadSet {
		return Record{}, false
	}
	if ts >= 0 {
		rec.Timestamp = time.UnixMilli(ts).UTC()
	}
	return rec, true
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

// plainKey reads a member name made of lower-case ASCII letters only, so
// that encoding/json's case-insensitive field matching cannot map it to a
// field differently.
func (s *kscan) plainKey() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
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

// stringArray reads kcat's default header list: strings and nulls.
func (s *kscan) stringArray() bool {
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if _, _, ok := s.stringOrNull(); !ok {
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte(']')
	}
}
