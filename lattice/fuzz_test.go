package lattice_test

// Native fuzz tests for every decoder of untrusted bytes in the wire protocol.
// The tokens and embedded claims are fuzzed in package trust.
//
// Seeds come from two places: the committed corpus under testdata/fuzz/<Name>/
// (valid messages, peer quirks, truncations, wrong types) and f.Add calls with values built at test start (freshly signed
// tokens and invocations; no key seed is ever written to disk).
//
// `go test -run 'Fuzz|Nesting'` runs the seeds only; `make -f mk/fuzz.mk fuzz`
// fuzzes each target for $(FUZZTIME).

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// ---------------------------------------------------------------- helpers

// fuzzPublicKey is a fresh public key of the given role.
func fuzzPublicKey(tb testing.TB, kind lattice.KeyKind) string {
	tb.Helper()
	kp, err := trust.CreateKeyPair(kind)
	if err != nil {
		tb.Fatal(err)
	}
	return kp.PublicKey()
}

func fuzzMsgpack(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// normBytes treats nil and empty byte strings alike: msgpack nil, an empty bin
// and the OTP host's empty array all mean "no body".
func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// ---------------------------------------------------------------- invocations

func FuzzDecodeInvocation(f *testing.F) {
	cluster, err := trust.CreateKeyPair(lattice.KindCluster)
	if err != nil {
		f.Fatal(err)
	}
	provider := lattice.Entity{PublicKey: fuzzPublicKey(f, lattice.KindService), ContractID: "wasmcloud:httpserver", LinkName: "default"}
	inv, err := trust.NewInvocation(cluster, fuzzPublicKey(f, lattice.KindServer), lattice.ActorEntity(fuzzPublicKey(f, lattice.KindModule)),
		provider, "HttpServer.HandleRequest", []byte("GET / HTTP/1.1"))
	if err != nil {
		f.Fatal(err)
	}
	signed, err := inv.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(fuzzMsgpack(f, map[string]any{
		"traceContext": map[string]any{"traceparent": "00-x-y-01"},
		"msg":          "as a str", "operation": "Op", "content_length": 8,
		"origin": map[string]any{"public_key": "M1", "extra": []any{1, []any{2}}},
	}))

	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := lattice.DecodeInvocation(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if inv != nil {
				t.Fatal("non-nil invocation returned with an error")
			}
			return
		}
		enc, err := inv.Encode()
		if err != nil {
			t.Fatalf("decoded invocation does not re-encode: %v", err)
		}
		back, err := lattice.DecodeInvocation(enc)
		if err != nil {
			t.Fatalf("re-encoded invocation does not decode: %v\n% x", err, enc)
		}
		want, got := *inv, *back
		want.Msg, got.Msg = normBytes(want.Msg), normBytes(got.Msg)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("round trip changed the invocation:\n first %+v\nsecond %+v", want, got)
		}
		// The encoder's output is canonical: encoding again is a fixed point.
		if enc2, err := back.Encode(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n% x\n% x", err, enc, enc2)
		}
	})
}

func FuzzDecodeInvocationResponse(f *testing.F) {
	f.Add(fuzzMsgpack(f, &lattice.InvocationResponse{Msg: []byte("ok"), InvocationID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", ContentLength: 2}))
	f.Add(fuzzMsgpack(f, map[string]any{"msg": []any{}, "error": "Invocation received for actor M that is not running"}))

	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := lattice.DecodeInvocationResponse(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if resp != nil {
				t.Fatal("non-nil response returned with an error")
			}
			return
		}
		enc, err := resp.Encode()
		if err != nil {
			t.Fatalf("decoded response does not re-encode: %v", err)
		}
		back, err := lattice.DecodeInvocationResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v\n% x", err, enc)
		}
		want, got := *resp, *back
		want.Msg, got.Msg = normBytes(want.Msg), normBytes(got.Msg)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("round trip changed the response:\n first %+v\nsecond %+v", want, got)
		}
		if enc2, err := back.Encode(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n% x\n% x", err, enc, enc2)
		}
	})
}

// ---------------------------------------------------------------- link definitions

func FuzzDecodeLinkDefinition(f *testing.F) {
	ld := lattice.LinkDefinition{
		ActorID: fuzzPublicKey(f, lattice.KindModule), ProviderID: fuzzPublicKey(f, lattice.KindService),
		ContractID: "wasmcloud:keyvalue", Values: map[string]string{"URL": "redis://127.0.0.1:6379"},
	}
	if err := ld.Normalize(); err != nil {
		f.Fatal(err)
	}
	b, err := lattice.Marshal(&ld)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)

	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := lattice.DecodeLinkDefinition(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if ld != nil {
				t.Fatal("non-nil link definition returned with an error")
			}
			return
		}
		if ld.Values == nil {
			t.Fatal("decoded link definition has nil values")
		}
		if ld.Deleted {
			t.Fatal("the wire form must not be able to set Deleted")
		}
		enc, err := lattice.Marshal(ld)
		if err != nil {
			t.Fatalf("decoded link definition does not re-encode: %v", err)
		}
		back, err := lattice.DecodeLinkDefinition(enc)
		if err != nil {
			t.Fatalf("re-encoded link definition does not decode: %v\n% x", err, enc)
		}
		if !reflect.DeepEqual(ld, back) {
			t.Fatalf("round trip changed the link definition:\n first %+v\nsecond %+v", ld, back)
		}
	})
}

// ---------------------------------------------------------------- host data

func normHostData(hd lattice.HostData) lattice.HostData {
	if hd.EnvValues == nil {
		hd.EnvValues = map[string]string{}
	}
	if hd.LinkDefinitions == nil {
		hd.LinkDefinitions = []lattice.LinkDefinition{}
	}
	return hd
}

func FuzzDecodeHostData(f *testing.F) {
	hd := &lattice.HostData{HostID: fuzzPublicKey(f, lattice.KindServer), LatticeRPCPrefix: "default", LinkName: "default",
		ProviderKey: fuzzPublicKey(f, lattice.KindService), ClusterIssuers: []string{fuzzPublicKey(f, lattice.KindCluster)},
		LatticeRPCURL: "127.0.0.1:4222", DefaultRPCTimeoutMS: 2000, EnvValues: map[string]string{"A": "b"}}
	line, err := lattice.EncodeHostData(hd)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)

	f.Fuzz(func(t *testing.T, line []byte) {
		hd, err := lattice.DecodeHostData(line)
		if err != nil {
			if !errors.Is(err, lattice.ErrHostData) {
				t.Fatalf("error does not wrap ErrHostData: %v", err)
			}
			if hd != nil {
				t.Fatal("non-nil host data returned with an error")
			}
			return
		}
		if hd.HostID == "" || hd.LatticeRPCPrefix == "" || hd.ProviderKey == "" || hd.LinkName == "" {
			t.Fatalf("accepted host data without a required field: %+v", hd)
		}
		first := normHostData(*hd)
		enc, err := lattice.EncodeHostData(hd)
		if err != nil {
			t.Fatalf("decoded host data does not re-encode: %v", err)
		}
		if len(enc) == 0 || enc[len(enc)-1] != '\n' || bytes.Count(enc, []byte("\n")) != 1 {
			t.Fatalf("encoded host data is not one line: %q", enc)
		}
		back, err := lattice.DecodeHostData(enc)
		if err != nil {
			t.Fatalf("re-encoded host data does not decode: %v", err)
		}
		if second := normHostData(*back); !reflect.DeepEqual(first, second) {
			t.Fatalf("round trip changed the host data:\n first %+v\nsecond %+v", first, second)
		}
		if enc2, err := lattice.EncodeHostData(back); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n%q\n%q", err, enc, enc2)
		}
	})
}

// ---------------------------------------------------------------- nesting and length bombs

func TestDecodeNestingAndLengthBombs(t *testing.T) {
	unknownKey := []byte{0x81, 0xa7, 'u', 'n', 'k', 'n', 'o', 'w', 'n'} // {"unknown": …}
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)            // [[[…[nil]…]]], 100000 deep
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tenBytes := []byte{0xa1, 'x', 0xc0, 0xa1, 'y', 0xc0, 0xa1, 'z', 0xc0, 0xa1} // 3 entries, then a truncated key
	decoders := map[string]func([]byte) error{
		"invocation": func(b []byte) error { _, err := lattice.DecodeInvocation(b); return err },
		"response":   func(b []byte) error { _, err := lattice.DecodeInvocationResponse(b); return err },
		"linkdef":    func(b []byte) error { _, err := lattice.DecodeLinkDefinition(b); return err },
	}
	cases := map[string][]byte{
		"unknown key, array nested 100000 deep": cat(unknownKey, deep),
		"unknown key, map nested 100000 deep":   cat(unknownKey, bytes.Repeat([]byte{0x81, 0xc0}, 100000), []byte{0xc0}),
		"map claiming 2^32-1 entries":           cat([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"unknown key, array of 2^32-1":          cat(unknownKey, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"unknown key, str of 2^32-1 bytes":      cat(unknownKey, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"string field, bin of 2^32-1 bytes":     cat([]byte{0x81, 0xa2, 'i', 'd', 0xc6, 0xff, 0xff, 0xff, 0xff}, tenBytes),
	}
	for dname, decode := range decoders {
		for cname, b := range cases {
			t.Run(dname+"/"+cname, func(t *testing.T) {
				start := time.Now()
				err := decode(b)
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("took %s", el)
				}
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
			})
		}
	}
	// Nesting inside a known field: an entity's unknown key.
	inEntity := cat([]byte{0x81, 0xa6, 'o', 'r', 'i', 'g', 'i', 'n'}, unknownKey, deep)
	if _, err := lattice.DecodeInvocation(inEntity); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("deep nesting in origin: got %v, want ErrMalformed", err)
	}
	// Nesting inside link definition values.
	inValues := cat([]byte{0x81, 0xa6, 'v', 'a', 'l', 'u', 'e', 's', 0x81, 0xa1, 'k'}, deep)
	if _, err := lattice.DecodeLinkDefinition(inValues); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("deep nesting in values: got %v, want ErrMalformed", err)
	}
	// Depth up to the limit is still fine: a short nested unknown value is skipped.
	ok := cat(unknownKey, bytes.Repeat([]byte{0x91}, 8), []byte{0xc0})
	if _, err := lattice.DecodeInvocation(ok); err != nil {
		t.Fatalf("shallow nesting rejected: %v", err)
	}
}
