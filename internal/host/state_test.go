package host

import (
	"testing"

	"github.com/latticed/latticed/lattice"
)

// A host call finds exactly the link a lookup by its id would: the
// normalized link of that actor, contract and link name, until it is
// deleted or replaced.
func TestLinkLookupByTarget(t *testing.T) {
	const actor, contract = "MACTOR", "wasmcloud:keyvalue"
	canonical := lattice.LinkDefinition{ID: lattice.LinkID(actor, contract, "default"), ActorID: actor, ContractID: contract, LinkName: "default", ProviderID: "VONE"}
	foreign := lattice.LinkDefinition{ID: "NOT-A-LINK-ID", ActorID: actor, ContractID: contract, LinkName: "other", ProviderID: "VTWO"}
	replaced := canonical
	replaced.ProviderID = "VTHREE"
	for _, tc := range []struct {
		name   string
		do     func(s *latticeState)
		link   string // link name looked up
		wantID string // "" when none
		wantP  string
	}{
		{"put", func(s *latticeState) { s.putLink(canonical) }, "default", canonical.ID, "VONE"},
		{"replaced", func(s *latticeState) { s.putLink(canonical); s.putLink(replaced) }, "default", canonical.ID, "VTHREE"},
		{"deleted", func(s *latticeState) { s.putLink(canonical); s.delLink(canonical.ID) }, "default", "", ""},
		{"id not derived from the target", func(s *latticeState) { s.putLink(foreign) }, "other", "", ""},
		{"other link name", func(s *latticeState) { s.putLink(canonical) }, "other", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLatticeState()
			tc.do(s)
			l, ok := s.link(actor, contract, tc.link)
			if ok != (tc.wantID != "") || l.ID != tc.wantID || l.ProviderID != tc.wantP {
				t.Fatalf("link(%s) = %+v, %v; want id %q provider %q", tc.link, l, ok, tc.wantID, tc.wantP)
			}
		})
	}
}
