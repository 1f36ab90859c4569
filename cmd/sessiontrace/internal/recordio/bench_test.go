package recordio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkReader measures reading ~256-byte events in both formats, as
// replay does.
func BenchmarkReader(b *testing.B) {
	const n = 10_000
	var jsonl, kcat bytes.Buffer
	w := NewWriter(&kcat)
	for i := range n {
		v := fmt.Appendf(nil, `{"type":"game.enter","event_id":"player-%06d-%d","player_id":"player-%06d",`+
			`"ts":"2026-01-01T00:%02d:%02d.123000000Z","server_id":"gs-eu-west-42","map":"harbor",`+
			`"attributes":{"region":"eu-west","party_size":3}}`, i%1000, i, i%1000, i/60%60, i%60)
		jsonl.Write(v)
		jsonl.WriteByte('\n')
		if err := w.Write(Record{Topic: "events", Partition: int32(i % 3), Offset: int64(i),
			Timestamp: time.UnixMilli(1767225600000 + int64(i)), Key: v[54:67], Value: v}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{{"jsonl", jsonl.Bytes()}, {"kcat", kcat.Bytes()}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.data)))
			records := 0
			for b.Loop() {
				r := NewReader(bytes.NewReader(tt.data), tt.name)
				for {
					_, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					records++
				}
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
