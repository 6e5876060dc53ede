// Package wasmbin holds the LEB128 encodings of the WebAssembly binary
// format that the host's module rewriters share: the data-segment packer
// (internal/host, datapack.go) and the loop instrumentation
// (internal/wasmstop). Unsigned values use encoding/binary's Uvarint.
package wasmbin

// SignedLEB32 decodes a signed LEB128 i32 (at most 5 bytes), the encoding
// of an i32.const immediate; ok is false for a truncated or oversized one.
func SignedLEB32(b []byte) (v int32, n int, ok bool) {
	var r int64
	var shift uint
	for n < len(b) && n < 5 {
		c := b[n]
		n++
		r |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				r |= -1 << shift
			}
			if r < -1<<31 || r > 1<<31-1 {
				return 0, 0, false
			}
			return int32(r), n, true
		}
	}
	return 0, 0, false
}

// AppendSignedLEB32 appends v as a signed LEB128.
func AppendSignedLEB32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
