package lattice

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/latticed/latticed/wire"
	"github.com/vmihailenco/msgpack/v5"
)

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
	inv := &Invocation{Origin: ActorEntity(testPublicKey(t, KindModule)), Target: ActorEntity(testPublicKey(t, KindModule)),
		Operation: "Echo.Echo", Msg: []byte{1, 2, 3}, ID: "6f1c4a9e-6a3c-4c4e-9d1e-3b1f1f9b2a77",
		EncodedClaims: "header.claims.signature", HostID: testPublicKey(t, KindServer), ContentLength: 3}
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
			t.Errorf("%s: %+v, %v; want wire.ErrMalformed", c.name, got, err)
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

func TestLinkIDAndDecode(t *testing.T) {
	ld := LinkDefinition{ActorID: testPublicKey(t, KindModule), ProviderID: testPublicKey(t, KindService), ContractID: wire.ContractKeyValue}
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

// The URLs, and the hash builder written for speed, must give what the
// plain definitions give: the URLs are signed, so one differing byte would
// fail every invocation between latticed and a wasmCloud peer.
func TestEntityURLMatchesGeneral(t *testing.T) {
	for _, e := range []Entity{
		{PublicKey: "Vxxx", ContractID: "wasmcloud:httpserver", LinkName: "default"},
		{PublicKey: "V1", ContractID: "Acme:Big Thing", LinkName: "My Link"},
		{PublicKey: "V2", ContractID: "ÄCME:Straße", LinkName: "Ünïcode Link"},
		{PublicKey: "V3", ContractID: "", LinkName: ""},
		{PublicKey: "V4", ContractID: "a::b  c", LinkName: "  "},
	} {
		checkEntityURL(t, e, "Op.Name")
	}
}

func FuzzEntityURL(f *testing.F) {
	f.Add("V1", "wasmcloud:httpserver", "default", "HttpServer.HandleRequest")
	f.Add("M1", "", "", "Echo.Echo")
	f.Add("V2", "ÄCME:Straße Big", "Ünï Link", "x")
	f.Add("V3", "\xff:\x00 A", "\x80B ", "")
	f.Fuzz(func(t *testing.T, key, contract, link, op string) {
		checkEntityURL(t, Entity{PublicKey: key, ContractID: contract, LinkName: link}, op)
	})
}

func checkEntityURL(t *testing.T, e Entity, op string) {
	t.Helper()
	want := "wasmbus://" + e.PublicKey
	if !e.IsActor() {
		want = "wasmbus://" + strings.ToLower(strings.NewReplacer(":", "/", " ", "_").Replace(e.ContractID)) + "/" +
			strings.ToLower(strings.ReplaceAll(e.LinkName, " ", "_")) + "/" + e.PublicKey
	}
	if got := e.URL(); got != want {
		t.Fatalf("URL of %+v = %q, want %q", e, got, want)
	}
	inv := &Invocation{Target: e, Operation: op}
	if got := inv.TargetURL(); got != want+"/"+op {
		t.Fatalf("TargetURL of %+v = %q, want %q", e, got, want+"/"+op)
	}
}

// FuzzURLIs checks the in-place comparisons a receiver makes against the
// URLs they stand for: URLIs(s) is s == URL() and TargetURLIs(s) is
// s == TargetURL(), for any entity, operation and claimed URL s.
func FuzzURLIs(f *testing.F) {
	f.Add("MA", "", "", "Echo.Echo", "wasmbus://MA/Echo.Echo")
	f.Add("MA", "", "", "Echo.Echo", "wasmbus://MA")
	f.Add("MA", "", "", "Echo", "wasmbus://MA/Echo/")
	f.Add("mA", "", "", "", "wasmbus://mA/")
	f.Add("MA", "", "", "x", "wasmbus:/MA/x")
	f.Add("V1", "wasmcloud:httpserver", "default", "HttpServer.HandleRequest", "wasmbus://wasmcloud/httpserver/default/V1")
	f.Fuzz(func(t *testing.T, key, contract, link, op, s string) {
		e := Entity{PublicKey: key, ContractID: contract, LinkName: link}
		inv := &Invocation{Target: e, Operation: op}
		for _, c := range []string{s, e.URL(), inv.TargetURL(), s + "/" + op} {
			if got, want := e.URLIs(c), c == e.URL(); got != want {
				t.Fatalf("URLIs(%q) of %+v = %v, want %v", c, e, got, want)
			}
			if got, want := inv.TargetURLIs(c), c == inv.TargetURL(); got != want {
				t.Fatalf("TargetURLIs(%q) of %+v, operation %q = %v, want %v", c, e, op, got, want)
			}
		}
	})
}

func FuzzInvocationHash(f *testing.F) {
	f.Add("wasmbus://M1", "wasmbus://M2/Echo.Echo", "Echo.Echo", []byte("payload"))
	f.Add("", "", "", []byte(nil))
	f.Add(strings.Repeat("o", 5000), "t", "op", bytes.Repeat([]byte{0xff}, 70000))
	f.Fuzz(func(t *testing.T, origin, target, op string, msg []byte) {
		sum := sha256.Sum256(append([]byte(origin+target+op), msg...))
		want := strings.ToUpper(hex.EncodeToString(sum[:]))
		if got := InvocationHash(origin, target, op, msg); got != want {
			t.Fatalf("InvocationHash = %s, want %s", got, want)
		}
		if !InvocationHashIs(want, origin, target, op, msg) {
			t.Fatal("InvocationHashIs refuses the hash")
		}
		for _, bad := range []string{"", want[1:], strings.ToLower(want), want[:63] + "G", origin} {
			if InvocationHashIs(bad, origin, target, op, msg) {
				t.Fatalf("InvocationHashIs accepts %q", bad)
			}
		}
	})
}

func TestRPCSubjects(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{RPCRoot("default"), "wasmbus.rpc.default"},
		{RPCActor("default", "MABC"), "wasmbus.rpc.default.MABC"},
		{RPCProvider("lat1", "VXYZ", "backup"), "wasmbus.rpc.lat1.VXYZ.backup"},
		{RPCHealth("default", "VXYZ", "default"), "wasmbus.rpc.default.VXYZ.default.health"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
