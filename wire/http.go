package wire

import (
	"fmt"
	"slices"
	"strings"
)

// The wasmcloud:httpserver request and response carry whole HTTP bodies, so
// they are written and read by hand (docs/protocol.md §9): the encoders
// allocate once, at the exact size, instead of growing a buffer through
// msgpack's reflection; the decoders hand out the body as a slice of the
// input instead of copying it. A body of 900 KiB thus crosses the provider
// and the actor with one copy fewer on each side and no buffer regrowth.
// The bytes are the same as msgpack's reflection encoder writes (map keys
// of the header sorted), which TestHTTPEncodersMatchMarshal checks in
// package lattice (this module has no reflection encoder to compare with).

// HTTPRequest is the wasmcloud:httpserver request an HTTP provider sends to an actor.
type HTTPRequest struct {
	Method      string              `msgpack:"method" json:"method"`
	Path        string              `msgpack:"path" json:"path"`
	QueryString string              `msgpack:"queryString" json:"queryString"`
	Header      map[string][]string `msgpack:"header" json:"header"`
	Body        []byte              `msgpack:"body" json:"body"`
}

// HTTPResponse is an actor's answer to HttpServer.HandleRequest.
type HTTPResponse struct {
	StatusCode uint16              `msgpack:"statusCode" json:"statusCode"`
	Header     map[string][]string `msgpack:"header" json:"header"`
	Body       []byte              `msgpack:"body" json:"body"`
}

// header and field names of the httpserver contract types.
const (
	kMethod, kPath, kQueryString, kHeader, kBody = "method", "path", "queryString", "header", "body"
	kStatusCode                                  = "statusCode"
	httpRequestFields, httpResponseFields        = 5, 3
)

// headerField is one header of an HTTP message being encoded.
type headerField struct {
	name   string
	values []string
}

// sortedHeader returns h's fields sorted by name, appended to buf[:0]: an
// encoder passes an array on its stack, so a message of up to its size in
// headers costs no allocation and each name's values are looked up once,
// which inside a wasm guest, where every call and allocation costs several
// times what it does natively, is most of an encoder's time.
func sortedHeader(h map[string][]string, buf []headerField) []headerField {
	fields := buf[:0]
	for k, vs := range h {
		fields = append(fields, headerField{k, vs})
	}
	if len(fields) > 1 {
		slices.SortFunc(fields, func(a, b headerField) int { return strings.Compare(a.name, b.name) })
	}
	return fields
}

// stackHeaders is how many header fields an encoder sorts without an
// allocation.
const stackHeaders = 16

// headerSize is the encoded size of a header: nil (isNil) or the map of
// fields.
func headerSize(isNil bool, fields []headerField) int {
	if isNil {
		return 1
	}
	n := ContainerSize(len(fields))
	for _, f := range fields {
		n += StrSize(len(f.name))
		if f.values == nil {
			n++
			continue
		}
		n += ContainerSize(len(f.values))
		for _, v := range f.values {
			n += StrSize(len(v))
		}
	}
	return n
}

func (w *Writer) header(isNil bool, fields []headerField) {
	if isNil {
		w.Nil()
		return
	}
	w.MapHeader(len(fields))
	for _, f := range fields {
		w.Str(f.name)
		if f.values == nil {
			w.Nil()
			continue
		}
		w.ArrayHeader(len(f.values))
		for _, v := range f.values {
			w.Str(v)
		}
	}
}

// Encode is the request's msgpack wire form: Marshal's bytes, in one
// allocation of the exact size.
func (r *HTTPRequest) Encode() []byte {
	var buf [stackHeaders]headerField
	fields := sortedHeader(r.Header, buf[:])
	size := ContainerSize(httpRequestFields) +
		StrSize(len(kMethod)) + StrSize(len(r.Method)) + StrSize(len(kPath)) + StrSize(len(r.Path)) +
		StrSize(len(kQueryString)) + StrSize(len(r.QueryString)) +
		StrSize(len(kHeader)) + headerSize(r.Header == nil, fields) + StrSize(len(kBody)) + BinSize(r.Body)
	w := NewWriter(size)
	w.MapHeader(httpRequestFields)
	w.Str(kMethod)
	w.Str(r.Method)
	w.Str(kPath)
	w.Str(r.Path)
	w.Str(kQueryString)
	w.Str(r.QueryString)
	w.Str(kHeader)
	w.header(r.Header == nil, fields)
	w.Str(kBody)
	w.Bin(r.Body)
	return w.Bytes()
}

// Encode is the response's msgpack wire form, in one allocation of the
// exact size. The status code is written as msgpack's reflection encoder
// writes a uint16 (0xcd and two bytes), the form actors have always sent.
func (r *HTTPResponse) Encode() []byte {
	var buf [stackHeaders]headerField
	fields := sortedHeader(r.Header, buf[:])
	size := ContainerSize(httpResponseFields) + StrSize(len(kStatusCode)) + 3 +
		StrSize(len(kHeader)) + headerSize(r.Header == nil, fields) + StrSize(len(kBody)) + BinSize(r.Body)
	w := NewWriter(size)
	w.MapHeader(httpResponseFields)
	w.Str(kStatusCode)
	w.Uint16(r.StatusCode)
	w.Str(kHeader)
	w.header(r.Header == nil, fields)
	w.Str(kBody)
	w.Bin(r.Body)
	return w.Bytes()
}

// DecodeHTTPRequest parses an HttpServer.HandleRequest argument from
// untrusted bytes. Keys may come in any order; unknown keys are skipped.
// The returned Body aliases data: it is a slice of it, not a copy, so data
// must not be modified while the request is in use.
func DecodeHTTPRequest(data []byte) (*HTTPRequest, error) {
	req := new(HTTPRequest)
	if err := decodeHTTPRequest(data, false, req); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeHTTPRequestNoCopy is DecodeHTTPRequest for a caller that gives data
// up to the request: the strings (method, path, query string, header names
// and values) are views of data as well, not copies, so data must never be
// modified afterwards; only the body's bytes may be, since no string
// overlaps them. The request is returned by value, which a caller that
// passes it on by value, as the Go actor SDK does with each invocation's
// own payload, keeps off the heap: inside a wasm guest, where every
// allocation costs several times what it does natively, that and the
// strings not copied are most of a small request's decoding.
func DecodeHTTPRequestNoCopy(data []byte) (HTTPRequest, error) {
	var req HTTPRequest
	if err := decodeHTTPRequest(data, true, &req); err != nil {
		return HTTPRequest{}, err
	}
	return req, nil
}

// decodeHTTPRequest parses a request into req; view makes its strings views
// of data.
func decodeHTTPRequest(data []byte, view bool, req *HTTPRequest) error {
	r := NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kMethod:
			req.Method, err = r.str(view)
		case kPath:
			req.Path, err = r.str(view)
		case kQueryString:
			req.QueryString, err = r.str(view)
		case kHeader:
			req.Header, err = readHeader(r, view)
		case kBody:
			req.Body, err = r.Bytes()
		default:
			err = r.Skip()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return fmt.Errorf("%w: http request: %v", ErrMalformed, err)
	}
	return nil
}

// DecodeHTTPResponse parses an actor's HttpServer.HandleRequest answer from
// untrusted bytes. The status code may be any msgpack integer that fits a
// uint16. The returned Body aliases data, as in DecodeHTTPRequest.
func DecodeHTTPResponse(data []byte) (*HTTPResponse, error) {
	resp := new(HTTPResponse)
	r := NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kStatusCode:
			var v uint64
			if v, err = r.Uint(); err == nil && v > 0xffff {
				err = fmt.Errorf("status code %d does not fit 16 bits", v)
			}
			resp.StatusCode = uint16(v)
		case kHeader:
			resp.Header, err = readHeader(r, false)
		case kBody:
			resp.Body, err = r.Bytes()
		default:
			err = r.Skip()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: http response: %v", ErrMalformed, err)
	}
	return resp, nil
}

// readHeader reads an HTTP header, map[string][]string: nil, or a map of
// string arrays whose values may be nil. With view, its strings are views
// of the input. The one-value arrays, most of any header, share one
// allocation, each capped at its own end so that appending to one cannot
// write over the next.
func readHeader(r *Reader, view bool) (map[string][]string, error) {
	if t, err := r.Next(); err != nil || t == Nil {
		return nil, r.Skip()
	}
	n, err := r.MapLen()
	if err != nil {
		return nil, err
	}
	h := make(map[string][]string, n)
	var single []string // the one-value arrays, allocated at the first
	for i := 0; i < n; i++ {
		k, err := r.str(view)
		if err != nil {
			return nil, fmt.Errorf("header name: %w", err)
		}
		if t, err := r.Next(); err != nil || t == Nil {
			h[k] = nil
			if err = r.Skip(); err != nil {
				return nil, fmt.Errorf("header %q: %w", k, err)
			}
			continue
		}
		m, err := r.ArrayLen()
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		var vs []string
		if m == 1 {
			if single == nil {
				single = make([]string, 0, n-i)
			}
			j := len(single)
			single = single[:j+1]
			vs = single[j : j+1 : j+1]
		} else {
			vs = make([]string, m)
		}
		for j := range vs {
			if vs[j], err = r.str(view); err != nil {
				return nil, fmt.Errorf("header %q: %w", k, err)
			}
		}
		h[k] = vs
	}
	return h, nil
}
