package lifecycle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"

	S "github.com/sessiontrace/sessiontrace/schema"
)

// heldFixture is a Machine with a session open and a reorder window holding
// events that set every field of schema.Event, attributes of every kind and
// a trace link among them.
func heldFixture(t testing.TB) (*Machine, *Reorder) {
	t.Helper()
	m := newMachine(t, snapshotConfig)
	login := &S.Event{Type: S.SessionLogin, EventID: "e0", PlayerID: "p1", TS: sec(1), AuthMethod: "password", ClientVersion: "1.2.3", Platform: "pc"}
	m.Apply(login, 10, nil)
	r := &Reorder{Latest: sec(9), Cut: 11, CutStreamTime: sec(1), CutWindowStart: 10, CutLow: 10, Applied: 13}
	every := S.Event{
		Type: S.GameLeave, EventID: "e1", PlayerID: "p1", SessionID: "s1", TS: sec(3),
		AuthMethod: "a", ClientVersion: "v", Platform: "pl", GameMode: "ranked", LobbyID: "l1",
		WaitSeconds: 1.5, HasWait: true, Reason: "quit", LoadingType: "initial",
		AssetsLoaded: -7, HasAssetsLoaded: true, TotalSizeMB: 0.25, HasTotalSizeMB: true,
		ServerID: "srv", Map: "dust", Result: "win", Score: 42, HasScore: true,
		Attributes: []S.Attr{
			{Key: "region", Value: S.Value{Kind: S.KindString, Str: "eu"}},
			{Key: "shard", Value: S.Value{Kind: S.KindInt, Int: -3}},
			{Key: "ratio", Value: S.Value{Kind: S.KindFloat, Float: 0.1}},
			{Key: "bot", Value: S.Value{Kind: S.KindBool, Bool: true}},
		},
		Link:      S.TraceLink{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Flags: 1},
		LinkError: "",
	}
	bad := S.Event{Type: S.MatchmakingEnter, EventID: "e2", PlayerID: "p2", TS: sec(2), GameMode: "casual", LinkError: "traceparent: bad version"}
	for _, ev := range []*S.Event{&every, &bad} {
		m.Seen(ev.EventID, 0) // the partition remembers held IDs before holding them
	}
	r.Held = []HeldEvent{{Event: every, Offset: 11, WindowStart: 10}, {Event: bad, Offset: 14, WindowStart: 10}}
	return m, r
}

// TestSnapshotReorder: a snapshot taken with events held gives back the
// held events (every field, attributes and trace link included) and the
// caller's positions, as version 3; one without them is version 2.
func TestSnapshotReorder(t *testing.T) {
	if n := reflect.TypeFor[S.Event]().NumField(); n != heldEventFields {
		t.Fatalf("schema.Event has %d fields, the held-event encoding writes %d: encode the new ones", n, heldEventFields)
	}
	m, r := heldFixture(t)
	var snap bytes.Buffer
	if _, _, err := m.WriteSnapshotReorder(&snap, r); err != nil {
		t.Fatal(err)
	}
	if v := snap.Bytes()[len(snapshotMagic)]; v != snapshotVersion {
		t.Fatalf("a snapshot with held events is version %d, want %d", v, snapshotVersion)
	}
	info, err := InspectSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil || info.Held != 2 || info.Version != snapshotVersion {
		t.Fatalf("InspectSnapshot = %+v, %v; want version %d with 2 held events", info, err, snapshotVersion)
	}
	fresh := newMachine(t, snapshotConfig)
	var got Reorder
	if _, err := fresh.ReadSnapshotReorder(bytes.NewReader(snap.Bytes()), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, r) {
		t.Fatalf("ReadSnapshotReorder gave\n%+v\nwant\n%+v", got, *r)
	}
	// Written again from what was read: byte for byte the same.
	var again bytes.Buffer
	if _, _, err := fresh.WriteSnapshotReorder(&again, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), snap.Bytes()) {
		t.Fatal("a restored snapshot with held events written again differs")
	}

	// Nothing held: version 2, which builds reading versions 1 and 2 load;
	// and into is reset.
	var plain bytes.Buffer
	if _, _, err := m.WriteSnapshotReorder(&plain, &Reorder{Latest: 5}); err != nil {
		t.Fatal(err)
	}
	var direct bytes.Buffer
	if _, _, err := m.WriteSnapshot(&direct); err != nil {
		t.Fatal(err)
	}
	if v := plain.Bytes()[len(snapshotMagic)]; v != snapshotV2 || !bytes.Equal(plain.Bytes(), direct.Bytes()) {
		t.Fatalf("a snapshot with nothing held is version %d (want %d) or differs from WriteSnapshot's", v, snapshotV2)
	}
	if _, err := fresh.ReadSnapshotReorder(bytes.NewReader(plain.Bytes()), &got); err != nil || !reflect.DeepEqual(got, Reorder{}) {
		t.Fatalf("ReadSnapshotReorder of version 2 = %+v, %v; want an empty window", got, err)
	}
}

// TestSnapshotReorderRefused: a snapshot holding events is refused, with
// the machine unchanged, by a reader that does not restore them (as a build
// that reads only versions 1 and 2 refuses version 3: a version mismatch,
// never a state without the held events); corrupt held records fail the
// checksum or the parse.
func TestSnapshotReorderRefused(t *testing.T) {
	m, r := heldFixture(t)
	var snap bytes.Buffer
	if _, _, err := m.WriteSnapshotReorder(&snap, r); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()
	fresh := newMachine(t, snapshotConfig)
	var before bytes.Buffer
	if _, _, err := fresh.WriteSnapshot(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.ReadSnapshot(bytes.NewReader(good)); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("ReadSnapshot of a snapshot with held events = %v, want ErrSnapshotMismatch", err)
	}
	var after bytes.Buffer
	if _, _, err := fresh.WriteSnapshot(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatal("a refused snapshot changed the machine")
	}
	// What a build reading versions 1 and 2 sees: an intact snapshot of
	// another version.
	if v := good[len(snapshotMagic)]; v == snapshotV1 || v == snapshotV2 {
		t.Fatalf("a snapshot with held events carries version %d, which older builds would load", v)
	}
	reseal := func(b []byte) []byte {
		sum := sha256.Sum256(b)
		return append(b, sum[:]...)
	}
	body := good[:len(good)-sha256.Size]
	for name, b := range map[string][]byte{
		// Version 3 with the window section cut off, resealed: the parse
		// fails, it is not read as version 2.
		"no window section": reseal(bytes.Clone(body[:len(body)-1])),
		"flipped":           append(append(bytes.Clone(body[:len(body)-3]), body[len(body)-3]^0x40), good[len(body)-2:]...),
	} {
		t.Run(name, func(t *testing.T) {
			var into Reorder
			if _, err := fresh.ReadSnapshotReorder(bytes.NewReader(b), &into); !errors.Is(err, ErrSnapshotCorrupt) {
				t.Fatalf("ReadSnapshotReorder = %v, want ErrSnapshotCorrupt", err)
			}
			if !reflect.DeepEqual(into, Reorder{}) {
				t.Fatalf("a refused snapshot filled the window: %+v", into)
			}
		})
	}
}

// BenchmarkSnapshotHeld writes and reads a snapshot whose reorder window
// holds 10,000 events like the simulator's (ids, a player, a session, two
// attributes), reporting the bytes each held event adds.
func BenchmarkSnapshotHeld(b *testing.B) {
	const n = 10_000
	m := newMachine(b)
	r := &Reorder{Latest: sec(n), CutLow: -1, Applied: -1}
	for i := range n {
		r.Held = append(r.Held, HeldEvent{Offset: int64(i), WindowStart: 0, Event: S.Event{
			Type: S.MatchmakingEnter, EventID: fmt.Sprintf("evt-%012d", i), PlayerID: fmt.Sprintf("player-%010d", i*7919%9_999_999_999),
			SessionID: fmt.Sprintf("sess-%08d", i), TS: sec(float64(i) / 1000), GameMode: "ranked",
			Attributes: []S.Attr{{Key: "region", Value: S.Value{Kind: S.KindString, Str: "eu-west"}}, {Key: "shard", Value: S.Value{Kind: S.KindInt, Int: int64(i % 16)}}},
		}})
	}
	var empty, snap bytes.Buffer
	if _, _, err := m.WriteSnapshot(&empty); err != nil {
		b.Fatal(err)
	}
	if _, _, err := m.WriteSnapshotReorder(&snap, r); err != nil {
		b.Fatal(err)
	}
	perEvent := float64(snap.Len()-empty.Len()) / n
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.WriteSnapshotReorder(discard{}, r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(perEvent, "bytes/held")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/held")
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		fresh := newMachine(b)
		var into Reorder
		for b.Loop() {
			if _, err := fresh.ReadSnapshotReorder(bytes.NewReader(snap.Bytes()), &into); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/held")
	})
}
