package schema_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/schema"
)

const (
	tpValid   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tpValid2  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	tpTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tpSpanID  = "00f067aa0ba902b7"
)

func TestParseTraceparent(t *testing.T) {
	valid := []struct {
		name, in, trace, span string
		flags                 byte
	}{
		{"sampled", tpValid, tpTraceID, tpSpanID, 1},
		{"not sampled", tpValid2, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 0},
		{"unknown flags are kept", "00-" + tpTraceID + "-" + tpSpanID + "-ff", tpTraceID, tpSpanID, 0xff},
		{"a later version, four fields", "01-" + tpTraceID + "-" + tpSpanID + "-01", tpTraceID, tpSpanID, 1},
		{"a later version with more after '-'", "cc-" + tpTraceID + "-" + tpSpanID + "-09-what-the-future-holds", tpTraceID, tpSpanID, 9},
		{"only the trace-id's last byte set", "00-00000000000000000000000000000001-0000000000000001-01",
			"00000000000000000000000000000001", "0000000000000001", 1},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			l, why := schema.ParseTraceparent([]byte(tt.in))
			if why != "" {
				t.Fatalf("ParseTraceparent(%q): %s", tt.in, why)
			}
			if !l.IsValid() || l.Flags != tt.flags {
				t.Errorf("link %+v, want valid with flags %02x", l, tt.flags)
			}
			if want := "00-" + tt.trace + "-" + tt.span + "-" + tt.in[53:55]; l.String() != want {
				t.Errorf("String() = %q, want %q", l.String(), want)
			}
		})
	}
	invalid := []struct{ name, in, why string }{
		{"empty", "", "too short"},
		{"short", tpValid[:54], "too short"},
		{"version 00 too long", tpValid + "-", "version 00 is 56 bytes"},
		{"version 00 with trailing data", tpValid + "x", "version 00 is 56 bytes"},
		{"version ff", "ff" + tpValid[2:], "version ff"},
		{"version not hex", "0g" + tpValid[2:], "version"},
		{"upper-case version", "0A" + tpValid[2:], "version"},
		{"upper-case trace-id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "trace-id is not"},
		{"upper-case parent-id", "00-" + tpTraceID + "-00F067AA0BA902B7-01", "parent-id is not"},
		{"upper-case flags", "00-" + tpTraceID + "-" + tpSpanID + "-0A", "trace-flags"},
		{"non-hex trace-id", "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", "trace-id is not"},
		{"non-hex parent-id", "00-" + tpTraceID + "-00f067aa0ba9 2b7-01", "parent-id is not"},
		{"non-hex flags", "00-" + tpTraceID + "-" + tpSpanID + "-0x", "trace-flags"},
		{"zero trace-id", "00-00000000000000000000000000000000-" + tpSpanID + "-01", "trace-id is all zeros"},
		{"zero parent-id", "00-" + tpTraceID + "-0000000000000000-01", "parent-id is all zeros"},
		{"wrong separator", "00_" + tpValid[3:], "separated"},
		{"separator moved", "00-" + tpTraceID + "0-0f067aa0ba902b7-01", "separated"},
		{"a later version not followed by '-'", "01-" + tpTraceID + "-" + tpSpanID + "-01x", "not followed by '-'"},
		{"a later version, short", "01-" + tpTraceID + "-" + tpSpanID + "-1", "too short"},
		{"whitespace around it", " " + tpValid, "version"},
		{"utf-8 junk", strings.Repeat("é", 28), "version"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			l, why := schema.ParseTraceparent([]byte(tt.in))
			if why == "" || !strings.Contains(why, tt.why) {
				t.Errorf("ParseTraceparent(%q) = %+v, %q; want an error about %q", tt.in, l, why, tt.why)
			}
			if l != (schema.TraceLink{}) {
				t.Errorf("an invalid traceparent gave a link: %+v", l)
			}
		})
	}
}

const v1Login = `"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"`

// TestDecodeTraceLink covers the v1 decoder's two sources: the traceparent
// field and the record header, and that an invalid traceparent never
// rejects its event.
func TestDecodeTraceLink(t *testing.T) {
	h := func(v string) []schema.Header {
		return []schema.Header{{Key: "other", Value: []byte("x")}, {Key: "traceparent", Value: []byte(v)}}
	}
	tests := []struct {
		name    string
		value   string
		headers []schema.Header
		link    string // "" for none
		linkErr string // a part of LinkError; "" for none
	}{
		{"none", `{` + v1Login + `}`, nil, "", ""},
		{"field", `{` + v1Login + `,"traceparent":"` + tpValid + `"}`, nil, tpValid, ""},
		{"field first in the record", `{"traceparent":"` + tpValid + `",` + v1Login + `}`, nil, tpValid, ""},
		{"field with escapes", `{` + v1Login + `,"traceparent":"\u0030` + tpValid[1:] + `"}`, nil, tpValid, ""},
		{"field null", `{` + v1Login + `,"traceparent":null}`, nil, "", ""},
		{"field empty", `{` + v1Login + `,"traceparent":""}`, nil, "", ""},
		{"header", `{` + v1Login + `}`, h(tpValid2), tpValid2, ""},
		{"field wins over the header", `{` + v1Login + `,"traceparent":"` + tpValid + `"}`, h(tpValid2), tpValid, ""},
		{"empty field: the header", `{` + v1Login + `,"traceparent":""}`, h(tpValid2), tpValid2, ""},
		{"invalid field", `{` + v1Login + `,"traceparent":"00-zz"}`, nil, "", `field traceparent "00-zz": too short`},
		{"invalid field is not replaced by the header", `{` + v1Login + `,"traceparent":"ff` + tpValid[2:] + `"}`, h(tpValid2), "", "version ff"},
		{"field not a string", `{` + v1Login + `,"traceparent":{"a":1}}`, nil, "", "not a string"},
		{"field repeated", `{` + v1Login + `,"traceparent":"` + tpValid + `","traceparent":"` + tpValid + `"}`, nil, "", "duplicate key"},
		{"invalid header", `{` + v1Login + `}`, h("00-" + strings.ToUpper(tpTraceID) + "-" + tpSpanID + "-01"), "", `header traceparent "00-4BF9`},
		{"adversarial header bytes are quoted", `{` + v1Login + `}`, h("\x1b[31m\"\n\xff"), "", `"\x1b[31m\"\n\xff"`},
		{"other headers only", `{` + v1Login + `}`, []schema.Header{{Key: "traceparentx", Value: []byte(tpValid)}}, "", ""},
	}
	d, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schema.Event
			if err := d.DecodeRecord(&schema.Record{Value: []byte(tt.value), Headers: tt.headers}, &ev); err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkLink(t, &ev, tt.link, tt.linkErr)
			if ev.Type != schema.SessionLogin || ev.PlayerID != "p1" {
				t.Errorf("event not decoded: %+v", ev)
			}
		})
	}
}

func checkLink(t *testing.T, ev *schema.Event, link, linkErr string) {
	t.Helper()
	switch {
	case link == "" && ev.Link != (schema.TraceLink{}):
		t.Errorf("link %s, want none", ev.Link)
	case link != "" && ev.Link.String() != link:
		t.Errorf("link %s, want %s", ev.Link, link)
	}
	if linkErr == "" && ev.LinkError != "" || !strings.Contains(ev.LinkError, linkErr) {
		t.Errorf("LinkError %q, want %q", ev.LinkError, linkErr)
	}
}

// TestMappedTraceLink covers a mapping's traceparent source (a path, a
// header, the defaults) and CloudEvents' distributed tracing extension in
// both modes, each with the record header as the fallback.
func TestMappedTraceLink(t *testing.T) {
	const arena = `{"category":"user","action":"login","occurredAt":1795197603120,"payload":{"player":{"id":"p-1"},"trace":"%s"},"traceparent":"%s"}`
	hdr := func(kv ...string) []schema.Header {
		var hs []schema.Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, schema.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	ce := schema.Mapping{Format: schema.FormatCloudEvents, Type: schema.TypeRule{StripPrefix: "com.example.game."}}
	binary := hdr("ce_specversion", "1.0", "ce_id", "e1", "ce_type", "com.example.game.session.login", "ce_subject", "p-1",
		"ce_time", "2026-11-25T10:00:00Z", "content-type", "application/json")
	structured := `{"specversion":"1.0","id":"e1","type":"com.example.game.session.login","subject":"p-1","time":"2026-11-25T10:00:00Z"%s,"data":{"traceparent":"` + tpValid2 + `"}}`
	tests := []struct {
		name    string
		m       schema.Mapping
		value   string
		headers []schema.Header
		link    string
		linkErr string
	}{
		{"default: the member traceparent", arenaMapping(), strings.NewReplacer("%s", tpValid).Replace(arena), nil, tpValid, ""},
		{"a path", withTraceparent(arenaMapping(), "payload.trace"), sprintf2(arena, tpValid2, tpValid), nil, tpValid2, ""},
		{"a path, invalid", withTraceparent(arenaMapping(), "payload.trace"), sprintf2(arena, "00-nope", tpValid), nil, "", `payload.trace "00-nope"`},
		{"a path, nothing there: the header", withTraceparent(arenaMapping(), "payload.missing"), sprintf2(arena, "", ""),
			hdr("traceparent", tpValid), tpValid, ""},
		{"a header", withTraceparent(arenaMapping(), "header:x-trace"), sprintf2(arena, "", ""),
			hdr("x-trace", tpValid2, "traceparent", tpValid), tpValid2, ""},
		{"a header, invalid UTF-8", withTraceparent(arenaMapping(), "header:x-trace"), sprintf2(arena, "", ""),
			hdr("x-trace", "\xff"), "", "header:x-trace: not valid UTF-8"},
		{"a number", withTraceparent(arenaMapping(), "occurredAt"), sprintf2(arena, "", ""), nil, "", "occurredAt: not a string"},
		{"cloudevents binary: ce_traceparent", ce, `{}`, slices.Concat(binary, hdr("ce_traceparent", tpValid, "traceparent", tpValid2)), tpValid, ""},
		{"cloudevents binary: the traceparent header", ce, `{}`, slices.Concat(binary, hdr("traceparent", tpValid2)), tpValid2, ""},
		{"cloudevents binary: invalid ce_traceparent", ce, `{}`, slices.Concat(binary, hdr("ce_traceparent", tpValid[:20])), "", `ce:traceparent "00-4bf92f3577b34da6a": too short`},
		{"cloudevents binary: none", ce, `{}`, binary, "", ""},
		{"cloudevents structured: the extension attribute", ce, strings.Replace(structured, "%s", `,"traceparent":"`+tpValid+`"`, 1),
			hdr("content-type", "application/cloudevents+json"), tpValid, ""},
		{"cloudevents structured: not the data's member", ce, strings.Replace(structured, "%s", "", 1),
			hdr("content-type", "application/cloudevents+json"), "", ""},
		{"cloudevents structured: the traceparent header", ce, strings.Replace(structured, "%s", "", 1),
			hdr("content-type", "application/cloudevents+json", "traceparent", tpValid2), tpValid2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, tt.m)
			var ev schema.Event
			if err := d.DecodeRecord(&schema.Record{Value: []byte(tt.value), Headers: tt.headers}, &ev); err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkLink(t, &ev, tt.link, tt.linkErr)
		})
	}
}

func withTraceparent(m schema.Mapping, from string) schema.Mapping {
	m.Traceparent = schema.Source{From: from}
	return m
}

// sprintf2 fills the two %s of format in order.
func sprintf2(format, a, b string) string {
	return strings.Replace(strings.Replace(format, "%s", a, 1), "%s", b, 1)
}

func TestTraceparentMappingChecks(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  schema.Source
		want string
	}{
		{"value table", schema.Source{From: "tp", Values: []schema.ValueName{{From: "a", To: "b"}}}, "traceparent.values: no value table"},
		{"format", schema.Source{From: "tp", Format: schema.TimeEpochMS}, "traceparent: format, layout and zone are only for ts"},
		{"hash", schema.Source{From: "hash:value"}, "hash:value is only for event_id"},
		{"bad path", schema.Source{From: "a..b"}, `traceparent.from "a..b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := arenaMapping()
			m.Traceparent = tt.src
			_, err := schema.CompileMapping(m, schema.DefaultLimits())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CompileMapping = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestTraceLinkRoundTrip: AppendJSON writes a link as a version-00
// traceparent, which decodes back to the same event; Validate refuses a
// half-set link, which the wire could not carry.
func TestTraceLinkRoundTrip(t *testing.T) {
	l, _ := schema.ParseTraceparent([]byte("03-" + tpTraceID + "-" + tpSpanID + "-01-later"))
	ev := schema.Event{Type: schema.GameEnter, EventID: "e1", PlayerID: "p1", TS: 1, ServerID: "gs-1", Map: "dust", Link: l}
	if err := ev.Validate(schema.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	b := schema.AppendJSON(nil, &ev)
	if !strings.Contains(string(b), `"traceparent":"`+tpValid+`"`) {
		t.Errorf("AppendJSON wrote %s", b)
	}
	d, _ := schema.NewDecoder(schema.DefaultLimits())
	var back schema.Event
	if err := d.Decode(nil, b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(&ev) {
		t.Errorf("round trip: %+v, want %+v", back, ev)
	}
	ev.Link.SpanID = [8]byte{}
	if err := ev.Validate(schema.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "traceparent") {
		t.Errorf("Validate of a half-set link = %v", err)
	}
}
