package schema_test

import (
	"testing"

	"github.com/sessiontrace/sessiontrace/schema"
)

// BenchmarkDecodeShapes compares the v1 decoder with mapped decoders over
// the same events written in other shapes: the arena JSON shape (nested
// player, epoch milliseconds, producer codes, derived event IDs) and
// CloudEvents in both Kafka modes. records/s is per core.
func BenchmarkDecodeShapes(b *testing.B) {
	v1, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	values := benchEvents(b)
	evs := make([]schema.Event, len(values))
	native := make([]schema.Record, len(values))
	arena := make([]schema.Record, len(values))
	structured := make([]schema.Record, len(values))
	binary := make([]schema.Record, len(values))
	ctStructured := []schema.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	for i, v := range values {
		if err := v1.Decode(nil, v, &evs[i]); err != nil {
			b.Fatal(err)
		}
		key := []byte(evs[i].PlayerID)
		native[i] = schema.Record{Key: key, Value: v}
		arena[i] = schema.Record{Key: key, Value: arenaJSON(b, &evs[i])}
		structured[i] = schema.Record{Key: key, Value: cloudEventStructured(b, &evs[i]), Headers: ctStructured}
		hs, data := cloudEventBinary(b, &evs[i])
		binary[i] = schema.Record{Key: key, Value: data, Headers: hs}
	}
	run := func(name string, d schema.RecordDecoder, recs []schema.Record) {
		b.Run(name, func(b *testing.B) {
			total := 0
			for _, r := range recs {
				total += len(r.Value)
			}
			var ev schema.Event
			b.ReportAllocs()
			b.SetBytes(int64(total / len(recs)))
			i := 0
			for b.Loop() {
				if err := d.DecodeRecord(&recs[i%len(recs)], &ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
	run("native", v1, native)
	run("mapped", mustDecoder(b, arenaMapping()), arena)
	run("cloudevents_structured", mustDecoder(b, cloudEventsMapping()), structured)
	run("cloudevents_binary", mustDecoder(b, cloudEventsMapping()), binary)
}
