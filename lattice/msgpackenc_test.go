package lattice

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/latticed/latticed/wire"
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

// responseAsStr is InvocationResponse with msg as a string: the reference
// for its encoder, which writes msg as the OTP host writes replies.
type responseAsStr struct {
	Msg           string `msgpack:"msg"`
	InvocationID  string `msgpack:"invocation_id"`
	Error         string `msgpack:"error,omitempty"`
	ContentLength uint64 `msgpack:"content_length,omitempty"`
	InstanceID    string `msgpack:"instance_id,omitempty"`
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
		// A reply's msg is a str, "" when there is none (docs/protocol.md §3).
		if want := marshalSorted(t, responseAsStr{Msg: string(resp.Msg), InvocationID: resp.InvocationID, Error: resp.Error,
			ContentLength: resp.ContentLength, InstanceID: resp.InstanceID}); !bytes.Equal(got, want) {
			t.Fatalf("response %d: Encode differs from Marshal", i)
		}
		if cap(got) != len(got) {
			t.Fatalf("response %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
	}
}

// reflectEncode is the reference for the httpserver types: msgpack's
// reflection encoder (whose order of map keys is its own, even sorted, so
// byte-exact comparisons use headers of at most one name); compact
// integers for requests (lattice.Marshal, the provider's encoder before) and
// fixed-width ones for responses (actor.Marshal, the actor SDK's before).
func reflectEncode(t *testing.T, v any, compact bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(compact)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomHeader(r *rand.Rand, str func() string) map[string][]string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string][]string{}
	}
	h := map[string][]string{}
	n := r.IntN(2)
	if r.IntN(2) == 0 {
		n = r.IntN(20)
	}
	for i := 0; i < n; i++ {
		k := strings.Repeat("k", i+1)
		switch r.IntN(5) {
		case 0:
			h[k] = nil
		case 1:
			h[k] = []string{}
		default:
			vs := make([]string, 1+r.IntN(17))
			for j := range vs {
				vs[j] = str()
			}
			h[k] = vs
		}
	}
	return h
}

// Every size class of every field: the hand-written encoders of package
// wire write exactly the reflection encoder's bytes, and the decoders read
// them back. The check lives here because Marshal is this module's
// reflection encoder; package wire has none.
func TestHTTPEncodersMatchMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lengths := []int{0, 1, 31, 32, 255, 256, 65535, 65536}
	str := func() string { return strings.Repeat("v", lengths[r.IntN(len(lengths))]) }
	bin := func() []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		b := make([]byte, lengths[r.IntN(len(lengths))])
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for i := 0; i < 300; i++ {
		req := &wire.HTTPRequest{Method: str(), Path: str(), QueryString: str(), Header: randomHeader(r, str), Body: bin()}
		got := req.Encode()
		if want := reflectEncode(t, req, true); len(got) != len(want) || len(req.Header) < 2 && !bytes.Equal(got, want) {
			j := 0
			for j < len(got) && got[j] == want[j] {
				j++
			}
			t.Fatalf("request %d: Encode differs from Marshal (len %d vs %d) at %d: % x vs % x", i, len(got), len(want), j, got[max(0, j-8):j+4], want[max(0, j-8):j+4])
		}
		if cap(got) != len(got) {
			t.Fatalf("request %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
		back, err := wire.DecodeHTTPRequest(got)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var ref wire.HTTPRequest
		if err := msgpack.Unmarshal(got, &ref); err != nil {
			t.Fatal(err)
		}
		back.Body, ref.Body = normBody(back.Body), normBody(ref.Body)
		if !reflect.DeepEqual(*back, ref) {
			t.Fatalf("request %d: wire.DecodeHTTPRequest and Unmarshal differ:\n%+v\n%+v", i, back, ref)
		}

		resp := &wire.HTTPResponse{StatusCode: uint16(r.Uint32()), Header: randomHeader(r, str), Body: bin()}
		got = resp.Encode()
		if want := reflectEncode(t, resp, false); len(got) != len(want) || len(resp.Header) < 2 && !bytes.Equal(got, want) {
			t.Fatalf("response %d: Encode differs from Marshal (len %d vs %d)", i, len(got), len(want))
		}
		if cap(got) != len(got) {
			t.Fatalf("response %d: size computed as %d, wrote %d", i, cap(got), len(got))
		}
		rback, err := wire.DecodeHTTPResponse(got)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		var rref wire.HTTPResponse
		if err := msgpack.Unmarshal(got, &rref); err != nil {
			t.Fatal(err)
		}
		rback.Body, rref.Body = normBody(rback.Body), normBody(rref.Body)
		if !reflect.DeepEqual(*rback, rref) {
			t.Fatalf("response %d: wire.DecodeHTTPResponse and Unmarshal differ:\n%+v\n%+v", i, rback, rref)
		}
	}
}

func normBody(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
