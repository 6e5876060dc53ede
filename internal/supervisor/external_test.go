package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
)

// operatorCluster is a real nats-server in operator mode with a full
// account resolver, and the keys an operator would hand latticed.
type operatorCluster struct {
	port                int
	account             string // the lattice account (A…)
	hostCreds, sysCreds string
	accountSigningSeed  string
	operatorSigningSeed string
	confPath            string
	cmd                 *exec.Cmd // the running server, nil while stopped
}

func startOperatorServer(t *testing.T) *operatorCluster {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	seed := func(kp nkeys.KeyPair) string { s, _ := kp.Seed(); return string(s) }
	pub := func(kp nkeys.KeyPair) string { p, _ := kp.PublicKey(); return p }
	op, _ := nkeys.CreateOperator()
	opSign, _ := nkeys.CreateOperator()
	sysAcct, _ := nkeys.CreateAccount()
	acct, _ := nkeys.CreateAccount()
	acctSign, _ := nkeys.CreateAccount()

	oc := jwt.NewOperatorClaims(pub(op))
	oc.SigningKeys.Add(pub(opSign))
	oc.SystemAccount = pub(sysAcct)
	opJWT, err := oc.Encode(op)
	must(err)
	sc := jwt.NewAccountClaims(pub(sysAcct))
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(opSign)
	must(err)
	ac := jwt.NewAccountClaims(pub(acct))
	ac.Name = "lattice"
	ac.SigningKeys.Add(pub(acctSign))
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	acctJWT, err := ac.Encode(opSign)
	must(err)

	user := func(signer nkeys.KeyPair, account string, name string) string {
		u, _ := nkeys.CreateUser()
		uc := jwt.NewUserClaims(pub(u))
		uc.Name = name
		if account != "" {
			uc.IssuerAccount = account
		}
		tok, err := uc.Encode(signer)
		must(err)
		b, err := jwt.FormatUserConfig(tok, []byte(seed(u)))
		must(err)
		path := filepath.Join(dir, name+".creds")
		must(os.WriteFile(path, b, 0o600))
		return path
	}
	oc2 := &operatorCluster{
		hostCreds: user(acctSign, pub(acct), "host"), sysCreds: user(sysAcct, "", "sys"),
		accountSigningSeed: seed(acctSign), operatorSigningSeed: seed(opSign), port: testenv.FreePort(t), account: pub(acct),
	}
	must(os.WriteFile(filepath.Join(dir, "op.jwt"), []byte(opJWT), 0o600))
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
server_name: operator-test
jetstream: {store_dir: %q}
operator: %q
system_account: %s
resolver: {type: full, dir: %q, allow_delete: false, interval: "2m", timeout: "1.9s"}
resolver_preload: {
  %s: %q
  %s: %q
}
`, oc2.port, filepath.Join(dir, "js"), filepath.Join(dir, "op.jwt"), pub(sysAcct), filepath.Join(dir, "jwt"),
		pub(sysAcct), sysJWT, pub(acct), acctJWT)
	oc2.confPath = filepath.Join(dir, "server.conf")
	must(os.WriteFile(oc2.confPath, []byte(conf), 0o600))
	oc2.start(t)
	return oc2
}

// start (re)starts the server on its port and store; it is stopped at test
// end.
func (o *operatorCluster) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(testenv.NATSServerBinary(t), "-c", o.confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nats-server output:\n%s", tail(out.String(), 40))
		}
	})
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(o.port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// stop ends the running server, as an operator's restart or a crash would.
func (o *operatorCluster) stop() {
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	_ = o.cmd.Wait()
	o.cmd = nil
}

func (o *operatorCluster) env(withOperator bool) map[string]string {
	e := map[string]string{
		config.EnvRPCHost: "127.0.0.1", config.EnvRPCPort: strconv.Itoa(o.port), config.EnvRPCCredsFile: o.hostCreds,
		config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: strconv.Itoa(o.port), config.EnvCtlCredsFile: o.hostCreds,
		config.EnvAccountSigningSeed: o.accountSigningSeed,
	}
	if withOperator {
		e[config.EnvOperatorSigningSeed] = o.operatorSigningSeed
		e[config.EnvSystemCredsFile] = o.sysCreds
	}
	return e
}

func TestExternalOperatorSigningKeyRevocationCutsAtOnce(t *testing.T) {
	o := startOperatorServer(t)
	n := startNode(t, o.env(true))
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	creds, pid := p.creds, p.pid()
	p.mu.Unlock()
	if creds.Expires.IsZero() {
		t.Error("external provider credentials do not expire")
	}
	if d, _ := n.provider(ref, "default"); d.Revocation != "" {
		t.Errorf("inventory says revocation is limited: %q", d.Revocation)
	}
	rep, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("external revocation: connection closed %.3f ms after the request", rep.Seconds*1000)
	if rep.Seconds > 2 {
		t.Errorf("revocation took %.3fs", rep.Seconds)
	}
	_, err = nats.Connect(n.cfg.RPC.URL(), nats.UserJWTAndSeed(creds.JWT, creds.Seed), nats.NoReconnect())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("reconnect with revoked credentials: %v, want an authorization error", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("revoked provider process still exists")
	}
	if d, _ := n.provider(ref, "default"); d.State != child.StateRevoked {
		t.Errorf("state %s", d.State)
	}
	// The host kept serving.
	var info lattice.HostInfo
	n.ctlRequest(lattice.NewCtl("", "default").PingHosts(), struct{}{}, &info)
	if info.ID != n.s.HostID() {
		t.Errorf("ping after revocation answered by %q", info.ID)
	}
}

func TestExternalAccountSigningKeyCredentialsExpireAfterRevocation(t *testing.T) {
	o := startOperatorServer(t)
	// A lifetime below the configurable minimum keeps the test short.
	n := startNodeWith(t, o.env(false), func(s *Supervisor) { s.credsLifetime = 3 * time.Second })
	if d := n.s.revocationStatus(); !strings.HasPrefix(d, "by expiry") {
		t.Errorf("revocation status %q", d)
	}
	// A real provider built on the SDK (package provider), which takes the
	// renewals.
	ref := "builtin:httpserver"
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	first := p.creds
	p.mu.Unlock()

	// While healthy, its credentials are renewed and it stays connected
	// past the first JWT's expiry.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(n.logs.String(), `"msg":"credentials renewed"`) {
			return errors.New("no renewal yet")
		}
		return nil
	})
	p.mu.Lock()
	pid := p.pid()
	p.mu.Unlock()
	time.Sleep(time.Until(first.Expires.Add(time.Second)))
	// The provider moved to a connection with the renewed JWT before the
	// server dropped the first JWT's connection at its expiry.
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := n.nc.Request(lattice.RPCHealth("default", p.key, "default"), nil, time.Second)
		return err
	})
	p.mu.Lock()
	last, samePID := p.creds, p.pid() == pid
	p.mu.Unlock()
	if !samePID {
		t.Fatal("the provider was restarted instead of renewed")
	}
	if !last.Expires.After(first.Expires) || last.UserKey != first.UserKey {
		t.Fatalf("credentials not renewed: first expires %v, last %v", first.Expires, last.Expires)
	}

	_, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := n.provider(ref, "default"); d.State != child.StateRevoked {
		t.Errorf("state %s", d.State)
	}
	// Not renewed: once the last JWT expires it is refused.
	time.Sleep(time.Until(last.Expires.Add(time.Second)))
	_, err = nats.Connect(n.cfg.RPC.URL(), nats.UserJWTAndSeed(last.JWT, last.Seed), nats.NoReconnect())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "expired") && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("connect with expired credentials: %v", err)
	}
}

func TestExternalSharedCredentialsSayRevocationIsUnavailable(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	n := startNode(t, map[string]string{
		config.EnvRPCHost: "127.0.0.1", config.EnvRPCPort: strconv.Itoa(srv.Port),
		config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: strconv.Itoa(srv.Port),
	})
	if !strings.Contains(n.logs.String(), "per-provider NATS revocation is UNAVAILABLE") {
		t.Error("the log does not say revocation is unavailable")
	}
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	var inv lattice.HostInventory
	n.ctlRequest(lattice.NewCtl("", "default").GetInventory(n.s.HostID()), struct{}{}, &inv)
	if len(inv.Providers) != 1 || !strings.HasPrefix(inv.Providers[0].Revocation, "unavailable") {
		t.Errorf("inventory: %+v", inv.Providers)
	}
	_, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"})
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("revoke: %v, want revocation unavailable", err)
	}
	if d, _ := n.provider(ref, "default"); d.State != child.StateRevoked {
		t.Errorf("provider not stopped for good: %+v", d)
	}
}

// The host reports each role's endpoint in its ping reply, as the bare
// host wasmCloud gives (docs/protocol.md §6): with WASMCLOUD_PROV_RPC_HOST
// naming another address of the same server, prov_rpc_host is that
// address, not the RPC server's.
func TestExternalHostReportsEachRoleEndpoint(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	port := strconv.Itoa(srv.Port)
	n := startNode(t, map[string]string{
		config.EnvRPCHost: "127.0.0.1", config.EnvRPCPort: port,
		config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: port,
		config.EnvProvRPCHost: "localhost", config.EnvProvRPCPort: port,
	})
	var info lattice.HostInfo
	n.ctlRequest(n.s.ctl.PingHosts(), struct{}{}, &info)
	if info.RPCHost != "127.0.0.1" || info.CtlHost != "127.0.0.1" {
		t.Errorf("rpc_host %q, ctl_host %q, want 127.0.0.1", info.RPCHost, info.CtlHost)
	}
	if info.ProvRPCHost != "localhost" {
		t.Errorf("prov_rpc_host %q, want localhost (the provider RPC endpoint)", info.ProvRPCHost)
	}
}
