package schema

// table finds a string among the fixed keys of a mapping's event-name or
// value table. Keys are bucketed by length and then compared, which for the
// tens of keys a mapping holds costs less than hashing the input; keys
// longer than tableMaxLen go to a map.
type table struct {
	byLen [tableMaxLen + 1][]int32 // indexes into keys
	keys  []string
	long  map[string]int32
}

const tableMaxLen = 48

func (t *table) add(k string) {
	i := int32(len(t.keys))
	t.keys = append(t.keys, k)
	if len(k) <= tableMaxLen {
		t.byLen[len(k)] = append(t.byLen[len(k)], i)
		return
	}
	if t.long == nil {
		t.long = map[string]int32{}
	}
	t.long[k] = i
}

// find returns the index of k among the keys, in the order they were added,
// or -1.
func (t *table) find(k []byte) int {
	if len(k) > tableMaxLen {
		if i, ok := t.long[string(k)]; ok {
			return int(i)
		}
		return -1
	}
	for _, i := range t.byLen[len(k)] {
		if t.keys[i] == string(k) {
			return int(i)
		}
	}
	return -1
}
