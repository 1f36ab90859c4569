package schema

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the wire encoding of ev to dst and returns the extended
// buffer. Fields come in a fixed order (envelope, then the fields of ev.Type in
// contract order, then attributes); empty strings and unset optional numbers
// are left out; TS is written as RFC 3339 in UTC with nine fraction digits.
// For an event that passes Validate the output decodes back to an equal Event.
// AppendJSON never fails: fields that do not belong to ev.Type are not written,
// invalid UTF-8 becomes U+FFFD and a non-finite float is written as null.
func AppendJSON(dst []byte, ev *Event) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, ev.Type.String())
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, ev.EventID)
	dst = append(dst, `,"player_id":`...)
	dst = appendString(dst, ev.PlayerID)
	if ev.SessionID != "" {
		dst = append(dst, `,"session_id":`...)
		dst = appendString(dst, ev.SessionID)
	}
	dst = append(dst, `,"ts":"`...)
	dst = appendTimestamp(dst, ev.TS)
	dst = append(dst, '"')
	if ev.Link.IsValid() {
		dst = append(dst, `,"traceparent":"`...)
		dst = ev.Link.AppendTraceparent(dst)
		dst = append(dst, '"')
	}
	if ev.Type < numTypes {
		for _, tf := range typeFields[ev.Type] {
			dst = appendField(dst, ev, tf.f)
		}
	}
	if len(ev.Attributes) > 0 {
		dst = append(dst, `,"attributes":{`...)
		for i, a := range ev.Attributes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, a.Key)
			dst = append(dst, ':')
			dst = appendValue(dst, a.Value)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendField(dst []byte, ev *Event, f field) []byte {
	key := func(dst []byte) []byte {
		dst = append(dst, ',', '"')
		dst = append(dst, fieldNames[f]...)
		return append(dst, '"', ':')
	}
	switch f {
	case fWaitSeconds:
		if ev.HasWait {
			dst = appendFloat(key(dst), ev.WaitSeconds, false)
		}
	case fTotalSizeMB:
		if ev.HasTotalSizeMB {
			dst = appendFloat(key(dst), ev.TotalSizeMB, false)
		}
	case fAssetsLoaded:
		if ev.HasAssetsLoaded {
			dst = strconv.AppendInt(key(dst), ev.AssetsLoaded, 10)
		}
	case fScore:
		if ev.HasScore {
			dst = strconv.AppendInt(key(dst), ev.Score, 10)
		}
	default:
		if s := *stringField(ev, f); s != "" {
			dst = appendString(key(dst), s)
		}
	}
	return dst
}

func appendValue(dst []byte, v Value) []byte {
	switch v.Kind {
	case KindString:
		return appendString(dst, v.Str)
	case KindInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case KindFloat:
		return appendFloat(dst, v.Float, true)
	case KindBool:
		return strconv.AppendBool(dst, v.Bool)
	}
	return append(dst, "null"...)
}

// appendFloat writes the shortest representation of f. With keepFloat, an
// integral value gets ".0" so that the decoder reads it back as KindFloat
// rather than KindInt.
func appendFloat(dst []byte, f float64, keepFloat bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if keepFloat {
		for _, c := range dst[start:] {
			if c == '.' || c == 'e' {
				return dst
			}
		}
		dst = append(dst, '.', '0')
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string, escaping only what JSON requires.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
