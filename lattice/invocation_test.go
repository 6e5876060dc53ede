package lattice

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/latticed/latticed/wire"
)

type invFixture struct {
	cluster *KeyPair
	host    *KeyPair
	actor   string
	policy  *IssuerPolicy
}

func newInvFixture(t *testing.T, opts ...PolicyOption) invFixture {
	t.Helper()
	f := invFixture{cluster: mustKey(t, KindCluster), host: mustKey(t, KindServer), actor: mustKey(t, KindModule).PublicKey()}
	f.policy = NewIssuerPolicy([]string{f.cluster.PublicKey()}, opts...)
	return f
}

func (f invFixture) invoke(t *testing.T, origin Entity, op string, msg []byte) *Invocation {
	t.Helper()
	inv, err := NewInvocation(f.cluster, f.host.PublicKey(), origin, ActorEntity(f.actor), op, msg)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestEntityURL(t *testing.T) {
	p := Entity{PublicKey: "Vxxx", ContractID: "wasmcloud:messaging", LinkName: "default"}
	if got := p.URL() + "/OP_TESTING"; got != "wasmbus://wasmcloud/messaging/default/Vxxx/OP_TESTING" {
		t.Fatal(got)
	}
	if got := (Entity{PublicKey: "V1", ContractID: "Acme:Big Thing", LinkName: "My Link"}).URL(); got != "wasmbus://acme/big_thing/my_link/V1" {
		t.Fatal(got)
	}
	if got := ActorEntity("Mabc").URL(); got != "wasmbus://Mabc" {
		t.Fatal(got)
	}
}

func TestInvocationHashIsConcatenation(t *testing.T) {
	// SHA-256("abcd") as uppercase hex: the four parts are concatenated, no separators.
	want := "88D4266FD4E6338D13B845FCF289579D209C897823B9217DA3E161936F031589"
	if got := InvocationHash("a", "b", "c", []byte("d")); got != want {
		t.Fatal(got)
	}
}

func TestInvocationWireFormIsMapKeyedByName(t *testing.T) {
	f := newInvFixture(t)
	inv := f.invoke(t, ActorEntity(mustKey(t, KindModule).PublicKey()), "Echo.Echo", []byte{1, 2, 3})
	b, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"origin", "target", "operation", "msg", "id", "encoded_claims", "host_id", "content_length"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	if _, ok := m["msg"].([]byte); !ok {
		t.Errorf("msg is %T, want bin", m["msg"])
	}
	back, err := DecodeInvocation(b)
	if err != nil || back.ID != inv.ID || !bytes.Equal(back.Msg, inv.Msg) || back.Target != inv.Target {
		t.Fatalf("round trip: %v", err)
	}
}

func TestDecodeAcceptsPeerQuirks(t *testing.T) {
	// msg as str, unknown keys with nested values, keys in another order.
	b, _ := msgpack.Marshal(map[string]any{
		"traceContext": map[string]any{"traceparent": "x", "deep": []any{[]any{1}}},
		"msg":          "hello",
		"operation":    "Op",
		"origin":       map[string]any{"public_key": "M1", "contract_id": "", "link_name": "", "extra": 1},
	})
	inv, err := DecodeInvocation(b)
	if err != nil || string(inv.Msg) != "hello" || inv.Operation != "Op" || inv.Origin.PublicKey != "M1" {
		t.Fatalf("%v %+v", err, inv)
	}
	// The OTP host's "not running" reply carries msg as an empty array.
	r, _ := msgpack.Marshal(map[string]any{"msg": []any{}, "error": "Invocation received for actor M that is not running"})
	resp, err := DecodeInvocationResponse(r)
	if err != nil || len(resp.Msg) != 0 || !strings.Contains(resp.Error, "not running") {
		t.Fatalf("%v %+v", err, resp)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        {},
		"not a map":    {0x93, 1, 2, 3},
		"truncated":    {0x82, 0xa3, 'm', 's', 'g'},
		"msg int":      mustMsgpack(map[string]any{"msg": 5}),
		"trailing":     append(mustMsgpack(map[string]any{"id": "x"}), 0xc0),
		"deep nesting": append(append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, 10000)...), 0xc0),
	} {
		if _, err := DecodeInvocation(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The invocation's payload is read in place: Msg is a slice of the input
// whose capacity ends with it, for invocations and responses alike.
func TestDecodeReadsMsgInPlace(t *testing.T) {
	msg := bytes.Repeat([]byte("m"), 300)
	inv, err := (&Invocation{Operation: "Op", Msg: msg, ID: "id"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&InvocationResponse{Msg: msg, InvocationID: "id"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		data   []byte
		decode func([]byte) ([]byte, error)
	}{
		"invocation": {inv, func(b []byte) ([]byte, error) { v, err := DecodeInvocation(b); return v.Msg, err }},
		"response":   {resp, func(b []byte) ([]byte, error) { v, err := DecodeInvocationResponse(b); return v.Msg, err }},
	} {
		got, err := c.decode(c.data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		i := bytes.Index(c.data, msg)
		if !bytes.Equal(got, msg) || &got[0] != &c.data[i] || cap(got) != len(msg) {
			t.Errorf("%s: msg was copied, or its capacity reaches past it", name)
		}
	}
}

// Peers' integer and string forms: strings as bin are read as strings, as
// msgpack's reflection decoders read them; a negative content_length is
// malformed, not a huge length.
func TestDecodeStringsAndLengths(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want *Invocation // nil: malformed
	}{
		{"operation as bin", []byte{0x81, 0xa9, 'o', 'p', 'e', 'r', 'a', 't', 'i', 'o', 'n', 0xc4, 2, 'O', 'p'}, &Invocation{Operation: "Op"}},
		{"content_length as int8", append([]byte{0x81, 0xae}, append([]byte("content_length"), 0xd0, 0x05)...), &Invocation{ContentLength: 5}},
		{"negative content_length", append([]byte{0x81, 0xae}, append([]byte("content_length"), 0xff)...), nil},
		{"negative int16 content_length", append([]byte{0x81, 0xae}, append([]byte("content_length"), 0xd1, 0xff, 0xff)...), nil},
	} {
		got, err := DecodeInvocation(c.in)
		switch {
		case c.want == nil && !errors.Is(err, wire.ErrMalformed):
			t.Errorf("%s: %+v, %v; want ErrMalformed", c.name, got, err)
		case c.want != nil && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

func mustMsgpack(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestIssuerPolicyAcceptsValid(t *testing.T) {
	f := newInvFixture(t)
	inv := f.invoke(t, ActorEntity(mustKey(t, KindModule).PublicKey()), "Echo.Echo", []byte("x"))
	if _, err := f.policy.Check(inv, f.actor); err != nil {
		t.Fatal(err)
	}
}

func TestIssuerPolicyRejectsEachWithItsReason(t *testing.T) {
	// The real clock: the fixture's tokens carry the real time as iat, and
	// a clock stopped before they were made would see them in the future
	// once a second boundary passes (a flake on a loaded machine).
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(5*time.Minute, 1000)), WithClock(time.Now))
	provider := Entity{PublicKey: mustKey(t, KindService).PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	stranger := mustKey(t, KindCluster)

	cases := map[string]struct {
		mutate func(*Invocation)
		target string
		want   RejectReason
	}{
		"forged signature": {func(i *Invocation) {
			p := strings.Split(i.EncodedClaims, ".")
			sig, _ := b64url.DecodeString(p[2])
			sig[0] ^= 0xff
			i.EncodedClaims = p[0] + "." + p[1] + "." + b64url.EncodeToString(sig)
		}, "", ReasonBadSignature},
		"unknown issuer": {func(i *Invocation) {
			other, _ := NewInvocation(stranger, f.host.PublicKey(), i.Origin, i.Target, i.Operation, i.Msg)
			*i = *other
		}, "", ReasonUnknownIssuer},
		"tampered body": {func(i *Invocation) { i.Msg = []byte("y") }, "", ReasonHashMismatch},
		"tampered op":   {func(i *Invocation) { i.Operation = "Other.Op" }, "", ReasonHashMismatch},
		"wrong target":  {func(*Invocation) {}, mustKey(t, KindModule).PublicKey(), ReasonWrongTarget},
		"retargeted":    {func(i *Invocation) { i.Target.PublicKey = mustKey(t, KindModule).PublicKey() }, "", ReasonHashMismatch},
		"bad host id":   {func(i *Invocation) { i.HostID = "N123" }, "", ReasonBadHostID},
		"chunked":       {func(i *Invocation) { i.Msg = nil; i.ContentLength = 800 << 10 }, "", ReasonChunked},
		"id swapped":    {func(i *Invocation) { i.ID = "another-id" }, "", ReasonReplayed},
		"not a jwt":     {func(i *Invocation) { i.EncodedClaims = "nope" }, "", ReasonBadSignature},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			inv := f.invoke(t, provider, wire.OpHTTPHandleRequest, []byte("x"))
			tc.mutate(inv)
			target := f.actor
			if tc.target != "" {
				target = tc.target
			}
			_, err := f.policy.Check(inv, target)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestReplayIsRejected(t *testing.T) {
	now := time.Now()
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(time.Minute, 1000)), WithClock(time.Now))
	inv := f.invoke(t, ActorEntity(mustKey(t, KindModule).PublicKey()), "Echo.Echo", nil)
	if _, err := f.policy.Check(inv, f.actor); err != nil {
		t.Fatal(err)
	}
	if _, err := f.policy.Check(inv, f.actor); ReasonOf(err) != ReasonReplayed {
		t.Fatalf("replay: %v", err)
	}
	// A token older than the window is refused by a node that never saw its id.
	later := NewIssuerPolicy([]string{f.cluster.PublicKey()}, WithReplayGuard(NewReplayGuard(time.Minute, 1000)),
		WithClock(func() time.Time { return now.Add(3 * time.Minute) }))
	_, err := later.Check(inv, f.actor)
	if ReasonOf(err) != ReasonReplayed || !strings.Contains(err.Error(), "older than") {
		t.Fatalf("stale: %v", err)
	}
}

func TestLinkIDAndDecode(t *testing.T) {
	ld := LinkDefinition{ActorID: mustKey(t, KindModule).PublicKey(), ProviderID: mustKey(t, KindService).PublicKey(), ContractID: wire.ContractKeyValue}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	if ld.LinkName != "default" || ld.ID != LinkID(ld.ActorID, wire.ContractKeyValue, "default") || len(ld.ID) != 64 || strings.ToUpper(ld.ID) != ld.ID {
		t.Fatalf("%+v", ld)
	}
	ld.Values["URL"] = "x"
	b, _ := Marshal(&ld)
	back, err := DecodeLinkDefinition(b)
	if err != nil || back.ID != ld.ID || back.Values["URL"] != "x" {
		t.Fatalf("%v %+v", err, back)
	}
	bad := LinkDefinition{ActorID: "nope", ProviderID: ld.ProviderID, ContractID: "c"}
	if err := bad.Normalize(); err == nil {
		t.Fatal("bad actor id accepted")
	}
}

func TestHostDataRoundTripAndOTPQuirks(t *testing.T) {
	hd := &HostData{HostID: "N1", LatticeRPCPrefix: "default", LinkName: "default", ProviderKey: "V1",
		ClusterIssuers: []string{"C1"}, LatticeRPCURL: "127.0.0.1:4222", DefaultRPCTimeoutMS: 2000}
	line, err := EncodeHostData(hd)
	if err != nil || line[len(line)-1] != '\n' {
		t.Fatal(err)
	}
	back, err := DecodeHostData(line)
	if err != nil || back.ProviderKey != "V1" || back.EnvValues == nil {
		t.Fatalf("%v %+v", err, back)
	}
	// The OTP host sends lattice_rpc_tls as an integer and js_domain as null.
	js := `{"host_id":"N","lattice_rpc_prefix":"p","link_name":"l","provider_key":"V","lattice_rpc_tls":1,"js_domain":null,"env_values":{}}`
	line = []byte(b64std(js) + "\n")
	back, err = DecodeHostData(line)
	if err != nil || !bool(back.LatticeRPCTLS) || back.JSDomain != nil {
		t.Fatalf("%v %+v", err, back)
	}
	if _, err := DecodeHostData([]byte(b64std(`{"host_id":"N"}`))); err == nil || !strings.Contains(err.Error(), "provider_key") {
		t.Fatalf("missing fields: %v", err)
	}
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
