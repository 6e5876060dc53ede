package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/latticed/latticed/lattice"
)

// Key errors callers can branch on. A malformed key or seed is
// lattice.ErrInvalidKey or lattice.ErrInvalidSeed.
var (
	ErrWrongKind = errors.New("nkey of the wrong kind")
	ErrBadSig    = errors.New("signature verification failed")
)

// KeyPair is an Ed25519 key with its nkey role. It is immutable.
type KeyPair struct {
	kind lattice.KeyKind
	priv ed25519.PrivateKey
	pub  string
}

// CreateKeyPair generates a fresh key of the given role.
func CreateKeyPair(kind lattice.KeyKind) (*KeyPair, error) {
	if !kind.Known() {
		return nil, fmt.Errorf("create key: %w: unknown kind %d", ErrWrongKind, kind)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create %s key: %w", kind, err)
	}
	return newKeyPair(kind, priv), nil
}

func newKeyPair(kind lattice.KeyKind, priv ed25519.PrivateKey) *KeyPair {
	return &KeyPair{kind: kind, priv: priv, pub: lattice.EncodePublicKey(kind, priv.Public().(ed25519.PublicKey))}
}

// ParseSeed decodes an nkey seed (`S` + role letter, 58 characters).
func ParseSeed(seed string) (*KeyPair, error) {
	kind, raw, err := lattice.DecodeSeed(seed)
	if err != nil {
		return nil, err
	}
	return newKeyPair(kind, ed25519.NewKeyFromSeed(raw)), nil
}

// ParseSeedOfKind is ParseSeed that also requires the role.
func ParseSeedOfKind(seed string, kind lattice.KeyKind) (*KeyPair, error) {
	kp, err := ParseSeed(seed)
	if err != nil {
		return nil, err
	}
	if kp.kind != kind {
		return nil, fmt.Errorf("%w: want a %s seed (S%c…), got a %s seed", ErrWrongKind, kind, kind.Letter(), kp.kind)
	}
	return kp, nil
}

// DerivedServiceKey is the public key (V…) of the service key whose seed is
// the SHA-256 of label. A provider named this way has the same key on every
// node, so a link made once works lattice-wide. Anyone can derive the private
// half, so such a key must sign nothing (invocations are signed with cluster
// or delegated keys) and grants no authority.
func DerivedServiceKey(label string) string {
	seed := sha256.Sum256([]byte(label))
	return newKeyPair(lattice.KindService, ed25519.NewKeyFromSeed(seed[:])).PublicKey()
}

// Kind is the key's role.
func (k *KeyPair) Kind() lattice.KeyKind { return k.kind }

// PublicKey is the 56-character public nkey.
func (k *KeyPair) PublicKey() string { return k.pub }

// Seed is the 58-character seed. Callers must never log it.
func (k *KeyPair) Seed() string { return lattice.EncodeSeed(k.kind, k.priv.Seed()) }

// Sign signs data with the private key.
func (k *KeyPair) Sign(data []byte) []byte { return ed25519.Sign(k.priv, data) }

// Verify checks an Ed25519 signature by the public nkey pub.
func Verify(pub string, data, sig []byte) error {
	_, key, err := lattice.DecodePublicKey(pub)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, data, sig) {
		return ErrBadSig
	}
	return nil
}
