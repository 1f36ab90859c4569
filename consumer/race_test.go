//go:build race

package consumer

// raceEnabled is set under -race, which makes the property tests' thousands
// of resumed owners several times slower: they run the -short counts, so
// the package stays within CI's timeout (the full counts run without -race).
const raceEnabled = true
