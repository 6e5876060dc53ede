package keyvalue

import (
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// FuzzDecodeArgs feeds untrusted bytes to the argument decoder of every
// operation shape: it must never panic, and what it accepts must decode the
// same after a round trip through the wasmcloud encoding.
func FuzzDecodeArgs(f *testing.F) {
	for _, arg := range []any{
		"counter", []string{"s1", "s2"},
		wire.KVSetRequest{Key: "k", Value: "v", Expires: 10},
		wire.KVIncrementRequest{Key: "k", Value: -3},
		wire.KVListAddRequest{ListName: "l", Value: "v"},
		wire.KVListRangeRequest{ListName: "l", Start: -2, Stop: 5},
		wire.KVSetAddRequest{SetName: "s", Value: "v"},
	} {
		b, err := lattice.Marshal(arg)
		if err != nil {
			f.Fatal(err)
		}
		for shape := shapeString; shape <= shapeSetValue; shape++ {
			f.Add(uint8(shape), b)
		}
	}
	f.Fuzz(func(t *testing.T, shape uint8, data []byte) {
		s := argShape(shape % uint8(shapeSetValue+1))
		a, err := decodeArgs(s, data)
		if err != nil {
			return
		}
		var again []byte
		switch s {
		case shapeString:
			again, err = lattice.Marshal(a.key)
		case shapeStrings:
			again, err = lattice.Marshal(a.names)
		case shapeSet:
			again, err = lattice.Marshal(wire.KVSetRequest{Key: a.key, Value: a.value, Expires: a.expires})
		case shapeIncrement:
			again, err = lattice.Marshal(wire.KVIncrementRequest{Key: a.key, Value: a.delta})
		case shapeListValue:
			again, err = lattice.Marshal(wire.KVListAddRequest{ListName: a.key, Value: a.value})
		case shapeListRange:
			again, err = lattice.Marshal(wire.KVListRangeRequest{ListName: a.key, Start: a.start, Stop: a.stop})
		case shapeSetValue:
			again, err = lattice.Marshal(wire.KVSetAddRequest{SetName: a.key, Value: a.value})
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeArgs(s, again)
		if err != nil {
			t.Fatalf("re-encoded argument does not decode: %v", err)
		}
		if b.key != a.key || b.value != a.value || b.expires != a.expires || b.delta != a.delta ||
			b.start != a.start || b.stop != a.stop || len(b.names) != len(a.names) {
			t.Fatalf("round trip changed %+v into %+v", a, b)
		}
	})
}
