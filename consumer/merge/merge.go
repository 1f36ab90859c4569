// Package merge is the bookkeeping of co-partitioned topics merged into one
// stream per partition number, without Kafka: the positions of the merged
// stream, the merge log's entries that record the order records were merged
// in, and the plan a new owner replays from them.
//
// # Positions
//
// The merged stream of partition n of topics 0..K-1 has one position space,
// so that everything downstream (the state machine, the ledger, snapshots,
// the commit rule) keeps working on int64 offsets. The frontier F is, per
// topic, the offset after the last record of that topic merged so far. A
// record of topic t at offset o merged at frontier F gets the position
//
//	Σ_{u≠t} F_u + o
//
// and the frontier then holds o+1 for t, so the position after it is the
// sum of the new frontier. Positions increase strictly along the merged
// stream, and they are a function of the merge order and of the offsets
// alone: a new owner that replays the same order from the same frontier
// gives every record the same position. A position maps back to a frontier
// (the per-topic offsets to fetch from, to commit) through the runs that
// produced it: the run of topic t that covers position x fixes every other
// topic's offset, and t's is x minus their sum.
//
// # The merge log
//
// Which record came before which is decided by arrival (and the record
// timestamps of what arrived together), so it is recorded: each batch of
// decisions is one Entry, written to the merge topic's partition n before
// any commit depends on it. An entry holds the frontier before it and its
// runs (consecutive records of one topic). A new owner first appends a
// claim, then reads the log up to that claim and replays the runs from the
// position its commit names; a previous owner that still writes (a zombie)
// writes under its own claim, and entries written after a later claim under
// another are ignored, so every reader honours the same entries.
package merge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Run is consecutive merged records of one topic: the records of topic
// Topic with offsets First through Last.
type Run struct {
	Topic       int
	First, Last int64
}

// Entry is one record of the merge log: a claim (Claim set, no runs), or
// runs merged under the claim named by ID, starting at frontier Base.
type Entry struct {
	ID    [16]byte
	Claim bool
	Base  []int64
	Runs  []Run
}

const (
	magic      = "stm1"
	kindClaim  = 'C'
	kindRuns   = 'R'
	maxEntryK  = 64
	maxRunsLen = 1 << 20
)

// ErrCorrupt is returned (wrapped) by Decode for bytes that are not an
// entry.
var ErrCorrupt = errors.New("merge log entry corrupt")

// Append appends e's encoding to b.
func (e *Entry) Append(b []byte) []byte {
	b = append(b, magic...)
	if e.Claim {
		b = append(b, kindClaim)
	} else {
		b = append(b, kindRuns)
	}
	b = append(b, e.ID[:]...)
	b = binary.AppendUvarint(b, uint64(len(e.Base)))
	for _, f := range e.Base {
		b = binary.AppendVarint(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Runs)))
	for _, r := range e.Runs {
		b = binary.AppendUvarint(b, uint64(r.Topic))
		b = binary.AppendVarint(b, r.First)
		b = binary.AppendUvarint(b, uint64(r.Last-r.First))
	}
	return b
}

// Decode reads an entry written by Append, checking it is well formed:
// runs name topics of the base, never go back, and a claim has none.
func Decode(b []byte) (Entry, error) {
	var e Entry
	if len(b) < len(magic)+1+len(e.ID) || string(b[:len(magic)]) != magic {
		return e, fmt.Errorf("%w: no header", ErrCorrupt)
	}
	kind := b[len(magic)]
	if kind != kindClaim && kind != kindRuns {
		return e, fmt.Errorf("%w: kind %q", ErrCorrupt, kind)
	}
	e.Claim = kind == kindClaim
	b = b[len(magic)+1:]
	copy(e.ID[:], b)
	b = b[len(e.ID):]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	sv := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	k, ok := uv()
	if !ok || k > maxEntryK {
		return e, fmt.Errorf("%w: topic count", ErrCorrupt)
	}
	e.Base = make([]int64, k)
	for i := range e.Base {
		if e.Base[i], ok = sv(); !ok || e.Base[i] < 0 {
			return e, fmt.Errorf("%w: base offset", ErrCorrupt)
		}
	}
	n, ok := uv()
	if !ok || n > maxRunsLen || n > uint64(len(b)) || e.Claim && n > 0 {
		return e, fmt.Errorf("%w: run count", ErrCorrupt)
	}
	front := slices.Clone(e.Base)
	if n > 0 {
		e.Runs = make([]Run, n)
	}
	for i := range e.Runs {
		t, ok1 := uv()
		first, ok2 := sv()
		span, ok3 := uv()
		if !ok1 || !ok2 || !ok3 || t >= k || span > 1<<62 {
			return e, fmt.Errorf("%w: run %d", ErrCorrupt, i)
		}
		r := Run{Topic: int(t), First: first, Last: first + int64(span)}
		if r.First < front[r.Topic] || r.Last < r.First {
			return e, fmt.Errorf("%w: run %d goes back", ErrCorrupt, i)
		}
		front[r.Topic] = r.Last + 1
		e.Runs[i] = r
	}
	if len(b) != 0 {
		return e, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return e, nil
}

// Sum returns the position of frontier f: the sum of its offsets.
func Sum(f []int64) int64 {
	var s int64
	for _, o := range f {
		s += o
	}
	return s
}

// span is a run with where it sits in the position space.
type span struct {
	Run
	// before is the position of the first record minus its offset: the
	// sum of the other topics' offsets while the run lasts.
	before int64
	entry  int // index into Table.entries
}

// from returns the position of the run's first record, end the position
// after its last.
func (s *span) from() int64 { return s.before + s.First }
func (s *span) end() int64  { return s.before + s.Last + 1 }

// tableEntry is an entry the table holds: where the merge log stored it
// (-1 until the write is acknowledged) and the frontier before it.
type tableEntry struct {
	offset int64
	base   []int64
	firstSpan,
	spans int
}

// Table maps positions of one partition's merged stream back to frontiers
// and records, for the runs from some position on: the merged runs of this
// owner and those it replayed. It is not safe for concurrent use.
type Table struct {
	k       int
	front   []int64 // the frontier after the last run
	base    []int64 // the frontier before the first span held
	spans   []span
	entries []tableEntry
	dropped int // entries trimmed from the front
	// spanDropped counts the spans trimmed with them: tableEntry.firstSpan
	// counts from the first span ever held.
	spanDropped int
}

// NewTable returns a table whose merged stream starts at frontier f.
func NewTable(f []int64) *Table {
	return &Table{k: len(f), front: slices.Clone(f), base: slices.Clone(f)}
}

// Frontier returns the frontier after the last record merged (the caller
// must not keep it).
func (t *Table) Frontier() []int64 { return t.front }

// Position returns the position after the last record merged.
func (t *Table) Position() int64 { return Sum(t.front) }

// Add merges the record of topic at offset into the pending entry and
// returns its position, and false for a record below the frontier (read
// again after an offset reset), which is not merged.
func (t *Table) Add(topic int, offset int64, p *Pending) (int64, bool) {
	if offset < t.front[topic] {
		return 0, false
	}
	if p.Entry.Base == nil {
		p.Entry.Base = slices.Clone(t.front)
	}
	before := Sum(t.front) - t.front[topic]
	if n := len(p.Entry.Runs); n > 0 && p.Entry.Runs[n-1].Topic == topic {
		p.Entry.Runs[n-1].Last = offset
	} else {
		p.Entry.Runs = append(p.Entry.Runs, Run{Topic: topic, First: offset, Last: offset})
	}
	t.front[topic] = offset + 1
	return before + offset, true
}

// Pending is an entry being built: runs merged and not yet in the table.
type Pending struct {
	Entry Entry
}

// Empty reports whether p holds no run.
func (p *Pending) Empty() bool { return len(p.Entry.Runs) == 0 }

// Seal adds the entry p built to the table, with no merge log offset yet,
// resets p, and returns the entry (the caller encodes it) and its index,
// for Stored.
func (t *Table) Seal(p *Pending) (Entry, int) {
	e := p.Entry
	p.Entry = Entry{ID: e.ID}
	return e, t.push(e, -1)
}

// push adds e's runs to the table; e.Base must be the table's frontier
// before them.
func (t *Table) push(e Entry, offset int64) int {
	idx := t.dropped + len(t.entries)
	te := tableEntry{offset: offset, base: slices.Clone(e.Base), firstSpan: t.spanDropped + len(t.spans)}
	front := slices.Clone(e.Base)
	for _, r := range e.Runs {
		t.spans = append(t.spans, span{Run: r, before: Sum(front) - front[r.Topic], entry: idx})
		front[r.Topic] = r.Last + 1
	}
	te.spans = len(e.Runs)
	t.entries = append(t.entries, te)
	copy(t.front, front)
	return idx
}

// Stored records that the merge log stored entry idx (Seal's) at offset.
func (t *Table) Stored(idx int, offset int64) {
	if i := idx - t.dropped; i >= 0 && i < len(t.entries) {
		t.entries[i].offset = offset
	}
}

// Unstored returns the entries from the first one the merge log has not
// stored on, and their indices (for Stored), forgetting where any of them
// was stored: the writer writes them all again, in order, after a write
// was lost, and a reader follows the copies that continue the frontier
// (NewPlan), so only the new copies' offsets may be named.
func (t *Table) Unstored() ([]Entry, []int) {
	first := -1
	for i, e := range t.entries {
		if e.offset < 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, nil
	}
	var out []Entry
	var idxs []int
	for i := first; i < len(t.entries); i++ {
		te := &t.entries[i]
		te.offset = -1
		e := Entry{Base: slices.Clone(te.base), Runs: make([]Run, te.spans)}
		for j := range te.spans {
			e.Runs[j] = t.spans[te.firstSpan-t.spanDropped+j].Run
		}
		out, idxs = append(out, e), append(idxs, t.dropped+i)
	}
	return out, idxs
}

// Durable returns the position up to which every entry is stored: a new
// owner reading the merge log replays the same order up to there.
func (t *Table) Durable() int64 {
	end := Sum(t.base)
	for _, e := range t.entries {
		if e.offset < 0 {
			break
		}
		if e.spans > 0 {
			s := &t.spans[e.firstSpan+e.spans-1-t.spanDrop()]
			end = s.end()
		}
	}
	return end
}

// spanDrop returns how many spans were trimmed along with entries.
func (t *Table) spanDrop() int { return t.spanDropped }

// find returns the index (into spans) of the first span covering position
// x (from() <= x <= end()), or -1.
func (t *Table) find(x int64) int {
	i, _ := slices.BinarySearchFunc(t.spans, x, func(s span, x int64) int {
		if s.end() < x {
			return -1
		}
		return 1
	})
	if i < len(t.spans) && t.spans[i].from() <= x {
		return i
	}
	return -1
}

// FrontierAt returns the frontier at position x (the offsets a new owner
// fetches from, and the commit's), into dst; false when the table holds no
// run covering x and x is not its start.
func (t *Table) FrontierAt(x int64, dst []int64) ([]int64, bool) {
	dst = dst[:0]
	if len(t.spans) == 0 || x < t.spans[0].from() {
		if x == Sum(t.base) {
			return append(dst, t.base...), true
		}
		return dst, false
	}
	i := t.find(x)
	if i < 0 {
		return dst, false
	}
	s := &t.spans[i]
	dst = append(dst, t.frontierBefore(i)...)
	dst[s.Topic] = x - s.before
	return dst, true
}

// frontierBefore returns the frontier before span i (a fresh slice).
func (t *Table) frontierBefore(i int) []int64 {
	s := &t.spans[i]
	e := &t.entries[s.entry-t.dropped]
	f := slices.Clone(e.base)
	for j := e.firstSpan - t.spanDrop(); j < i; j++ {
		f[t.spans[j].Topic] = t.spans[j].Last + 1
	}
	return f
}

// Locate returns the topic and offset of the record at position x, and
// false when the table holds none there.
func (t *Table) Locate(x int64) (topic int, offset int64, ok bool) {
	i := t.find(x)
	if i < 0 || x == t.spans[i].end() && (i+1 >= len(t.spans) || t.spans[i+1].from() > x) {
		return 0, 0, false
	}
	if x == t.spans[i].end() {
		i++
	}
	s := &t.spans[i]
	return s.Topic, x - s.before, true
}

// EntryAt returns the merge log offset of the first stored entry whose runs
// cover position x: where a new owner starting at x begins reading. False
// when no entry covers x or it is not stored yet.
func (t *Table) EntryAt(x int64) (int64, bool) {
	i := t.find(x)
	if i < 0 {
		return 0, false
	}
	e := t.entries[t.spans[i].entry-t.dropped]
	return e.offset, e.offset >= 0
}

// Trim forgets the entries whose runs all end below position x: no commit
// will name a position below x again.
func (t *Table) Trim(x int64) {
	n := 0
	for n < len(t.entries)-1 {
		e := &t.entries[n]
		if e.offset < 0 || e.spans > 0 && t.spans[e.firstSpan+e.spans-1-t.spanDrop()].end() >= x {
			break
		}
		n++
	}
	if n == 0 {
		return
	}
	next := t.entries[n]
	cut := next.firstSpan - t.spanDrop()
	t.spans = slices.Delete(t.spans, 0, cut)
	t.spanDropped += cut
	t.base = slices.Clone(next.base)
	t.entries = slices.Delete(t.entries, 0, n)
	t.dropped += n
}

// Plan is what a new owner replays: the runs of the merge log from its
// start position on, in merge order, and the table they make.
type Plan struct {
	// Start is the frontier to fetch from; End the frontier after the last
	// run, where the group's fetching starts.
	Start, End []int64
	// Runs are replayed in order; the first may start inside a logged run.
	Runs []Run
	// Table holds the runs, the owner's table from then on.
	Table *Table
	// Honoured counts the entries the plan follows; Ignored those written
	// under a stale claim; Skipped those of the current claim that do not
	// continue the frontier (a copy written before a lost write was written
	// again: the writer re-writes every entry from the lost one on, so the
	// copies that continue come later); Stopped is why the plan ends before
	// the log
	// does (an entry that does not continue the frontier), "" when it
	// does not.
	Honoured, Ignored, Skipped int
	Stopped                    string
}

// Logged is an entry read back with its merge log offset.
type Logged struct {
	Offset int64
	Entry  Entry
}

// ErrNotCovered is returned (wrapped) by NewPlan when the log does not hold
// the start position.
var ErrNotCovered = errors.New("the merge log does not cover the position")

// NewPlan builds the plan of the entries read from the log (in offset
// order, up to this owner's claim) for k topics, starting at position x, or
// at the first entry's base when x is negative.
func NewPlan(log []Logged, k int, x int64) (*Plan, error) {
	p := &Plan{}
	var claim [16]byte
	var tbl *Table
	for i, l := range log {
		e := l.Entry
		if i == 0 {
			claim = e.ID
		}
		if e.Claim {
			claim = e.ID
			continue
		}
		if e.ID != claim {
			p.Ignored++
			continue
		}
		if len(e.Base) != k {
			p.Stopped = fmt.Sprintf("entry at %d has %d topics, not %d", l.Offset, len(e.Base), k)
			break
		}
		if tbl == nil {
			tbl = NewTable(e.Base)
		} else if !slices.Equal(e.Base, tbl.front) {
			p.Skipped++
			continue
		}
		tbl.push(e, l.Offset)
		p.Honoured++
	}
	if tbl == nil {
		return p, fmt.Errorf("%w %d: no entry", ErrNotCovered, x)
	}
	if x < 0 {
		x = Sum(tbl.base)
	}
	start, ok := tbl.FrontierAt(x, nil)
	if !ok {
		return p, fmt.Errorf("%w %d: it holds %d to %d", ErrNotCovered, x, Sum(tbl.base), tbl.Position())
	}
	p.Start, p.End, p.Table = start, slices.Clone(tbl.front), tbl
	cur := slices.Clone(start)
	for _, s := range tbl.spans {
		r := s.Run
		r.First = max(r.First, cur[r.Topic])
		if r.First > r.Last {
			continue
		}
		// A run wholly before x for its topic was replayed before x.
		if s.end() <= x {
			continue
		}
		p.Runs = append(p.Runs, r)
		cur[r.Topic] = r.Last + 1
	}
	return p, nil
}
