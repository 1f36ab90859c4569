package schema

import (
	"bytes"
	"encoding/hex"
	"hash/maphash"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is what a RecordDecoder reads of one Kafka record.
type Record struct {
	Key     []byte
	Value   []byte
	Headers []Header
}

// RecordDecoder decodes Kafka records into v1 events: the v1 Decoder, or a
// mapped decoder built from a CompiledMapping. A rejected record gets a
// *Error; a record a mapping ignores gets ErrIgnored. Implementations keep
// scratch space between calls and are not safe for concurrent use.
type RecordDecoder interface {
	DecodeRecord(r *Record, ev *Event) error
}

// DecodeRecord decodes r's value as a v1 event. Of the headers only
// traceparent is read, for an event without a traceparent field of its own.
func (d *Decoder) DecodeRecord(r *Record, ev *Event) error {
	if err := d.Decode(r.Key, r.Value, ev); err != nil {
		return err
	}
	headerLink(r, ev)
	return nil
}

// NewRecordDecoder returns the v1 Decoder when m is nil, and otherwise a
// decoder of m compiled against l.
func NewRecordDecoder(l Limits, m *Mapping) (RecordDecoder, error) {
	if m == nil {
		return NewDecoder(l)
	}
	cm, err := CompileMapping(*m, l)
	if err != nil {
		return nil, err
	}
	return cm.NewDecoder(), nil
}

// MappedDecoder decodes records in a producer's shape through a compiled
// mapping. It is not safe for concurrent use: give each partition its own.
type MappedDecoder struct {
	cm    *CompiledMapping
	spans []span
	buf   []byte // unescaped string scratch
	nbuf  []byte // the event name being built
	stack []byte
	names *interner
	name  []byte // the event name of the last record, for Name
	// last remembers the string each field and attribute rule produced in
	// the previous record: producers repeat them, and a compare is cheaper
	// than the interner's hash.
	lastField [numFields]string
	lastAttr  []string
}

// NewDecoder returns a decoder of cm.
func (cm *CompiledMapping) NewDecoder() *MappedDecoder {
	n := 0
	for _, p := range cm.plans {
		n = max(n, p.nslots)
	}
	return &MappedDecoder{
		cm:       cm,
		spans:    make([]span, n),
		buf:      make([]byte, 0, 256),
		nbuf:     make([]byte, 0, 64),
		stack:    make([]byte, 0, 16),
		names:    &interner{seed: maphash.MakeSeed()},
		lastAttr: make([]string, len(cm.attrNames)),
	}
}

// Name returns the producer's event name of the last decoded record (after
// the type rule's prefix was stripped), or "" when it had none.
func (d *MappedDecoder) Name() string { return string(d.name) }

// DecodeRecord decodes r into ev (reset first; the backing array of
// ev.Attributes is reused). Like the v1 decoder it scans the value once,
// checking the JSON syntax of all of it, and it never retains r.
func (d *MappedDecoder) DecodeRecord(r *Record, ev *Event) error {
	attrs := ev.Attributes[:0]
	*ev = Event{Attributes: attrs}
	d.name = d.name[:0]
	lim := &d.cm.lim
	if len(r.Value) > lim.MaxRecordBytes {
		return newError(ReasonTooLarge, "", strconv.Itoa(len(r.Value))+" bytes, limit "+strconv.Itoa(lim.MaxRecordBytes))
	}
	p := d.cm.plans[0]
	if len(d.cm.plans) == 2 {
		var err *Error
		if p, err = d.cloudEventsPlan(r); err != nil {
			return err
		}
	}
	clear(d.spans)
	// A binary CloudEvent may carry no data at all: its fields are then
	// absent, not malformed.
	if p.needValue && !(p.binary && len(r.Value) == 0) {
		if err := d.scanRecord(r.Value, p); err != nil {
			return err
		}
	}
	ignored, err := d.fill(p, r, ev)
	if err != nil {
		return err
	}
	if ignored {
		return ErrIgnored
	}
	if len(r.Headers) == 0 && p.traceparent.kind != srcPath {
		return nil // the common case of a JSON record without headers
	}
	if !d.traceparent(&p.traceparent, r, ev) {
		headerLink(r, ev)
	}
	return nil
}

// traceparent reads the mapping's traceparent source of an accepted event:
// a valid W3C traceparent becomes ev.Link; anything else present is
// ignored and explained in ev.LinkError, never a reason to reject it. It
// reports whether it also looked at the traceparent header fallback.
func (d *MappedDecoder) traceparent(s *source, r *Record, ev *Event) bool {
	if s.kind == srcNone {
		return false
	}
	if s.kind == srcHeader {
		// One pass for the source's header and the traceparent fallback
		// (binary CloudEvents: ce_traceparent, then traceparent), which
		// most records have neither of.
		v, fallback := traceHeaders(r.Headers, s.text)
		switch {
		case len(v) > 0 && !utf8.Valid(v):
			ev.LinkError = s.name + ": not valid UTF-8"
		case len(v) > 0:
			linkFrom(ev, s.name, v)
		case len(fallback) > 0:
			linkFrom(ev, "header "+HeaderTraceparent, fallback)
		}
		return true
	}
	v, kind, _, ok, err := d.get(s, "traceparent", r)
	switch {
	case err != nil:
		ev.LinkError = err.Detail
	case !ok:
	case kind != kindString:
		ev.LinkError = s.name + ": not a string"
	default:
		linkFrom(ev, s.name, v)
	}
	return false
}

// cloudEventsPlan picks the structured or the binary plan by the record's
// content type, as the CloudEvents Kafka protocol binding says: a
// content-type of application/cloudevents (+json) is structured mode;
// otherwise ce_specversion marks binary mode.
func (d *MappedDecoder) cloudEventsPlan(r *Record) (*plan, *Error) {
	ct, hasCT := header(r.Headers, "content-type")
	if hasCT && hasPrefixFold(ct, "application/cloudevents") {
		rest := ct[len("application/cloudevents"):]
		if len(rest) > 0 && rest[0] != ';' && !hasPrefixFold(rest, "+json") {
			return nil, newError(ReasonInvalidField, "content-type", "structured CloudEvents in "+strconv.Quote(truncate(ct, 64))+"; only +json is supported")
		}
		return d.cm.plans[0], nil
	}
	if _, ok := header(r.Headers, "ce_specversion"); ok {
		bin := d.cm.plans[1]
		if hasCT && bin.needValue && !jsonContentType(ct) {
			return nil, newError(ReasonInvalidField, "datacontenttype", "data in "+strconv.Quote(truncate(ct, 64))+"; the mapping reads JSON data")
		}
		return bin, nil
	}
	if !hasCT {
		// Without headers, a JSON value carrying specversion is a
		// structured event written by a producer that set no content type.
		return d.cm.plans[0], nil
	}
	return nil, newError(ReasonInvalidField, "content-type", strconv.Quote(truncate(ct, 64))+" is neither structured CloudEvents nor binary (no ce_specversion header)")
}

func jsonContentType(ct []byte) bool {
	mt, _, _ := bytes.Cut(ct, []byte(";"))
	mt = bytes.TrimSpace(mt)
	return bytes.EqualFold(mt, []byte("application/json")) || bytes.EqualFold(mt, []byte("text/json")) ||
		(len(mt) > 5 && bytes.EqualFold(mt[len(mt)-5:], []byte("+json")))
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && bytes.EqualFold(b[:len(p)], []byte(p))
}

// traceHeaders returns the values of the last headers named key and
// traceparent (HeaderTraceparent), in one pass; nil for one that is absent.
func traceHeaders(hs []Header, key string) (v, fallback []byte) {
	for i := range hs {
		switch k := hs[i].Key; {
		case k == key:
			v = hs[i].Value
		case k == HeaderTraceparent:
			fallback = hs[i].Value
		}
	}
	return v, fallback
}

// header returns the value of the last header named key.
func header(hs []Header, key string) ([]byte, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return hs[i].Value, true
		}
	}
	return nil, false
}

// scanRecord checks the syntax of the whole value and notes the spans of
// the values the plan's paths read.
func (d *MappedDecoder) scanRecord(b []byte, p *plan) *Error {
	i := skipWS(b, 0)
	if i >= len(b) {
		return malformed("empty record", i)
	}
	if b[i] != '{' {
		return malformed("not a JSON object", i)
	}
	end, err := d.walkObject(b, i, p.root, 1)
	if err != nil {
		return err
	}
	if end = skipWS(b, end); end != len(b) {
		return malformed("data after the object", end)
	}
	return nil
}

// walkObject walks the object opening at b[i], whose node is n, and returns
// the offset after it.
func (d *MappedDecoder) walkObject(b []byte, i int, n *pnode, depth int) (int, *Error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, malformed("expected string key", i)
		}
		// Most keys a path reads are written without escapes: match them
		// in place, as the v1 decoder does, before scanning a general
		// string.
		c, kend := matchMember(b, i+1, n)
		if c == nil {
			var kesc bool
			var err *Error
			if kend, kesc, err = scanString(b, i+1); err != nil {
				return 0, err
			}
			if kesc {
				k := unescape(d.buf[:0], b[i+1:kend])
				d.buf = k
				for _, ch := range n.children {
					if ch.index < 0 && ch.name == string(k) {
						c = ch
						break
					}
				}
			}
		}
		i = skipWS(b, kend+1)
		if i >= len(b) || b[i] != ':' {
			return 0, malformed("expected ':'", i)
		}
		i = skipWS(b, i+1)
		// Leaves and skipped members are scanned here rather than through
		// value: a call per member is a measurable share of a record.
		if c != nil && len(c.children) > 0 {
			var err *Error
			if i, err = d.value(b, i, c, depth+1); err != nil {
				return 0, err
			}
		} else {
			kind, start, end, esc, plain, err := scanValue(b, i, &d.stack, depth+1)
			if err != nil {
				return 0, err
			}
			if c != nil && c.slot >= 0 {
				d.note(c.slot, kind, start, end, esc, plain)
			}
			if kind == kindString {
				end++ // closing quote
			}
			i = end
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, malformed("unexpected end of input", i)
		}
		switch b[i] {
		case '}':
			return i + 1, nil
		case ',':
			i = skipWS(b, i+1)
		default:
			return 0, malformed("expected ',' or '}'", i)
		}
	}
}

// matchMember returns the child of n whose member name the key body at b[i]
// is, written without escapes, and the offset of the key's closing quote;
// nil when none is.
func matchMember(b []byte, i int, n *pnode) (*pnode, int) {
	if n.byFirst == nil || i >= len(b) {
		return nil, 0
	}
	for _, m := range n.byFirst[b[i]] {
		end := i + len(m.name)
		if end < len(b) && b[end] == '"' && string(b[i:end]) == m.name {
			return m.node, end
		}
	}
	return nil, 0
}

// walkArray is walkObject for arrays.
func (d *MappedDecoder) walkArray(b []byte, i int, n *pnode, depth int) (int, *Error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for idx := 0; ; idx++ {
		var c *pnode
		for _, ch := range n.children {
			if ch.index == idx {
				c = ch
				break
			}
		}
		var err *Error
		if i, err = d.value(b, i, c, depth+1); err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, malformed("unexpected end of input", i)
		}
		switch b[i] {
		case ']':
			return i + 1, nil
		case ',':
			i = skipWS(b, i+1)
		default:
			return 0, malformed("expected ',' or ']'", i)
		}
	}
}

// value scans the value at b[i] (node n, nil when no path reads it or below
// it) and returns the offset after it.
func (d *MappedDecoder) value(b []byte, i int, n *pnode, depth int) (int, *Error) {
	if n != nil && len(n.children) > 0 && i < len(b) && (b[i] == '{' || b[i] == '[') {
		if depth > maxDepth {
			return 0, malformed("nesting too deep", i)
		}
		start := i
		var end int
		var err *Error
		kind := kindObject
		if b[i] == '{' {
			end, err = d.walkObject(b, i, n, depth)
		} else {
			kind = kindArray
			end, err = d.walkArray(b, i, n, depth)
		}
		if err != nil {
			return 0, err
		}
		if n.slot >= 0 {
			d.note(n.slot, kind, start, end, false, false)
		}
		return end, nil
	}
	kind, start, end, esc, plain, err := scanValue(b, i, &d.stack, depth)
	if err != nil {
		return 0, err
	}
	if n != nil && n.slot >= 0 {
		d.note(n.slot, kind, start, end, esc, plain)
	}
	if kind == kindString {
		end++ // closing quote
	}
	return end, nil
}

func (d *MappedDecoder) note(slot int, kind uint8, start, end int, esc, plain bool) {
	sp := &d.spans[slot]
	sp.dup = sp.kind != kindNone
	sp.start, sp.end, sp.kind, sp.esc, sp.plain = start, end, kind, esc, plain
}

// get returns the value of source s: its bytes (unescaped strings, valid
// until the next call), its JSON kind (kindString for headers and
// constants), and whether it is present; null and "" are absent.
func (d *MappedDecoder) get(s *source, field string, r *Record) ([]byte, uint8, bool, bool, *Error) {
	switch s.kind {
	case srcPath:
		sp := &d.spans[s.slot]
		if sp.dup {
			return nil, 0, false, false, newError(ReasonInvalidField, field, s.name+": duplicate key")
		}
		switch sp.kind {
		case kindNone, kindNull:
			return nil, 0, false, false, nil
		case kindString:
			v := r.Value[sp.start:sp.end]
			if sp.esc {
				d.buf = unescape(d.buf[:0], v)
				v = d.buf
			}
			return v, kindString, false, len(v) > 0, nil
		}
		return r.Value[sp.start:sp.end], sp.kind, sp.plain, true, nil
	case srcHeader:
		v, ok := header(r.Headers, s.text)
		if !ok || len(v) == 0 {
			return nil, 0, false, false, nil
		}
		if !utf8.Valid(v) {
			return nil, 0, false, false, newError(ReasonInvalidField, field, s.name+": not valid UTF-8")
		}
		return v, kindString, false, true, nil
	case srcConst:
		return []byte(s.text), kindString, false, s.text != "", nil
	}
	return nil, 0, false, false, nil
}

// text returns source s as a string value's bytes: a JSON string, or the
// text of a number (producers send numeric player IDs).
func (d *MappedDecoder) text(s *source, field string, r *Record, limit int) ([]byte, bool, *Error) {
	v, kind, _, ok, err := d.get(s, field, r)
	if err != nil || !ok {
		return nil, false, err
	}
	if kind != kindString && kind != kindNumber {
		return nil, false, newError(ReasonInvalidField, field, s.name+": must be a string")
	}
	if len(v) > limit {
		return nil, false, tooLong(field, len(v), limit)
	}
	return v, true, nil
}

// str is text through the source's value table, as a string: a table's
// value, an interned string when last is not nil (compared with *last
// first), else a copy.
func (d *MappedDecoder) str(s *source, field string, r *Record, last *string) (string, bool, *Error) {
	v, ok := d.quick(s, r.Value)
	if !ok {
		var err *Error
		if v, ok, err = d.text(s, field, r, d.cm.lim.MaxFieldLen); err != nil || !ok {
			return "", false, err
		}
	} else if len(v) > d.cm.lim.MaxFieldLen {
		return "", false, tooLong(field, len(v), d.cm.lim.MaxFieldLen)
	} else if len(v) == 0 {
		return "", false, nil
	}
	if s.values != nil {
		if i := s.values.from.find(v); i >= 0 {
			return s.values.to[i], true, nil
		}
	}
	if last != nil {
		if *last != string(v) {
			*last = d.names.str(v)
		}
		return *last, true, nil
	}
	return string(v), true, nil
}

// quick returns the bytes of a path source that holds a string without
// escapes, the common case, in a call the compiler inlines; false sends the
// caller to get.
func (d *MappedDecoder) quick(s *source, value []byte) ([]byte, bool) {
	if s.kind == srcPath {
		sp := &d.spans[s.slot]
		if sp.kind == kindString && !sp.esc && !sp.dup {
			return value[sp.start:sp.end], true
		}
	}
	return nil, false
}

func missing(field string, s *source) *Error {
	if s.kind == srcNone {
		return newError(ReasonMissingField, field, "")
	}
	return newError(ReasonMissingField, field, "nothing at "+s.name)
}

// fill is phase two: interpret the sources in the v1 contract order.
func (d *MappedDecoder) fill(p *plan, r *Record, ev *Event) (ignored bool, _ *Error) {
	cm := d.cm
	lim := &cm.lim

	if p.specVersion.kind != srcNone {
		v, ok, err := d.text(&p.specVersion, "specversion", r, lim.MaxFieldLen)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, newError(ReasonMissingField, "specversion", "not a CloudEvent: nothing at "+p.specVersion.name)
		}
		if string(v) != "1.0" {
			return false, newError(ReasonInvalidField, "specversion", strconv.Quote(truncate(v, 16))+", want 1.0")
		}
	}

	// type
	name := d.nbuf[:0]
	for i := range p.typ {
		v, ok := d.quick(&p.typ[i], r.Value)
		if !ok || len(v) > lim.MaxFieldLen || len(v) == 0 {
			var err *Error
			if v, ok, err = d.text(&p.typ[i], "type", r, lim.MaxFieldLen); err != nil {
				return false, err
			}
		}
		if !ok {
			return false, missing("type", &p.typ[i])
		}
		if i > 0 {
			name = append(name, cm.sep...)
		}
		name = append(name, v...)
	}
	d.nbuf = name
	if cm.prefix != "" && len(name) >= len(cm.prefix) && string(name[:len(cm.prefix)]) == cm.prefix {
		name = name[len(cm.prefix):]
	}
	d.name = append(d.name[:0], name...)
	if i := cm.names.find(name); i >= 0 {
		ev.Type = cm.types[i]
		if ev.Type == typeIgnored {
			ev.Type = TypeInvalid
			return true, nil
		}
	} else if cm.identity {
		ev.Type = typeOf(name)
	}
	if ev.Type == TypeInvalid {
		return false, newError(ReasonUnknownType, "type", strconv.Quote(truncate(name, 64))+" is not in the mapping's type table")
	}

	// envelope
	var err *Error
	var ok bool
	if p.eventID.kind == srcHash {
		ev.EventID = hashID(r.Value)
	} else if ev.EventID, ok, err = d.str(&p.eventID, "event_id", r, nil); err != nil {
		return false, err
	} else if !ok {
		return false, missing("event_id", &p.eventID)
	}
	if ev.PlayerID, ok, err = d.str(&p.playerID, "player_id", r, nil); err != nil {
		return false, err
	} else if !ok {
		return false, missing("player_id", &p.playerID)
	}
	if ev.SessionID, _, err = d.str(&p.sessionID, "session_id", r, nil); err != nil {
		return false, err
	}
	if ev.TS, err = d.timestamp(p, r); err != nil {
		return false, err
	}
	if !cm.keyIgnored && len(r.Key) > 0 && string(r.Key) != ev.PlayerID {
		return false, newError(ReasonKeyMismatch, "player_id", "record key "+strconv.Quote(truncate(r.Key, 64))+" differs from player_id")
	}

	// attributes
	for i := range p.attrs {
		if err := d.attr(&p.attrs[i], cm.attrNames[i], cm.attrFields[i], &d.lastAttr[i], r, ev); err != nil {
			return false, err
		}
	}

	// type-specific fields
	for _, tf := range typeFields[ev.Type] {
		s := &p.fields[tf.f]
		fname := fieldNames[tf.f]
		switch tf.f {
		case fWaitSeconds:
			ev.WaitSeconds, ev.HasWait, err = d.float(s, fname, r)
		case fTotalSizeMB:
			ev.TotalSizeMB, ev.HasTotalSizeMB, err = d.float(s, fname, r)
		case fAssetsLoaded:
			ev.AssetsLoaded, ev.HasAssetsLoaded, err = d.integer(s, fname, r, 0)
		case fScore:
			ev.Score, ev.HasScore, err = d.integer(s, fname, r, math.MinInt64)
		default:
			dst := stringField(ev, tf.f)
			if *dst, ok, err = d.str(s, fname, r, &d.lastField[tf.f]); err == nil && !ok && tf.required {
				err = missing(fname, s)
			}
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// hashID derives an event ID from a record value: a record published twice
// gets the same ID, so the state machine drops the copy.
func hashID(v []byte) string {
	var b [17]byte
	b[0] = 'h'
	var h [8]byte
	x := xxhash.Sum64(v)
	for i := range 8 {
		h[i] = byte(x >> (56 - 8*i))
	}
	hex.Encode(b[1:], h[:])
	return string(b[:])
}

// number returns source s as a number token: a JSON number, or a string
// holding one (headers, and producers that quote numbers).
func (d *MappedDecoder) number(s *source, field string, r *Record) ([]byte, bool, bool, *Error) {
	v, kind, plain, ok, err := d.get(s, field, r)
	if err != nil || !ok {
		return nil, false, false, err
	}
	switch kind {
	case kindNumber:
		return v, plain, true, nil
	case kindString:
		if end, plain, serr := scanNumber(v, 0); serr == nil && end == len(v) {
			return v, plain, true, nil
		}
	}
	return nil, false, false, newError(ReasonInvalidField, field, s.name+": must be a number")
}

func (d *MappedDecoder) float(s *source, field string, r *Record) (float64, bool, *Error) {
	v, _, ok, err := d.number(s, field, r)
	if err != nil || !ok {
		return 0, false, err
	}
	f, ok := parseFloat(v)
	if !ok {
		return 0, false, newError(ReasonInvalidField, field, s.name+": number out of range")
	}
	if f < 0 {
		return 0, false, newError(ReasonInvalidField, field, s.name+": must not be negative")
	}
	return f, true, nil
}

func (d *MappedDecoder) integer(s *source, field string, r *Record, minimum int64) (int64, bool, *Error) {
	v, plain, ok, err := d.number(s, field, r)
	if err != nil || !ok {
		return 0, false, err
	}
	var n int64
	if plain {
		n, ok = parsePlainInt(v)
	} else {
		n, ok = parseIntegral(v)
	}
	if !ok {
		return 0, false, newError(ReasonInvalidField, field, s.name+": must be an integer in the int64 range")
	}
	if n < minimum {
		return 0, false, newError(ReasonInvalidField, field, s.name+": must not be negative")
	}
	return n, true, nil
}

// timestamp decodes ts by the mapping's format.
func (d *MappedDecoder) timestamp(p *plan, r *Record) (int64, *Error) {
	s := &p.ts
	rule := &d.cm.ts
	if rule.format == TimeRFC3339 || rule.format == TimeLayout {
		v, ok, err := d.text(s, "ts", r, d.cm.lim.MaxFieldLen)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, missing("ts", s)
		}
		if rule.format == TimeRFC3339 {
			ts, detail := parseTimestamp(v)
			if detail != "" {
				return 0, newError(ReasonInvalidField, "ts", s.name+": "+detail)
			}
			return ts, nil
		}
		// The view is safe: time.ParseInLocation keeps no part of its
		// input in the result, and the error is dropped here.
		t, perr := time.ParseInLocation(rule.layout, bytesString(v), rule.loc)
		if perr != nil {
			return 0, newError(ReasonInvalidField, "ts", s.name+": "+strconv.Quote(truncate(v, 64))+" does not match layout "+strconv.Quote(rule.layout))
		}
		if y := t.Year(); y < 1678 || y > 2261 {
			return 0, newError(ReasonInvalidField, "ts", s.name+": timestamp out of range")
		}
		return t.UnixNano(), nil
	}
	v, plain, ok, err := d.number(s, "ts", r)
	if err != nil {
		return 0, newError(ReasonInvalidField, "ts", s.name+": not a "+rule.format+" timestamp")
	}
	if !ok {
		return 0, missing("ts", s)
	}
	unit := rule.unit
	if plain {
		n, ok := parsePlainInt(v)
		if ok && n >= 0 && n <= math.MaxInt64/unit {
			return n * unit, nil
		}
	} else if f, ok := parseFloat(v); ok && f >= 0 && f*float64(unit) < math.MaxInt64 {
		return int64(math.Round(f * float64(unit))), nil
	}
	return 0, newError(ReasonInvalidField, "ts", s.name+": "+rule.format+" timestamp out of range")
}

// attr appends the attribute of source s named name.
func (d *MappedDecoder) attr(s *source, name, field string, last *string, r *Record, ev *Event) *Error {
	v, ok := d.quick(s, r.Value)
	kind, plain := kindString, false
	if !ok {
		var err *Error
		if v, kind, plain, ok, err = d.get(s, field, r); err != nil || !ok {
			return err
		}
	} else if len(v) == 0 {
		return nil
	}
	lim := &d.cm.lim
	switch kind {
	case kindString:
		if len(v) > lim.MaxAttrValueLen {
			return tooLong(field, len(v), lim.MaxAttrValueLen)
		}
		if *last != string(v) {
			*last = d.names.str(v)
		}
		a := newAttr(ev, name)
		a.Kind, a.Str = KindString, *last
	case kindNumber:
		if plain {
			if n, ok := parsePlainInt(v); ok {
				a := newAttr(ev, name)
				a.Kind, a.Int = KindInt, n
				return nil
			}
		}
		f, ok := parseFloat(v)
		if !ok {
			return newError(ReasonInvalidField, field, s.name+": number out of range")
		}
		a := newAttr(ev, name)
		a.Kind, a.Float = KindFloat, f
	case kindTrue, kindFalse:
		a := newAttr(ev, name)
		a.Kind, a.Bool = KindBool, kind == kindTrue
	default:
		return newError(ReasonInvalidField, field, s.name+": must be a string, number or boolean")
	}
	return nil
}
