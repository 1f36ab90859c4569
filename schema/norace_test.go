//go:build !race

package schema_test

// raceEnabled is set under -race (see race_test.go).
const raceEnabled = false
