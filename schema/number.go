package schema

import (
	"math"
	"strconv"
)

// parsePlainInt parses a plain JSON integer (no fraction or exponent) and
// reports false when it does not fit in int64.
func parsePlainInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// parseIntegral parses any JSON number whose value is an integer (12, 12.0,
// 1.2e1, 1200e-2) exactly, without going through float64, as JSON Schema's
// "integer" type does. ok is false when the value has a fractional part or
// does not fit in int64.
func parseIntegral(b []byte) (v int64, ok bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	// Split mantissa digits and exponent: value = digits * 10^exp.
	var mant [32]byte
	digits := mant[:0]
	exp := 0
	lost := false
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		digits = appendDigit(digits, b[i], &exp, &lost)
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			digits = appendDigit(digits, b[i], &exp, &lost)
			exp--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if b[i] == '+' || b[i] == '-' {
			eneg = b[i] == '-'
			i++
		}
		e := 0
		for ; i < len(b); i++ {
			if e < 1e8 { // saturate: anything this large is out of range anyway
				e = e*10 + int(b[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if lost {
		return 0, false
	}
	if len(digits) == 0 {
		return 0, true // every digit was zero
	}
	// Trailing zeros move into the exponent; a negative exponent left over
	// means a fractional part.
	for exp < 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if exp < 0 || len(digits)+exp > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for ; exp > 0; exp-- {
		u *= 10
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// appendDigit appends c to the significant digits, dropping leading zeros.
// Past cap(digits) a zero only scales the exponent, and a non-zero digit sets
// lost: an integer that fits in int64 has at most 19 significant digits, so
// such a number is fractional or out of range.
func appendDigit(digits []byte, c byte, exp *int, lost *bool) []byte {
	if len(digits) == 0 && c == '0' {
		return digits
	}
	if len(digits) < cap(digits) {
		return append(digits, c)
	}
	if c != '0' {
		*lost = true
	}
	*exp++
	return digits
}

// parseFloat parses a JSON number (grammar already checked) and reports false
// when it overflows float64.
func parseFloat(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(bytesString(b), 64)
	if err != nil && !math.IsInf(f, 0) {
		// Only ErrRange on underflow remains; the rounded value is right.
		return f, true
	}
	return f, err == nil
}
