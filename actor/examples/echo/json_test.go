package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The hand-written encoder writes what json.Marshal writes: every byte
// value, escapes next to runs, valid and broken UTF-8, U+2028/2029.
func TestAppendEchoJSONMatchesMarshal(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []string{"", "plain", `"quoted" \ <html> & more`, "\b\f\n\r\t\x00\x1f\x7f", string(all),
		"é 日本 \u2028 \u2029 \xff\xfe broken \xe6\x97", "\xf0\x9f\x98\x80 emoji"}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200; i++ {
		b := make([]byte, r.IntN(3000))
		for j := range b {
			switch r.IntN(3) {
			case 0:
				b[j] = byte(r.Uint32())
			default:
				b[j] = 'a' + byte(r.IntN(26))
			}
		}
		cases = append(cases, string(b))
	}
	// Each byte that needs escaping, at each offset within and across the
	// 32-byte blocks the fast path skips.
	for _, special := range []byte{0, 0x1f, '"', '\\', '<', '>', '&', 0x80, 0xe2, 0xff} {
		for at := 0; at < 72; at++ {
			b := bytes.Repeat([]byte("abcdefgh"), 9)
			b[at] = special
			cases = append(cases, string(b))
		}
	}
	for i, s := range cases {
		in := echoBody{Method: "POST", Path: s, QueryString: "a=<1>&b=2", Body: s}
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEchoJSON(nil, &in); !bytes.Equal(got, want) {
			t.Fatalf("case %d: got\n%q\nwant\n%q", i, got, want)
		}
	}
}
