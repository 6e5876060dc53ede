package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Custom section names that hold actor claims. wascap ≥ 0.9 writes
// "wasmcloud_jwt", older versions "jwt"; every reader accepts both, so
// latticed writes "jwt" (readable by all versions) and reads either.
const (
	SectionJWT          = "jwt"
	SectionWasmcloudJWT = "wasmcloud_jwt"
)

// Wasm parsing errors.
var (
	ErrNotWasm       = errors.New("not a WebAssembly core module")
	ErrMalformedWasm = errors.New("malformed WebAssembly module")
	ErrNoClaims      = errors.New("module has no embedded claims (no jwt custom section)")
)

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// wasmSection is one top-level section: id and contents (without id and size).
type wasmSection struct {
	id   byte
	data []byte
}

// customName returns a custom section's name and payload.
func (s wasmSection) custom() (name string, payload []byte, err error) {
	n, used, err := readULEB32(s.data)
	if err != nil || uint64(used)+uint64(n) > uint64(len(s.data)) {
		return "", nil, fmt.Errorf("%w: custom section name", ErrMalformedWasm)
	}
	return string(s.data[used : used+int(n)]), s.data[used+int(n):], nil
}

func (s wasmSection) isClaims() bool {
	if s.id != 0 {
		return false
	}
	name, _, err := s.custom()
	return err == nil && (name == SectionJWT || name == SectionWasmcloudJWT)
}

// parseSections splits a core module into its top-level sections.
func parseSections(module []byte) ([]wasmSection, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], wasmHeader[:4]) {
		return nil, ErrNotWasm
	}
	if !bytes.Equal(module[4:8], wasmHeader[4:8]) {
		return nil, fmt.Errorf("%w: version %x (components are not supported)", ErrNotWasm, module[4:8])
	}
	var out []wasmSection
	for rest := module[8:]; len(rest) > 0; {
		id := rest[0]
		size, used, err := readULEB32(rest[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: section size at offset %d", ErrMalformedWasm, len(module)-len(rest))
		}
		start := 1 + used
		if uint64(start)+uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: section %d runs past the end of the module", ErrMalformedWasm, id)
		}
		s := wasmSection{id: id, data: rest[start : start+int(size)]}
		if id == 0 {
			if _, _, err := s.custom(); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
		rest = rest[start+int(size):]
	}
	return out, nil
}

// StripClaims returns the module without its claims sections, re-encoded the
// way wascap does before hashing: header, then each remaining section as
// id ‖ minimal LEB128 size ‖ contents. (Toolchains often pad section sizes to
// five bytes; wascap's re-encoding does not, so neither may we.)
func StripClaims(module []byte) ([]byte, error) {
	secs, err := parseSections(module)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(module))
	out = append(out, wasmHeader...)
	for _, s := range secs {
		if s.isClaims() {
			continue
		}
		out = appendSection(out, s.id, s.data)
	}
	return out, nil
}

// ModuleHash is the wascap module hash: uppercase hex SHA-256 of StripClaims(module).
// It hashes the sections where they lie instead of building the stripped
// copy: a host checks it at every actor start, and the copy of a Go actor
// cost more than the hash.
func ModuleHash(module []byte) (string, error) {
	secs, err := parseSections(module)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(wasmHeader)
	var head [6]byte // id and a u32 LEB128 length, as appendSection writes them
	for _, s := range secs {
		if s.isClaims() {
			continue
		}
		h.Write(appendULEB32(append(head[:0], s.id), uint32(len(s.data))))
		h.Write(s.data)
	}
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil))), nil
}

// ExtractClaimsJWT returns the JWT text embedded in the module, or ErrNoClaims.
func ExtractClaimsJWT(module []byte) (string, error) {
	secs, err := parseSections(module)
	if err != nil {
		return "", err
	}
	for _, s := range secs {
		if !s.isClaims() {
			continue
		}
		_, payload, _ := s.custom()
		return string(payload), nil
	}
	return "", ErrNoClaims
}

// EmbedClaimsJWT returns stripped (a module already passed through StripClaims)
// with token appended as a custom section named "jwt".
func EmbedClaimsJWT(stripped []byte, token string) []byte {
	payload := appendULEB32(nil, uint32(len(SectionJWT)))
	payload = append(payload, SectionJWT...)
	payload = append(payload, token...)
	out := append([]byte(nil), stripped...)
	return appendSection(out, 0, payload)
}

func appendSection(out []byte, id byte, data []byte) []byte {
	out = append(out, id)
	out = appendULEB32(out, uint32(len(data)))
	return append(out, data...)
}

func appendULEB32(out []byte, v uint32) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// readULEB32 decodes an unsigned LEB128 of at most 5 bytes (wasm's u32).
func readULEB32(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xffffffff {
				return 0, 0, errors.New("LEB128 overflows u32")
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("truncated or overlong LEB128")
}
