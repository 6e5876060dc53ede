package lattice

import (
	"crypto/ed25519"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// KeyKind is the role of an nkey, encoded in its prefix byte. nkeys v0.4 knows
// only some of these roles; wasmCloud also uses module (M) and service (V)
// keys, so latticed encodes and decodes all of them itself with the same
// scheme: base32 (no padding) of prefix byte ‖ 32-byte key ‖ CRC-16/XMODEM (LE).
//
// This package owns the text form of keys, because the wire names every host,
// actor and provider by its public key and carries seeds in HostData; key
// pairs, signatures and tokens belong to package trust.
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

// Known reports whether k is one of the roles in KeyKinds.
func (k KeyKind) Known() bool {
	_, ok := kindNames[k]
	return ok
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

// Key encoding errors callers can branch on.
var (
	ErrInvalidKey  = errors.New("invalid nkey")
	ErrInvalidSeed = errors.New("invalid nkey seed")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodePublicKey is the 56-character public nkey of key in role kind.
func EncodePublicKey(kind KeyKind, key ed25519.PublicKey) string {
	return encodeKey([]byte{byte(kind)}, key)
}

// DecodePublicKey checks a public nkey's encoding and returns its role and raw key.
func DecodePublicKey(pub string) (KeyKind, ed25519.PublicKey, error) {
	if len(pub) != 56 {
		return 0, nil, fmt.Errorf("%w: %q is not 56 characters", ErrInvalidKey, Abbreviate(pub))
	}
	raw, err := decodeChecked(pub)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return 0, nil, fmt.Errorf("%w: %q", ErrInvalidKey, Abbreviate(pub))
	}
	kind := KeyKind(raw[0])
	if !kind.Known() {
		return 0, nil, fmt.Errorf("%w: %q has an unknown role", ErrInvalidKey, Abbreviate(pub))
	}
	return kind, ed25519.PublicKey(raw[1:]), nil
}

// IsPublicKey reports whether s is a well-formed public nkey of the given role.
func IsPublicKey(s string, kind KeyKind) bool { return CheckPublicKey(s, kind) == nil }

// CheckPublicKey says what is wrong with s as a public nkey of the given
// role, precisely enough for a person to fix a pasted key: its length, a
// character base32 has no place for, a checksum that does not match (one
// character mistyped), or another role. It is nil for a good key, and its
// errors wrap ErrInvalidKey.
func CheckPublicKey(s string, kind KeyKind) error {
	shape := fmt.Sprintf("a %s key is 56 characters starting with %c", kind, kind.Letter())
	if len(s) != 56 {
		return fmt.Errorf("%w: it has %d characters; %s", ErrInvalidKey, len(s), shape)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') }); i >= 0 {
		return fmt.Errorf("%w: character %d is %q, but keys use only A-Z and 2-7; %s", ErrInvalidKey, i+1, s[i], shape)
	}
	k, _, err := DecodePublicKey(s)
	switch {
	case err != nil && s[0] == kind.Letter():
		return fmt.Errorf("%w: its checksum does not match: a character is mistyped", ErrInvalidKey)
	case err != nil:
		return fmt.Errorf("%w: it starts with %c; %s", ErrInvalidKey, s[0], shape)
	case k != kind:
		return fmt.Errorf("%w: it is a %s key (%c…), not a %s key (%c…)", ErrInvalidKey, k, k.Letter(), kind, kind.Letter())
	}
	return nil
}

// EncodeSeed is the 58-character nkey seed (`S` + role letter) of an Ed25519
// seed in role kind. The result is a secret: callers must never log it.
func EncodeSeed(kind KeyKind, seed []byte) string {
	b1 := prefixSeed | byte(kind)>>5
	b2 := (byte(kind) & 31) << 3
	return encodeKey([]byte{b1, b2}, seed)
}

// DecodeSeed checks an nkey seed's encoding and returns its role and the
// 32-byte Ed25519 seed. Its errors never echo the seed.
func DecodeSeed(seed string) (KeyKind, []byte, error) {
	raw, err := decodeChecked(strings.TrimSpace(seed))
	if err != nil || len(raw) != 2+ed25519.SeedSize {
		return 0, nil, fmt.Errorf("%w: not a 58-character nkey seed", ErrInvalidSeed)
	}
	if raw[0]&0xF8 != prefixSeed {
		return 0, nil, fmt.Errorf("%w: does not start with S", ErrInvalidSeed)
	}
	kind := KeyKind((raw[0]&7)<<5 | (raw[1]&0xF8)>>3)
	if !kind.Known() {
		return 0, nil, fmt.Errorf("%w: unknown role in seed", ErrInvalidSeed)
	}
	return kind, raw[2:], nil
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

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), as nkeys uses. Every
// verified signature checks its key's sum, so it goes a byte at a time
// through crc16Table rather than a bit at a time.
func crc16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^b]
	}
	return crc
}

// crc16Table[i] is the CRC of the byte i: the bitwise form, run once per byte value.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// Abbreviate shortens a key or token for error messages: messages stay short
// and never echo a long secret-looking string whole.
func Abbreviate(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}
