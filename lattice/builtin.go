package lattice

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/latticed/latticed/wire"
)

// BuiltinRefPrefix marks a provider reference to a provider compiled into latticed.
const BuiltinRefPrefix = "builtin:"

// BuiltinProvider is a provider that ships inside the latticed binary.
type BuiltinProvider struct {
	Name     string // e.g. "httpserver": `latticed provider <Name>`
	Contract string
}

// BuiltinProviders lists the providers latticed carries.
var BuiltinProviders = []BuiltinProvider{
	{Name: "httpserver", Contract: wire.ContractHTTPServer},
	{Name: "keyvalue", Contract: wire.ContractKeyValue},
}

// LookupBuiltin resolves "builtin:<name>" (or a bare name) to a built-in provider.
func LookupBuiltin(ref string) (BuiltinProvider, bool) {
	name := strings.TrimPrefix(ref, BuiltinRefPrefix)
	for _, b := range BuiltinProviders {
		if b.Name == name {
			return b, true
		}
	}
	return BuiltinProvider{}, false
}

// Key is the built-in provider's public key (V…). It is derived from the name
// alone, so it is the same on every node and a link made once works
// lattice-wide. The key signs nothing (invocations are signed with cluster or
// delegated keys), so a derivable private half grants no authority.
func (b BuiltinProvider) Key() string {
	seed := sha256.Sum256([]byte("latticed builtin provider " + b.Name))
	return newKeyPair(KindService, ed25519.NewKeyFromSeed(seed[:])).PublicKey()
}

// Ref is the provider's reference, "builtin:<name>".
func (b BuiltinProvider) Ref() string { return BuiltinRefPrefix + b.Name }

// String names the provider for messages.
func (b BuiltinProvider) String() string { return fmt.Sprintf("%s (%s)", b.Ref(), b.Contract) }
