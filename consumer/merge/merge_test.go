package merge

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// rec is a merged record as the test saw it: its topic, offset, position,
// and the frontier before it.
type rec struct {
	topic  int
	offset int64
	pos    int64
	before []int64
}

// simulate merges n random records of k topics (with offset gaps, as
// transaction markers leave) into a table in entries of random size,
// storing them in a log, and returns what it merged.
func simulate(t *testing.T, r *rand.Rand, k, n int) (*Table, []Logged, []rec) {
	t.Helper()
	start := make([]int64, k)
	for i := range start {
		start[i] = r.Int64N(1000)
	}
	tbl := NewTable(start)
	next := slices.Clone(start)
	var p Pending
	p.Entry.ID = [16]byte{1}
	var log []Logged
	var recs []rec
	seal := func() {
		if p.Empty() {
			return
		}
		e, idx := tbl.Seal(&p)
		b := e.Append(nil)
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("decode own entry: %v", err)
		}
		off := int64(len(log))
		log = append(log, Logged{Offset: off, Entry: d})
		tbl.Stored(idx, off)
	}
	for range n {
		topic := r.IntN(k)
		off := next[topic] + r.Int64N(3)
		before := slices.Clone(tbl.Frontier())
		pos, ok := tbl.Add(topic, off, &p)
		if !ok {
			t.Fatalf("record %d/%d refused", topic, off)
		}
		if want := Sum(before) - before[topic] + off; pos != want {
			t.Fatalf("position %d, want %d", pos, want)
		}
		if len(recs) > 0 && pos <= recs[len(recs)-1].pos {
			t.Fatalf("position %d after %d", pos, recs[len(recs)-1].pos)
		}
		recs = append(recs, rec{topic: topic, offset: off, pos: pos, before: before})
		next[topic] = off + 1
		if r.IntN(5) == 0 {
			seal()
		}
	}
	seal()
	if _, ok := tbl.Add(0, next[0]-1, &p); ok {
		t.Fatal("a record below the frontier was merged")
	}
	return tbl, log, recs
}

// TestPositionsMapBack checks, for random merges, that every position a
// commit can name (before a record, after the last) maps back to the
// frontier there, every record's position to the record, and that a plan
// from any record's position replays exactly the records from it on.
func TestPositionsMapBack(t *testing.T) {
	for seed := range 50 {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		k := 1 + r.IntN(4)
		tbl, log, recs := simulate(t, r, k, 1+r.IntN(300))
		for i, rc := range recs {
			f, ok := tbl.FrontierAt(rc.pos, nil)
			want := slices.Clone(rc.before)
			want[rc.topic] = rc.offset
			if !ok || !slices.Equal(f, want) {
				t.Fatalf("seed %d: frontier at record %d (pos %d) = %v %v, want %v", seed, i, rc.pos, f, ok, want)
			}
			topic, off, ok := tbl.Locate(rc.pos)
			if !ok || topic != rc.topic || off != rc.offset {
				t.Fatalf("seed %d: locate %d = %d/%d %v, want %d/%d", seed, rc.pos, topic, off, ok, rc.topic, rc.offset)
			}
			if _, ok := tbl.EntryAt(rc.pos); !ok {
				t.Fatalf("seed %d: no stored entry at %d", seed, rc.pos)
			}
			p, err := NewPlan(log, k, rc.pos)
			if err != nil {
				t.Fatalf("seed %d: plan at %d: %v", seed, rc.pos, err)
			}
			if !slices.Equal(p.Start, want) || !slices.Equal(p.End, tbl.Frontier()) {
				t.Fatalf("seed %d: plan at %d from %v to %v, want %v to %v", seed, rc.pos, p.Start, p.End, want, tbl.Frontier())
			}
			got := replay(p, recs)
			if !slices.EqualFunc(got, recs[i:], equalRec) {
				t.Fatalf("seed %d: plan at record %d replays %d records, want %d", seed, i, len(got), len(recs)-i)
			}
		}
		if tbl.Durable() != tbl.Position() {
			t.Fatalf("seed %d: durable %d, stored through %d", seed, tbl.Durable(), tbl.Position())
		}
		// Trimming keeps every position at or above the cut.
		cut := recs[len(recs)/2]
		tbl.Trim(cut.pos)
		for _, rc := range recs[len(recs)/2:] {
			if topic, off, ok := tbl.Locate(rc.pos); !ok || topic != rc.topic || off != rc.offset {
				t.Fatalf("seed %d: after trim at %d, locate %d = %d/%d %v", seed, cut.pos, rc.pos, topic, off, ok)
			}
		}
	}
}

// replay returns the records of recs a plan's runs name, in the plan's
// order, as a replaying owner would read them.
func replay(p *Plan, recs []rec) []rec {
	byTopic := map[int][]rec{}
	for _, rc := range recs {
		byTopic[rc.topic] = append(byTopic[rc.topic], rc)
	}
	var out []rec
	for _, run := range p.Runs {
		for _, rc := range byTopic[run.Topic] {
			if rc.offset >= run.First && rc.offset <= run.Last {
				out = append(out, rc)
			}
		}
	}
	return out
}

func equalRec(a, b rec) bool {
	return a.topic == b.topic && a.offset == b.offset && a.pos == b.pos && slices.Equal(a.before, b.before)
}

// TestStaleClaimIgnored checks that entries written under a claim after a
// newer claim (a previous owner still writing) are not replayed, and that a
// plan skips an entry that does not continue the frontier (one written
// after a lost write).
func TestStaleClaimIgnored(t *testing.T) {
	old, cur := [16]byte{1}, [16]byte{2}
	log := []Logged{
		{0, Entry{ID: old, Base: []int64{0, 0}, Runs: []Run{{0, 0, 4}, {1, 0, 2}}}},
		{1, Entry{ID: cur, Claim: true}},
		{2, Entry{ID: old, Base: []int64{5, 3}, Runs: []Run{{0, 5, 9}}}},
		{3, Entry{ID: cur, Base: []int64{5, 3}, Runs: []Run{{1, 3, 3}}}},
		{4, Entry{ID: cur, Base: []int64{9, 9}, Runs: []Run{{1, 9, 9}}}},
	}
	p, err := NewPlan(log, 2, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Run{{0, 0, 4}, {1, 0, 2}, {1, 3, 3}}
	if !slices.Equal(p.Runs, want) || p.Ignored != 1 || p.Honoured != 2 || p.Skipped != 1 {
		t.Fatalf("plan %+v, want runs %v, 1 ignored, 2 honoured, 1 skipped", p, want)
	}
	if !slices.Equal(p.End, []int64{5, 4}) {
		t.Fatalf("plan ends at %v", p.End)
	}
	if _, err := NewPlan(log, 2, 100); err == nil {
		t.Fatal("a plan from a position the log does not hold")
	}
}

// TestLostWriteRewritten loses random entries of random merges: the writer
// writes every entry again from the first lost one on (Unstored), as the
// worker does, and a plan read from the log, at every position, replays
// exactly the merged records.
func TestLostWriteRewritten(t *testing.T) {
	for seed := range 50 {
		r := rand.New(rand.NewPCG(uint64(seed), 9))
		k := 2 + r.IntN(3)
		tbl := NewTable(make([]int64, k))
		next := make([]int64, k)
		var p Pending
		p.Entry.ID = [16]byte{7}
		var log []Logged
		var recs []rec
		write := func(e Entry, idx int) {
			if r.IntN(4) == 0 {
				return // lost
			}
			d, err := Decode(e.Append(nil))
			if err != nil {
				t.Fatal(err)
			}
			d.ID = p.Entry.ID
			log = append(log, Logged{Offset: int64(len(log)), Entry: d})
			tbl.Stored(idx, int64(len(log)-1))
		}
		for i := range 200 {
			topic := r.IntN(k)
			before := slices.Clone(tbl.Frontier())
			pos, _ := tbl.Add(topic, next[topic], &p)
			recs = append(recs, rec{topic: topic, offset: next[topic], pos: pos, before: before})
			next[topic]++
			if r.IntN(6) == 0 || i == 199 {
				e, idx := tbl.Seal(&p)
				e.ID = p.Entry.ID
				write(e, idx)
			}
			if r.IntN(10) == 0 || i == 199 {
				// The writer notices lost writes now and then, and at the end
				// repairs until nothing is lost.
				for {
					es, idxs := tbl.Unstored()
					if len(es) == 0 {
						break
					}
					for j := range es {
						write(es[j], idxs[j])
					}
					if i < 199 {
						break
					}
				}
			}
		}
		if tbl.Durable() != tbl.Position() {
			t.Fatalf("seed %d: durable %d, merged through %d", seed, tbl.Durable(), tbl.Position())
		}
		for i, rc := range recs {
			m, ok := tbl.EntryAt(rc.pos)
			if !ok {
				t.Fatalf("seed %d: no stored entry at %d", seed, rc.pos)
			}
			plan, err := NewPlan(log[m:], k, rc.pos)
			if err != nil {
				t.Fatalf("seed %d: plan at %d from log offset %d: %v", seed, rc.pos, m, err)
			}
			if got := replay(plan, recs); !slices.EqualFunc(got, recs[i:], equalRec) {
				t.Fatalf("seed %d: plan at record %d replays %d records, want %d", seed, i, len(got), len(recs)-i)
			}
		}
	}
}

// TestDecodeRejects checks malformed entries are errors, not panics or
// entries that go back.
func TestDecodeRejects(t *testing.T) {
	good := (&Entry{Base: []int64{3, 4}, Runs: []Run{{1, 4, 6}}}).Append(nil)
	back := (&Entry{Base: []int64{3, 4}, Runs: []Run{{1, 2, 6}}}).Append(nil)
	claim := (&Entry{Claim: true, Base: []int64{1}, Runs: []Run{{0, 1, 1}}}).Append(nil)
	for name, b := range map[string][]byte{
		"empty": nil, "magic": []byte("nope0123456789012345678"), "truncated": good[:len(good)-1],
		"trailing": append(slices.Clone(good), 0), "back": back, "claim with runs": claim,
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add((&Entry{Base: []int64{3, 4}, Runs: []Run{{1, 4, 6}, {0, 3, 3}}}).Append(nil))
	f.Add((&Entry{Claim: true, ID: [16]byte{9}}).Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(e.Append(nil))
		if err != nil || again.Claim != e.Claim || !slices.Equal(again.Base, e.Base) || !slices.Equal(again.Runs, e.Runs) {
			t.Fatalf("round trip: %+v, %v, want %+v", again, err, e)
		}
	})
}
