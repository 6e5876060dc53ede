package trust

import "encoding/hex"

// FileProviderKey is the public key (V…) of a provider started from an
// executable file, derived from the SHA-256 of the file's bytes the way
// built-in keys are derived from their names (DerivedServiceKey): the same
// binary has the same identity on every node, and a changed binary is a
// different provider.
func FileProviderKey(fileSHA256 [32]byte) string {
	return DerivedServiceKey("latticed file provider " + hex.EncodeToString(fileSHA256[:]))
}
