package wire

import (
	"fmt"
)

// The codecs of the key-value and logging payloads an actor sends and
// receives through its host calls. Encoders write what msgpack's reflection
// encoder wrote for these structs (fixed-width int32 and uint32), the bytes
// actors have always sent; decoders take any integer width, keys in any
// order, and skip unknown keys, as serde does for wasmCloud's structs.

// Field names of the payloads below (their msgpack tags).
const (
	kKey     = "key"
	kValue   = "value"
	kExpires = "expires"
	kExists  = "exists"
	kLevel   = "level"
	kText    = "text"
)

// Encode is the KeyValue.Increment argument's msgpack wire form.
func (q *KVIncrementRequest) Encode() []byte {
	w := NewWriter(ContainerSize(2) + StrSize(len(kKey)) + StrSize(len(q.Key)) + StrSize(len(kValue)) + 5)
	w.MapHeader(2)
	w.Str(kKey)
	w.Str(q.Key)
	w.Str(kValue)
	w.Int32(q.Value)
	return w.Bytes()
}

// DecodeKVIncrementRequest parses a KeyValue.Increment argument from
// untrusted bytes.
func DecodeKVIncrementRequest(data []byte) (*KVIncrementRequest, error) {
	return decodeMap("increment request", data, func(v *KVIncrementRequest, r *Reader, key []byte) (err error) {
		switch string(key) {
		case kKey:
			v.Key, err = r.Str()
		case kValue:
			v.Value, err = r.Int32()
		default:
			err = r.Skip()
		}
		return err
	})
}

// Encode is the KeyValue.Set argument's msgpack wire form.
func (q *KVSetRequest) Encode() []byte {
	w := NewWriter(ContainerSize(3) + StrSize(len(kKey)) + StrSize(len(q.Key)) +
		StrSize(len(kValue)) + StrSize(len(q.Value)) + StrSize(len(kExpires)) + 5)
	w.MapHeader(3)
	w.Str(kKey)
	w.Str(q.Key)
	w.Str(kValue)
	w.Str(q.Value)
	w.Str(kExpires)
	w.Uint32(q.Expires)
	return w.Bytes()
}

// DecodeKVSetRequest parses a KeyValue.Set argument from untrusted bytes.
func DecodeKVSetRequest(data []byte) (*KVSetRequest, error) {
	return decodeMap("set request", data, func(v *KVSetRequest, r *Reader, key []byte) (err error) {
		switch string(key) {
		case kKey:
			v.Key, err = r.Str()
		case kValue:
			v.Value, err = r.Str()
		case kExpires:
			v.Expires, err = r.Uint32()
		default:
			err = r.Skip()
		}
		return err
	})
}

// Encode is the KeyValue.Get reply's msgpack wire form.
func (p *KVGetResponse) Encode() []byte {
	w := NewWriter(ContainerSize(2) + StrSize(len(kValue)) + StrSize(len(p.Value)) + StrSize(len(kExists)) + 1)
	w.MapHeader(2)
	w.Str(kValue)
	w.Str(p.Value)
	w.Str(kExists)
	w.Bool(p.Exists)
	return w.Bytes()
}

// DecodeKVGetResponse parses a KeyValue.Get reply from untrusted bytes.
func DecodeKVGetResponse(data []byte) (*KVGetResponse, error) {
	return decodeMap("get response", data, func(v *KVGetResponse, r *Reader, key []byte) (err error) {
		switch string(key) {
		case kValue:
			v.Value, err = r.Str()
		case kExists:
			v.Exists, err = r.Bool()
		default:
			err = r.Skip()
		}
		return err
	})
}

// Encode is the Logging.WriteLog argument's msgpack wire form.
func (e *LogEntry) Encode() []byte {
	w := NewWriter(ContainerSize(2) + StrSize(len(kLevel)) + StrSize(len(e.Level)) + StrSize(len(kText)) + StrSize(len(e.Text)))
	w.MapHeader(2)
	w.Str(kLevel)
	w.Str(e.Level)
	w.Str(kText)
	w.Str(e.Text)
	return w.Bytes()
}

// DecodeLogEntry parses a Logging.WriteLog argument from untrusted bytes.
func DecodeLogEntry(data []byte) (*LogEntry, error) {
	return decodeMap("log entry", data, func(v *LogEntry, r *Reader, key []byte) (err error) {
		switch string(key) {
		case kLevel:
			v.Level, err = r.Str()
		case kText:
			v.Text, err = r.Str()
		default:
			err = r.Skip()
		}
		return err
	})
}

// ReadMap reads data as one msgpack map, calling field for each key (field
// reads the key's value, or skips it; key is as in Reader.Fields), and
// refuses bytes after the map. Its
// errors are plain, as Reader's are; a decoder wraps the one it returns in
// ErrMalformed.
func ReadMap(data []byte, field func(r *Reader, key []byte) error) error {
	r := NewReader(data)
	if err := r.Fields(func(key []byte) error { return field(r, key) }); err != nil {
		return err
	}
	return r.End()
}

// decodeMap is ReadMap into a new T, its error wrapped in ErrMalformed and
// named what.
func decodeMap[T any](what string, data []byte, field func(v *T, r *Reader, key []byte) error) (*T, error) {
	v := new(T)
	if err := ReadMap(data, func(r *Reader, key []byte) error { return field(v, r, key) }); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return v, nil
}
