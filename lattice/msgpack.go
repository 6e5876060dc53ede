package lattice

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/latticed/latticed/wire"
)

// Marshal encodes v as msgpack with structs as maps keyed by field name, the
// encoding every wasmCloud peer uses.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes msgpack into v.
func Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	return nil
}

// mapReader walks a msgpack map field by field; the caller decodes the values
// it knows and skips the rest.
type mapReader struct{ d *msgpack.Decoder }

// newMapReader reads data with a pooled decoder, whose buffer for strings is
// reused from message to message; release returns it.
func newMapReader(data []byte) mapReader {
	d := msgpack.GetDecoder()
	d.Reset(bytes.NewReader(data))
	return mapReader{d: d}
}

// release returns the decoder to the pool; r is unusable afterwards.
func (r mapReader) release() { msgpack.PutDecoder(r.d) }

// fields calls fn for each key of the map at the decoder's position.
func (r mapReader) fields(fn func(key string) error) error {
	code, err := r.d.PeekCode()
	if err != nil {
		return err
	}
	if !msgpcode.IsFixedMap(code) && code != msgpcode.Map16 && code != msgpcode.Map32 {
		return fmt.Errorf("want a map, got code 0x%02x", code)
	}
	n, err := r.d.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		key, err := r.d.DecodeString()
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := fn(key); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

func (r mapReader) str() (string, error) {
	code, err := r.d.PeekCode()
	if err != nil {
		return "", err
	}
	if code == msgpcode.Nil {
		return "", r.d.Skip()
	}
	return r.d.DecodeString()
}

// bytesLoose accepts bin, str (Elixir peers), nil, or an empty array (the OTP
// host's "actor not running" reply) as a byte string.
func (r mapReader) bytesLoose() ([]byte, error) {
	code, err := r.d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case code == msgpcode.Nil:
		return nil, r.d.Skip()
	case msgpcode.IsBin(code):
		return r.d.DecodeBytes()
	case msgpcode.IsString(code):
		s, err := r.d.DecodeString()
		return []byte(s), err
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		n, err := r.d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, errors.New("want bytes, got a non-empty array")
		}
		return nil, nil
	}
	return nil, fmt.Errorf("want bytes, got code 0x%02x", code)
}

func (r mapReader) uint() (uint64, error) {
	code, err := r.d.PeekCode()
	if err != nil {
		return 0, err
	}
	if code == msgpcode.Nil {
		return 0, r.d.Skip()
	}
	return r.d.DecodeUint64()
}

func (r mapReader) boolean() (bool, error) {
	code, err := r.d.PeekCode()
	if err != nil {
		return false, err
	}
	if code == msgpcode.Nil {
		return false, r.d.Skip()
	}
	return r.d.DecodeBool()
}

// skip discards one value of any type, refusing nesting deeper than wire.MaxDepth.
func (r mapReader) skip(depth int) error {
	if depth > wire.MaxDepth {
		return fmt.Errorf("nesting deeper than %d", wire.MaxDepth)
	}
	code, err := r.d.PeekCode()
	if err != nil {
		return err
	}
	var n int
	switch {
	case msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32:
		if n, err = r.d.DecodeMapLen(); err != nil {
			return err
		}
		n *= 2
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		if n, err = r.d.DecodeArrayLen(); err != nil {
			return err
		}
	default:
		return r.d.Skip()
	}
	for i := 0; i < n; i++ {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// end reports trailing bytes after the top-level value as malformed input.
func (r mapReader) end() error {
	if _, err := r.d.PeekCode(); err == nil {
		return errors.New("trailing bytes after the message")
	}
	return nil
}
