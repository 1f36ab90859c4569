//go:build race

package schema_test

// raceEnabled is set under -race, whose detector empties sync.Pools at random
// and so makes allocation counts meaningless.
const raceEnabled = true
