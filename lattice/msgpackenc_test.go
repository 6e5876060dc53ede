package lattice

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// marshalSorted is the reference: msgpack's reflection encoder with compact
// integers (Marshal), map keys sorted as Encode writes them.
func marshalSorted(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Every size class of every field: the hand-written encoders must write
// exactly the bytes of the reflection encoder, and decode back to the value.
func TestEncodersMatchMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 31, 32, 255, 256, 65535, 65536}
	str := func() string { return strings.Repeat("x", lengths[r.IntN(len(lengths))]) }
	bin := func() []byte {
		switch r.IntN(4) {
		case 0:
			return nil
		default:
			return bytes.Repeat([]byte{7}, lengths[r.IntN(len(lengths))])
		}
	}
	uints := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for i := 0; i < 300; i++ {
		inv := &Invocation{
			Origin:    Entity{PublicKey: str(), ContractID: str(), LinkName: str()},
			Target:    Entity{PublicKey: str()},
			Operation: str(), Msg: bin(), ID: str(), EncodedClaims: str(), HostID: str(),
			ContentLength: uints[r.IntN(len(uints))], Delegation: str(),
		}
		if n := r.IntN(MaxTraceContextEntries + 1); n > 0 {
			inv.TraceContext = map[string]string{}
			for j := 0; j < n; j++ {
				inv.TraceContext[strings.Repeat("k", j+1)] = str()
			}
		}
		got, err := inv.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalSorted(t, inv); !bytes.Equal(got, want) {
			t.Fatalf("invocation %d: Encode differs from Marshal (len %d vs %d)", i, len(got), len(want))
		}
		if cap(got) != len(got) {
			t.Fatalf("invocation %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
		back, err := DecodeInvocation(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.TraceContext) == 0 {
			inv.TraceContext = nil
		}
		if len(back.Msg) == 0 && len(inv.Msg) == 0 {
			back.Msg = inv.Msg // nil and empty are one on the wire's readers
		}
		if !reflect.DeepEqual(back, inv) {
			t.Fatalf("invocation %d does not decode back to itself:\n%+v\n%+v", i, back, inv)
		}

		resp := &InvocationResponse{Msg: bin(), InvocationID: str(), Error: str(), ContentLength: uints[r.IntN(len(uints))], InstanceID: str()}
		got, err = resp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalSorted(t, resp); !bytes.Equal(got, want) {
			t.Fatalf("response %d: Encode differs from Marshal", i)
		}
		if cap(got) != len(got) {
			t.Fatalf("response %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
	}
}
