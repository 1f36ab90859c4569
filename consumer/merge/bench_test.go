package merge

import "testing"

// BenchmarkTable is the bookkeeping one merged record costs the worker:
// its position (Add), its entry's share of sealing, encoding and storing,
// and trimming as commits pass, for three topics merged record by record
// (every record a run of its own: the worst case for the log's size).
func BenchmarkTable(b *testing.B) {
	const k, perEntry = 3, 500
	tbl := NewTable(make([]int64, k))
	next := make([]int64, k)
	var p Pending
	var buf []byte
	sealed, bytes := 0, 0
	b.ReportAllocs()
	for i := range b.N {
		t := i % k
		pos, _ := tbl.Add(t, next[t], &p)
		next[t]++
		if (i+1)%perEntry == 0 {
			e, idx := tbl.Seal(&p)
			buf = e.Append(buf[:0])
			bytes += len(buf)
			sealed++
			tbl.Stored(idx, int64(sealed))
			if sealed%8 == 0 {
				tbl.Trim(pos)
			}
		}
	}
	if sealed > 0 {
		b.ReportMetric(float64(bytes)/float64(sealed*perEntry), "log-bytes/record")
	}
}
