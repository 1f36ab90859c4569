package schema

import "strconv"

// TraceLink is what an event's W3C traceparent says: the trace and the span
// (the producer's parent-id) the event was published in, and the trace
// flags. The span the event opens or closes gets a span link to it. The
// zero value means no link; a valid one has both IDs non-zero.
//
// The version and tracestate are not kept: a link always carries the
// version-00 fields, and the OpenTelemetry SDK's OTLP exporter does not send
// a link's trace_state, so neither export path does.
type TraceLink struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// IsValid reports whether l names a trace and a span (both IDs non-zero).
func (l TraceLink) IsValid() bool { return l.TraceID != [16]byte{} && l.SpanID != [8]byte{} }

// String returns l as a version-00 traceparent,
// 00-<trace-id>-<parent-id>-<flags>.
func (l TraceLink) String() string { return string(l.AppendTraceparent(nil)) }

// AppendTraceparent appends l as a version-00 traceparent.
func (l TraceLink) AppendTraceparent(dst []byte) []byte {
	dst = append(dst, '0', '0', '-')
	for _, c := range l.TraceID {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	dst = append(dst, '-')
	for _, c := range l.SpanID {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, '-', hexDigits[l.Flags>>4], hexDigits[l.Flags&0xf])
}

// HeaderTraceparent is the record header read for a trace link by every
// decoder, after the event's own traceparent (the v1 field, or the mapping's
// source).
const HeaderTraceparent = "traceparent"

// traceparentLen is the length of a version-00 traceparent.
const traceparentLen = 55

// ParseTraceparent parses a W3C Trace Context traceparent header value,
// version-format "version-traceid-parentid-flags" with lower-case hex
// digits: 2, 32, 16 and 2 of them. It returns the link, or a zero link and
// why v is not a valid traceparent. As the Trace Context recommendation
// says: hex is lower case only; an all-zero trace or parent ID is invalid;
// version ff is invalid; version 00 is exactly 55 characters; a later
// version is parsed for its first four fields, and may go on only after a
// '-'.
func ParseTraceparent(v []byte) (TraceLink, string) {
	var l TraceLink
	if len(v) < traceparentLen {
		return l, "too short: " + strconv.Itoa(len(v)) + " bytes, want 55"
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok {
		return l, "version is not two lower-case hex digits"
	}
	if ver == 0xff {
		return l, "version ff is invalid"
	}
	if ver == 0 && len(v) != traceparentLen {
		return l, "version 00 is " + strconv.Itoa(len(v)) + " bytes, want 55"
	}
	if len(v) > traceparentLen && v[traceparentLen] != '-' {
		return l, "flags not followed by '-'"
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return l, "fields not separated by '-' at 2, 35 and 52"
	}
	for i := range l.TraceID {
		if l.TraceID[i], ok = hexByte(v[3+2*i], v[4+2*i]); !ok {
			return TraceLink{}, "trace-id is not 32 lower-case hex digits"
		}
	}
	for i := range l.SpanID {
		if l.SpanID[i], ok = hexByte(v[36+2*i], v[37+2*i]); !ok {
			return TraceLink{}, "parent-id is not 16 lower-case hex digits"
		}
	}
	if l.Flags, ok = hexByte(v[53], v[54]); !ok {
		return TraceLink{}, "trace-flags is not two lower-case hex digits"
	}
	if l.TraceID == [16]byte{} {
		return TraceLink{}, "trace-id is all zeros"
	}
	if l.SpanID == [8]byte{} {
		return TraceLink{}, "parent-id is all zeros"
	}
	return l, ""
}

// hexByte decodes two lower-case hex digits.
func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexLower(hi)
	l, ok2 := hexLower(lo)
	return h<<4 | l, ok1 && ok2
}

func hexLower(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// invalidTraceparent is the detail of a traceparent that was ignored: where
// it came from, a bounded and quoted copy of what it said, and why.
func invalidTraceparent(from string, v []byte, why string) string {
	return from + " " + strconv.Quote(truncate(v, 64)) + ": " + why
}

// linkFrom sets ev's link from the traceparent v read from source from (a
// field or header name, for the detail), or says in ev.LinkError why it was
// ignored.
func linkFrom(ev *Event, from string, v []byte) {
	l, why := ParseTraceparent(v)
	if why != "" {
		ev.LinkError = invalidTraceparent(from, v, why)
		return
	}
	ev.Link = l
}

// headerLink reads the traceparent record header into ev when the event
// itself said nothing about a trace link.
func headerLink(r *Record, ev *Event) {
	if len(r.Headers) == 0 || ev.Link.IsValid() || ev.LinkError != "" {
		return
	}
	if v, ok := header(r.Headers, HeaderTraceparent); ok && len(v) > 0 {
		linkFrom(ev, "header "+HeaderTraceparent, v)
	}
}
