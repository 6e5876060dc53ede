package wasmbin

import (
	"math"
	"testing"
)

func TestSignedLEB32RoundTrips(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, 64, -64, -65, 4096, math.MaxInt32, math.MinInt32} {
		b := AppendSignedLEB32(nil, v)
		got, n, ok := SignedLEB32(b)
		if !ok || got != v || n != len(b) {
			t.Errorf("%d: encoded % x, decoded %d (%d bytes, ok %v)", v, b, got, n, ok)
		}
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, {0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, _, ok := SignedLEB32(bad); ok {
			t.Errorf("% x decoded; want a refusal", bad)
		}
	}
}
