package schema

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// This file holds the JSON lexing primitives of the decoder. They work on
// byte offsets into the record and never allocate on success; a syntax error
// comes back as a *Error with ReasonMalformed.

// Token kinds of a JSON value.
const (
	kindNone uint8 = iota
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindObject
	kindArray
)

// strSpecial marks the bytes that end the fast path of the string scanner: the
// quote, the backslash, control characters and the start of multi-byte UTF-8.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func malformed(detail string, off int) *Error {
	return newError(ReasonMalformed, "", detail+" at offset "+strconv.Itoa(off))
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString scans the body of a string whose opening quote is at b[i-1]. It
// returns the offset of the closing quote and whether the body holds escapes.
// It rejects control characters, bad escapes and invalid UTF-8 so that every
// accepted string can be re-encoded faithfully.
func scanString(b []byte, i int) (end int, esc bool, err *Error) {
	for {
		i = nextSpecial(b, i)
		if i >= len(b) {
			return 0, false, malformed("unterminated string", i)
		}
		switch c := b[i]; {
		case c == '"':
			return i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, malformed("unterminated string", i)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, malformed("unterminated string", i)
				}
				if _, ok := hex4(b[i+2 : i+6]); !ok {
					return 0, false, malformed(`bad \u escape`, i)
				}
				i += 6
			default:
				return 0, false, malformed("bad escape", i)
			}
		case c < 0x20:
			return 0, false, malformed("control character in string", i)
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, false, malformed("invalid UTF-8", i)
			}
			i += n
		}
	}
}

// nextSpecial returns the offset of the first byte at or after i that is a
// quote, a backslash, a control character or >= 0x80, or len(b). Eight bytes
// are tested at a time with the SWAR "has zero byte" trick applied to x^'"',
// x^'\\' and x-0x20; in each, the lowest flagged byte is always a true match
// (borrows only run upwards), so its position comes from the trailing zeros.
func nextSpecial(b []byte, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		quote := x ^ (lo * '"')
		bslash := x ^ (lo * '\\')
		if m := ((quote-lo)&^quote | (bslash-lo)&^bslash | (x - lo*0x20) | x) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(b) && !strSpecial[b[i]] {
		i++
	}
	return i
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the decoded form of a string body already accepted by
// scanString. Lone surrogates become U+FFFD, as encoding/json does, so that
// the result is always valid UTF-8.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s[i+2:])
			i += 6
			if utf16IsSurrogate(r) {
				if r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if lo, _ := hex4(s[i+2:]); lo >= 0xDC00 && lo <= 0xDFFF {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						i += 6
						dst = utf8.AppendRune(dst, r)
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

// scanNumber checks the JSON number grammar from b[i] and returns the offset
// after the number and whether it is a plain integer (no fraction, no
// exponent).
func scanNumber(b []byte, i int) (end int, plain bool, err *Error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false, malformed("truncated number", start)
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return 0, false, malformed("bad number", start)
	}
	plain = true
	if i < len(b) && b[i] == '.' {
		plain = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, malformed("bad number", start)
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, malformed("bad number", start)
		}
	}
	return i, plain, nil
}

func scanLiteral(b []byte, i int, lit string) (int, *Error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, malformed("invalid literal", i)
	}
	return i + len(lit), nil
}

// scanValue scans one JSON value starting at b[i] (no leading whitespace). For
// strings, start/end delimit the body without quotes; otherwise the whole
// token. Containers are walked iteratively with stack as scratch; depth is the
// nesting depth of the value (the record's object is depth 1).
func scanValue(b []byte, i int, stack *[]byte, depth int) (kind uint8, start, end int, esc, plain bool, err *Error) {
	if i >= len(b) {
		return 0, 0, 0, false, false, malformed("unexpected end of input", i)
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err = scanString(b, i+1)
		return kindString, i + 1, end, esc, false, err
	case c == '-' || (c >= '0' && c <= '9'):
		end, plain, err = scanNumber(b, i)
		return kindNumber, i, end, false, plain, err
	case c == 't':
		end, err = scanLiteral(b, i, "true")
		return kindTrue, i, end, false, false, err
	case c == 'f':
		end, err = scanLiteral(b, i, "false")
		return kindFalse, i, end, false, false, err
	case c == 'n':
		end, err = scanLiteral(b, i, "null")
		return kindNull, i, end, false, false, err
	case c == '{' || c == '[':
		end, err = skipContainer(b, i, stack, depth)
		if c == '{' {
			return kindObject, i, end, false, false, err
		}
		return kindArray, i, end, false, false, err
	default:
		return 0, 0, 0, false, false, malformed("unexpected character", i)
	}
}

// maxDepth is encoding/json's nesting limit: a record it cannot parse is not
// one this decoder accepts either.
const maxDepth = 10000

// skipContainer validates and skips the object or array opening at b[i], at
// nesting depth depth, and returns the offset after its closing bracket.
func skipContainer(b []byte, i int, stack *[]byte, depth int) (int, *Error) {
	st := append((*stack)[:0], b[i])
	defer func() { *stack = st[:0] }()
	i++
	opened := true // nothing read yet in the innermost container
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, malformed("unexpected end of input", i)
		}
		top := st[len(st)-1]
		if opened && b[i] == closer(top) {
			st = st[:len(st)-1]
			i++
		} else {
			if top == '{' {
				if b[i] != '"' {
					return 0, malformed("expected string key", i)
				}
				end, _, err := scanString(b, i+1)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, end+1)
				if i >= len(b) || b[i] != ':' {
					return 0, malformed("expected ':'", i)
				}
				i = skipWS(b, i+1)
				if i >= len(b) {
					return 0, malformed("unexpected end of input", i)
				}
			}
			if c := b[i]; c == '{' || c == '[' {
				if depth+len(st) > maxDepth {
					return 0, malformed("nesting deeper than 10000", i)
				}
				st = append(st, c)
				i++
				opened = true
				continue
			}
			kind, _, end, _, _, err := scanValue(b, i, nil, 0)
			if err != nil {
				return 0, err
			}
			i = end
			if kind == kindString {
				i++ // closing quote
			}
		}
		// After a value: ',' continues the innermost container, its
		// bracket closes it.
		opened = false
		for {
			if len(st) == 0 {
				return i, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, malformed("unexpected end of input", i)
			}
			if b[i] == ',' {
				i++
				break
			}
			if b[i] != closer(st[len(st)-1]) {
				return 0, malformed("expected ',' or closing bracket", i)
			}
			st = st[:len(st)-1]
			i++
		}
	}
}

func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

// bytesString views b as a string without copying, for parsers that do not
// retain their argument.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
