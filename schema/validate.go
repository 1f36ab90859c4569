package schema

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Validate checks an Event built in Go (by the simulator, say) against the
// rules the decoder applies, with the same Reasons: it accepts exactly the
// events Decode can produce, so an event that passes survives AppendJSON and
// Decode unchanged. On top of the wire rules it rejects what the wire cannot
// carry: fields of another type set on ev, a number without its Has flag,
// strings that are not valid UTF-8, non-finite floats and unknown Kinds.
func (ev *Event) Validate(l Limits) error {
	if err := ev.validate(l); err != nil {
		return err
	}
	return nil
}

func (ev *Event) validate(l Limits) *Error {
	if ev.Type == TypeInvalid || ev.Type >= numTypes {
		return newError(ReasonUnknownType, "type", ev.Type.String())
	}
	if err := checkString(fEventID, ev.EventID, true, l.MaxFieldLen); err != nil {
		return err
	}
	if err := checkString(fPlayerID, ev.PlayerID, true, l.MaxFieldLen); err != nil {
		return err
	}
	if err := checkString(fSessionID, ev.SessionID, false, l.MaxFieldLen); err != nil {
		return err
	}
	if ev.Link != (TraceLink{}) && !ev.Link.IsValid() {
		// AppendJSON would leave it out: it would not survive the wire.
		return newError(ReasonInvalidField, "traceparent", "a trace link needs a non-zero trace ID and span ID")
	}
	if err := ev.validateAttributes(l); err != nil {
		return err
	}
	var own [numFields]bool
	for _, tf := range typeFields[ev.Type] {
		own[tf.f] = true
		if err := ev.validateField(tf, l); err != nil {
			return err
		}
	}
	// Fields of other types would be dropped by AppendJSON: setting one is a
	// bug in the producer, not something to lose silently.
	for f := fAuthMethod; f < numFields; f++ {
		if !own[f] && ev.isSet(f) {
			return newError(ReasonInvalidField, fieldNames[f], "not a field of "+ev.Type.String())
		}
	}
	return nil
}

func (ev *Event) validateField(tf typeField, l Limits) *Error {
	name := fieldNames[tf.f]
	switch tf.f {
	case fWaitSeconds:
		return checkFloat(name, ev.WaitSeconds, ev.HasWait)
	case fTotalSizeMB:
		return checkFloat(name, ev.TotalSizeMB, ev.HasTotalSizeMB)
	case fAssetsLoaded:
		if !ev.HasAssetsLoaded && ev.AssetsLoaded != 0 {
			return newError(ReasonInvalidField, name, "set without HasAssetsLoaded")
		}
		if ev.AssetsLoaded < 0 {
			return newError(ReasonInvalidField, name, "must not be negative")
		}
	case fScore:
		if !ev.HasScore && ev.Score != 0 {
			return newError(ReasonInvalidField, name, "set without HasScore")
		}
	default:
		return checkString(tf.f, *stringField(ev, tf.f), tf.required, l.MaxFieldLen)
	}
	return nil
}

func (ev *Event) isSet(f field) bool {
	switch f {
	case fWaitSeconds:
		return ev.HasWait || ev.WaitSeconds != 0
	case fTotalSizeMB:
		return ev.HasTotalSizeMB || ev.TotalSizeMB != 0
	case fAssetsLoaded:
		return ev.HasAssetsLoaded || ev.AssetsLoaded != 0
	case fScore:
		return ev.HasScore || ev.Score != 0
	}
	if p := stringField(ev, f); p != nil {
		return *p != ""
	}
	return false
}

func (ev *Event) validateAttributes(l Limits) *Error {
	if len(ev.Attributes) > l.MaxAttributes {
		return newError(ReasonTooManyAttrs, "attributes", "more than "+strconv.Itoa(l.MaxAttributes)+" attributes")
	}
	for i, a := range ev.Attributes {
		switch {
		case a.Key == "":
			return newError(ReasonInvalidField, "attributes", "empty attribute key")
		case len(a.Key) > l.MaxAttrKeyLen:
			return tooLong("attributes", len(a.Key), l.MaxAttrKeyLen)
		case !utf8.ValidString(a.Key):
			return newError(ReasonInvalidField, "attributes", "attribute key is not valid UTF-8")
		}
		for _, b := range ev.Attributes[:i] {
			if b.Key == a.Key {
				return newError(ReasonInvalidField, "attributes", "duplicate key "+strconv.Quote(a.Key))
			}
		}
		name := "attributes." + a.Key
		switch a.Value.Kind {
		case KindString:
			if len(a.Value.Str) > l.MaxAttrValueLen {
				return tooLong(name, len(a.Value.Str), l.MaxAttrValueLen)
			}
			if !utf8.ValidString(a.Value.Str) {
				return newError(ReasonInvalidField, name, "not valid UTF-8")
			}
		case KindInt, KindBool:
		case KindFloat:
			if math.IsNaN(a.Value.Float) || math.IsInf(a.Value.Float, 0) {
				return newError(ReasonInvalidField, name, "number out of range")
			}
		default:
			return newError(ReasonInvalidField, name, "must be a string, number or boolean")
		}
	}
	return nil
}

func checkString(f field, s string, required bool, limit int) *Error {
	switch {
	case s == "" && required:
		return newError(ReasonMissingField, fieldNames[f], "")
	case len(s) > limit:
		return tooLong(fieldNames[f], len(s), limit)
	case !utf8.ValidString(s):
		return newError(ReasonInvalidField, fieldNames[f], "not valid UTF-8")
	}
	return nil
}

func checkFloat(name string, v float64, has bool) *Error {
	switch {
	case !has && v != 0:
		return newError(ReasonInvalidField, name, "set without its Has flag")
	case math.IsNaN(v) || math.IsInf(v, 0):
		return newError(ReasonInvalidField, name, "number out of range")
	case v < 0:
		return newError(ReasonInvalidField, name, "must not be negative")
	}
	return nil
}

// Equal reports whether ev and o carry the same event: the same fields, and
// attributes with the same keys, order and values. A nil and an empty
// Attributes are equal, and only the field of a Value named by its Kind is
// compared.
func (ev *Event) Equal(o *Event) bool {
	if ev.Type != o.Type || ev.EventID != o.EventID || ev.PlayerID != o.PlayerID ||
		ev.SessionID != o.SessionID || ev.TS != o.TS ||
		ev.AuthMethod != o.AuthMethod || ev.ClientVersion != o.ClientVersion || ev.Platform != o.Platform ||
		ev.GameMode != o.GameMode || ev.LobbyID != o.LobbyID ||
		ev.WaitSeconds != o.WaitSeconds || ev.HasWait != o.HasWait ||
		ev.Reason != o.Reason || ev.LoadingType != o.LoadingType ||
		ev.AssetsLoaded != o.AssetsLoaded || ev.HasAssetsLoaded != o.HasAssetsLoaded ||
		ev.TotalSizeMB != o.TotalSizeMB || ev.HasTotalSizeMB != o.HasTotalSizeMB ||
		ev.ServerID != o.ServerID || ev.Map != o.Map ||
		ev.Result != o.Result || ev.Score != o.Score || ev.HasScore != o.HasScore ||
		ev.Link != o.Link || len(ev.Attributes) != len(o.Attributes) {
		return false
	}
	for i, x := range ev.Attributes {
		y := o.Attributes[i]
		if x.Key != y.Key || !x.Value.Equal(y.Value) {
			return false
		}
	}
	return true
}

// Equal reports whether v and o have the same Kind and the same value in the
// field that Kind names.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case KindString:
		return v.Str == o.Str
	case KindInt:
		return v.Int == o.Int
	case KindFloat:
		return v.Float == o.Float
	case KindBool:
		return v.Bool == o.Bool
	}
	return true
}
