package main

import (
	"unicode/utf8"
	"unsafe"
)

// appendEchoJSON appends what json.Marshal writes for b, byte for byte,
// into a buffer sized once. A body is most of the answer, and
// encoding/json's string encoder, inside a wasm guest, made a 900 KiB body
// take a quarter of a second (docs/protocol.md §9).
func appendEchoJSON(dst []byte, b *echoBody) []byte {
	dst = append(dst, `{"method":`...)
	dst = appendJSONString(dst, b.Method)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, b.Path)
	dst = append(dst, `,"query_string":`...)
	dst = appendJSONString(dst, b.QueryString)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, b.Body)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZero is non-zero when a byte of w is zero.
func hasZero(w uint64) uint64 { return (w - ones) & ^w & highs }

// special is non-zero when a byte of w needs escaping: non-ASCII, a
// control character, '"', '\\', '<', '>' or '&'.
func special(w uint64) uint64 {
	return w&highs | // non-ASCII
		(w-ones*0x20)&^w&highs | // < 0x20 (exact for bytes below 0x80)
		hasZero(w^(ones*'"')) | hasZero(w^(ones*'\\')) |
		hasZero(w^(ones*'<')) | hasZero(w^(ones*'>')) | hasZero(w^(ones*'&'))
}

// plain32 reports that none of the 32 bytes of s at i needs escaping; the
// caller guarantees i+32 <= len(s). Four unaligned 8-byte loads and no
// branch per byte, because in a wasm guest every branch a Go loop takes
// goes back through the host's termination check (wazero with
// close-on-context-done), which made a byte-by-byte scan cost about 140 ns
// a byte.
func plain32(s string, i int) bool {
	p := unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i)
	return special(*(*uint64)(p))|special(*(*uint64)(unsafe.Add(p, 8)))|
		special(*(*uint64)(unsafe.Add(p, 16)))|special(*(*uint64)(unsafe.Add(p, 24))) == 0
}

// appendJSONString quotes s as encoding/json does with HTML escaping on
// (its default): <, > and & as \u00XX, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped. Runs of bytes that need nothing are copied whole.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+32 <= len(s) && plain32(s, i) {
			i += 32
		}
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}
