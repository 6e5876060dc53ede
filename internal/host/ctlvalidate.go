package host

import "github.com/latticed/latticed/lattice"

// validateCtl applies the generic control-input rules (lattice.Validate*) to
// a decoded request, after its defaults are filled in, so a bad name, key or
// count is refused with lattice.ErrInvalidRequest before anything changes.
// Provider-specific link values are the provider's to check.
func validateCtl(req any) error {
	switch r := req.(type) {
	case *lattice.LinkDefinition:
		return r.Validate()
	case *lattice.StartActorCommand:
		return lattice.ValidateCount(r.Count)
	case *lattice.StopActorCommand:
		return lattice.ValidateCount(r.Count)
	case *lattice.ScaleActorCommand:
		return lattice.ValidateCount(r.Count)
	case *lattice.LaunchProviderCommand:
		return lattice.ValidateLinkName(r.LinkName)
	case *lattice.StopProviderCommand:
		return lattice.ValidateLinkName(r.LinkName)
	}
	return nil
}
