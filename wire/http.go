package wire

import (
	"fmt"
	"sort"
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

func headerSize(h map[string][]string, keys []string) int {
	if h == nil {
		return 1
	}
	n := ContainerSize(len(h))
	for _, k := range keys {
		n += StrSize(len(k))
		vs := h[k]
		if vs == nil {
			n++
			continue
		}
		n += ContainerSize(len(vs))
		for _, v := range vs {
			n += StrSize(len(v))
		}
	}
	return n
}

func (w *Writer) header(h map[string][]string, keys []string) {
	if h == nil {
		w.Nil()
		return
	}
	w.MapHeader(len(h))
	for _, k := range keys {
		w.Str(k)
		vs := h[k]
		if vs == nil {
			w.Nil()
			continue
		}
		w.ArrayHeader(len(vs))
		for _, v := range vs {
			w.Str(v)
		}
	}
}

func sortedHeaderKeys(h map[string][]string) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Encode is the request's msgpack wire form: Marshal's bytes, in one
// allocation of the exact size.
func (r *HTTPRequest) Encode() []byte {
	keys := sortedHeaderKeys(r.Header)
	size := ContainerSize(httpRequestFields) +
		StrSize(len(kMethod)) + StrSize(len(r.Method)) + StrSize(len(kPath)) + StrSize(len(r.Path)) +
		StrSize(len(kQueryString)) + StrSize(len(r.QueryString)) +
		StrSize(len(kHeader)) + headerSize(r.Header, keys) + StrSize(len(kBody)) + BinSize(r.Body)
	w := NewWriter(size)
	w.MapHeader(httpRequestFields)
	w.Str(kMethod)
	w.Str(r.Method)
	w.Str(kPath)
	w.Str(r.Path)
	w.Str(kQueryString)
	w.Str(r.QueryString)
	w.Str(kHeader)
	w.header(r.Header, keys)
	w.Str(kBody)
	w.Bin(r.Body)
	return w.Bytes()
}

// Encode is the response's msgpack wire form, in one allocation of the
// exact size. The status code is written as msgpack's reflection encoder
// writes a uint16 (0xcd and two bytes), the form actors have always sent.
func (r *HTTPResponse) Encode() []byte {
	keys := sortedHeaderKeys(r.Header)
	size := ContainerSize(httpResponseFields) + StrSize(len(kStatusCode)) + 3 +
		StrSize(len(kHeader)) + headerSize(r.Header, keys) + StrSize(len(kBody)) + BinSize(r.Body)
	w := NewWriter(size)
	w.MapHeader(httpResponseFields)
	w.Str(kStatusCode)
	w.Uint16(r.StatusCode)
	w.Str(kHeader)
	w.header(r.Header, keys)
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
	r := NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kMethod:
			req.Method, err = r.Str()
		case kPath:
			req.Path, err = r.Str()
		case kQueryString:
			req.QueryString, err = r.Str()
		case kHeader:
			req.Header, err = readHeader(r)
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
		return nil, fmt.Errorf("%w: http request: %v", ErrMalformed, err)
	}
	return req, nil
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
			resp.Header, err = readHeader(r)
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
// string arrays whose values may be nil.
func readHeader(r *Reader) (map[string][]string, error) {
	if t, err := r.Next(); err != nil || t == Nil {
		return nil, r.Skip()
	}
	n, err := r.MapLen()
	if err != nil {
		return nil, err
	}
	h := make(map[string][]string, n)
	for i := 0; i < n; i++ {
		k, err := r.Str()
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
		vs := make([]string, m)
		for j := range vs {
			if vs[j], err = r.Str(); err != nil {
				return nil, fmt.Errorf("header %q: %w", k, err)
			}
		}
		h[k] = vs
	}
	return h, nil
}
