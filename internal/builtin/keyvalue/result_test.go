package keyvalue

import (
	"bytes"
	"math"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// Every result an operation returns is written in exactly the bytes the
// reflection encoder (lattice.Marshal, compact integers) writes for it, the
// bytes actors have always received.
func TestResultBytesAreTheReflectionEncoders(t *testing.T) {
	long := string(bytes.Repeat([]byte("v"), 300))
	for _, v := range []any{
		&wire.KVGetResponse{}, &wire.KVGetResponse{Value: "x", Exists: true}, &wire.KVGetResponse{Value: long, Exists: true},
		true, false,
		int32(0), int32(1), int32(127), int32(128), int32(255), int32(256), int32(65535), int32(65536), int32(math.MaxInt32),
		int32(-1), int32(-32), int32(-33), int32(-128), int32(-129), int32(-32768), int32(-32769), int32(math.MinInt32),
		uint32(0), uint32(127), uint32(128), uint32(65536), uint32(math.MaxUint32),
		[]string(nil), []string{}, []string{"a", long}, make([]string, 20),
	} {
		got, err := encodeResult(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		want, err := lattice.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%#v: % x, want % x", v, got, want)
		}
	}
	if _, err := encodeResult(struct{}{}); err == nil {
		t.Error("a result without a wire form encoded")
	}
}
