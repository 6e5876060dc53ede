package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// ErrMalformed wraps every failure to decode untrusted msgpack, here and in
// the decoders built on Reader elsewhere, so callers branch on one error.
var ErrMalformed = errors.New("malformed msgpack")

// MaxDepth bounds the nesting of values Reader.Skip discards, so hostile
// input cannot make a decoder recurse without limit.
const MaxDepth = 32

// errShort reports a value that runs past the end of the input.
var errShort = errors.New("unexpected end of input")

// Type is the kind of the next msgpack value, as Reader.Next reports it.
type Type uint8

// The msgpack value kinds. Int covers signed and unsigned integers of every
// width; Invalid is the one code msgpack never uses (0xc1).
const (
	Invalid Type = iota
	Nil
	Bool
	Int
	Float
	Str
	Bin
	Array
	Map
	Ext
)

// Reader reads msgpack from a byte slice without copying byte strings out
// of it. Every length is checked against what is left before it is used, so
// hostile input can neither over-read nor make it allocate more than the
// input's size. Its errors are plain; a decoder wraps the one it returns in
// ErrMalformed.
type Reader struct {
	b     []byte
	i     int
	depth int // of the map whose fields are being read, for Skip's bound
}

// NewReader reads data; the byte strings it returns are slices of data.
func NewReader(data []byte) *Reader { return &Reader{b: data} }

func (r *Reader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

// n reads a big-endian unsigned integer of size bytes.
func (r *Reader) n(size int) (uint64, error) {
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

// take returns the next n bytes as a slice of the input whose capacity ends
// with it, so appending to it cannot write over what follows.
func (r *Reader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.i) {
		return nil, errShort
	}
	s := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return s, nil
}

// Next reports the type of the next value without reading it.
func (r *Reader) Next() (Type, error) {
	if r.i >= len(r.b) {
		return Invalid, errShort
	}
	switch c := r.b[r.i]; {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		return Int, nil
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		return Map, nil
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		return Array, nil
	case c&0xe0 == 0xa0 || (c >= 0xd9 && c <= 0xdb):
		return Str, nil
	case c == 0xc0:
		return Nil, nil
	case c == 0xc2 || c == 0xc3:
		return Bool, nil
	case c >= 0xc4 && c <= 0xc6:
		return Bin, nil
	case c == 0xca || c == 0xcb:
		return Float, nil
	case (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8):
		return Ext, nil
	}
	return Invalid, nil
}

// strLen reads the length of a str whose code c was just read.
func (r *Reader) strLen(c byte) (uint64, error) {
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
	return 0, fmt.Errorf("want a string or bin, got code 0x%02x", c)
}

// Str reads a string; nil reads as "", and bin is taken as a string, as
// msgpack's reflection decoders take it.
func (r *Reader) Str() (string, error) {
	s, err := r.byteString()
	return string(s), err
}

// str reads a string as Str does; with view, the string is a view of the
// input rather than a copy, for a decoder whose caller gave the input up.
func (r *Reader) str(view bool) (string, error) {
	s, err := r.byteString()
	if view {
		return unsafe.String(unsafe.SliceData(s), len(s)), err
	}
	return string(s), err
}

// Bytes reads bin, str (as bytes) or nil, and returns a slice of the input,
// not a copy.
func (r *Reader) Bytes() ([]byte, error) { return r.byteString() }

// ByteArray reads a byte string in every form wasmCloud's peers write one:
// bin (wasmbus-rpc, the OTP host's invocations), str (the OTP host's
// replies, Msgpax packs every binary as str), an array of integers 0..255
// (serde_bytes' reader takes that too) or nil (latticed's replies before
// docs/protocol.md §3 made it empty). Bin and str come back as slices of the
// input; an array is copied, one byte per element.
func (r *Reader) ByteArray() ([]byte, error) {
	if t, err := r.Next(); err != nil || t != Array {
		return r.byteString()
	}
	n, err := r.ArrayLen()
	if err != nil {
		return nil, err
	}
	if n > len(r.b)-r.i { // each element takes at least a byte
		return nil, errShort
	}
	out := make([]byte, n)
	for i := range out {
		v, err := r.Uint()
		if err != nil {
			return nil, err
		}
		if v > 0xff {
			return nil, fmt.Errorf("byte array element %d is %d, above 255", i, v)
		}
		out[i] = byte(v)
	}
	return out, nil
}

// byteString reads bin, str or nil as a slice of the input.
func (r *Reader) byteString() ([]byte, error) {
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

// Uint reads a non-negative integer of any msgpack width, signed or not;
// nil reads as 0.
func (r *Reader) Uint() (uint64, error) {
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

// Bool reads true or false; nil reads as false.
func (r *Reader) Bool() (bool, error) {
	c, err := r.byte()
	switch {
	case err != nil:
		return false, err
	case c == 0xc3:
		return true, nil
	case c == 0xc2 || c == 0xc0:
		return false, nil
	}
	return false, fmt.Errorf("want a boolean, got code 0x%02x", c)
}

// container reads a map or array header; n counts its elements (a map's
// keys and values both).
func (r *Reader) container(c byte) (n uint64, ok bool, err error) {
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

// MapLen reads a map header and returns its number of entries.
func (r *Reader) MapLen() (int, error) {
	n, err := r.containerLen(Map, "a map")
	return int(n / 2), err
}

// ArrayLen reads an array header and returns its number of elements.
func (r *Reader) ArrayLen() (int, error) {
	n, err := r.containerLen(Array, "an array")
	return int(n), err
}

// containerLen reads the header of a container of type want and returns
// its count of elements (a map's keys and values both).
func (r *Reader) containerLen(want Type, name string) (uint64, error) {
	t, err := r.Next()
	if err != nil {
		return 0, err
	}
	c, _ := r.byte() // Next saw it
	if t != want {
		return 0, fmt.Errorf("want %s, got code 0x%02x", name, c)
	}
	n, _, err := r.container(c)
	if err != nil {
		return 0, err
	}
	// Every element takes at least a byte: a count beyond that is a lie.
	if n > uint64(len(r.b)-r.i) {
		return 0, errShort
	}
	return n, nil
}

// Fields calls fn for each key of the map at the reader's position; fn
// reads the key's value, or skips it. The key is a slice of the input, so
// reading the map allocates nothing: `switch string(key)` compares without
// a copy, and string(key) keeps it. Errors name the field they are in.
func (r *Reader) Fields(fn func(key []byte) error) error {
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	r.depth++
	defer func() { r.depth-- }()
	for i := 0; i < n; i++ {
		key, err := r.byteString()
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := fn(key); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

// Skip discards the next value, whatever its type. Counting the maps Fields
// is inside, it refuses nesting deeper than MaxDepth.
func (r *Reader) Skip() error { return r.skip(max(r.depth, 1)) }

func (r *Reader) skip(depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nesting deeper than %d", MaxDepth)
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

// End reports bytes after the top-level value as an error: a message is one
// value.
func (r *Reader) End() error {
	if r.i != len(r.b) {
		return errors.New("trailing bytes after the message")
	}
	return nil
}

// Writer appends msgpack values to a buffer. The encoders that use it size
// the buffer first with StrSize, BinSize, UintSize and ContainerSize, so a
// message is written in one allocation of its exact size.
type Writer struct{ b []byte }

// NewWriter returns a writer whose buffer holds size bytes before it grows.
func NewWriter(size int) Writer { return Writer{b: make([]byte, 0, size)} }

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.b }

// StrSize is the encoded size of a string of n bytes.
func StrSize(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	}
	return 5 + n
}

// BinSize is the encoded size of b as Bin writes it (nil as msgpack nil).
func BinSize(b []byte) int {
	switch n := len(b); {
	case b == nil:
		return 1
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	default:
		return 5 + n
	}
}

// UintSize is the encoded size of v in its most compact form.
func UintSize(v uint64) int {
	switch {
	case v <= 0x7f:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

// ContainerSize is the size of a map or array header of n entries: the two
// kinds share their layout (fix form, 16-bit, 32-bit length).
func ContainerSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

// MapHeader writes the header of a map of n entries: fixmap, map 16 or map 32.
func (w *Writer) MapHeader(n int) { w.containerHeader(n, 0x80, 0xde) }

// ArrayHeader writes the header of an array of n elements: fixarray, array
// 16 or array 32.
func (w *Writer) ArrayHeader(n int) { w.containerHeader(n, 0x90, 0xdc) }

// containerHeader writes a map or array header: fix is the fix form's tag,
// tag16 the 16-bit form's (the 32-bit form's is the next byte).
func (w *Writer) containerHeader(n int, fix, tag16 byte) {
	switch {
	case n < 16:
		w.b = append(w.b, fix|byte(n))
	case n <= 0xffff:
		w.b = append(w.b, tag16, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, tag16+1), uint32(n))
	}
}

// Nil writes msgpack nil.
func (w *Writer) Nil() { w.b = append(w.b, 0xc0) }

// Bool writes true or false.
func (w *Writer) Bool(v bool) {
	if v {
		w.b = append(w.b, 0xc3)
		return
	}
	w.b = append(w.b, 0xc2)
}

// Str writes a string in its most compact form.
func (w *Writer) Str(s string) {
	w.strHeader(len(s))
	w.b = append(w.b, s...)
}

// strHeader writes the header of a str of n bytes: fixstr, str 8, 16 or 32.
func (w *Writer) strHeader(n int) {
	switch {
	case n < 32:
		w.b = append(w.b, 0xa0|byte(n))
	case n <= 0xff:
		w.b = append(w.b, 0xd9, byte(n))
	case n <= 0xffff:
		w.b = append(w.b, 0xda, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xdb), uint32(n))
	}
}

// Bin writes a byte string; nil is written as msgpack nil, as reflection
// encoders write a nil slice.
func (w *Writer) Bin(b []byte) {
	switch n := len(b); {
	case b == nil:
		w.b = append(w.b, 0xc0)
		return
	case n <= 0xff:
		w.b = append(w.b, 0xc4, byte(n))
	case n <= 0xffff:
		w.b = append(w.b, 0xc5, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xc6), uint32(n))
	}
	w.b = append(w.b, b...)
}

// StrBytes writes b as a msgpack str, as the OTP host writes a reply's
// msg (docs/protocol.md §3); nil is written as the empty str, never nil.
// The bytes need not be UTF-8: every reader of msg takes them as bytes.
func (w *Writer) StrBytes(b []byte) {
	w.strHeader(len(b))
	w.b = append(w.b, b...)
}

// Uint writes v in its most compact form.
func (w *Writer) Uint(v uint64) {
	switch {
	case v <= 0x7f:
		w.b = append(w.b, byte(v))
	case v <= 0xff:
		w.b = append(w.b, 0xcc, byte(v))
	case v <= 0xffff:
		w.b = append(w.b, 0xcd, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xce), uint32(v))
	default:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcf), v)
	}
}

// Int writes v in its most compact form: non-negative values as Uint
// does, negative ones as a negative fixint or the narrowest signed width (the
// bytes of a reflection encoder with compact integers).
func (w *Writer) Int(v int64) {
	switch {
	case v >= 0:
		w.Uint(uint64(v))
	case v >= -32:
		w.b = append(w.b, byte(v))
	case v >= math.MinInt8:
		w.b = append(w.b, 0xd0, byte(v))
	case v >= math.MinInt16:
		w.b = append(w.b, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xd2), uint32(v))
	default:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xd3), uint64(v))
	}
}

// Uint16 writes v in the fixed-width uint 16 form (0xcd and two bytes), as
// reflection encoders without compact integers write a Go uint16.
func (w *Writer) Uint16(v uint16) { w.b = append(w.b, 0xcd, byte(v>>8), byte(v)) }

// Int32 writes v in the fixed-width int 32 form (0xd2 and four bytes), as
// reflection encoders without compact integers write a Go int32.
func (w *Writer) Int32(v int32) {
	w.b = binary.BigEndian.AppendUint32(append(w.b, 0xd2), uint32(v))
}

// Uint32 writes v in the fixed-width uint 32 form (0xce and four bytes), as
// reflection encoders without compact integers write a Go uint32.
func (w *Writer) Uint32(v uint32) {
	w.b = binary.BigEndian.AppendUint32(append(w.b, 0xce), v)
}

// Int reads an integer of any msgpack width, signed or not, that fits an
// int64; nil reads as 0.
func (r *Reader) Int() (int64, error) {
	if r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c >= 0xe0: // negative fixint
			r.i++
			return int64(int8(c)), nil
		case c >= 0xd0 && c <= 0xd3:
			r.i++
			size := 1 << (c - 0xd0)
			v, err := r.n(size)
			if err != nil {
				return 0, err
			}
			shift := 64 - 8*size // sign-extend from size bytes
			return int64(v<<shift) >> shift, nil
		}
	}
	v, err := r.Uint()
	if err == nil && v > math.MaxInt64 {
		return 0, fmt.Errorf("integer %d does not fit 64 signed bits", v)
	}
	return int64(v), err
}

// Int32 reads an integer of any msgpack width that fits an int32.
func (r *Reader) Int32() (int32, error) {
	v, err := r.Int()
	if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		return 0, fmt.Errorf("integer %d does not fit 32 bits", v)
	}
	return int32(v), err
}

// Uint32 reads a non-negative integer of any msgpack width that fits a
// uint32.
func (r *Reader) Uint32() (uint32, error) {
	v, err := r.Uint()
	if err == nil && v > math.MaxUint32 {
		return 0, fmt.Errorf("integer %d does not fit 32 bits", v)
	}
	return uint32(v), err
}
