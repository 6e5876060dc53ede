package lattice

import (
	"errors"
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
// of the header sorted), which TestHTTPEncodersMatchMarshal checks.

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
	n := mpContainerLen(len(h))
	for _, k := range keys {
		n += mpStrLen(len(k))
		vs := h[k]
		if vs == nil {
			n++
			continue
		}
		n += mpContainerLen(len(vs))
		for _, v := range vs {
			n += mpStrLen(len(v))
		}
	}
	return n
}

// arrayHeader writes an array header: fixarray, array 16 or array 32.
func (w *mpWriter) arrayHeader(n int) { w.containerHeader(n, 0x90, 0xdc) }

func (w *mpWriter) header(h map[string][]string, keys []string) {
	if h == nil {
		w.b = append(w.b, 0xc0)
		return
	}
	w.mapHeader(len(h))
	for _, k := range keys {
		w.str(k)
		vs := h[k]
		if vs == nil {
			w.b = append(w.b, 0xc0)
			continue
		}
		w.arrayHeader(len(vs))
		for _, v := range vs {
			w.str(v)
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
	size := mpContainerLen(httpRequestFields) +
		mpStrLen(len(kMethod)) + mpStrLen(len(r.Method)) + mpStrLen(len(kPath)) + mpStrLen(len(r.Path)) +
		mpStrLen(len(kQueryString)) + mpStrLen(len(r.QueryString)) +
		mpStrLen(len(kHeader)) + headerSize(r.Header, keys) + mpStrLen(len(kBody)) + mpBinLen(r.Body)
	w := mpWriter{b: make([]byte, 0, size)}
	w.mapHeader(httpRequestFields)
	w.str(kMethod)
	w.str(r.Method)
	w.str(kPath)
	w.str(r.Path)
	w.str(kQueryString)
	w.str(r.QueryString)
	w.str(kHeader)
	w.header(r.Header, keys)
	w.str(kBody)
	w.bin(r.Body)
	return w.b
}

// Encode is the response's msgpack wire form, in one allocation of the
// exact size. The status code is written as msgpack's reflection encoder
// writes a uint16 (0xcd and two bytes), the form actors have always sent.
func (r *HTTPResponse) Encode() []byte {
	keys := sortedHeaderKeys(r.Header)
	size := mpContainerLen(httpResponseFields) + mpStrLen(len(kStatusCode)) + 3 +
		mpStrLen(len(kHeader)) + headerSize(r.Header, keys) + mpStrLen(len(kBody)) + mpBinLen(r.Body)
	w := mpWriter{b: make([]byte, 0, size)}
	w.mapHeader(httpResponseFields)
	w.str(kStatusCode)
	w.b = append(w.b, 0xcd, byte(r.StatusCode>>8), byte(r.StatusCode))
	w.str(kHeader)
	w.header(r.Header, keys)
	w.str(kBody)
	w.bin(r.Body)
	return w.b
}

// DecodeHTTPRequest parses an HttpServer.HandleRequest argument from
// untrusted bytes. Keys may come in any order; unknown keys are skipped.
// The returned Body aliases data: it is a slice of it, not a copy, so data
// must not be modified while the request is in use.
func DecodeHTTPRequest(data []byte) (*HTTPRequest, error) {
	req := new(HTTPRequest)
	r := &mpReader{b: data}
	err := r.fields(func(key string) error {
		var err error
		switch key {
		case kMethod:
			req.Method, err = r.str()
		case kPath:
			req.Path, err = r.str()
		case kQueryString:
			req.QueryString, err = r.str()
		case kHeader:
			req.Header, err = r.header()
		case kBody:
			req.Body, err = r.bytes()
		default:
			err = r.skip(1)
		}
		return err
	})
	if err == nil {
		err = r.end()
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
	r := &mpReader{b: data}
	err := r.fields(func(key string) error {
		var err error
		switch key {
		case kStatusCode:
			var v uint64
			if v, err = r.uint(); err == nil && v > 0xffff {
				err = fmt.Errorf("status code %d does not fit 16 bits", v)
			}
			resp.StatusCode = uint16(v)
		case kHeader:
			resp.Header, err = r.header()
		case kBody:
			resp.Body, err = r.bytes()
		default:
			err = r.skip(1)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: http response: %v", ErrMalformed, err)
	}
	return resp, nil
}

// mpReader reads msgpack from a byte slice without copying byte strings out
// of it. Every length is checked against what is left before it is used, so
// hostile input can neither over-read nor make it allocate more than the
// input's size.
type mpReader struct {
	b []byte
	i int
}

var errShort = errors.New("unexpected end of input")

func (r *mpReader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

// n reads a big-endian unsigned integer of size bytes.
func (r *mpReader) n(size int) (uint64, error) {
	if len(r.b)-r.i < size {
		return 0, errShort
	}
	var v uint64
	for _, c := range r.b[r.i : r.i+size] {
		v = v<<8 | uint64(c)
	}
	r.i += size
	return v, nil
}

// take returns the next n bytes as a slice of the input.
func (r *mpReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.i) {
		return nil, errShort
	}
	s := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return s, nil
}

// strLen reads the length of a str whose code c was just read.
func (r *mpReader) strLen(c byte) (uint64, error) {
	switch {
	case c&0xe0 == 0xa0:
		return uint64(c & 0x1f), nil
	case c == 0xd9:
		return r.n(1)
	case c == 0xda:
		return r.n(2)
	case c == 0xdb:
		return r.n(4)
	}
	return 0, fmt.Errorf("want a string, got code 0x%02x", c)
}

func (r *mpReader) str() (string, error) {
	c, err := r.byte()
	if err != nil || c == 0xc0 {
		return "", err
	}
	n, err := r.strLen(c)
	if err != nil {
		return "", err
	}
	s, err := r.take(n)
	return string(s), err
}

// bytes accepts bin, str (as bytes) and nil, and returns a slice of the input.
func (r *mpReader) bytes() ([]byte, error) {
	c, err := r.byte()
	if err != nil || c == 0xc0 {
		return nil, err
	}
	var n uint64
	switch c {
	case 0xc4:
		n, err = r.n(1)
	case 0xc5:
		n, err = r.n(2)
	case 0xc6:
		n, err = r.n(4)
	default:
		n, err = r.strLen(c)
	}
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// uint reads a non-negative integer of any msgpack width.
func (r *mpReader) uint() (uint64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c == 0xc0:
		return 0, nil
	case c == 0xcc || c == 0xd0:
		v, err = r.n(1)
		if c == 0xd0 && v > 0x7f {
			return 0, errors.New("negative integer")
		}
	case c == 0xcd || c == 0xd1:
		v, err = r.n(2)
		if c == 0xd1 && v > 0x7fff {
			return 0, errors.New("negative integer")
		}
	case c == 0xce || c == 0xd2:
		v, err = r.n(4)
		if c == 0xd2 && v > 0x7fffffff {
			return 0, errors.New("negative integer")
		}
	case c == 0xcf || c == 0xd3:
		v, err = r.n(8)
		if c == 0xd3 && v > 1<<63-1 {
			return 0, errors.New("negative integer")
		}
	default:
		return 0, fmt.Errorf("want an unsigned integer, got code 0x%02x", c)
	}
	return v, err
}

// container reads a map or array header; n counts its elements (a map's
// keys and values both).
func (r *mpReader) container(c byte) (n uint64, ok bool, err error) {
	switch {
	case c&0xf0 == 0x80:
		return 2 * uint64(c&0x0f), true, nil
	case c&0xf0 == 0x90:
		return uint64(c & 0x0f), true, nil
	case c == 0xde:
		n, err = r.n(2)
		return 2 * n, true, err
	case c == 0xdf:
		n, err = r.n(4)
		return 2 * n, true, err
	case c == 0xdc:
		n, err = r.n(2)
		return n, true, err
	case c == 0xdd:
		n, err = r.n(4)
		return n, true, err
	}
	return 0, false, nil
}

// mapLen reads a map header.
func (r *mpReader) mapLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	if c&0xf0 != 0x80 && c != 0xde && c != 0xdf {
		return 0, fmt.Errorf("want a map, got code 0x%02x", c)
	}
	n, _, err := r.container(c)
	if err != nil {
		return 0, err
	}
	// Every entry takes at least two bytes: a count beyond that is a lie.
	if n > uint64(len(r.b)-r.i) {
		return 0, errShort
	}
	return int(n / 2), nil
}

// fields calls fn for each key of the map at the reader's position.
func (r *mpReader) fields(fn func(key string) error) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := fn(key); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

// header reads map[string][]string (nil, or a map of string arrays whose
// values may be nil).
func (r *mpReader) header() (map[string][]string, error) {
	if r.i < len(r.b) && r.b[r.i] == 0xc0 {
		r.i++
		return nil, nil
	}
	n, err := r.mapLen()
	if err != nil {
		return nil, err
	}
	h := make(map[string][]string, n)
	for i := 0; i < n; i++ {
		k, err := r.str()
		if err != nil {
			return nil, fmt.Errorf("header name: %w", err)
		}
		c, err := r.byte()
		if err != nil {
			return nil, err
		}
		if c == 0xc0 {
			h[k] = nil
			continue
		}
		m, ok, err := r.container(c)
		if err == nil && (!ok || c&0xf0 == 0x80 || c == 0xde || c == 0xdf) {
			err = fmt.Errorf("want an array, got code 0x%02x", c)
		}
		if err == nil && m > uint64(len(r.b)-r.i) {
			err = errShort
		}
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		vs := make([]string, m)
		for j := range vs {
			if vs[j], err = r.str(); err != nil {
				return nil, fmt.Errorf("header %q: %w", k, err)
			}
		}
		h[k] = vs
	}
	return h, nil
}

// skip discards one value of any type, refusing nesting deeper than maxSkipDepth.
func (r *mpReader) skip(depth int) error {
	if depth > maxSkipDepth {
		return fmt.Errorf("nesting deeper than %d", maxSkipDepth)
	}
	c, err := r.byte()
	if err != nil {
		return err
	}
	if n, ok, err := r.container(c); ok || err != nil {
		if err != nil {
			return err
		}
		if n > uint64(len(r.b)-r.i) {
			return errShort
		}
		for i := uint64(0); i < n; i++ {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	var size uint64 // bytes that follow the code
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c&0xe0 == 0xa0:
		size = uint64(c & 0x1f)
	case c == 0xcc || c == 0xd0:
		size = 1
	case c == 0xcd || c == 0xd1:
		size = 2
	case c == 0xce || c == 0xd2 || c == 0xca:
		size = 4
	case c == 0xcf || c == 0xd3 || c == 0xcb:
		size = 8
	case c == 0xd4:
		size = 2
	case c == 0xd5:
		size = 3
	case c == 0xd6:
		size = 5
	case c == 0xd7:
		size = 9
	case c == 0xd8:
		size = 17
	case c == 0xc4 || c == 0xd9:
		size, err = r.n(1)
	case c == 0xc5 || c == 0xda:
		size, err = r.n(2)
	case c == 0xc6 || c == 0xdb:
		size, err = r.n(4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8/16/32: length, then type byte
		if size, err = r.n(1 << (c - 0xc7)); err == nil {
			size++
		}
	default:
		return fmt.Errorf("unknown code 0x%02x", c)
	}
	if err != nil {
		return err
	}
	_, err = r.take(size)
	return err
}

// end reports trailing bytes after the top-level value as malformed input.
func (r *mpReader) end() error {
	if r.i != len(r.b) {
		return errors.New("trailing bytes after the message")
	}
	return nil
}
