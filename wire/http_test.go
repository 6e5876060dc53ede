package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// What other peers send: keys in another order, unknown keys, the status as
// any integer width, the body as str; and the body is read in place.
func TestHTTPDecodersAcceptPeers(t *testing.T) {
	body := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300<<10/4)
	// Each case is written as another peer's encoder writes it: Go's
	// reflection encoder without compact integers (int8, int64, uint32).
	msg := func(write func(w *Writer)) []byte {
		w := NewWriter(0)
		write(&w)
		return w.Bytes()
	}
	cases := []struct {
		name string
		in   []byte
		want HTTPResponse
	}{
		{"int8 status, str body, unknown key", msg(func(w *Writer) {
			w.MapHeader(3)
			w.Str("body")
			w.Str("hi")
			w.Str("statusCode")
			w.b = append(w.b, 0xd0, 99)
			w.Str("x")
			w.ArrayHeader(2)
			w.Uint(1)
			w.MapHeader(1)
			w.Str("y")
			w.Nil()
		}), HTTPResponse{StatusCode: 99, Body: []byte("hi")}},
		{"int64 status", msg(func(w *Writer) {
			w.MapHeader(2)
			w.Str("statusCode")
			w.b = append(w.b, 0xd3, 0, 0, 0, 0, 0, 0, 0x01, 0x94)
			w.Str("header")
			w.MapHeader(1)
			w.Str("a")
			w.ArrayHeader(2)
			w.Str("b")
			w.Str("c")
		}), HTTPResponse{StatusCode: 404, Header: map[string][]string{"a": {"b", "c"}}}},
		{"uint32 status, big bin body", msg(func(w *Writer) {
			w.MapHeader(2)
			w.Str("statusCode")
			w.b = append(w.b, 0xce, 0, 0, 0, 201)
			w.Str("body")
			w.Bin(body)
		}), HTTPResponse{StatusCode: 201, Body: body}},
		{"nil status and header", msg(func(w *Writer) {
			w.MapHeader(2)
			w.Str("statusCode")
			w.Nil()
			w.Str("header")
			w.Nil()
		}), HTTPResponse{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeHTTPResponse(c.in)
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
	for i := 0; i <= MaxDepth+1; i++ {
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

// A request decoded without copies reads as the copying decoder reads it,
// its strings stay put when the body is written over, and appending to one
// header's values (which share an allocation) leaves the next one alone.
func TestDecodeHTTPRequestNoCopy(t *testing.T) {
	in := HTTPRequest{Method: "PUT", Path: "/p", QueryString: "q=1",
		Header: map[string][]string{"a": {"1"}, "b": {"2"}, "c": {"3", "4"}, "d": nil}, Body: []byte("body")}
	data := in.Encode()
	want, err := DecodeHTTPRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHTTPRequestNoCopy(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("no-copy decode %+v; want %+v", got, want)
	}
	copy(got.Body, "XXXX")
	_ = append(got.Header["a"], "appended")
	if got.Method != "PUT" || got.Path != "/p" || got.QueryString != "q=1" || got.Header["b"][0] != "2" {
		t.Fatalf("writing the body or appending to a header changed %+v", got)
	}
}
