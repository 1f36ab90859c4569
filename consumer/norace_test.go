//go:build !race

package consumer

// raceEnabled is set under -race (race_test.go).
const raceEnabled = false
