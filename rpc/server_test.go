package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// testLattice is a real NATS server, a cluster key that signs invocations,
// and the issuer policy that trusts it.
type testLattice struct {
	nc      *nats.Conn
	cluster *trust.KeyPair
	host    *trust.KeyPair
	issuers *trust.Issuers
}

func newLattice(t *testing.T) *testLattice {
	t.Helper()
	nc := testenv.Connect(t, testenv.NATS(t))
	cluster, host := newKey(t, lattice.KindCluster), newKey(t, lattice.KindServer)
	issuers := trust.NewIssuers([]string{cluster.PublicKey()},
		trust.WithReplayGuard(trust.NewReplayGuard(rpc.DefaultReplayWindow, trust.DefaultReplayCapacity)),
		trust.WithClockSkew(rpc.DefaultClockSkew))
	return &testLattice{nc: nc, cluster: cluster, host: host, issuers: issuers}
}

func newKey(t *testing.T, kind lattice.KeyKind) *trust.KeyPair {
	t.Helper()
	kp, err := trust.CreateKeyPair(kind)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// callee is an entity served by srv on its own subject until the test ends.
type callee struct {
	entity  lattice.Entity
	subject string
}

func (l *testLattice) serve(t *testing.T, kind lattice.KeyKind, contract string, srv *rpc.Server) callee {
	t.Helper()
	kp := newKey(t, kind)
	c := callee{entity: lattice.Entity{PublicKey: kp.PublicKey(), ContractID: contract}}
	if contract != "" {
		c.entity.LinkName = "default"
		c.subject = lattice.RPCProvider("default", c.entity.PublicKey, "default")
	} else {
		c.subject = lattice.RPCActor("default", c.entity.PublicKey)
	}
	if srv.Key == "" {
		srv.Key = c.entity.PublicKey
	}
	srv.Issuers = l.issuers
	sub, err := l.nc.Subscribe(c.subject, func(m *nats.Msg) { go srv.Serve(m) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := l.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// call invokes c from origin, as a host of this lattice does.
func (l *testLattice) call(ctx context.Context, origin lattice.Entity, c callee, op string, payload []byte) ([]byte, error) {
	return rpc.Invoke(ctx, l.nc, l.cluster, l.host.PublicKey(), origin, c.entity, c.subject, op, payload)
}

// observed records what a Server's Observer was told.
type observed struct {
	mu       sync.Mutex
	rejected []lattice.RejectReason
	served   []error
}

func (o *observed) Rejected(_ *lattice.Invocation, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected = append(o.rejected, lattice.ReasonOf(err))
}

func (o *observed) Served(_ *lattice.Invocation, err error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.served = append(o.served, err)
}

// Every way a callee can refuse or fail reaches the caller as a
// *rpc.RemoteError with the callee's text unchanged, matching the sentinel
// of its reason; a refusal never reaches Handle.
func TestRepliesCarryTheirReason(t *testing.T) {
	l := newLattice(t)
	provider := lattice.Entity{PublicKey: "VPROVIDER", ContractID: wire.ContractHTTPServer, LinkName: "default"}
	echo := func(_ context.Context, inv *lattice.Invocation) (rpc.Result, error) {
		return rpc.Result{Msg: inv.Msg}, nil
	}
	fail := func(err error) func(context.Context, *lattice.Invocation) (rpc.Result, error) {
		return func(context.Context, *lattice.Invocation) (rpc.Result, error) { return rpc.Result{}, err }
	}
	for _, tc := range []struct {
		name      string
		srv       rpc.Server
		payload   []byte
		sentinel  error  // errors.Is(err, sentinel); nil: the call succeeds
		code      string // RemoteError.Code
		reason    lattice.RejectReason
		text      string // the start of the error text
		handled   bool   // Handle ran
		wrongPeer bool   // the invocation is addressed to another key
	}{
		{name: "served", srv: rpc.Server{Handle: echo}, payload: []byte("hi"), handled: true},
		{name: "too large", srv: rpc.Server{MaxPayloadBytes: 512, Handle: echo}, payload: bytes.Repeat([]byte("x"), 1024),
			sentinel: rpc.ErrTooLarge, code: "too_large", reason: lattice.ReasonTooLarge, text: "invocation rejected (too_large): invocation of "},
		{name: "capability not claimed", srv: rpc.Server{Handle: echo, Authorize: func(_ context.Context, inv *lattice.Invocation) error {
			return lattice.Reject(lattice.ReasonCapabilityNotClaimed, "%s", inv.Origin.ContractID)
		}}, sentinel: rpc.ErrCapabilityNotClaimed, code: "capability_not_claimed", reason: lattice.ReasonCapabilityNotClaimed,
			text: "Invocation source does not have the required capability claim " + wire.ContractHTTPServer},
		{name: "refused without a reason", srv: rpc.Server{Handle: echo, Authorize: func(context.Context, *lattice.Invocation) error {
			return errors.New("Invocation not authorized: not linked")
		}}, sentinel: &rpc.RemoteError{}, text: "Invocation not authorized: not linked"},
		{name: "wrong target", srv: rpc.Server{Key: "MSOMEONEELSE", Handle: echo},
			sentinel: &rpc.RemoteError{}, code: "wrong_target", reason: lattice.ReasonWrongTarget, text: "Anti-forgery check failed (wrong_target)"},
		{name: "busy", srv: rpc.Server{Handle: fail(rpc.Mark(errors.New("actor is busy: all instances in use"), rpc.ErrBusy))},
			sentinel: rpc.ErrBusy, code: "busy", text: "actor is busy: all instances in use", handled: true},
		{name: "unavailable", srv: rpc.Server{Handle: fail(rpc.Mark(errors.New("provider not running"), rpc.ErrUnavailable))},
			sentinel: rpc.ErrUnavailable, code: "unavailable", text: "provider not running", handled: true},
		{name: "failed", srv: rpc.Server{Handle: fail(errors.New("boom"))}, sentinel: &rpc.RemoteError{}, text: "boom", handled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &observed{}
			srv := tc.srv
			srv.Observer = obs
			c := l.serve(t, lattice.KindModule, "", &srv)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := l.call(ctx, provider, c, wire.OpHTTPHandleRequest, tc.payload)
			if tc.sentinel == nil {
				if err != nil || !bytes.Equal(out, tc.payload) {
					t.Fatalf("reply %q, %v; want %q", out, err, tc.payload)
				}
			} else {
				var re *rpc.RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("error %v (%T), want a *rpc.RemoteError", err, err)
				}
				if re.Code != tc.code || re.Reason() != tc.reason || !strings.HasPrefix(re.Msg, tc.text) {
					t.Errorf("code %q reason %q text %q; want %q %q %q…", re.Code, re.Reason(), re.Msg, tc.code, tc.reason, tc.text)
				}
				if _, remote := tc.sentinel.(*rpc.RemoteError); !remote && !errors.Is(err, tc.sentinel) {
					t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
				}
				for _, other := range []error{rpc.ErrUnavailable, rpc.ErrBusy, rpc.ErrTooLarge, rpc.ErrCapabilityNotClaimed} {
					if other != tc.sentinel && errors.Is(err, other) {
						t.Errorf("errors.Is(%v, %v) = true", err, other)
					}
				}
			}
			testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				obs.mu.Lock()
				defer obs.mu.Unlock()
				if got := len(obs.served) + len(obs.rejected); got != 1 {
					return errors.New("observer not told yet")
				}
				if (len(obs.served) == 1) != tc.handled {
					t.Errorf("served %v, rejected %v; want Handle to run: %v", obs.served, obs.rejected, tc.handled)
				}
				if len(obs.rejected) == 1 && obs.rejected[0] != tc.reason {
					t.Errorf("observer told reason %q, want %q", obs.rejected[0], tc.reason)
				}
				return nil
			})
		})
	}
}

// The payload limit holds before decoding: bytes that are not even an
// invocation are refused as too large, not as malformed.
func TestPayloadLimitComesBeforeDecoding(t *testing.T) {
	l := newLattice(t)
	obs := &observed{}
	c := l.serve(t, lattice.KindService, wire.ContractKeyValue, &rpc.Server{MaxPayloadBytes: 16, Observer: obs,
		Handle: func(context.Context, *lattice.Invocation) (rpc.Result, error) { return rpc.Result{}, nil }})
	for _, tc := range []struct {
		data   []byte
		reason lattice.RejectReason
	}{
		{bytes.Repeat([]byte{0xc1}, 17), lattice.ReasonTooLarge},
		{[]byte{0xc1}, lattice.ReasonMalformed},
	} {
		m, err := l.nc.Request(c.subject, tc.data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := lattice.DecodeInvocationResponse(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if code := m.Header.Get(lattice.HeaderErrorCode); code != string(tc.reason) || !strings.Contains(resp.Error, "("+string(tc.reason)+")") {
			t.Errorf("%d bytes: code %q, error %q; want reason %s", len(tc.data), code, resp.Error, tc.reason)
		}
	}
}
