package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// operatorServer starts an embedded server in operator mode on a free port.
func operatorServer(t *testing.T) (*server.Server, *Authority, string) {
	t.Helper()
	dir := t.TempDir()
	keys, err := LoadOperatorKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, a, err := StartOperatorNATS(EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), MaxPayload: 1 << 20},
		keys, Scope{LatticePrefix: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s, a, dir
}

// permErrs collects the server's permission violations for one connection.
type permErrs struct {
	mu   sync.Mutex
	errs []string
}

func (p *permErrs) add(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err.Error())
}

func (p *permErrs) has(sub string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		if strings.Contains(e, sub) {
			return nil
		}
	}
	return errors.New("no permission error mentioning " + sub + " yet; got " + strings.Join(p.errs, "; "))
}

func connectAs(t *testing.T, url string, c Credentials, extra ...nats.Option) (*nats.Conn, *permErrs) {
	t.Helper()
	pe := &permErrs{}
	opts := append([]nats.Option{
		nats.UserJWTAndSeed(c.JWT, c.Seed), nats.Name(c.Name),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { pe.add(err) }),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", c.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc, pe
}

func TestMintedUsersHaveLeastPrivilege(t *testing.T) {
	s, a, _ := operatorServer(t)
	url := s.ClientURL()
	keyA := trust.FileProviderKey([32]byte{1})
	keyB := trust.FileProviderKey([32]byte{2})
	mint := func(role Role, sc Scope) Credentials {
		c, err := a.Mint(role, string(role), sc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := mint(RoleAdmin, Scope{})
	provA := mint(RoleProvider, Scope{ProviderKey: keyA, LinkName: "default"})
	provB := mint(RoleProvider, Scope{ProviderKey: keyB, LinkName: "default"})
	hostRPC := mint(RoleHostRPC, Scope{})
	hostCtl := mint(RoleHostCtl, Scope{})
	if provA.UserKey == provB.UserKey || hostRPC.UserKey == hostCtl.UserKey {
		t.Fatal("users share a key")
	}

	adminNC, _ := connectAs(t, url, admin)
	aNC, aErrs := connectAs(t, url, provA, nats.CustomInboxPrefix(provA.InboxPrefix))
	bNC, _ := connectAs(t, url, provB, nats.CustomInboxPrefix(provB.InboxPrefix))

	// A provider is refused on the control interface and on another
	// provider's subjects, both ways.
	for _, subj := range []string{"wasmbus.ctl.>", "wasmbus.ctl.default.cmd.x.lp", lattice.RPCProvider("default", keyB, "default"), lattice.RPCShutdown("default", keyB, "default")} {
		if _, err := aNC.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error { return aErrs.has(`Subscription to "` + subj + `"`) })
	}
	if err := aNC.Publish(lattice.RPCShutdown("default", keyB, "default"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		return aErrs.has(`Publish to "` + lattice.RPCShutdown("default", keyB, "default") + `"`)
	})
	if err := aNC.Publish("wasmbus.ctl.default.cmd.x.sp", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error { return aErrs.has(`Publish to "wasmbus.ctl.default.cmd.x.sp"`) })

	// Its own subjects work: B serves health, the admin asks.
	if _, err := bNC.Subscribe(lattice.RPCHealth("default", keyB, "default"), func(m *nats.Msg) { _ = m.Respond([]byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	_ = bNC.Flush()
	if _, err := adminNC.Request(lattice.RPCHealth("default", keyB, "default"), nil, 2*time.Second); err != nil {
		t.Fatalf("provider could not answer its own health subject: %v", err)
	}
	// And a provider may invoke an actor (which the admin plays here).
	actor := "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"
	if _, err := adminNC.Subscribe(lattice.RPCActor("default", actor), func(m *nats.Msg) { _ = m.Respond([]byte("hi")) }); err != nil {
		t.Fatal(err)
	}
	_ = adminNC.Flush()
	if m, err := aNC.Request(lattice.RPCActor("default", actor), nil, 2*time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("provider invoking an actor: %v", err)
	}

	// The host's RPC user serves actors but not providers and not ctl.
	rpcNC, rpcErrs := connectAs(t, url, hostRPC, nats.CustomInboxPrefix(inboxPrefix("default", RoleHostRPC)))
	for _, subj := range []string{lattice.RPCProvider("default", keyB, "default"), "wasmbus.ctl.default.>", "_INBOX.>"} {
		_, _ = rpcNC.SubscribeSync(subj)
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error { return rpcErrs.has(`Subscription to "` + subj + `"`) })
	}
	if m, err := rpcNC.Request(lattice.RPCActor("default", actor), nil, 2*time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("host RPC invoking an actor: %v", err)
	}
	// A provider cannot read the host's replies.
	_, _ = aNC.SubscribeSync(inboxPrefix("default", RoleHostRPC) + ".>")
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error { return aErrs.has(`Subscription to "_INBOX_LATTICED`) })

	// The control user cannot touch RPC subjects.
	ctlNC, ctlErrs := connectAs(t, url, hostCtl, nats.CustomInboxPrefix(inboxPrefix("default", RoleHostCtl)))
	_ = ctlNC.Publish(lattice.RPCActor("default", actor), nil)
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error { return ctlErrs.has(`Publish to "wasmbus.rpc.`) })
}

func TestProviderScopeRefusesWildcardLinkNames(t *testing.T) {
	key := trust.FileProviderKey([32]byte{1})
	for _, link := range []string{"", "a.b", "*", ">", "x y"} {
		if _, err := (Scope{LatticePrefix: "default", ProviderKey: key, LinkName: link}).Permissions(RoleProvider); err == nil {
			t.Errorf("link name %q accepted", link)
		}
	}
	if _, err := (Scope{LatticePrefix: "default", ProviderKey: "MXXX", LinkName: "default"}).Permissions(RoleProvider); err == nil {
		t.Error("non-provider key accepted")
	}
}

func TestRevokeClosesConnectionAndRefusesReconnect(t *testing.T) {
	s, a, _ := operatorServer(t)
	key := trust.FileProviderKey([32]byte{1})
	c, err := a.Mint(RoleProvider, "p", Scope{ProviderKey: key, LinkName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.Mint(RoleProvider, "q", Scope{ProviderKey: key, LinkName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	nc, _ := connectAs(t, s.ClientURL(), c, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	otherNC, _ := connectAs(t, s.ClientURL(), other)
	if err := a.Revoke(context.Background(), c.UserKey); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("revoked connection still open")
	}
	_ = nc
	_, err = nats.Connect(s.ClientURL(), nats.UserJWTAndSeed(c.JWT, c.Seed))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("reconnect with revoked credentials: %v, want an authorization error", err)
	}
	if !otherNC.IsConnected() {
		t.Fatal("another user was disconnected")
	}
	// A successor minted in the same second is not caught by the revocation.
	next, err := a.Mint(RoleProvider, "p2", Scope{ProviderKey: key, LinkName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Unix(next.Issued.Unix(), 0) != time.Unix(c.Issued.Unix(), 0) {
		t.Log("successor minted in a later second; the same-second case was not exercised this run")
	}
	connectAs(t, s.ClientURL(), next)
}

func TestCredsFilesAndKeysAreSecret(t *testing.T) {
	_, a, dir := operatorServer(t)
	for _, rel := range []string{datadir.OperatorSeedFile, datadir.SystemAccountSeedFile, datadir.LatticeAccountSeedFile} {
		fi, err := os.Stat(datadir.Path(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 600", rel, fi.Mode().Perm())
		}
	}
	c, _ := a.Mint(RoleAdmin, "admin", Scope{})
	if strings.Contains(strings.ToLower(slogString(c)), strings.ToLower(c.Seed)) {
		t.Error("Credentials log value shows the seed")
	}
}

func slogString(v any) string {
	var b strings.Builder
	l := slog.New(slog.NewJSONHandler(&b, nil))
	l.Info("x", "v", v)
	return b.String()
}
