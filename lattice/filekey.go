package lattice

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
)

// FileProviderKey is the public key (V…) of a provider started from an
// executable file, derived from the SHA-256 of the file's bytes the way
// built-in keys are derived from their names: the same binary has the same
// identity on every node (so links made once work lattice-wide), and a
// changed binary is a different provider. Like built-in keys it signs
// nothing, so its derivable private half grants no authority.
func FileProviderKey(fileSHA256 [32]byte) string {
	seed := sha256.Sum256([]byte("latticed file provider " + hex.EncodeToString(fileSHA256[:])))
	return newKeyPair(KindService, ed25519.NewKeyFromSeed(seed[:])).PublicKey()
}
