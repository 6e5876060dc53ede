package keyvalue

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/latticed/latticed/wire"
)

// MaxArgBytes bounds an operation's msgpack argument.
const MaxArgBytes = 1 << 20

// maxDepth bounds nesting in skipped values.
const maxDepth = 16

// args is a decoded operation argument; which fields are set depends on the
// operation (docs/protocol.md §9).
type args struct {
	key     string   // Get, Del, Contains, ListClear, SetQuery, SetClear: a bare string
	value   string   // Set, ListAdd, ListDel, SetAdd, SetDel
	expires uint32   // Set
	delta   int32    // Increment
	start   int32    // ListRange
	stop    int32    // ListRange
	names   []string // SetIntersection, SetUnion: a bare list of strings
}

// argShape is how an operation's argument is encoded.
type argShape int

const (
	shapeString    argShape = iota // a bare msgpack string
	shapeStrings                   // a bare msgpack array of strings
	shapeSet                       // {key, value, expires}
	shapeIncrement                 // {key, value}
	shapeListValue                 // {listName, value}
	shapeListRange                 // {listName, start, stop}
	shapeSetValue                  // {setName, value}
)

var opShapes = map[string]argShape{
	wire.OpKVGet:          shapeString,
	wire.OpKVSet:          shapeSet,
	wire.OpKVDel:          shapeString,
	wire.OpKVContains:     shapeString,
	wire.OpKVIncrement:    shapeIncrement,
	wire.OpKVListAdd:      shapeListValue,
	wire.OpKVListClear:    shapeString,
	wire.OpKVListDel:      shapeListValue,
	wire.OpKVListRange:    shapeListRange,
	wire.OpKVSetAdd:       shapeSetValue,
	wire.OpKVSetDel:       shapeSetValue,
	wire.OpKVSetQuery:     shapeString,
	wire.OpKVSetIntersect: shapeStrings,
	wire.OpKVSetUnion:     shapeStrings,
	wire.OpKVSetClear:     shapeString,
}

// errMalformedArg wraps every argument decoding failure.
var errMalformedArg = errors.New("malformed argument")

// decodeArgs parses the msgpack argument of a known operation from
// untrusted bytes. Map arguments accept keys in any order, ignore unknown
// keys and treat nil or absent fields as zero values, as serde does for
// wasmCloud's structs; strings may arrive as str or bin.
func decodeArgs(shape argShape, data []byte) (args, error) {
	var a args
	if len(data) > MaxArgBytes {
		return a, fmt.Errorf("%w: %d bytes exceeds %d", errMalformedArg, len(data), MaxArgBytes)
	}
	d := msgpack.NewDecoder(bytes.NewReader(data))
	var err error
	switch shape {
	case shapeString:
		a.key, err = str(d)
	case shapeStrings:
		a.names, err = strs(d)
	default:
		err = fields(d, func(name string) error {
			var err error
			switch {
			case name == "key" && (shape == shapeSet || shape == shapeIncrement),
				name == "listName" && (shape == shapeListValue || shape == shapeListRange),
				name == "setName" && shape == shapeSetValue:
				a.key, err = str(d)
			case name == "value" && shape == shapeIncrement:
				a.delta, err = i32(d)
			case name == "value" && shape != shapeListRange:
				a.value, err = str(d)
			case name == "expires" && shape == shapeSet:
				a.expires, err = u32(d)
			case name == "start" && shape == shapeListRange:
				a.start, err = i32(d)
			case name == "stop" && shape == shapeListRange:
				a.stop, err = i32(d)
			default:
				err = skip(d, 1)
			}
			return err
		})
	}
	if err == nil {
		if _, perr := d.PeekCode(); perr == nil {
			err = errors.New("trailing bytes after the argument")
		}
	}
	if err != nil {
		return args{}, fmt.Errorf("%w: %v", errMalformedArg, err)
	}
	return a, nil
}

func fields(d *msgpack.Decoder, fn func(name string) error) error {
	code, err := d.PeekCode()
	if err != nil {
		return err
	}
	if !msgpcode.IsFixedMap(code) && code != msgpcode.Map16 && code != msgpcode.Map32 {
		return fmt.Errorf("want a map, got code 0x%02x", code)
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		name, err := str(d)
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := fn(name); err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	return nil
}

// str reads a str or bin (nil is "").
func str(d *msgpack.Decoder) (string, error) {
	code, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	switch {
	case code == msgpcode.Nil:
		return "", d.Skip()
	case msgpcode.IsString(code) || msgpcode.IsBin(code):
		return d.DecodeString()
	}
	return "", fmt.Errorf("want a string, got code 0x%02x", code)
}

func strs(d *msgpack.Decoder) ([]string, error) {
	code, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if code == msgpcode.Nil {
		return nil, d.Skip()
	}
	if !msgpcode.IsFixedArray(code) && code != msgpcode.Array16 && code != msgpcode.Array32 {
		return nil, fmt.Errorf("want a list of strings, got code 0x%02x", code)
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	// Each element takes at least one byte, so a hostile length cannot make
	// us allocate more than the input justifies.
	out := make([]string, 0, min(n, MaxArgBytes))
	for i := 0; i < n; i++ {
		s, err := str(d)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func isInt(code byte) bool {
	return msgpcode.IsFixedNum(code) || (code >= msgpcode.Uint8 && code <= msgpcode.Int64)
}

// integer reads any msgpack integer into [lo, hi] (nil is 0).
func integer(d *msgpack.Decoder, lo, hi int64, kind string) (int64, error) {
	code, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	switch {
	case code == msgpcode.Nil:
		return 0, d.Skip()
	case code == msgpcode.Uint64:
		u, err := d.DecodeUint64()
		if err != nil {
			return 0, err
		}
		if u > uint64(hi) {
			return 0, fmt.Errorf("%d does not fit %s", u, kind)
		}
		return int64(u), nil
	case isInt(code):
		n, err := d.DecodeInt64()
		if err != nil {
			return 0, err
		}
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d does not fit %s", n, kind)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want an integer, got code 0x%02x", code)
}

func i32(d *msgpack.Decoder) (int32, error) {
	n, err := integer(d, -1<<31, 1<<31-1, "an i32")
	return int32(n), err
}

func u32(d *msgpack.Decoder) (uint32, error) {
	n, err := integer(d, 0, 1<<32-1, "a u32")
	return uint32(n), err
}

// skip discards one value, refusing nesting deeper than maxDepth.
func skip(d *msgpack.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	code, err := d.PeekCode()
	if err != nil {
		return err
	}
	var n int
	switch {
	case msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32:
		if n, err = d.DecodeMapLen(); err != nil {
			return err
		}
		n *= 2
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		if n, err = d.DecodeArrayLen(); err != nil {
			return err
		}
	default:
		return d.Skip()
	}
	for i := 0; i < n; i++ {
		if err := skip(d, depth+1); err != nil {
			return err
		}
	}
	return nil
}
