package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/cacheread"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/cachefill"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// Issue 24.1 as the operator met it: in a lattice of 20,000 links (far
// more than one NATS message holds) `get links` lists them all, a crashed
// httpserver provider comes back with its link and serves HTTP, and so does
// a node restarted with --apply.
func TestProviderKeepsItsLinksInALatticeOfTwentyThousand(t *testing.T) {
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	port := strconv.Itoa(testenv.FreePort(t))
	dir := t.TempDir()
	path := filepath.Join(t.TempDir(), "lattice.yaml")
	manifest := fmt.Sprintf(`actors:
  - ref: file://%[1]s
providers:
  - ref: builtin:httpserver
links:
  - actor: file://%[1]s
    provider: builtin:httpserver
    contract: %[2]s
    values:
      port: "%[3]s"
`, echo.Path, wire.ContractHTTPServer, port)
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	serves := func(t *testing.T, what string) {
		t.Helper()
		testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			resp, err := http.Post("http://127.0.0.1:"+port+"/", "text/plain", strings.NewReader(what))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(what)) {
				return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
			}
			return nil
		})
	}
	env := map[string]string{config.EnvDataDir: dir, config.EnvLogLevel: "debug"}
	u := startUp(t, env, "--apply", path)
	serves(t, "first")

	// 20,000 more links, written as a wasmCloud host writes them.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js, err := jetstream.New(u.nc)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := trust.CreateKeyPair(lattice.KindService)
	const n = 20000
	if err := cachefill.Put(ctx, js, "default", cachefill.Links(echo.Key, other.PublicKey(), n)); err != nil {
		t.Fatal(err)
	}
	c := ctlclient.New(u.nc, "", "default")
	links, err := c.Links(ctx)
	if err != nil || len(links) != n+1 {
		t.Fatalf("get links: %d links, %v; want %d", len(links), err, n+1)
	}

	// A crash: the supervisor restarts the provider, which must get its link.
	pid := childPID(t, u.cmd.Process.Pid, "httpserver")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		st, err := u.admin.Status(ctx)
		if err != nil {
			return err
		}
		for _, p := range st.Providers {
			if p.LinkName == "default" && p.ImageRef == "builtin:httpserver" && p.Restarts >= 1 && p.State == child.StateRunning {
				return nil
			}
		}
		return fmt.Errorf("provider not restarted and running yet: %+v", st.Providers)
	})
	serves(t, "after the provider restart")
	if !strings.Contains(u.stderr.String(), `"links":1,"from":"`+linksFromCache+`"`) {
		t.Errorf("the restarted provider's link count is not logged as read from the cache:\n%s", tail(u.stderr.String(), 40))
	}

	// The node restarted with --apply.
	if err := u.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-u.done:
	case <-time.After(60 * time.Second):
		t.Fatal("latticed up did not stop on SIGTERM")
	}
	u2 := startUp(t, env, "--apply", path)
	serves(t, "after the node restart")
	if links, err := ctlclient.New(u2.nc, "", "default").Links(ctx); err != nil || len(links) != n+1 {
		t.Fatalf("get links after the restart: %d links, %v; want %d", len(links), err, n+1)
	}
}

// childPID finds the child of parent whose command line contains word.
func childPID(t *testing.T, parent int, word string) int {
	t.Helper()
	var found int
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			stat, err := os.ReadFile(filepath.Join(d, "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
			rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
			f := strings.Fields(rest)
			if len(f) < 2 || f[1] != strconv.Itoa(parent) {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
			if bytes.Contains(cmdline, []byte(word)) {
				found, _ = strconv.Atoi(filepath.Base(d))
				return nil
			}
		}
		return fmt.Errorf("no child of %d runs %q", parent, word)
	})
	return found
}

// Who may read the lattice cache whole (docs/security.md, "Roles"): the
// host's control user (and so a supervisor on an external NATS, which
// connects with the control credentials) with the rights it already has;
// a provider's user may not, and gets ErrUnavailable within the read's idle
// bound (the server refuses the JetStream API request without answering it).
func TestCacheReadNeedsNoRightBeyondTheHostControlRole(t *testing.T) {
	waitBound(t)
	s, a, _ := operatorServer(t)
	admin, err := a.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	adminNC, _ := connectAs(t, s.ClientURL(), admin, nats.CustomInboxPrefix(admin.InboxPrefix))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(adminNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := cachefill.EnsureStream(ctx, js, "default"); err != nil {
		t.Fatal(err)
	}
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	prov, _ := trust.CreateKeyPair(lattice.KindService)
	if err := cachefill.Put(ctx, js, "default", cachefill.Links(actor.PublicKey(), prov.PublicKey(), 3000)); err != nil {
		t.Fatal(err)
	}
	keyA := trust.FileProviderKey([32]byte{1})
	cases := []struct {
		name  string
		role  Role
		scope Scope
		links int
	}{
		{"host-ctl", RoleHostCtl, Scope{}, 3000},
		{"provider", RoleProvider, Scope{ProviderKey: keyA, LinkName: "default"}, -1},
		{"host-rpc", RoleHostRPC, Scope{}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := a.Mint(tc.role, tc.name, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			nc, _ := connectAs(t, s.ClientURL(), c, nats.CustomInboxPrefix(c.InboxPrefix))
			r, err := cacheread.New(nc, "", "default")
			if err != nil {
				t.Fatal(err)
			}
			r.Idle = 5 * time.Second
			links, err := r.Links(ctx)
			switch {
			case tc.links >= 0 && (err != nil || len(links) != tc.links):
				t.Fatalf("read %d links, %v; want %d", len(links), err, tc.links)
			case tc.links < 0 && !errors.Is(err, cacheread.ErrUnavailable):
				t.Fatalf("read %d links, %v; want ErrUnavailable", len(links), err)
			}
		})
	}
}

// A provider whose lattice connection is lost misses the link definitions
// sent meanwhile: core NATS keeps nothing for a subscriber that is gone.
// When the connection is restored its health reply says so, and the
// supervisor sends it the lattice's links again. A link changed while it
// was away is then served as changed, and one deleted is deleted.
func TestProviderGetsTheLinksChangedWhileItsConnectionWasDown(t *testing.T) {
	n, actor := httpActorNode(t, "github.com/latticed/latticed/actor/examples/echo", "echo")
	httpProv, _ := builtin.Lookup("builtin:httpserver")
	link := func(port int) lattice.LinkDefinition {
		return lattice.LinkDefinition{ActorID: actor.Key, ProviderID: httpProv.Key(), LinkName: "default",
			ContractID: wire.ContractHTTPServer, Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}}
	}
	serves := func(port int) error { return getOK("http://127.0.0.1:" + strconv.Itoa(port) + "/") }
	portA, portB := testenv.FreePort(t), testenv.FreePort(t)
	n.putLinks(link(portA))
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return serves(portA) })

	// Freeze the provider, cut its connection, change its links, thaw it.
	whileAway := func(change func()) {
		t.Helper()
		pid := n.instance("builtin:httpserver", "default").child.Process().PID()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
		cutHTTPServerProvider(t, n)
		change()
	}
	whileAway(func() {
		var ack lattice.Ack
		n.ctlRequest(lattice.NewCtl("", n.cfg.LatticePrefix).LinkdefsDel(), link(portA), &ack)
		if !ack.Accepted {
			t.Fatalf("link del: %s", ack.Error)
		}
		n.putLinks(link(portB))
	})
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return serves(portB) })
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if serves(portA) == nil {
			return errors.New("the link's old address still serves")
		}
		return nil
	})

	whileAway(func() {
		var ack lattice.Ack
		n.ctlRequest(lattice.NewCtl("", n.cfg.LatticePrefix).LinkdefsDel(), link(portB), &ack)
		if !ack.Accepted {
			t.Fatalf("link del: %s", ack.Error)
		}
	})
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if serves(portB) == nil {
			return errors.New("the deleted link still serves")
		}
		return nil
	})
	if !strings.Contains(n.logs.String(), "sent a provider the deletion of a link deleted while it could not be told") {
		t.Error("the log does not say the deletion was sent again")
	}
}

// The links the supervisor sends a provider again (after its connection
// was restored, after its start, after a late grant) are read from the
// lattice first. A link the host changes between that read and the sends
// must not be overtaken by the older copy: the supervisor reads again and
// sends what changed. Here the host moves the link to another address at
// exactly that moment (the test's hook between the read and the sends); the
// new address must serve, and go on serving.
func TestResentLinksDoNotOvertakeAChangeMadeMeanwhile(t *testing.T) {
	var armed atomic.Bool
	var change func() error
	changed := make(chan error, 1)
	n, actor := httpActorNode(t, "github.com/latticed/latticed/actor/examples/echo", "echo", func(s *Supervisor) {
		s.afterLinksRead = func() {
			if armed.CompareAndSwap(true, false) {
				changed <- change()
			}
		}
	})
	httpProv, _ := builtin.Lookup("builtin:httpserver")
	link := func(port int) lattice.LinkDefinition {
		ld := lattice.LinkDefinition{ActorID: actor.Key, ProviderID: httpProv.Key(), LinkName: "default",
			ContractID: wire.ContractHTTPServer, Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}}
		if err := ld.Normalize(); err != nil {
			t.Fatal(err)
		}
		return ld
	}
	serves := func(port int) error { return getOK("http://127.0.0.1:" + strconv.Itoa(port) + "/") }
	portA, portB := testenv.FreePort(t), testenv.FreePort(t)
	n.putLinks(link(portA))
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return serves(portA) })

	// The host's change, as `latticed ctl link put` makes it: acknowledged
	// once the lattice cache has it and the provider has been sent it.
	change = func() error {
		msg, err := n.nc.Request(lattice.NewCtl("", n.cfg.LatticePrefix).LinkdefsPut(), mustJSON(link(portB)), 30*time.Second)
		if err != nil {
			return err
		}
		var ack lattice.Ack
		if err := jsonUnmarshal(msg.Data, &ack); err != nil {
			return err
		}
		if !ack.Accepted {
			return errors.New(ack.Error)
		}
		return nil
	}
	armed.Store(true)
	// Cut the provider's connection: once restored, it reports a reconnect
	// and the supervisor sends it its links again.
	cutHTTPServerProvider(t, n)
	select {
	case err := <-changed:
		if err != nil {
			t.Fatalf("link put between the supervisor's read and its sends: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not send the provider its links again after its connection was restored")
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return serves(portB) })
	// It stays there: no older copy arrives after it.
	time.Sleep(time.Second)
	if err := serves(portB); err != nil {
		t.Fatalf("the link's new address stopped serving: %v", err)
	}
	if serves(portA) == nil {
		t.Fatal("the link's old address serves again")
	}
}

// cutHTTPServerProvider closes the httpserver provider's connection on the
// node's embedded server, as a network fault would; the provider reconnects.
func cutHTTPServerProvider(t *testing.T, n *node) {
	t.Helper()
	ns := n.s.NATSServer()
	connz, err := ns.Connz(&server.ConnzOptions{Limit: 4096})
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, c := range connz.Conns {
		if strings.HasPrefix(c.Name, "provider "+wire.ContractHTTPServer+" ") {
			if err := ns.DisconnectClientByID(c.Cid); err != nil {
				t.Fatal(err)
			}
			cut++
		}
	}
	if cut != 1 {
		t.Fatalf("cut %d connections of the httpserver provider, want 1", cut)
	}
}
