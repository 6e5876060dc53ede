package wire

import (
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"testing"
)

// The encoders write, byte for byte, what the actor SDK's reflection
// encoder (vmihailenco/msgpack) wrote for the same values, and the decoders
// read those bytes back.
func TestPayloadsEncodeAsBefore(t *testing.T) {
	for _, c := range []struct {
		name    string
		encoded []byte
		want    string // hex, from msgpack.Marshal of the struct
		decode  func([]byte) (any, error)
		value   any
	}{
		{"increment", (&KVIncrementRequest{Key: "k", Value: 1}).Encode(), "82a36b6579a16ba576616c7565d200000001",
			func(b []byte) (any, error) { return DecodeKVIncrementRequest(b) }, &KVIncrementRequest{Key: "k", Value: 1}},
		{"negative increment", (&KVIncrementRequest{Key: "k", Value: -1}).Encode(), "82a36b6579a16ba576616c7565d2ffffffff",
			func(b []byte) (any, error) { return DecodeKVIncrementRequest(b) }, &KVIncrementRequest{Key: "k", Value: -1}},
		{"set", (&KVSetRequest{Key: "k", Value: "v", Expires: 60}).Encode(), "83a36b6579a16ba576616c7565a176a765787069726573ce0000003c",
			func(b []byte) (any, error) { return DecodeKVSetRequest(b) }, &KVSetRequest{Key: "k", Value: "v", Expires: 60}},
		{"log entry", (&LogEntry{Level: "warn", Text: "x"}).Encode(), "82a56c6576656ca47761726ea474657874a178",
			func(b []byte) (any, error) { return DecodeLogEntry(b) }, &LogEntry{Level: "warn", Text: "x"}},
		{"get response", (&KVGetResponse{Value: "v", Exists: true}).Encode(), "82a576616c7565a176a6657869737473c3",
			func(b []byte) (any, error) { return DecodeKVGetResponse(b) }, &KVGetResponse{Value: "v", Exists: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := hex.EncodeToString(c.encoded); got != c.want {
				t.Errorf("encoded %s, want %s", got, c.want)
			}
			if cap(c.encoded) != len(c.encoded) {
				t.Errorf("buffer of %d bytes for %d: the size computation is off", cap(c.encoded), len(c.encoded))
			}
			got, err := c.decode(c.encoded)
			if err != nil || !reflect.DeepEqual(got, c.value) {
				t.Errorf("decoded %+v, %v; want %+v", got, err, c.value)
			}
		})
	}
}

// Decoders take what other encoders write: compact integers, keys in any
// order, unknown keys; and refuse what does not fit.
func TestPayloadDecodersAcceptAnyWidthAndRefuseGarbage(t *testing.T) {
	w := NewWriter(0) // {"extra": [1], "value": -5 as negative fixint, "key": "k"}
	w.MapHeader(3)
	w.Str("extra")
	w.ArrayHeader(1)
	w.Uint(1)
	w.Str("value")
	w.b = append(w.b, 0xfb)
	w.Str("key")
	w.Str("k")
	if q, err := DecodeKVIncrementRequest(w.Bytes()); err != nil || *q != (KVIncrementRequest{Key: "k", Value: -5}) {
		t.Errorf("compact, reordered, extra key: %+v, %v", q, err)
	}

	ints := []struct {
		hex  string
		want int64
		ok   bool
	}{
		{"05", 5, true}, {"ff", -1, true}, {"e0", -32, true}, {"d080", -128, true}, {"d0ff", -1, true},
		{"d1ff00", -256, true}, {"d2ffffffff", -1, true}, {"d3ffffffffffffffff", -1, true},
		{"cc80", 128, true}, {"cdffff", 65535, true}, {"ceffffffff", math.MaxUint32, true},
		{"cf7fffffffffffffff", math.MaxInt64, true}, {"cf8000000000000000", 0, false},
		{"c0", 0, true}, {"a161", 0, false}, {"d2ff", 0, false},
	}
	for _, c := range ints {
		b, _ := hex.DecodeString(c.hex)
		got, err := NewReader(b).Int()
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("Int(%s) = %d, %v; want %d, ok %v", c.hex, got, err, c.want, c.ok)
		}
	}
	if _, err := NewReader([]byte{0xce, 0x80, 0, 0, 0}).Int32(); err == nil {
		t.Error("Int32 read 2^31")
	}
	if _, err := NewReader([]byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}).Uint32(); err == nil {
		t.Error("Uint32 read 2^32")
	}

	for name, decode := range map[string]func([]byte) error{
		"increment": func(b []byte) error { _, err := DecodeKVIncrementRequest(b); return err },
		"set":       func(b []byte) error { _, err := DecodeKVSetRequest(b); return err },
		"get":       func(b []byte) error { _, err := DecodeKVGetResponse(b); return err },
		"log":       func(b []byte) error { _, err := DecodeLogEntry(b); return err },
	} {
		for _, bad := range []string{"", "a161", "81a36b6579", "80c0"} {
			b, _ := hex.DecodeString(bad)
			if err := decode(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s(%s): %v; want ErrMalformed", name, bad, err)
			}
		}
	}
}
