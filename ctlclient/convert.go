package ctlclient

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxDepth bounds nesting in both directions, so hostile input cannot make
// the converters recurse without limit.
const maxDepth = 100

// JSONToMsgpack converts one JSON value to msgpack, the payload encoding of
// invocations: objects become maps with string keys (sorted, so the output is
// deterministic), integers become msgpack integers in their smallest form,
// other numbers float64, strings str, null nil. Empty input is an error; a
// caller that wants an empty payload sends none.
func JSONToMsgpack(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("invalid JSON: no value")
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: more than one value")
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := encodeJSONValue(enc, v, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeJSONValue(enc *msgpack.Encoder, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(x)
	case string:
		return enc.EncodeString(x)
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return enc.EncodeInt(i)
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return enc.EncodeUint(u)
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("number %s does not fit a float64", s)
		}
		return enc.EncodeFloat64(f)
	case []any:
		if err := enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, e := range x {
			if err := encodeJSONValue(enc, e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if err := enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeJSONValue(enc, x[k], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unexpected JSON value of type %T", v) // encoding/json produces no other types
}

// MsgpackToJSON renders one msgpack value as compact JSON, keeping map order.
// Byte strings (bin) become JSON strings when they are valid UTF-8 and base64
// (standard, padded) otherwise, and so do str values that are not UTF-8; map keys that are not strings become their
// JSON text; NaN and infinities become the strings "NaN", "+Inf", "-Inf";
// timestamps (ext -1) become RFC 3339 strings and other extensions
// {"ext_type": n, "data": "<base64>"}. Empty input renders as null. Input
// that is not exactly one msgpack value is an error.
func MsgpackToJSON(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return []byte("null"), nil
	}
	r := bytes.NewReader(data)
	d := msgpack.NewDecoder(r) // bytes.Reader is an io.ByteScanner: no buffering, r.Len() stays exact
	var out bytes.Buffer
	if err := renderValue(d, r, &out, 0); err != nil {
		return nil, fmt.Errorf("not msgpack: %w", err)
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("not msgpack: %d bytes follow the first value", r.Len())
	}
	return out.Bytes(), nil
}

func renderValue(d *msgpack.Decoder, r *bytes.Reader, out *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case c == msgpcode.Nil:
		if err := d.DecodeNil(); err != nil {
			return err
		}
		out.WriteString("null")
	case c == msgpcode.True || c == msgpcode.False:
		b, err := d.DecodeBool()
		if err != nil {
			return err
		}
		out.WriteString(strconv.FormatBool(b))
	case c == msgpcode.Uint64:
		u, err := d.DecodeUint64()
		if err != nil {
			return err
		}
		out.WriteString(strconv.FormatUint(u, 10))
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Uint32, c >= msgpcode.Int8 && c <= msgpcode.Int64:
		i, err := d.DecodeInt64()
		if err != nil {
			return err
		}
		out.WriteString(strconv.FormatInt(i, 10))
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		if err != nil {
			return err
		}
		switch {
		case math.IsNaN(f):
			writeString(out, "NaN")
		case math.IsInf(f, 1):
			writeString(out, "+Inf")
		case math.IsInf(f, -1):
			writeString(out, "-Inf")
		default:
			bits := 64
			if c == msgpcode.Float {
				bits = 32 // 0.1 as float32 prints as 0.1, not 0.10000000149011612
			}
			out.WriteString(strconv.FormatFloat(f, 'g', -1, bits))
		}
	case msgpcode.IsString(c):
		s, err := d.DecodeString()
		if err != nil {
			return err
		}
		writeBytes(out, []byte(s)) // a str that is not UTF-8 must not lose bytes either
	case msgpcode.IsBin(c):
		b, err := d.DecodeBytes()
		if err != nil {
			return err
		}
		writeBytes(out, b)
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		out.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := renderValue(d, r, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte(']')
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return err
		}
		out.WriteByte('{')
		for i := 0; i < n; i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := renderKey(d, r, out, depth+1); err != nil {
				return err
			}
			out.WriteByte(':')
			if err := renderValue(d, r, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte('}')
	case msgpcode.IsExt(c):
		return renderExt(d, r, out)
	default:
		return fmt.Errorf("unknown msgpack code 0x%02x", c)
	}
	return nil
}

// renderKey writes a map key as a JSON string: strings and bin as values are
// rendered, anything else as its JSON text (the integer 1 becomes "1").
func renderKey(d *msgpack.Decoder, r *bytes.Reader, out *bytes.Buffer, depth int) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsString(c) || msgpcode.IsBin(c) {
		return renderValue(d, r, out, depth)
	}
	var key bytes.Buffer
	if err := renderValue(d, r, &key, depth); err != nil {
		return err
	}
	writeString(out, key.String())
	return nil
}

func renderExt(d *msgpack.Decoder, r *bytes.Reader, out *bytes.Buffer) error {
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return err
	}
	if n < 0 || n > r.Len() {
		return fmt.Errorf("extension of %d bytes, only %d left", n, r.Len())
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if id == -1 { // the msgpack timestamp extension
		if t, ok := decodeTimestamp(b); ok {
			writeString(out, t.UTC().Format(time.RFC3339Nano))
			return nil
		}
	}
	out.WriteString(`{"ext_type":`)
	out.WriteString(strconv.Itoa(int(id)))
	out.WriteString(`,"data":`)
	writeString(out, base64.StdEncoding.EncodeToString(b))
	out.WriteByte('}')
	return nil
}

func decodeTimestamp(b []byte) (time.Time, bool) {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0), true
	case 8:
		v := binary.BigEndian.Uint64(b)
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)), true
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b))), true
	}
	return time.Time{}, false
}

// writeBytes writes b as a JSON string: as text when it is valid UTF-8, else base64.
func writeBytes(out *bytes.Buffer, b []byte) {
	if utf8.Valid(b) {
		writeString(out, string(b))
		return
	}
	writeString(out, base64.StdEncoding.EncodeToString(b))
}

// writeString writes s as a JSON string without HTML escaping, so a body
// holding "<p>" reads as such.
func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes; writes to a bytes.Buffer cannot fail
	out.Truncate(out.Len() - 1) // Encode's newline
}
