package schema

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Mapping formats accepted by Mapping.Format.
const (
	// FormatJSON is one JSON object per record value, in the producer's own
	// shape; paths start at the top of the object.
	FormatJSON = "json"
	// FormatCloudEvents is CloudEvents 1.0 over Kafka, structured mode (the
	// value is an application/cloudevents+json event) or binary mode (ce_*
	// headers, the data in the value); paths start at the event's data.
	FormatCloudEvents = "cloudevents"
)

// Key rules accepted by Mapping.Key.
const (
	// KeyPlayer requires a non-empty record key to equal the player ID.
	KeyPlayer = "player"
	// KeyIgnore ignores the record key.
	KeyIgnore = "ignore"
)

// Timestamp formats accepted by Source.Format for the ts field.
const (
	TimeRFC3339 = "rfc3339"
	TimeEpochS  = "epoch_s"
	TimeEpochMS = "epoch_ms"
	TimeEpochUS = "epoch_us"
	TimeEpochNS = "epoch_ns"
	// TimeLayout parses with Source.Layout, a Go reference-time layout, in
	// Source.Zone when the layout has no zone of its own.
	TimeLayout = "layout"
)

// Source prefixes. A source without a prefix is a path into the JSON value:
// object members separated by dots, array elements by index in brackets
// (payload.players[0].id).
const (
	srcPrefixHeader = "header:" // a record header, by exact name
	srcPrefixConst  = "const:"  // the text after the prefix
	srcPrefixCE     = "ce:"     // a CloudEvents context attribute (cloudevents only)
	srcHashValue    = "hash:value"
)

// Mapping declares how the records of one topic in a producer's own shape
// become v1 events. It is compiled once (CompileMapping) into a decoder that
// scans each record once, like the v1 decoder. Every table is a list rather
// than a map, because configuration loaders may fold the case of map keys.
//
// Unset parts default to the v1 contract: a field without a source is read
// from the member of its v1 name, so a mapping states only what differs.
type Mapping struct {
	// Format is "json" (the default) or "cloudevents".
	Format string `mapstructure:"format"`
	// Key is "player" (the default: a non-empty record key must equal the
	// player ID) or "ignore".
	Key string `mapstructure:"key"`
	// Type says where the event name is and which v1 type each name is.
	Type TypeRule `mapstructure:"type"`
	// EventID is the source of event_id; "hash:value" derives it from the
	// record value (a hash), for producers without event IDs, so that a
	// record published twice is still a duplicate.
	EventID Source `mapstructure:"event_id"`
	// PlayerID, SessionID and TS are the sources of the other envelope
	// fields; TS takes Format, Layout and Zone.
	PlayerID  Source `mapstructure:"player_id"`
	SessionID Source `mapstructure:"session_id"`
	TS        Source `mapstructure:"ts"`
	// Fields are the sources of the type-specific fields, by v1 field name
	// (reason, platform, server_id...).
	Fields map[string]Source `mapstructure:"fields"`
	// Traceparent is the source of the event's W3C traceparent, whose trace
	// the span the event opens or closes links to. Default: the member
	// "traceparent", or ce:traceparent (the CloudEvents distributed tracing
	// extension: a top-level member in structured mode, the ce_traceparent
	// header in binary mode). When it has nothing, the record's traceparent
	// header is read. An invalid traceparent is ignored and counted, never a
	// reason to reject the event.
	Traceparent Source `mapstructure:"traceparent"`
	// Attributes are the other fields copied onto the span as attributes,
	// under the decoder's limits. A record's own "attributes" object is not
	// read under a mapping.
	Attributes []AttributeRule `mapstructure:"attributes"`
}

// TypeRule finds the event name and maps it to a v1 type.
type TypeRule struct {
	// From lists the sources of the name; several are joined with
	// Separator (category and subtype, for example). Default: "type", or
	// ce:type for CloudEvents.
	From []string `mapstructure:"from"`
	// Separator joins the parts of a name built from several sources
	// (default ".").
	Separator string `mapstructure:"separator"`
	// StripPrefix is removed from the start of the name before the tables
	// are consulted (com.example.game. for CloudEvents types, say).
	StripPrefix string `mapstructure:"strip_prefix"`
	// Names maps the producer's names to v1 types. Empty means the names
	// are the v1 type names.
	Names []TypeName `mapstructure:"names"`
	// Ignore lists names whose records are skipped and counted, not
	// dead-lettered. Any other name missing from Names is dead-lettered as
	// unknown_type.
	Ignore []string `mapstructure:"ignore"`
}

// TypeName is one row of the event-name table.
type TypeName struct {
	Name string `mapstructure:"name"`
	Type string `mapstructure:"type"`
}

// Source says where one field's value is found.
type Source struct {
	// From is a JSON path (payload.player.id, items[0].sku), header:NAME,
	// const:VALUE, ce:ATTRIBUTE (cloudevents), or hash:value (event_id).
	From string `mapstructure:"from"`
	// Values translates the producer's vocabulary (USER_QUIT → client_quit);
	// a value missing from the table passes through unchanged.
	Values []ValueName `mapstructure:"values"`
	// Format, Layout and Zone are for ts only: Format is rfc3339 (the
	// default), epoch_s, epoch_ms, epoch_us or epoch_ns (a number or a
	// string of digits), or layout; Layout is a Go reference-time layout;
	// Zone (an IANA name or an offset such as +02:00; default UTC) applies
	// to layouts without a zone.
	Format string `mapstructure:"format"`
	Layout string `mapstructure:"layout"`
	Zone   string `mapstructure:"zone"`
}

// ValueName is one row of a value table.
type ValueName struct {
	From string `mapstructure:"from"`
	To   string `mapstructure:"to"`
}

// AttributeRule copies one field onto the span as attribute Name.
type AttributeRule struct {
	From string `mapstructure:"from"`
	// Name is the attribute key; default: the last member name of From.
	Name string `mapstructure:"name"`
}

// ErrInvalidMapping is wrapped by every error of CompileMapping.
var ErrInvalidMapping = errors.New("invalid mapping")

// ErrIgnored is returned by a mapped decoder for a record whose event name is
// in the mapping's ignore list: it is to be skipped and counted, not
// dead-lettered.
var ErrIgnored = errors.New("schema: event name in the mapping's ignore list")

// typeIgnored marks the names of the ignore list in the compiled type
// table.
const typeIgnored Type = 0xff

// srcKind is where a compiled source reads from.
type srcKind uint8

const (
	srcNone srcKind = iota
	srcPath
	srcHeader
	srcConst
	srcHash
)

// source is a compiled Source for one plan.
type source struct {
	kind   srcKind
	slot   int    // srcPath: index into the decoder's spans
	text   string // srcHeader: the header name; srcConst: the value
	name   string // as written, for error details
	values *valueTable
}

// valueTable is a compiled value table.
type valueTable struct {
	from table
	to   []string
}

// tsRule is the compiled timestamp format.
type tsRule struct {
	format string
	unit   int64 // epoch formats: nanoseconds per unit
	layout string
	loc    *time.Location
}

// plan is the compiled mapping for one record layout: the path tree of the
// value, and every source resolved against it. CloudEvents has two (the
// structured and the binary layout); plain JSON one.
type plan struct {
	root   *pnode
	nslots int
	// needValue is false when no source reads the value (binary
	// CloudEvents whose fields all come from headers).
	needValue   bool
	binary      bool // binary CloudEvents: the value is the data
	typ         []source
	eventID     source
	playerID    source
	sessionID   source
	ts          source
	specVersion source // CloudEvents only
	contentType source // binary CloudEvents: datacontenttype
	traceparent source
	fields      [numFields]source
	attrs       []source
}

// pnode is a node of a plan's path tree: the members (by name) or elements
// (by index) that some source reads.
type pnode struct {
	name     string
	index    int // -1 for a member
	slot     int // -1 when no source reads this value itself
	children []*pnode
	// plain is set for a member whose name JSON writes as is (no quote,
	// backslash or control character), so that a key can match it in
	// place.
	plain bool
	// byFirst lists the plain member children by the first byte of their
	// name, so that most keys are told apart by one load.
	byFirst *[256][]member
}

// member is a plain member child with its name beside it, so that matching
// a key loads no node.
type member struct {
	name string
	node *pnode
}

// buildIndex builds byFirst for n and the nodes below it.
func (n *pnode) buildIndex() {
	for _, c := range n.children {
		if c.plain {
			if n.byFirst == nil {
				n.byFirst = new([256][]member)
			}
			n.byFirst[c.name[0]] = append(n.byFirst[c.name[0]], member{c.name, c})
		}
		c.buildIndex()
	}
}

func (n *pnode) child(name string, index int) *pnode {
	for _, c := range n.children {
		if c.name == name && c.index == index {
			return c
		}
	}
	c := &pnode{name: name, index: index, slot: -1, plain: index < 0 && name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' })}
	n.children = append(n.children, c)
	return c
}

// pathSeg is one step of a parsed path.
type pathSeg struct {
	name  string
	index int // -1 for a member
}

// parsePath parses a.b[0].c into its steps.
func parsePath(p string) ([]pathSeg, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	if !utf8.ValidString(p) {
		return nil, errors.New("path is not valid UTF-8")
	}
	var out []pathSeg
	for part := range strings.SplitSeq(p, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name == "" && (len(out) == 0 || rest == "") {
			return nil, fmt.Errorf("empty member name in %q", p)
		}
		if name != "" {
			out = append(out, pathSeg{name: name, index: -1})
		}
		if rest == "" && strings.Contains(part, "[") {
			return nil, fmt.Errorf("unclosed '[' in %q", p)
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			if !ok {
				return nil, fmt.Errorf("unclosed '[' in %q", p)
			}
			i, err := strconv.Atoi(num)
			if err != nil || i < 0 || num != strconv.Itoa(i) {
				return nil, fmt.Errorf("array index %q is not a non-negative integer", num)
			}
			out = append(out, pathSeg{index: i})
			if after == "" {
				break
			}
			if after[0] != '[' {
				return nil, fmt.Errorf("unexpected %q after ']' in %q", after, p)
			}
			rest = after[1:]
		}
	}
	return out, nil
}

// ceAttr reports whether name is a CloudEvents context attribute name (the
// spec: lower-case letters and digits).
func ceAttr(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// compiler builds one plan.
type compiler struct {
	structured bool // CloudEvents structured: paths under "data", ce: at the top
	binary     bool // CloudEvents binary: ce: from ce_ headers
	p          *plan
}

// resolve compiles source text s (already validated by check) for this plan.
func (c *compiler) resolve(s string) source {
	switch {
	case s == "":
		return source{}
	case s == srcHashValue:
		return source{kind: srcHash, name: s}
	case strings.HasPrefix(s, srcPrefixHeader):
		return source{kind: srcHeader, text: s[len(srcPrefixHeader):], name: s}
	case strings.HasPrefix(s, srcPrefixConst):
		return source{kind: srcConst, text: s[len(srcPrefixConst):], name: s}
	case strings.HasPrefix(s, srcPrefixCE):
		attr := s[len(srcPrefixCE):]
		if c.binary {
			return source{kind: srcHeader, text: "ce_" + attr, name: s}
		}
		return c.path([]pathSeg{{name: attr, index: -1}}, s)
	}
	segs, _ := parsePath(s)
	if c.structured {
		segs = append([]pathSeg{{name: "data", index: -1}}, segs...)
	}
	return c.path(segs, s)
}

func (c *compiler) path(segs []pathSeg, name string) source {
	n := c.p.root
	for _, sg := range segs {
		n = n.child(sg.name, sg.index)
	}
	if n.slot < 0 {
		n.slot = c.p.nslots
		c.p.nslots++
	}
	c.p.needValue = true
	return source{kind: srcPath, slot: n.slot, name: name}
}

// CompiledMapping is a validated Mapping, ready to build decoders from.
type CompiledMapping struct {
	m     Mapping
	lim   Limits
	plans []*plan // json: one; cloudevents: structured, binary
	// names holds the event names of the type table (types[i] is the
	// type of the i-th key, typeIgnored for the ignore list); identity is
	// set when there is no type table and the names are the v1 type names.
	names    table
	types    []Type
	identity bool
	ts       tsRule
	// sep and prefix of the type rule.
	sep, prefix string
	keyIgnored  bool
	attrNames   []string
	attrFields  []string // "attributes." + name, for errors
}

// CompileMapping validates m against the limits l and compiles it. Every
// error wraps ErrInvalidMapping and names the offending key of the mapping
// and the reason.
func CompileMapping(m Mapping, l Limits) (*CompiledMapping, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := m.check(l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	cm := &CompiledMapping{m: m, lim: l, sep: m.Type.Separator, prefix: m.Type.StripPrefix, keyIgnored: m.Key == KeyIgnore}
	if cm.sep == "" {
		cm.sep = "."
	}
	ce := m.Format == FormatCloudEvents
	if ce {
		cm.plans = []*plan{cm.compilePlan(true, false), cm.compilePlan(false, true)}
	} else {
		cm.plans = []*plan{cm.compilePlan(false, false)}
	}
	cm.identity = len(m.Type.Names) == 0
	for _, n := range m.Type.Names {
		t, _ := ParseType(n.Type)
		cm.names.add(n.Name)
		cm.types = append(cm.types, t)
	}
	for _, n := range m.Type.Ignore {
		cm.names.add(n)
		cm.types = append(cm.types, typeIgnored)
	}
	cm.ts, _ = m.TS.timeRule()
	for _, a := range m.Attributes {
		cm.attrNames = append(cm.attrNames, a.attrName())
		cm.attrFields = append(cm.attrFields, "attributes."+a.attrName())
	}
	return cm, nil
}

// Mapping returns the mapping cm was compiled from.
func (cm *CompiledMapping) Mapping() Mapping { return cm.m }

// defaultSource returns the source of each envelope part when the mapping
// sets none.
func (m *Mapping) defaultSource(part string) string {
	if m.Format == FormatCloudEvents {
		switch part {
		case "type":
			return "ce:type"
		case "event_id":
			return "ce:id"
		case "player_id":
			return "ce:subject"
		case "ts":
			return "ce:time"
		case "session_id":
			return ""
		case "traceparent":
			return "ce:traceparent"
		}
	}
	return part
}

func (cm *CompiledMapping) compilePlan(structured, binary bool) *plan {
	m := &cm.m
	c := &compiler{structured: structured, binary: binary, p: &plan{root: &pnode{index: -1, slot: -1}}}
	from := m.Type.From
	if len(from) == 0 {
		from = []string{m.defaultSource("type")}
	}
	for _, s := range from {
		c.p.typ = append(c.p.typ, c.resolve(s))
	}
	or := func(s Source, part string) Source {
		if s.From == "" {
			s.From = m.defaultSource(part)
		}
		return s
	}
	withValues := func(s Source, src source) source {
		if len(s.Values) > 0 {
			src.values = &valueTable{}
			for _, v := range s.Values {
				src.values.from.add(v.From)
				src.values.to = append(src.values.to, v.To)
			}
		}
		return src
	}
	c.p.eventID = c.resolve(or(m.EventID, "event_id").From)
	s := or(m.PlayerID, "player_id")
	c.p.playerID = withValues(s, c.resolve(s.From))
	s = or(m.SessionID, "session_id")
	c.p.sessionID = withValues(s, c.resolve(s.From))
	c.p.ts = c.resolve(or(m.TS, "ts").From)
	c.p.traceparent = c.resolve(or(m.Traceparent, "traceparent").From)
	if structured {
		c.p.specVersion = c.resolve("ce:specversion")
	}
	if binary {
		c.p.binary = true
		c.p.specVersion = c.resolve("ce:specversion")
		c.p.contentType = source{kind: srcHeader, text: "content-type", name: "header:content-type"}
	}
	for f := fAuthMethod; f < numFields; f++ {
		s, ok := m.Fields[fieldNames[f]]
		if !ok || s.From == "" {
			s.From = fieldNames[f]
		}
		c.p.fields[f] = withValues(s, c.resolve(s.From))
	}
	for _, a := range m.Attributes {
		c.p.attrs = append(c.p.attrs, c.resolve(a.From))
	}
	c.p.root.buildIndex()
	return c.p
}

// attrName returns the attribute key of rule a.
func (a AttributeRule) attrName() string {
	if a.Name != "" {
		return a.Name
	}
	s := a.From
	if i := strings.IndexByte(s, ':'); i >= 0 && !strings.ContainsAny(s[:i], ".[") {
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '['); i >= 0 {
		s = s[:i]
	}
	return s
}

// checkSource validates source text s of key, for format.
func (m *Mapping) checkSource(key, s string, hashOK bool) error {
	switch {
	case s == "":
		return nil
	case s == srcHashValue:
		if !hashOK {
			return fmt.Errorf("%s.from: hash:value is only for event_id", key)
		}
		return nil
	case strings.HasPrefix(s, srcPrefixHeader):
		if len(s) == len(srcPrefixHeader) {
			return fmt.Errorf("%s.from: empty header name", key)
		}
		return nil
	case strings.HasPrefix(s, srcPrefixConst):
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s.from: constant is not valid UTF-8", key)
		}
		return nil
	case strings.HasPrefix(s, srcPrefixCE):
		if m.Format != FormatCloudEvents {
			return fmt.Errorf("%s.from %q: ce: sources need format cloudevents", key, s)
		}
		if !ceAttr(s[len(srcPrefixCE):]) {
			return fmt.Errorf("%s.from %q: a CloudEvents attribute name is 1 to 20 lower-case letters or digits", key, s)
		}
		return nil
	}
	if _, err := parsePath(s); err != nil {
		return fmt.Errorf("%s.from %q: %w", key, s, err)
	}
	return nil
}

func (s Source) timeRule() (tsRule, error) {
	r := tsRule{format: s.Format, layout: s.Layout, loc: time.UTC}
	if r.format == "" {
		if s.Layout != "" {
			r.format = TimeLayout
		} else {
			r.format = TimeRFC3339
		}
	}
	switch r.format {
	case TimeRFC3339, TimeEpochS, TimeEpochMS, TimeEpochUS, TimeEpochNS:
		r.unit = map[string]int64{TimeEpochS: 1e9, TimeEpochMS: 1e6, TimeEpochUS: 1e3, TimeEpochNS: 1}[r.format]
		if s.Layout != "" || s.Zone != "" {
			return r, fmt.Errorf("ts.layout and ts.zone: only with ts.format layout, not %s", r.format)
		}
	case TimeLayout:
		if s.Layout == "" {
			return r, errors.New("ts.layout: required with ts.format layout")
		}
		// A layout must at least round-trip a known instant.
		ref := time.Date(2026, 11, 20, 18, 0, 3, 120_000_000, time.UTC)
		if _, err := time.Parse(s.Layout, ref.Format(s.Layout)); err != nil {
			return r, fmt.Errorf("ts.layout %q: %w", s.Layout, err)
		}
		if s.Zone != "" {
			loc, err := parseZone(s.Zone)
			if err != nil {
				return r, fmt.Errorf("ts.zone %q: %w", s.Zone, err)
			}
			r.loc = loc
		}
	default:
		return r, fmt.Errorf("ts.format %q (want one of: rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns, layout)", s.Format)
	}
	return r, nil
}

// parseZone parses an IANA zone name or a fixed offset (+02:00, -0530, Z).
func parseZone(z string) (*time.Location, error) {
	if z == "Z" || z == "UTC" {
		return time.UTC, nil
	}
	if z[0] == '+' || z[0] == '-' {
		t, err := time.Parse("-07:00", z)
		if err != nil {
			if t, err = time.Parse("-0700", z); err != nil {
				return nil, errors.New("not an offset such as +02:00")
			}
		}
		_, off := t.Zone()
		return time.FixedZone(z, off), nil
	}
	if z == "Local" {
		return nil, errors.New("the local zone of the consumer is not a zone of the producer; name it")
	}
	return time.LoadLocation(z)
}

// check validates the whole mapping, naming the key at fault.
func (m *Mapping) check(l Limits) error {
	switch m.Format {
	case "", FormatJSON:
	case FormatCloudEvents:
	default:
		return fmt.Errorf("format %q (want json or cloudevents)", m.Format)
	}
	switch m.Key {
	case "", KeyPlayer, KeyIgnore:
	default:
		return fmt.Errorf("key %q (want player or ignore)", m.Key)
	}
	for i, s := range m.Type.From {
		if s == "" {
			return fmt.Errorf("type.from[%d]: empty source", i)
		}
		if err := m.checkSource(fmt.Sprintf("type.from[%d]", i), s, false); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, n := range m.Type.Names {
		key := fmt.Sprintf("type.names[%d]", i)
		if n.Name == "" {
			return fmt.Errorf("%s.name: empty", key)
		}
		if _, ok := ParseType(n.Type); !ok {
			return fmt.Errorf("%s.type %q: not a v1 type (want one of: %s)", key, n.Type, typeList())
		}
		if seen[n.Name] {
			return fmt.Errorf("%s.name %q: listed twice", key, n.Name)
		}
		seen[n.Name] = true
	}
	for i, n := range m.Type.Ignore {
		if seen[n] {
			return fmt.Errorf("type.ignore[%d] %q: also in type.names", i, n)
		}
	}
	for _, e := range []struct {
		key string
		s   Source
	}{{"event_id", m.EventID}, {"player_id", m.PlayerID}, {"session_id", m.SessionID}, {"ts", m.TS}, {"traceparent", m.Traceparent}} {
		if err := m.checkSource(e.key, e.s.From, e.key == "event_id"); err != nil {
			return err
		}
		if e.key != "ts" && (e.s.Format != "" || e.s.Layout != "" || e.s.Zone != "") {
			return fmt.Errorf("%s: format, layout and zone are only for ts", e.key)
		}
		if (e.key == "event_id" || e.key == "ts" || e.key == "traceparent") && len(e.s.Values) > 0 {
			return fmt.Errorf("%s.values: no value table for %s", e.key, e.key)
		}
		if err := checkValues(e.key, e.s.Values); err != nil {
			return err
		}
	}
	if _, err := m.TS.timeRule(); err != nil {
		return err
	}
	keys := make([]string, 0, len(m.Fields))
	for k := range m.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := lookupField([]byte(k))
		if f < fAuthMethod || f >= numFields {
			return fmt.Errorf("fields.%s: not a type-specific v1 field (want one of: %s)", k, fieldList())
		}
		s := m.Fields[k]
		if err := m.checkSource("fields."+k, s.From, false); err != nil {
			return err
		}
		if s.Format != "" || s.Layout != "" || s.Zone != "" {
			return fmt.Errorf("fields.%s: format, layout and zone are only for ts", k)
		}
		if err := checkValues("fields."+k, s.Values); err != nil {
			return err
		}
		if len(s.Values) > 0 && stringField(&Event{}, f) == nil {
			return fmt.Errorf("fields.%s.values: %s is a number; value tables are for string fields", k, k)
		}
	}
	if len(m.Attributes) > l.MaxAttributes {
		return fmt.Errorf("attributes: %d rules, more than limits.max_attributes %d", len(m.Attributes), l.MaxAttributes)
	}
	names := map[string]bool{}
	for i, a := range m.Attributes {
		key := fmt.Sprintf("attributes[%d]", i)
		if a.From == "" {
			return fmt.Errorf("%s.from: required", key)
		}
		if err := m.checkSource(key, a.From, false); err != nil {
			return err
		}
		n := a.attrName()
		switch {
		case n == "":
			return fmt.Errorf("%s.name: empty", key)
		case len(n) > l.MaxAttrKeyLen:
			return fmt.Errorf("%s.name: %d bytes, more than limits.max_attr_key_len %d", key, len(n), l.MaxAttrKeyLen)
		case !utf8.ValidString(n):
			return fmt.Errorf("%s.name: not valid UTF-8", key)
		case names[n]:
			return fmt.Errorf("%s.name %q: used twice", key, n)
		}
		names[n] = true
	}
	return nil
}

func checkValues(key string, vs []ValueName) error {
	seen := map[string]bool{}
	for i, v := range vs {
		if v.From == "" || v.To == "" {
			return fmt.Errorf("%s.values[%d]: from and to are required", key, i)
		}
		if !utf8.ValidString(v.To) {
			return fmt.Errorf("%s.values[%d].to: not valid UTF-8", key, i)
		}
		if seen[v.From] {
			return fmt.Errorf("%s.values[%d].from %q: listed twice", key, i, v.From)
		}
		seen[v.From] = true
	}
	return nil
}

func typeList() string {
	var b strings.Builder
	for i, t := range Types() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.String())
	}
	return b.String()
}

func fieldList() string {
	var b strings.Builder
	for f := fAuthMethod; f < numFields; f++ {
		if f > fAuthMethod {
			b.WriteString(", ")
		}
		b.WriteString(fieldNames[f])
	}
	return b.String()
}
