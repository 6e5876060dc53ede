package host

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// slowContract is the contract of slowCapability, a real SDK provider whose
// operations answer at once (Fast.Echo), fail (Fast.Fail) or outlast every
// caller's deadline (Slow.Wait).
const slowContract = "latticed:slow"

type slowCapability struct{}

func (slowCapability) Contract() string                                      { return slowContract }
func (slowCapability) Start(context.Context, *provider.Provider) error       { return nil }
func (slowCapability) PutLink(context.Context, lattice.LinkDefinition) error { return nil }
func (slowCapability) DeleteLink(context.Context, lattice.LinkDefinition) error {
	return nil
}
func (slowCapability) Close(context.Context) error { return nil }
func (slowCapability) Handle(ctx context.Context, c provider.Call) ([]byte, error) {
	switch c.Operation {
	case "Fast.Echo":
		return c.Payload, nil
	case "Fast.Fail":
		return nil, errors.New("the capability refused the call")
	case "Slow.Wait": // until the provider's own deadline, far past the host's
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, provider.UnknownOperation(slowContract, c.Operation)
}

// slowWorld is a host running the hostcall actor, linked to a running
// slowCapability provider (the provider SDK, in process, on the same NATS).
type slowWorld struct {
	f     *fixture
	actor testenv.SignedActor
	prov  string // the provider's public key
}

func newSlowWorld(t *testing.T) *slowWorld {
	t.Helper()
	s := testenv.NATS(t)
	f := newFixtureAt(t, s.ClientURL())
	a := f.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "answer", Caps: []string{slowContract}})
	pk, _ := trust.CreateKeyPair(lattice.KindService)
	ld := lattice.LinkDefinition{ActorID: a.Key, ProviderID: pk.PublicKey(), LinkName: "default", ContractID: slowContract, Values: map[string]string{}}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.LinkdefsPut(), ld, &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	p, err := provider.New(provider.Config{
		HostData: lattice.HostData{
			HostID: f.h.ID(), LatticeRPCPrefix: "test", LinkName: "default", LatticeRPCURL: s.ClientURL(),
			InstanceID: "slow-1", ProviderKey: pk.PublicKey(), LinkDefinitions: []lattice.LinkDefinition{ld},
			DefaultRPCTimeoutMS: 10000, // the provider's own deadline: longer than the host's 2 s
			ClusterIssuers:      []string{f.cluster.PublicKey()}, InvocationSeed: f.cluster.Seed(), LogLevel: "warn",
		},
		LogOutput: testWriter{t}, DrainTimeout: 15 * time.Second,
	}, slowCapability{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provider run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("provider exited: %v", err)
	}
	return &slowWorld{f: f, actor: a, prov: pk.PublicKey()}
}

// answer has the actor call the provider's operation through Call.Answer
// and returns the raw reply (bytes as sent) and its decoded form.
func (w *slowWorld) answer(t *testing.T, operation string, payload []byte) ([]byte, *lattice.InvocationResponse) {
	t.Helper()
	arg, err := lattice.Marshal(forward{Namespace: slowContract, Operation: operation, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return w.f.rawBytes(t, w.f.invocation(t, w.f.cluster, lattice.ActorEntity(w.f.cluster.PublicKey()), w.actor.Key, "Call.Answer", arg))
}

// rawBytes sends inv to its actor and returns the reply's bytes and decoded form.
func (f *fixture) rawBytes(t *testing.T, inv *lattice.Invocation) ([]byte, *lattice.InvocationResponse) {
	t.Helper()
	return sendRaw(t, f, lattice.RPCActor("test", inv.Target.PublicKey), inv)
}

func sendRaw(t *testing.T, f *fixture, subject string, inv *lattice.Invocation) ([]byte, *lattice.InvocationResponse) {
	t.Helper()
	data, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := f.nc.Request(subject, data, 20*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	resp, err := lattice.DecodeInvocationResponse(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Data, resp
}

// An actor's host call to a provider that outlasts the host-call deadline
// fails inside the actor, with wasmCloud's text through __host_error; the
// actor answers, and the same instance serves the next call.
func TestSlowProviderFailsTheHostCallNotTheActor(t *testing.T) {
	w := newSlowWorld(t)
	_, first := w.answer(t, "Fast.Echo", []byte("warm"))
	if first.Error != "" || string(first.Msg) != "warm" {
		t.Fatalf("fast call: %+v", first)
	}

	_, slow := w.answer(t, "Slow.Wait", nil)
	const want = "host error: Host call function failed: Failed to perform RPC call: request timeout"
	if slow.Error != "" || string(slow.Msg) != want {
		t.Fatalf("slow call: error %q, reply %q; want the reply %q", slow.Error, slow.Msg, want)
	}

	_, next := w.answer(t, "Fast.Echo", []byte("again"))
	if next.Error != "" || string(next.Msg) != "again" {
		t.Fatalf("call after the slow one: %+v", next)
	}
	if first.InstanceID == "" || next.InstanceID != first.InstanceID || slow.InstanceID != first.InstanceID {
		t.Fatalf("instances %q, %q, %q: the slow call replaced the instance", first.InstanceID, slow.InstanceID, next.InstanceID)
	}
	if n := testutil.ToFloat64(w.f.m.ActorInstances.WithLabelValues(w.actor.Key)); n != 1 {
		t.Fatalf("%v instances, want 1", n)
	}
	for _, kind := range []string{metrics.FailureTimeout, metrics.FailureTrap, metrics.FailureExit} {
		if n := testutil.ToFloat64(w.f.m.ActorInstanceFailures.WithLabelValues(w.actor.Key, kind)); n != 0 {
			t.Fatalf("%v instance failures of kind %s", n, kind)
		}
	}
	// The provider's own error reaches the actor after the same prefix.
	if _, fail := w.answer(t, "Fast.Fail", nil); string(fail.Msg) != "host error: Host call function failed: the capability refused the call" {
		t.Fatalf("failing call: %+v", fail)
	}
}

// strOnlyMsg reads a reply as wasmCloud's Go provider SDK does: msg must be
// a msgpack str (fixstr, str 8/16/32), anything else fails the decode.
func strOnlyMsg(b []byte) ([]byte, string, error) {
	return readReply(b, nil, func(r *wire.Reader) ([]byte, error) {
		if t, err := r.Next(); err != nil || t != wire.Str {
			return nil, fmt.Errorf("bad prefix for string length (msg is type %v)", t)
		}
		return r.Bytes()
	})
}

// wasmbusMsg reads a reply by wasmbus-rpc's rules (serde_bytes' ByteBuf on
// msg): bin, str or an array of integers 0..255; nil is refused (no unit
// visitor); a missing msg is empty.
func wasmbusMsg(b []byte) ([]byte, string, error) {
	return readReply(b, []byte{}, func(r *wire.Reader) ([]byte, error) {
		switch t, err := r.Next(); {
		case err != nil:
			return nil, err
		case t == wire.Bin || t == wire.Str:
			return r.Bytes()
		case t == wire.Array:
			n, err := r.ArrayLen()
			if err != nil {
				return nil, err
			}
			msg := make([]byte, 0, n)
			for range n {
				v, err := r.Uint()
				if err != nil || v > 255 {
					return nil, fmt.Errorf("invalid value in byte array: %d, %v", v, err)
				}
				msg = append(msg, byte(v))
			}
			return msg, nil
		default:
			return nil, fmt.Errorf("invalid type %v, expected a byte array", t)
		}
	})
}

// readReply reads a reply's msg with readMsg (missing: msg stays as given)
// and its error text, skipping the other fields.
func readReply(b, msg []byte, readMsg func(r *wire.Reader) ([]byte, error)) ([]byte, string, error) {
	var errText string
	err := wire.ReadMap(b, func(r *wire.Reader, key []byte) (err error) {
		switch string(key) {
		case "msg":
			msg, err = readMsg(r)
		case "error":
			errText, err = r.Str()
		default:
			err = r.Skip()
		}
		return err
	})
	return msg, errText, err
}

// Every kind of reply latticed sends — an actor's answer (with a payload
// and empty), the host's refusal and an actor's failure, a provider's
// answer, failure and refusal through the provider SDK — decodes both with
// a reader that takes only str for msg and by wasmbus-rpc's rules, and
// carries the same msg and error text for both.
func TestEveryReplyDecodesWithWasmCloudReaders(t *testing.T) {
	w := newSlowWorld(t)
	f := w.f
	stranger, _ := trust.CreateKeyPair(lattice.KindCluster)
	unlinked, _ := trust.CreateKeyPair(lattice.KindModule)
	toProvider := func(origin string, op string, payload []byte) *lattice.Invocation {
		inv, err := trust.NewInvocation(f.cluster, f.h.ID(), lattice.ActorEntity(origin),
			lattice.Entity{PublicKey: w.prov, ContractID: slowContract, LinkName: "default"}, op, payload)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	providerSubject := lattice.RPCProvider("test", w.prov, "default")
	forwardArg, _ := lattice.Marshal(forward{Namespace: "wasmcloud:unlinked", Operation: "X.Y"})

	for _, tc := range []struct {
		name      string
		send      func() []byte
		wantMsg   string
		wantError bool
	}{
		{"host: actor answer", func() []byte { b, _ := w.answer(t, "Fast.Echo", []byte("hello")); return b }, "hello", false},
		{"host: empty actor answer", func() []byte { b, _ := w.answer(t, "Fast.Echo", nil); return b }, "", false},
		{"host: refusal (unknown issuer)", func() []byte {
			b, _ := f.rawBytes(t, f.invocation(t, stranger, lattice.ActorEntity(unlinked.PublicKey()), w.actor.Key, "Call.Answer", nil))
			return b
		}, "", true},
		{"host: actor failure", func() []byte {
			b, _ := f.rawBytes(t, f.invocation(t, f.cluster, lattice.ActorEntity(unlinked.PublicKey()), w.actor.Key, "Call.Forward", forwardArg))
			return b
		}, "", true},
		{"provider: answer", func() []byte {
			b, _ := sendRaw(t, f, providerSubject, toProvider(w.actor.Key, "Fast.Echo", []byte("p")))
			return b
		}, "p", false},
		{"provider: failure", func() []byte {
			b, _ := sendRaw(t, f, providerSubject, toProvider(w.actor.Key, "Fast.Fail", nil))
			return b
		}, "", true},
		{"provider: refusal (not linked)", func() []byte {
			b, _ := sendRaw(t, f, providerSubject, toProvider(unlinked.PublicKey(), "Fast.Echo", []byte("p")))
			return b
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.send()
			for name, read := range map[string]func([]byte) ([]byte, string, error){"str only": strOnlyMsg, "wasmbus-rpc": wasmbusMsg} {
				msg, errText, err := read(b)
				if err != nil {
					t.Fatalf("%s reader: %v\n% x", name, err, b)
				}
				if string(msg) != tc.wantMsg || (errText != "") != tc.wantError {
					t.Fatalf("%s reader: msg %q, error %q; want msg %q, error %v", name, msg, errText, tc.wantMsg, tc.wantError)
				}
			}
		})
	}
}
