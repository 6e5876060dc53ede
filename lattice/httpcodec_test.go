package lattice

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reflectEncode is the reference for the httpserver types: msgpack's
// reflection encoder (whose order of map keys is its own, even sorted, so
// byte-exact comparisons use headers of at most one name); compact
// integers for requests (lattice.Marshal, the provider's encoder before) and
// fixed-width ones for responses (actor.Marshal, the actor SDK's before).
func reflectEncode(t *testing.T, v any, compact bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(compact)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomHeader(r *rand.Rand, str func() string) map[string][]string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string][]string{}
	}
	h := map[string][]string{}
	n := r.IntN(2)
	if r.IntN(2) == 0 {
		n = r.IntN(20)
	}
	for i := 0; i < n; i++ {
		k := strings.Repeat("k", i+1)
		switch r.IntN(5) {
		case 0:
			h[k] = nil
		case 1:
			h[k] = []string{}
		default:
			vs := make([]string, 1+r.IntN(17))
			for j := range vs {
				vs[j] = str()
			}
			h[k] = vs
		}
	}
	return h
}

// Every size class of every field: the hand-written encoders write exactly
// the reflection encoder's bytes, and the decoders read them back.
func TestHTTPEncodersMatchMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lengths := []int{0, 1, 31, 32, 255, 256, 65535, 65536}
	str := func() string { return strings.Repeat("v", lengths[r.IntN(len(lengths))]) }
	bin := func() []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		b := make([]byte, lengths[r.IntN(len(lengths))])
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for i := 0; i < 300; i++ {
		req := &HTTPRequest{Method: str(), Path: str(), QueryString: str(), Header: randomHeader(r, str), Body: bin()}
		got := req.Encode()
		if want := reflectEncode(t, req, true); len(got) != len(want) || len(req.Header) < 2 && !bytes.Equal(got, want) {
			j := 0
			for j < len(got) && got[j] == want[j] {
				j++
			}
			t.Fatalf("request %d: Encode differs from Marshal (len %d vs %d) at %d: % x vs % x", i, len(got), len(want), j, got[max(0, j-8):j+4], want[max(0, j-8):j+4])
		}
		if cap(got) != len(got) {
			t.Fatalf("request %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
		back, err := DecodeHTTPRequest(got)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var ref HTTPRequest
		if err := msgpack.Unmarshal(got, &ref); err != nil {
			t.Fatal(err)
		}
		back.Body, ref.Body = normalize(back.Body), normalize(ref.Body)
		if !reflect.DeepEqual(*back, ref) {
			t.Fatalf("request %d: DecodeHTTPRequest and Unmarshal differ:\n%+v\n%+v", i, back, ref)
		}

		resp := &HTTPResponse{StatusCode: uint16(r.Uint32()), Header: randomHeader(r, str), Body: bin()}
		got = resp.Encode()
		if want := reflectEncode(t, resp, false); len(got) != len(want) || len(resp.Header) < 2 && !bytes.Equal(got, want) {
			t.Fatalf("response %d: Encode differs from Marshal (len %d vs %d)", i, len(got), len(want))
		}
		if cap(got) != len(got) {
			t.Fatalf("response %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
		rback, err := DecodeHTTPResponse(got)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		var rref HTTPResponse
		if err := msgpack.Unmarshal(got, &rref); err != nil {
			t.Fatal(err)
		}
		rback.Body, rref.Body = normalize(rback.Body), normalize(rref.Body)
		if !reflect.DeepEqual(*rback, rref) {
			t.Fatalf("response %d: DecodeHTTPResponse and Unmarshal differ:\n%+v\n%+v", i, rback, rref)
		}
	}
}

func normalize(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// What other peers send: keys in another order, unknown keys, the status as
// any integer width, the body as str; and the body is read in place.
func TestHTTPDecodersAcceptPeers(t *testing.T) {
	body := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300<<10/4)
	cases := []struct {
		name string
		in   map[string]any
		want HTTPResponse
	}{
		{"int8 status, str body, unknown key", map[string]any{"body": "hi", "statusCode": int8(99), "x": []any{1, map[string]any{"y": nil}}},
			HTTPResponse{StatusCode: 99, Body: []byte("hi")}},
		{"int64 status", map[string]any{"statusCode": int64(404), "header": map[string][]string{"a": {"b", "c"}}},
			HTTPResponse{StatusCode: 404, Header: map[string][]string{"a": {"b", "c"}}}},
		{"uint32 status, big bin body", map[string]any{"statusCode": uint32(201), "body": body},
			HTTPResponse{StatusCode: 201, Body: body}},
		{"nil status and header", map[string]any{"statusCode": nil, "header": nil}, HTTPResponse{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := msgpack.Marshal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeHTTPResponse(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	req := (&HTTPRequest{Method: "POST", Body: body}).Encode()
	got, err := DecodeHTTPRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, body) {
		t.Fatal("body differs")
	}
	// In place: the body is the tail of the input, and appending to it
	// cannot write over what follows (its capacity ends with it).
	if &got.Body[0] != &req[len(req)-len(body)] || cap(got.Body) != len(body) {
		t.Fatal("the body was copied, or its capacity reaches past it")
	}
}

// Hostile input: every truncation, trailing bytes, lengths beyond the input,
// negative or oversized status codes, wrong types. Each is ErrMalformed and
// none panics.
func TestHTTPDecodersRefuseMalformed(t *testing.T) {
	full := (&HTTPResponse{StatusCode: 200, Header: map[string][]string{"content-type": {"text/plain"}}, Body: []byte("hello")}).Encode()
	reqFull := (&HTTPRequest{Method: "GET", Path: "/", Header: map[string][]string{"a": nil}, Body: []byte("x")}).Encode()
	bad := map[string][]byte{
		"empty":                {},
		"trailing":             append(append([]byte(nil), full...), 0),
		"not a map":            {0x91, 0x01},
		"map32 count too big":  {0xdf, 0xff, 0xff, 0xff, 0xff},
		"bin32 len too big":    {0x81, 0xa4, 'b', 'o', 'd', 'y', 0xc6, 0x7f, 0xff, 0xff, 0xff, 1},
		"negative status":      {0x81, 0xaa, 's', 't', 'a', 't', 'u', 's', 'C', 'o', 'd', 'e', 0xff},
		"int16 negative":       {0x81, 0xaa, 's', 't', 'a', 't', 'u', 's', 'C', 'o', 'd', 'e', 0xd1, 0x80, 0x00},
		"status over 16 bits":  {0x81, 0xaa, 's', 't', 'a', 't', 'u', 's', 'C', 'o', 'd', 'e', 0xce, 0x00, 0x01, 0x00, 0x00},
		"header as array":      {0x81, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0x90},
		"header value as map":  {0x81, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0x81, 0xa1, 'a', 0x80},
		"array count too big":  {0x81, 0xa6, 'h', 'e', 'a', 'd', 'e', 'r', 0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"key not a string":     {0x81, 0x01, 0x01},
		"never-used code 0xc1": {0x81, 0xa1, 'x', 0xc1},
	}
	deep := []byte{0x81, 0xa1, 'x'}
	for i := 0; i <= maxSkipDepth+1; i++ {
		deep = append(deep, 0x91)
	}
	bad["nesting too deep"] = append(deep, 0x01)
	for i := 0; i < len(full); i++ {
		bad["response cut at "+strings.Repeat("|", i)] = full[:i]
	}
	for name, in := range bad {
		if got, err := DecodeHTTPResponse(in); err == nil || !errors.Is(err, ErrMalformed) || got != nil {
			t.Errorf("response %s: got %+v, %v; want ErrMalformed", name, got, err)
		}
	}
	for i := 0; i < len(reqFull); i++ {
		if got, err := DecodeHTTPRequest(reqFull[:i]); err == nil || !errors.Is(err, ErrMalformed) || got != nil {
			t.Errorf("request cut at %d: got %+v, %v; want ErrMalformed", i, got, err)
		}
	}
	if _, err := DecodeHTTPRequest(reqFull); err != nil {
		t.Fatal(err)
	}
}
