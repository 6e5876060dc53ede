package lattice

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// KeyKind is the role of an nkey, encoded in its prefix byte. nkeys v0.4 knows
// only some of these roles; wasmCloud also uses module (M) and service (V)
// keys, so latticed encodes and decodes all of them itself with the same
// scheme: base32 (no padding) of prefix byte ‖ 32-byte key ‖ CRC-16/XMODEM (LE).
type KeyKind byte

// Key roles and their prefix bytes (the first base32 character of a public key
// is the letter in the comment).
const (
	KindAccount  KeyKind = 0       // A
	KindCluster  KeyKind = 2 << 3  // C
	KindModule   KeyKind = 12 << 3 // M: an actor
	KindServer   KeyKind = 13 << 3 // N: a host
	KindOperator KeyKind = 14 << 3 // O
	KindUser     KeyKind = 20 << 3 // U
	KindService  KeyKind = 21 << 3 // V: a capability provider

	prefixSeed byte = 18 << 3 // S
)

var kindNames = map[KeyKind]string{
	KindAccount: "account", KindCluster: "cluster", KindModule: "module", KindServer: "server",
	KindOperator: "operator", KindUser: "user", KindService: "service",
}

// KeyKinds lists every role in a stable order (for help texts and tests).
var KeyKinds = []KeyKind{KindAccount, KindCluster, KindModule, KindServer, KindOperator, KindUser, KindService}

// String returns the role's name as `wash keys gen` spells it.
func (k KeyKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("KeyKind(%d)", byte(k))
}

// Letter is the first character of a public key of this role.
func (k KeyKind) Letter() byte { return b32.EncodeToString([]byte{byte(k), 0})[0] }

// ParseKeyKind maps a role name (as `wash keys gen` takes it) to a KeyKind.
func ParseKeyKind(name string) (KeyKind, error) {
	for k, n := range kindNames {
		if strings.EqualFold(n, name) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown key kind %q: want one of account, cluster, module, server, operator, user, service", name)
}

// Key errors callers can branch on.
var (
	ErrInvalidKey  = errors.New("invalid nkey")
	ErrInvalidSeed = errors.New("invalid nkey seed")
	ErrWrongKind   = errors.New("nkey of the wrong kind")
	ErrBadSig      = errors.New("signature verification failed")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// KeyPair is an Ed25519 key with its nkey role. It is immutable.
type KeyPair struct {
	kind KeyKind
	priv ed25519.PrivateKey
	pub  string
}

// CreateKeyPair generates a fresh key of the given role.
func CreateKeyPair(kind KeyKind) (*KeyPair, error) {
	if _, ok := kindNames[kind]; !ok {
		return nil, fmt.Errorf("create key: %w: unknown kind %d", ErrWrongKind, kind)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create %s key: %w", kind, err)
	}
	return newKeyPair(kind, priv), nil
}

func newKeyPair(kind KeyKind, priv ed25519.PrivateKey) *KeyPair {
	return &KeyPair{kind: kind, priv: priv, pub: encodeKey([]byte{byte(kind)}, priv.Public().(ed25519.PublicKey))}
}

// ParseSeed decodes an nkey seed (`S` + role letter, 58 characters).
func ParseSeed(seed string) (*KeyPair, error) {
	raw, err := decodeChecked(strings.TrimSpace(seed))
	if err != nil || len(raw) != 2+ed25519.SeedSize {
		return nil, fmt.Errorf("%w: not a 58-character nkey seed", ErrInvalidSeed)
	}
	if raw[0]&0xF8 != prefixSeed {
		return nil, fmt.Errorf("%w: does not start with S", ErrInvalidSeed)
	}
	kind := KeyKind((raw[0]&7)<<5 | (raw[1]&0xF8)>>3)
	if _, ok := kindNames[kind]; !ok {
		return nil, fmt.Errorf("%w: unknown role in seed", ErrInvalidSeed)
	}
	return newKeyPair(kind, ed25519.NewKeyFromSeed(raw[2:])), nil
}

// ParseSeedOfKind is ParseSeed that also requires the role.
func ParseSeedOfKind(seed string, kind KeyKind) (*KeyPair, error) {
	kp, err := ParseSeed(seed)
	if err != nil {
		return nil, err
	}
	if kp.kind != kind {
		return nil, fmt.Errorf("%w: want a %s seed (S%c…), got a %s seed", ErrWrongKind, kind, kind.Letter(), kp.kind)
	}
	return kp, nil
}

// Kind is the key's role.
func (k *KeyPair) Kind() KeyKind { return k.kind }

// PublicKey is the 56-character public nkey.
func (k *KeyPair) PublicKey() string { return k.pub }

// Seed is the 58-character seed. Callers must never log it.
func (k *KeyPair) Seed() string {
	b1 := prefixSeed | byte(k.kind)>>5
	b2 := (byte(k.kind) & 31) << 3
	return encodeKey([]byte{b1, b2}, k.priv.Seed())
}

// Sign signs data with the private key.
func (k *KeyPair) Sign(data []byte) []byte { return ed25519.Sign(k.priv, data) }

// DecodePublicKey checks a public nkey's encoding and returns its role and raw key.
func DecodePublicKey(pub string) (KeyKind, ed25519.PublicKey, error) {
	if len(pub) != 56 {
		return 0, nil, fmt.Errorf("%w: %q is not 56 characters", ErrInvalidKey, abbreviate(pub))
	}
	raw, err := decodeChecked(pub)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return 0, nil, fmt.Errorf("%w: %q", ErrInvalidKey, abbreviate(pub))
	}
	kind := KeyKind(raw[0])
	if _, ok := kindNames[kind]; !ok {
		return 0, nil, fmt.Errorf("%w: %q has an unknown role", ErrInvalidKey, abbreviate(pub))
	}
	return kind, ed25519.PublicKey(raw[1:]), nil
}

// IsPublicKey reports whether s is a well-formed public nkey of the given role.
func IsPublicKey(s string, kind KeyKind) bool {
	k, _, err := DecodePublicKey(s)
	return err == nil && k == kind
}

// Verify checks an Ed25519 signature by the public nkey pub.
func Verify(pub string, data, sig []byte) error {
	_, key, err := DecodePublicKey(pub)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, data, sig) {
		return ErrBadSig
	}
	return nil
}

func encodeKey(prefix, key []byte) string {
	raw := make([]byte, 0, len(prefix)+len(key)+2)
	raw = append(raw, prefix...)
	raw = append(raw, key...)
	c := crc16(raw)
	raw = append(raw, byte(c), byte(c>>8))
	return b32.EncodeToString(raw)
}

func decodeChecked(s string) ([]byte, error) {
	raw, err := b32.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(raw) < 3 {
		return nil, errors.New("too short")
	}
	body, sum := raw[:len(raw)-2], raw[len(raw)-2:]
	if crc16(body) != uint16(sum[0])|uint16(sum[1])<<8 {
		return nil, errors.New("checksum mismatch")
	}
	return body, nil
}

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), as nkeys uses.
func crc16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// abbreviate keeps error messages short and never echoes a long secret-looking string whole.
func abbreviate(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}
