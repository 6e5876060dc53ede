package wire

// Native fuzz tests of the httpserver decoders. Seeds come from the committed
// corpus under testdata/fuzz/<Name>/ and the f.Add calls below;
// `go test -run Fuzz` runs the seeds only, `make fuzz` fuzzes each target.

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// normBytes treats nil and empty byte strings alike: msgpack nil and an
// empty bin both mean "no body".
func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// FuzzDecodeHTTPRequest: whatever decodes re-encodes to bytes that decode to
// the same request, and decoding never panics nor reads past the input.
func FuzzDecodeHTTPRequest(f *testing.F) {
	f.Add((&HTTPRequest{Method: "POST", Path: "/a", QueryString: "b=c",
		Header: map[string][]string{"host": {"x"}, "accept": {"a", "b"}}, Body: []byte{0, 1, 2}}).Encode())
	w := NewWriter(0) // {"body": "as a str", "method": "GET", "extra": [1, [2]]}
	w.MapHeader(3)
	w.Str("body")
	w.Str("as a str")
	w.Str("method")
	w.Str("GET")
	w.Str("extra")
	w.ArrayHeader(2)
	w.Uint(1)
	w.ArrayHeader(1)
	w.Uint(2)
	f.Add(w.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeHTTPRequest(data)
		// The no-copy decoder reads the same request, or refuses the same
		// input.
		view, verr := DecodeHTTPRequestNoCopy(bytes.Clone(data))
		if (err == nil) != (verr == nil) || (err == nil && !reflect.DeepEqual(*req, view)) {
			t.Fatalf("DecodeHTTPRequestNoCopy = %+v, %v; DecodeHTTPRequest = %+v, %v", view, verr, req, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) || req != nil {
				t.Fatalf("bad refusal: %v, %+v", err, req)
			}
			return
		}
		enc := req.Encode()
		back, err := DecodeHTTPRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n% x", err, enc)
		}
		req.Body, back.Body = normBytes(req.Body), normBytes(back.Body)
		if !reflect.DeepEqual(req, back) {
			t.Fatalf("round trip changed the request:\n first %+v\nsecond %+v", req, back)
		}
	})
}

// FuzzDecodeHTTPResponse is FuzzDecodeHTTPRequest for an actor's answer.
func FuzzDecodeHTTPResponse(f *testing.F) {
	f.Add((&HTTPResponse{StatusCode: 200, Header: map[string][]string{"content-type": {"text/plain"}}, Body: []byte("ok")}).Encode())
	w := NewWriter(0) // {"statusCode": int8(3), "body": "s", "header": nil, "z": {"y": 1.5}}
	w.MapHeader(4)
	w.Str("statusCode")
	w.b = append(w.b, 0xd0, 3)
	w.Str("body")
	w.Str("s")
	w.Str("header")
	w.Nil()
	w.Str("z")
	w.MapHeader(1)
	w.Str("y")
	w.b = append(w.b, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0)
	f.Add(w.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := DecodeHTTPResponse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || resp != nil {
				t.Fatalf("bad refusal: %v, %+v", err, resp)
			}
			return
		}
		enc := resp.Encode()
		back, err := DecodeHTTPResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v\n% x", err, enc)
		}
		resp.Body, back.Body = normBytes(resp.Body), normBytes(back.Body)
		if !reflect.DeepEqual(resp, back) {
			t.Fatalf("round trip changed the response:\n first %+v\nsecond %+v", resp, back)
		}
	})
}
