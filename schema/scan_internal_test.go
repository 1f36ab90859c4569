package schema

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
)

func TestNextSpecial(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	interesting := []byte{0, 0x1f, 0x20, '!', '"', '#', '[', '\\', ']', 0x7e, 0x7f, 0x80, 0xa0, 0xff, 'a'}
	for range 200_000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = interesting[rng.IntN(len(interesting))]
			} else {
				b[i] = byte(0x20 + rng.IntN(0x5f))
			}
		}
		from := 0
		if len(b) > 0 {
			from = rng.IntN(len(b))
		}
		want := from
		for want < len(b) && !strSpecial[b[want]] {
			want++
		}
		if got := nextSpecial(b, from); got != want {
			t.Fatalf("nextSpecial(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"epoch", "1970-01-01T00:00:00Z", 0},
		{"before epoch", "1969-12-31T23:59:59.5Z", -500_000_000},
		{"largest", "2262-04-11T23:47:16.854775807Z", math.MaxInt64},
		{"smallest", "1677-09-21T00:12:43.145224192Z", math.MinInt64},
		{"smallest via offset", "1677-09-21T01:12:43.145224192+01:00", math.MinInt64},
		{"leap day", "2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixNano()},
		{"year 2000 leap day", "2000-02-29T12:00:00-12:00", time.Date(2000, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := parseTimestamp([]byte(tt.in))
			if detail != "" || got != tt.want {
				t.Errorf("parseTimestamp(%q) = %d, %q; want %d", tt.in, got, detail, tt.want)
			}
		})
	}
}

// TestParseTimestampAgreesWithTime compares with time.Parse over random
// instants and offsets, in both directions through appendTimestamp.
func TestParseTimestampAgreesWithTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	layouts := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00"}
	for range 100_000 {
		ns := rng.Int64()
		if rng.IntN(2) == 0 {
			ns = -ns
		}
		off := (rng.IntN(2*1439+1) - 1439) * 60 // RFC 3339 offsets stop at ±23:59
		tm := time.Unix(0, ns).In(time.FixedZone("", off))
		s := tm.Format(layouts[rng.IntN(len(layouts))])
		want, err := time.Parse(time.RFC3339Nano, s)
		got, detail := parseTimestamp([]byte(s))
		if err != nil || want.Year() < 1678 || want.Year() > 2261 {
			continue // outside what time.Time.UnixNano can report
		}
		if detail != "" || got != want.UnixNano() {
			t.Fatalf("parseTimestamp(%q) = %d, %q; time.Parse gives %d", s, got, detail, want.UnixNano())
		}
		back := appendTimestamp(nil, got)
		if again, d := parseTimestamp(back); d != "" || again != got {
			t.Fatalf("appendTimestamp(%d) = %s, which parses to %d, %q", got, back, again, d)
		}
	}
}

func TestParseIntegral(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"-0", 0, true},
		{"0.000", 0, true},
		{"0e-999999999999999", 0, true},
		{"12", 12, true},
		{"12.0", 12, true},
		{"1.2e1", 12, true},
		{"1200e-2", 12, true},
		{"1.25e1", 0, false},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775807.000", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", math.MinInt64, true},
		{"-9223372036854775809", 0, false},
		{"922337203685477580.7e1", math.MaxInt64, true},
		{"1e18", 1_000_000_000_000_000_000, true},
		{"1e19", 0, false},
		{"1E+2", 100, true},
		{"10000000000000000000000000000000000000000e-40", 1, true},
		{"10000000000000000000000000000000000000001e-40", 0, false},
		{"1000000000000000000000000000000005.1e-14", 0, false},
		{"1e-1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseIntegral([]byte(tt.in))
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseIntegral(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzParseIntegral compares with exact rational arithmetic.
func FuzzParseIntegral(f *testing.F) {
	for _, s := range []string{"0", "12.0", "1.2e1", "-9223372036854775808", "1e19", "123.456e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if end, _, err := scanNumber(b, 0); err != nil || end != len(b) {
			return
		}
		if e := len(s); e > 64 {
			return // keep big.Rat's exponent work bounded
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return // exponent too large for big.Rat
		}
		want := r.IsInt() && r.Num().IsInt64()
		got, gotOK := parseIntegral(b)
		if gotOK != want || (want && got != r.Num().Int64()) {
			t.Fatalf("parseIntegral(%s) = %d, %v; big.Rat says %v, %v", s, got, gotOK, r, want)
		}
	})
}

// TestUnescapeAgreesWithEncodingJSON covers escapes, surrogate pairs and lone
// surrogates.
func TestUnescapeAgreesWithEncodingJSON(t *testing.T) {
	tests := []string{
		`plain`, `\"\\\/\b\f\n\r\t`, `\u0041\u00e9\u20ac`, `\ud83d\ude00`, `\ud83d`, `\ude00`,
		`\ud83dx`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, `a\u0000b`, `\uD83D\uDE00`, `é\n😀`,
	}
	for _, body := range tests {
		t.Run(body, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(`"`+body+`"`), &want); err != nil {
				t.Fatal(err)
			}
			b := []byte(`"` + body + `"`)
			end, _, err := scanString(b, 1)
			if err != nil || end != len(b)-1 {
				t.Fatalf("scanString: %v, end %d", err, end)
			}
			if got := string(unescape(nil, b[1:end])); got != want {
				t.Errorf("unescape = %q, encoding/json gives %q", got, want)
			}
		})
	}
}
