package builtin

import (
	"testing"

	"github.com/latticed/latticed/lattice"
)

func TestTableLooksUpByNameAndRefWithStableDistinctKeys(t *testing.T) {
	keys := map[string]string{}
	for _, b := range All() {
		k := b.Key()
		if !lattice.IsPublicKey(k, lattice.KindService) || k != b.Key() {
			t.Fatalf("%s: %s", b.Name, k)
		}
		if other, dup := keys[k]; dup {
			t.Fatalf("%s and %s share key %s", b.Name, other, k)
		}
		keys[k] = b.Name
		for _, ref := range []string{b.Ref(), b.Name} {
			if got, ok := Lookup(ref); !ok || got.Key() != k || got.Name != b.Name {
				t.Fatalf("lookup %q: %v %+v", ref, ok, got)
			}
		}
		if c := b.New(nil); c.Contract() != b.Contract {
			t.Fatalf("%s: table says contract %s, its constructor %s", b.Name, b.Contract, c.Contract())
		}
	}
	if len(keys) < 2 {
		t.Fatalf("table has %d built-ins", len(keys))
	}
	if _, ok := Lookup("builtin:nope"); ok {
		t.Fatal("unknown builtin found")
	}
	for ref, want := range map[string]bool{"builtin:httpserver": true, "httpserver": false, "builtin:nope": false} {
		if _, ok := LookupRef(ref); ok != want {
			t.Errorf("LookupRef(%q) found %v, want %v", ref, ok, want)
		}
	}
}
