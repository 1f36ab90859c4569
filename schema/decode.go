package schema

import (
	"math"
	"strconv"
)

// span is where phase one of Decode found the value of a known field.
type span struct {
	start, end int // string body without quotes, or the whole token
	kind       uint8
	esc        bool // string with escapes
	plain      bool // number without fraction or exponent
	dup        bool // the key appeared more than once
}

// Decoder decodes v1 events from Kafka record values. It keeps scratch space
// between calls, so it is reusable but not safe for concurrent use: give each
// partition worker its own.
type Decoder struct {
	lim   Limits
	spans [numFields]span
	buf   []byte // unescaped string scratch
	stack []byte // container nesting scratch
}

// NewDecoder returns a Decoder enforcing l, or the error of l.Validate.
func NewDecoder(l Limits) (*Decoder, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{lim: l, buf: make([]byte, 0, 256), stack: make([]byte, 0, 16)}, nil
}

// Limits returns the limits d enforces.
func (d *Decoder) Limits() Limits { return d.lim }

// Decode decodes value into ev. ev is reset first; the backing array of
// ev.Attributes is reused. key is the Kafka record key: when it is non-empty it
// must equal player_id. A rejected record gets a *Error, and ev's contents are
// then unspecified. Decode never panics and does not retain key or value.
//
// Decoding is two passes over the record. The first checks the JSON syntax of
// the whole record and notes where each known field is; the second interprets
// the fields in a fixed order (type, envelope, key, attributes, type-specific
// fields). The reported Reason therefore does not depend on key order, and a
// type-specific field of another type is ignored like any unknown field.
func (d *Decoder) Decode(key, value []byte, ev *Event) error {
	attrs := ev.Attributes[:0]
	*ev = Event{Attributes: attrs}
	if len(value) > d.lim.MaxRecordBytes {
		return newError(ReasonTooLarge, "", strconv.Itoa(len(value))+" bytes, limit "+strconv.Itoa(d.lim.MaxRecordBytes))
	}
	if err := d.scan(value); err != nil {
		return err
	}
	if err := d.fill(key, value, ev); err != nil {
		return err
	}
	return nil
}

// scan is phase one: syntax of the whole record, and the spans of known
// fields.
func (d *Decoder) scan(b []byte) *Error {
	d.spans = [numFields]span{}
	i := skipWS(b, 0)
	if i >= len(b) {
		return malformed("empty record", i)
	}
	if b[i] != '{' {
		return malformed("not a JSON object", i)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) {
				return malformed("unexpected end of input", i)
			}
			if b[i] != '"' {
				return malformed("expected string key", i)
			}
			kend, kesc, err := scanString(b, i+1)
			if err != nil {
				return err
			}
			k := b[i+1 : kend]
			if kesc {
				d.buf = unescape(d.buf[:0], k)
				k = d.buf
			}
			f := lookupField(k)
			i = skipWS(b, kend+1)
			if i >= len(b) || b[i] != ':' {
				return malformed("expected ':'", i)
			}
			i = skipWS(b, i+1)
			kind, start, end, esc, plain, err := scanValue(b, i, &d.stack)
			if err != nil {
				return err
			}
			if f != fUnknown {
				sp := &d.spans[f]
				dup := sp.kind != kindNone
				*sp = span{start: start, end: end, kind: kind, esc: esc, plain: plain, dup: dup}
			}
			if kind == kindString {
				end++ // closing quote
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return malformed("unexpected end of input", i)
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return malformed("expected ',' or '}'", i)
			}
			i = skipWS(b, i+1)
		}
	}
	if i = skipWS(b, i); i != len(b) {
		return malformed("data after the object", i)
	}
	return nil
}

// fill is phase two: interpret the fields in contract order.
func (d *Decoder) fill(key, b []byte, ev *Event) *Error {
	// type
	tb, ok, err := d.str(b, fType, d.lim.MaxFieldLen)
	if err != nil {
		return err
	}
	if !ok {
		return newError(ReasonMissingField, "type", "")
	}
	ev.Type = typeOf(tb)
	if ev.Type == TypeInvalid {
		return newError(ReasonUnknownType, "type", strconv.Quote(string(tb)))
	}

	// envelope
	if ev.EventID, err = d.reqString(b, fEventID); err != nil {
		return err
	}
	if ev.PlayerID, err = d.reqString(b, fPlayerID); err != nil {
		return err
	}
	if sb, ok, err := d.str(b, fSessionID, d.lim.MaxFieldLen); err != nil {
		return err
	} else if ok {
		ev.SessionID = string(sb)
	}
	tsb, ok, err := d.str(b, fTS, d.lim.MaxFieldLen)
	if err != nil {
		return err
	}
	if !ok {
		return newError(ReasonMissingField, "ts", "")
	}
	ts, detail := parseTimestamp(tsb)
	if detail != "" {
		return newError(ReasonInvalidField, "ts", detail)
	}
	ev.TS = ts

	if len(key) > 0 && string(key) != ev.PlayerID {
		return newError(ReasonKeyMismatch, "player_id", "record key "+strconv.Quote(truncate(key, 64))+" differs from player_id")
	}

	if err := d.attributes(b, ev); err != nil {
		return err
	}

	for _, tf := range typeFields[ev.Type] {
		switch tf.f {
		case fWaitSeconds:
			ev.WaitSeconds, ev.HasWait, err = d.float(b, tf.f)
		case fTotalSizeMB:
			ev.TotalSizeMB, ev.HasTotalSizeMB, err = d.float(b, tf.f)
		case fAssetsLoaded:
			ev.AssetsLoaded, ev.HasAssetsLoaded, err = d.integer(b, tf.f, 0)
		case fScore:
			ev.Score, ev.HasScore, err = d.integer(b, tf.f, math.MinInt64)
		default:
			dst := stringField(ev, tf.f)
			if tf.required {
				*dst, err = d.reqString(b, tf.f)
			} else if sb, ok, serr := d.str(b, tf.f, d.lim.MaxFieldLen); serr != nil {
				err = serr
			} else if ok {
				*dst = string(sb)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// present reports whether field f carries a value, rejecting duplicates. null
// counts as absent.
func (d *Decoder) present(f field) (*span, bool, *Error) {
	sp := &d.spans[f]
	if sp.dup {
		return sp, false, newError(ReasonInvalidField, fieldNames[f], "duplicate key")
	}
	return sp, sp.kind != kindNone && sp.kind != kindNull, nil
}

// str returns the unescaped bytes of string field f (valid until the next
// call) and whether it is present; "" counts as absent.
func (d *Decoder) str(b []byte, f field, limit int) ([]byte, bool, *Error) {
	sp, ok, err := d.present(f)
	if !ok {
		return nil, false, err
	}
	if sp.kind != kindString {
		return nil, false, newError(ReasonInvalidField, fieldNames[f], "must be a string")
	}
	s := b[sp.start:sp.end]
	if sp.esc {
		d.buf = unescape(d.buf[:0], s)
		s = d.buf
	}
	if len(s) > limit {
		return nil, false, tooLong(fieldNames[f], len(s), limit)
	}
	return s, len(s) > 0, nil
}

func (d *Decoder) reqString(b []byte, f field) (string, *Error) {
	s, ok, err := d.str(b, f, d.lim.MaxFieldLen)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", newError(ReasonMissingField, fieldNames[f], "")
	}
	return string(s), nil
}

// float decodes an optional non-negative finite number.
func (d *Decoder) float(b []byte, f field) (float64, bool, *Error) {
	sp, ok, err := d.present(f)
	if !ok {
		return 0, false, err
	}
	if sp.kind != kindNumber {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "must be a number")
	}
	v, ok := parseFloat(b[sp.start:sp.end])
	if !ok {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "number out of range")
	}
	if v < 0 {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "must not be negative")
	}
	return v, true, nil
}

// integer decodes an optional integer of at least minimum.
func (d *Decoder) integer(b []byte, f field, minimum int64) (int64, bool, *Error) {
	sp, ok, err := d.present(f)
	if !ok {
		return 0, false, err
	}
	if sp.kind != kindNumber {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "must be an integer")
	}
	tok := b[sp.start:sp.end]
	var v int64
	if sp.plain {
		v, ok = parsePlainInt(tok)
	} else {
		v, ok = parseIntegral(tok)
	}
	if !ok {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "must be an integer in the int64 range")
	}
	if v < minimum {
		return 0, false, newError(ReasonInvalidField, fieldNames[f], "must not be negative")
	}
	return v, true, nil
}

// attributes decodes the "attributes" object into ev.Attributes.
func (d *Decoder) attributes(b []byte, ev *Event) *Error {
	sp, ok, err := d.present(fAttributes)
	if !ok {
		return err
	}
	if sp.kind != kindObject {
		return newError(ReasonInvalidField, "attributes", "must be an object")
	}
	// The object's syntax was checked by scan, so the loop only interprets.
	i := skipWS(b, sp.start+1)
	if b[i] == '}' {
		return nil
	}
	n := 0
	for {
		kend, kesc, _ := scanString(b, i+1)
		k := b[i+1 : kend]
		if kesc {
			d.buf = unescape(d.buf[:0], k)
			k = d.buf
		}
		n++
		if n > d.lim.MaxAttributes {
			return newError(ReasonTooManyAttrs, "attributes", "more than "+strconv.Itoa(d.lim.MaxAttributes)+" attributes")
		}
		if len(k) == 0 {
			return newError(ReasonInvalidField, "attributes", "empty attribute key")
		}
		if len(k) > d.lim.MaxAttrKeyLen {
			return tooLong("attributes", len(k), d.lim.MaxAttrKeyLen)
		}
		for j := range ev.Attributes {
			if ev.Attributes[j].Key == string(k) {
				return newError(ReasonInvalidField, "attributes", "duplicate key "+strconv.Quote(string(k)))
			}
		}
		name := string(k)
		i = skipWS(b, kend+1)
		i = skipWS(b, i+1) // past ':'
		kind, start, end, esc, plain, _ := scanValue(b, i, &d.stack)
		var v Value
		switch kind {
		case kindString:
			s := b[start:end]
			if esc {
				d.buf = unescape(d.buf[:0], s)
				s = d.buf
			}
			if len(s) > d.lim.MaxAttrValueLen {
				return tooLong("attributes."+name, len(s), d.lim.MaxAttrValueLen)
			}
			v = Value{Kind: KindString, Str: string(s)}
			end++
		case kindNumber:
			tok := b[start:end]
			if plain {
				if iv, ok := parsePlainInt(tok); ok {
					v = Value{Kind: KindInt, Int: iv}
					break
				}
			}
			fv, ok := parseFloat(tok)
			if !ok {
				return newError(ReasonInvalidField, "attributes."+name, "number out of range")
			}
			v = Value{Kind: KindFloat, Float: fv}
		case kindTrue, kindFalse:
			v = Value{Kind: KindBool, Bool: kind == kindTrue}
		case kindNull:
			v.Kind = 0xff // absent: counted, not kept
		default:
			return newError(ReasonInvalidField, "attributes."+name, "must be a string, number or boolean")
		}
		if v.Kind != 0xff {
			ev.Attributes = append(ev.Attributes, Attr{Key: name, Value: v})
		}
		i = skipWS(b, end)
		if b[i] == '}' {
			return nil
		}
		i = skipWS(b, i+1) // past ','
	}
}

func tooLong(field string, n, limit int) *Error {
	return newError(ReasonFieldTooLong, field, strconv.Itoa(n)+" bytes, limit "+strconv.Itoa(limit))
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// typeOf maps a wire type name to its Type without allocating.
func typeOf(b []byte) Type {
	switch string(b) {
	case "session.login":
		return SessionLogin
	case "matchmaking.enter":
		return MatchmakingEnter
	case "matchmaking.complete":
		return MatchmakingComplete
	case "matchmaking.cancel":
		return MatchmakingCancel
	case "loading.start":
		return LoadingStart
	case "loading.finish":
		return LoadingFinish
	case "game.enter":
		return GameEnter
	case "game.leave":
		return GameLeave
	case "session.disconnect":
		return SessionDisconnect
	}
	return TypeInvalid
}
