package wasmbuild

// TinyEcho is the smallest wasmbus actor: a hand-assembled module of one
// 64 KiB page that answers every operation with its payload (no language
// runtime). It imports wasmbus.__guest_request and __guest_response and
// exports memory and __guest_call(op_len, msg_len) -> 1.
func TinyEcho() []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body ...[]byte) []byte {
		var b []byte
		for _, p := range body {
			b = append(b, p...)
		}
		return append([]byte{id, byte(len(b))}, b...)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	code := []byte{
		0x00,                               // no locals
		0x41, 0x00, 0x20, 0x00, 0x10, 0x00, // __guest_request(0, op_len): op at 0, payload after it
		0x20, 0x00, 0x20, 0x01, 0x10, 0x01, // __guest_response(op_len, msg_len)
		0x41, 0x01, 0x0b, // return 1 (success)
	}
	return cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		section(1, []byte{0x02, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}),
		section(2, []byte{0x02}, str("wasmbus"), str("__guest_request"), []byte{0x00, 0x00},
			str("wasmbus"), str("__guest_response"), []byte{0x00, 0x00}),
		section(3, []byte{0x01, 0x01}),
		section(5, []byte{0x01, 0x00, 0x01}),
		section(7, []byte{0x02}, str("__guest_call"), []byte{0x00, 0x02}, str("memory"), []byte{0x02, 0x00}),
		section(10, []byte{0x01, byte(len(code))}, code),
	)
}
