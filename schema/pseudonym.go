package schema

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
)

// MinPseudonymKeyLen is the shortest key NewPseudonymKey accepts: an
// HMAC-SHA256 key shorter than 16 bytes can be guessed.
const MinPseudonymKeyLen = 16

// PseudonymKey is the secret of the player pseudonyms. It never prints:
// String and GoString redact it.
type PseudonymKey struct {
	key []byte
}

// NewPseudonymKey returns a key holding a copy of b, or an error when b is
// shorter than MinPseudonymKeyLen. The error never quotes the key.
func NewPseudonymKey(b []byte) (*PseudonymKey, error) {
	if len(b) < MinPseudonymKeyLen {
		return nil, errors.New("pseudonym key: " + strconv.Itoa(len(b)) + " bytes, at least " + strconv.Itoa(MinPseudonymKeyLen) + " needed")
	}
	return &PseudonymKey{key: append([]byte(nil), b...)}, nil
}

// String redacts the key.
func (k *PseudonymKey) String() string { return "[redacted]" }

// GoString redacts the key in %#v.
func (k *PseudonymKey) GoString() string { return k.String() }

// Pseudonyms replaces player IDs with their pseudonyms: "p_" and the first
// 16 bytes of HMAC-SHA256(key, player ID) in hex. The same player always
// gets the same pseudonym under one key, so sessions, trace IDs and
// deduplication work as with the raw IDs. Not safe for concurrent use.
type Pseudonyms struct {
	mac  hash.Hash
	sum  []byte
	last struct{ id, pseudonym string } // consecutive records of a player
}

// NewPseudonyms returns pseudonyms under k.
func (k *PseudonymKey) NewPseudonyms() *Pseudonyms {
	return &Pseudonyms{mac: hmac.New(sha256.New, k.key), sum: make([]byte, 0, sha256.Size)}
}

// Of returns the pseudonym of player ID id.
func (p *Pseudonyms) Of(id string) string {
	if id == p.last.id && id != "" {
		return p.last.pseudonym
	}
	p.mac.Reset()
	p.mac.Write([]byte(id))
	p.sum = p.mac.Sum(p.sum[:0])
	var b [2 + 32]byte
	b[0], b[1] = 'p', '_'
	hex.Encode(b[2:], p.sum[:16])
	p.last.id, p.last.pseudonym = id, string(b[:])
	return p.last.pseudonym
}

// Pseudonymized returns a decoder that decodes with dec and replaces the
// player ID of every event with its pseudonym. The record key is compared
// with the raw ID inside dec; the key_mismatch detail then names the key's
// pseudonym, so no rejection quotes a raw player ID.
func (k *PseudonymKey) Pseudonymized(dec RecordDecoder) RecordDecoder {
	return &pseudonymized{dec: dec, ps: k.NewPseudonyms()}
}

type pseudonymized struct {
	dec RecordDecoder
	ps  *Pseudonyms
}

func (p *pseudonymized) DecodeRecord(r *Record, ev *Event) error {
	err := p.dec.DecodeRecord(r, ev)
	if err != nil {
		var se *Error
		if errors.As(err, &se) && se.Reason == ReasonKeyMismatch {
			return newError(ReasonKeyMismatch, se.Field, "record key, pseudonym "+strconv.Quote(p.ps.Of(string(r.Key)))+", differs from player_id")
		}
		return err
	}
	ev.PlayerID = p.ps.Of(ev.PlayerID)
	return nil
}
