package receiver

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReceive measures spans received per second for export requests of
// 512 six-attribute spans sent over loopback gRPC by raw OTLP clients in the
// same process (so client encoding shares the CPU with the receiver).
func BenchmarkReceive(b *testing.B) {
	const batch = 512
	cases := []struct {
		name      string
		keepSpans bool
		parallel  bool
	}{
		{"keep-spans", true, false},
		{"count-only", false, false},
		{"count-only-parallel", false, true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			r := startReceiver(b)
			r.KeepSpans(bc.keepSpans)
			ctx := deadline(b, 10*time.Minute)
			req := makeRequest(0, batch)
			b.ReportAllocs()
			start := time.Now()
			if bc.parallel {
				var failed atomic.Bool
				b.RunParallel(func(pb *testing.PB) {
					client := dial(b, r.Addr())
					for pb.Next() {
						if _, err := client.Export(ctx, req); err != nil {
							failed.Store(true)
							return
						}
					}
				})
				if failed.Load() {
					b.Fatal("an export failed")
				}
			} else {
				client := dial(b, r.Addr())
				for b.Loop() {
					if _, err := client.Export(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			if got, want := r.Count(), b.N*batch; got != want {
				b.Fatalf("received %d spans, want %d", got, want)
			}
			b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "spans/s")
		})
	}
}

// BenchmarkExportHandler measures the receiver's own cost per request of 512
// spans, without gRPC transport or a client: what an embedded receiver adds
// to the CPU profile of its process beyond gRPC itself.
func BenchmarkExportHandler(b *testing.B) {
	const batch = 512
	data := mustMarshal(b, makeRequest(0, batch))
	for _, bc := range []struct {
		name string
		keep bool
	}{{"decode-keep-spans", true}, {"count-only", false}} {
		b.Run(bc.name, func(b *testing.B) {
			r := startReceiver(b)
			r.KeepSpans(bc.keep)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := r.export(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/span")
		})
	}
}
