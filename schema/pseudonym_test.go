package schema_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/schema"
)

func TestPseudonyms(t *testing.T) {
	k1, err := schema.NewPseudonymKey([]byte("key-one-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := schema.NewPseudonymKey([]byte("key-two-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := k1.NewPseudonyms(), k1.NewPseudonyms()
	if a.Of("p-1") != b.Of("p-1") || a.Of("p-1") == a.Of("p-2") || a.Of("p-1") == k2.NewPseudonyms().Of("p-1") {
		t.Errorf("pseudonyms not deterministic per key: %s %s %s", a.Of("p-1"), a.Of("p-2"), k2.NewPseudonyms().Of("p-1"))
	}
	// Fixed across releases: trace IDs derive from the pseudonym.
	if got := a.Of("p-1"); got != "p_df61bc4f9d913b507c1c5e6b1f446317" {
		t.Errorf("pseudonym %q", got)
	}
	for _, s := range []string{k1.String(), fmt.Sprintf("%v %+v %#v %s", k1, k1, k1, k1)} {
		if strings.Contains(s, "key-one") {
			t.Errorf("the key prints: %s", s)
		}
	}
	if _, err := schema.NewPseudonymKey([]byte("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short key: %v", err)
	}
}

func TestPseudonymizedDecoder(t *testing.T) {
	k, err := schema.NewPseudonymKey([]byte("key-one-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	d := k.Pseudonymized(v1)
	want := k.NewPseudonyms()
	var ev schema.Event
	if err := d.DecodeRecord(&schema.Record{Key: []byte("p1"), Value: []byte(rec(""))}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.PlayerID != want.Of("p1") {
		t.Errorf("player %q, want the pseudonym %q", ev.PlayerID, want.Of("p1"))
	}
	err = d.DecodeRecord(&schema.Record{Key: []byte("someone"), Value: []byte(rec(""))}, &ev)
	var se *schema.Error
	if !errors.As(err, &se) || se.Reason != schema.ReasonKeyMismatch {
		t.Fatalf("error %v, want key_mismatch", err)
	}
	if strings.Contains(se.Error(), "someone") || !strings.Contains(se.Error(), want.Of("someone")) {
		t.Errorf("key_mismatch detail %q quotes the raw key or lacks its pseudonym", se.Error())
	}
}
