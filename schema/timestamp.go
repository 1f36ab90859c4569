package schema

import (
	"math"
	"time"
)

// parseTimestamp parses an RFC 3339 date-time (any offset, any number of
// fraction digits, 'T'/'t' and 'Z'/'z' as RFC 3339 allows) into Unix
// nanoseconds. Digits beyond the ninth fraction digit are truncated. Leap
// seconds (":60") and instants outside the int64 nanosecond range (about
// 1677-09-21 to 2262-04-11) are rejected, because Event.TS cannot hold them.
func parseTimestamp(s []byte) (int64, string) {
	const bad = "not an RFC 3339 timestamp"
	if len(s) < len("2006-01-02T15:04:05Z") {
		return 0, bad
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, bad
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, "timestamp out of range"
	}
	i := 19
	var frac int64
	if s[i] == '.' {
		i++
		n := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if n < 9 {
				frac = frac*10 + int64(s[i]-'0')
				n++
			}
		}
		if n == 0 {
			return 0, bad
		}
		for ; n < 9; n++ {
			frac *= 10
		}
	}
	if i >= len(s) {
		return 0, bad
	}
	var offset int64
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return 0, bad
		}
		oh, ok1 := digits(s[i+1 : i+3])
		om, ok2 := digits(s[i+4 : i+6])
		if !ok1 || !ok2 {
			return 0, bad
		}
		if oh > 23 || om > 59 {
			return 0, "timestamp out of range"
		}
		offset = int64(oh*3600 + om*60)
		if s[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, bad
	}
	if i != len(s) {
		return 0, bad
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	// secs*1e9+frac must fit in int64; frac is in [0, 1e9).
	const ns = 1_000_000_000
	const maxSec, minSec = math.MaxInt64 / ns, math.MinInt64/ns - 1
	switch {
	case secs > maxSec || secs < minSec,
		secs == maxSec && frac > math.MaxInt64%ns,
		secs == minSec && frac < ns+math.MinInt64%ns:
		return 0, "timestamp outside the representable range (1677-2262)"
	}
	return secs*1e9 + frac, ""
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (H. Hinnant's algorithm), avoiding time.Date's normalisation work.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// appendTimestamp writes ts as RFC 3339 in UTC with all nine fraction digits,
// so that the encoding of an instant is unique.
func appendTimestamp(dst []byte, ts int64) []byte {
	return time.Unix(0, ts).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
}
