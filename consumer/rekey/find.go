package rekey

import (
	"errors"
	"fmt"

	"github.com/sessiontrace/sessiontrace/schema"
)

// Finder finds the player a record of a source topic belongs to (the
// topic, because services publishing to topics of their own may use shapes
// of their own). Find is called from Run's one goroutine, never
// concurrently; it must not keep key or value after it returns. Every error means the record has no player that can be found: it
// goes to the dead-letter topic, with the reason of an *Unfound or a
// *schema.Error in the error chain (ReasonNotFound otherwise).
//
// The v1 contract is one Finder (NewV1); a mapping of foreign event shapes is
// another.
type Finder interface {
	Find(topic string, key, value []byte) (player string, err error)
}

// ReasonNotFound is the dead-letter reason of a Find error that carries none.
const ReasonNotFound = "player_not_found"

// Unfound says why a record's player cannot be found. Reason is low
// cardinality (a metric label and the dead-letter reason header); Detail is
// for people.
type Unfound struct {
	Reason string
	Detail string
}

// Error formats u as "rekey: <reason>: <detail>".
func (u *Unfound) Error() string {
	if u.Detail == "" {
		return "rekey: " + u.Reason
	}
	return "rekey: " + u.Reason + ": " + u.Detail
}

// reasonOf returns the dead-letter reason and detail of a Find error.
func reasonOf(err error) (reason, detail string) {
	var u *Unfound
	if errors.As(err, &u) {
		return u.Reason, u.Detail
	}
	var se *schema.Error
	if errors.As(err, &se) {
		detail := se.Detail
		if se.Field != "" {
			detail = fmt.Sprintf("%s: %s", se.Field, se.Detail)
		}
		return string(se.Reason), detail
	}
	return ReasonNotFound, err.Error()
}

// V1 finds the player of a v1 lifecycle event: its player_id, after the
// whole event is decoded and validated under the decoder's limits, so that
// the output holds only records the consumer can trace. The record key is
// ignored: rekey exists for records keyed by something else.
type V1 struct {
	dec *schema.Decoder
	ev  schema.Event
}

// NewV1 returns a V1 finder decoding under limits.
func NewV1(limits schema.Limits) (*V1, error) {
	dec, err := schema.NewDecoder(limits)
	if err != nil {
		return nil, fmt.Errorf("rekey: v1 finder: %w", err)
	}
	return &V1{dec: dec}, nil
}

// Find implements Finder.
func (f *V1) Find(_ string, _, value []byte) (string, error) {
	// A nil key: Decode checks a present key against player_id, and these
	// records are keyed by something else.
	if err := f.dec.Decode(nil, value, &f.ev); err != nil {
		return "", err
	}
	return f.ev.PlayerID, nil
}
