package schema

import (
	"hash/maphash"
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
	names *interner
	// lastKeys and lastVals remember the attribute strings of earlier
	// records by position (see attrKey).
	lastKeys, lastVals [8]string
	// nullKeys are the attribute keys of this record whose value was null.
	nullKeys []string
	// attrErr is the contract violation parseAttributes found, reported by
	// fill in contract order.
	attrErr *Error
}

// NewDecoder returns a Decoder enforcing l, or the error of l.Validate.
func NewDecoder(l Limits) (*Decoder, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{
		lim:   l,
		buf:   make([]byte, 0, 256),
		stack: make([]byte, 0, 16),
		names: &interner{seed: maphash.MakeSeed()},
	}, nil
}

// Limits returns the limits d enforces.
func (d *Decoder) Limits() Limits { return d.lim }

// Decode decodes value into ev. ev is reset first; the backing array of
// ev.Attributes is reused. key is the Kafka record key: when it is non-empty it
// must equal player_id. A rejected record gets a *Error, and ev's contents are
// then unspecified. Decode never panics and does not retain key or value.
// A Decoder is not safe for concurrent use.
//
// Decoding scans the record once, checking the JSON syntax of all of it,
// decoding attributes on the way and noting where every other known field is;
// a second step then interprets those fields in a fixed order (type,
// envelope, key, attributes, type-specific fields). The reported Reason
// therefore does not depend on key order, and a type-specific field of
// another type is ignored like any unknown field. The strings of ev are fresh
// copies or shared interned strings, never views of value. Attribute keys
// and values and the type-specific strings that repeat are interned, so that
// a steady stream allocates only its ids.
func (d *Decoder) Decode(key, value []byte, ev *Event) error {
	attrs := ev.Attributes[:0]
	*ev = Event{Attributes: attrs}
	if len(value) > d.lim.MaxRecordBytes {
		return newError(ReasonTooLarge, "", strconv.Itoa(len(value))+" bytes, limit "+strconv.Itoa(d.lim.MaxRecordBytes))
	}
	if err := d.scan(value, ev); err != nil {
		return err
	}
	if err := d.fill(key, value, ev); err != nil {
		return err
	}
	return nil
}

// scan is phase one: syntax of the whole record, and the spans of known
// fields.
func (d *Decoder) scan(b []byte, ev *Event) *Error {
	d.spans = [numFields]span{}
	d.attrErr = nil
	clear(d.nullKeys)
	d.nullKeys = d.nullKeys[:0]
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
			var err *Error
			f, kend, ok := matchKnownKey(b, i+1)
			if !ok {
				var kesc bool
				if kend, kesc, err = scanString(b, i+1); err != nil {
					return err
				}
				k := b[i+1 : kend]
				if kesc {
					d.buf = unescape(d.buf[:0], k)
					k = d.buf
				}
				f = lookupField(k)
			}
			i = skipWS(b, kend+1)
			if i >= len(b) || b[i] != ':' {
				return malformed("expected ':'", i)
			}
			i = skipWS(b, i+1)
			var (
				kind       uint8
				start, end int
				esc, plain bool
			)
			if f == fAttributes && i < len(b) && b[i] == '{' {
				kind, start = kindObject, i
				if end, d.attrErr, err = d.parseAttributes(b, i, ev); err != nil {
					return err
				}
			} else if kind, start, end, esc, plain, err = scanValue(b, i, &d.stack, 2); err != nil {
				return err
			}
			if f != fUnknown {
				sp := &d.spans[f]
				// Field by field: a composite literal is built on the stack and
				// copied with wide loads, which stall on store forwarding.
				sp.dup = sp.kind != kindNone
				sp.start, sp.end, sp.kind, sp.esc, sp.plain = start, end, kind, esc, plain
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
	if ev.EventID, err = d.reqString(b, fEventID, false); err != nil {
		return err
	}
	if ev.PlayerID, err = d.reqString(b, fPlayerID, false); err != nil {
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

	if sp, ok, err := d.present(fAttributes); err != nil {
		return err
	} else if ok && sp.kind != kindObject {
		return newError(ReasonInvalidField, "attributes", "must be an object")
	} else if d.attrErr != nil {
		return d.attrErr
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
				*dst, err = d.reqString(b, tf.f, true)
			} else if sb, ok, serr := d.str(b, tf.f, d.lim.MaxFieldLen); serr != nil {
				err = serr
			} else if ok {
				*dst = d.names.str(sb)
			}
		}
		if err != nil {
			return err
		}
	}
	d.traceparent(b, ev)
	return nil
}

// traceparent reads the optional "traceparent" field of an accepted event:
// a valid W3C traceparent becomes ev.Link; anything else present (not a
// string, not a traceparent, a repeated key) is ignored and explained in
// ev.LinkError, never a reason to reject the event. null and "" are absent.
func (d *Decoder) traceparent(b []byte, ev *Event) {
	sp := &d.spans[fTraceparent]
	switch {
	case sp.kind == kindNone:
	case sp.dup:
		ev.LinkError = "field traceparent: duplicate key"
	case sp.kind == kindNull:
	case sp.kind != kindString:
		ev.LinkError = "field traceparent: not a string"
	default:
		s := b[sp.start:sp.end]
		if sp.esc {
			d.buf = unescape(d.buf[:0], s)
			s = d.buf
		}
		if len(s) > 0 {
			linkFrom(ev, "field traceparent", s)
		}
	}
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

// reqString returns required string field f, interned when intern is set.
func (d *Decoder) reqString(b []byte, f field, intern bool) (string, *Error) {
	s, ok, err := d.str(b, f, d.lim.MaxFieldLen)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", newError(ReasonMissingField, fieldNames[f], "")
	}
	if intern {
		return d.names.str(s), nil
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

// parseAttributes parses the "attributes" object opening at b[i] straight
// into ev.Attributes, so that its strings are scanned once. A syntax error
// comes back as synErr and ends decoding; the first contract violation comes
// back as semErr, after the rest of the object has been checked for syntax,
// and is reported in contract order by fill.
func (d *Decoder) parseAttributes(b []byte, i int, ev *Event) (end int, semErr, synErr *Error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil, nil
	}
	n := 0
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, nil, malformed("expected string key", i)
		}
		kend, kesc, err := scanString(b, i+1)
		if err != nil {
			return 0, nil, err
		}
		var name string
		if semErr == nil {
			k := b[i+1 : kend]
			if kesc {
				d.buf = unescape(d.buf[:0], k)
				k = d.buf
			}
			n++
			semErr = d.checkAttrKey(k, n, ev.Attributes)
			if semErr == nil {
				name = d.attrKey(k, n-1)
			}
		}
		i = skipWS(b, kend+1)
		if i >= len(b) || b[i] != ':' {
			return 0, nil, malformed("expected ':'", i)
		}
		i = skipWS(b, i+1)
		kind, start, end, esc, plain, err := scanValue(b, i, &d.stack, 3)
		if err != nil {
			return 0, nil, err
		}
		if semErr == nil {
			semErr = d.attrValue(b, name, kind, start, end, esc, plain, ev)
		}
		if kind == kindString {
			end++ // closing quote
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, nil, malformed("unexpected end of input", i)
		}
		switch b[i] {
		case '}':
			return i + 1, semErr, nil
		case ',':
			i = skipWS(b, i+1)
		default:
			return 0, nil, malformed("expected ',' or '}'", i)
		}
	}
}

// attrKey returns the string of the key of the i-th attribute. Producers
// tend to send the same attributes in the same order, so the key at the same
// position in the previous record is tried before the interner's hash.
func (d *Decoder) attrKey(k []byte, i int) string {
	if i < len(d.lastKeys) {
		if d.lastKeys[i] == string(k) {
			return d.lastKeys[i]
		}
		s := d.names.str(k)
		d.lastKeys[i] = s
		return s
	}
	return d.names.str(k)
}

// attrString is attrKey for string attribute values.
func (d *Decoder) attrString(v []byte, i int) string {
	if i < len(d.lastVals) {
		if d.lastVals[i] == string(v) {
			return d.lastVals[i]
		}
		if len(v) > internMaxLen {
			return string(v)
		}
		s := d.names.str(v)
		d.lastVals[i] = s
		return s
	}
	return d.names.str(v)
}

// checkAttrKey checks the n-th attribute key k against the limits and the
// keys before it.
func (d *Decoder) checkAttrKey(k []byte, n int, prev []Attr) *Error {
	switch {
	case n > d.lim.MaxAttributes:
		return newError(ReasonTooManyAttrs, "attributes", "more than "+strconv.Itoa(d.lim.MaxAttributes)+" attributes")
	case len(k) == 0:
		return newError(ReasonInvalidField, "attributes", "empty attribute key")
	case len(k) > d.lim.MaxAttrKeyLen:
		return tooLong("attributes", len(k), d.lim.MaxAttrKeyLen)
	}
	for j := range prev {
		if prev[j].Key == string(k) {
			return newError(ReasonInvalidField, "attributes", "duplicate key "+strconv.Quote(string(k)))
		}
	}
	for _, nk := range d.nullKeys {
		if nk == string(k) {
			return newError(ReasonInvalidField, "attributes", "duplicate key "+strconv.Quote(string(k)))
		}
	}
	return nil
}

// attrValue interprets the value of attribute name and appends it to
// ev.Attributes; null is counted against the limit but not kept.
func (d *Decoder) attrValue(b []byte, name string, kind uint8, start, end int, esc, plain bool, ev *Event) *Error {
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
		str := d.attrString(s, len(ev.Attributes))
		v := newAttr(ev, name)
		v.Kind, v.Str = KindString, str
	case kindNumber:
		tok := b[start:end]
		if plain {
			if iv, ok := parsePlainInt(tok); ok {
				v := newAttr(ev, name)
				v.Kind, v.Int = KindInt, iv
				return nil
			}
		}
		fv, ok := parseFloat(tok)
		if !ok {
			return newError(ReasonInvalidField, "attributes."+name, "number out of range")
		}
		v := newAttr(ev, name)
		v.Kind, v.Float = KindFloat, fv
	case kindTrue, kindFalse:
		v := newAttr(ev, name)
		v.Kind, v.Bool = KindBool, kind == kindTrue
	case kindNull:
		d.nullKeys = append(d.nullKeys, name) // for the duplicate check only
	default:
		return newError(ReasonInvalidField, "attributes."+name, "must be a string, number or boolean")
	}
	return nil
}

// newAttr appends a zero attribute named name and returns its value for the
// caller to fill in place: appending a composite literal is built on the stack
// first and copied with wide loads that stall on store forwarding.
func newAttr(ev *Event, name string) *Value {
	ev.Attributes = append(ev.Attributes, Attr{})
	a := &ev.Attributes[len(ev.Attributes)-1]
	a.Key = name
	return &a.Value
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
