package supervisor

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
)

// TestProviderCannotReadOperatorReplies is issue 18's hole 5 as the attack:
// processes holding the real credentials of a running built-in provider and
// of a running foreign (wasmCloud-style) provider subscribe to every inbox
// their users allow while the operator runs `latticed ctl` (put a link with
// a secret value, get links, get claims, get hosts = ping, get inventory),
// the supervisor launches a provider (it asks the host for all links) and
// health-checks both. None of those replies may reach them.
func TestProviderCannotReadOperatorReplies(t *testing.T) {
	n := startNode(t, nil)
	const builtin = "builtin:httpserver"
	n.launch(builtin, "default", "")
	n.launch(providerBin, "default", "{}")
	n.waitProviderState(builtin, "default", child.StateRunning)
	foreign := n.waitProviderState(providerBin, "default", child.StateRunning)
	credsOf := func(ref string) Credentials {
		p := n.instance(ref, "default")
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.creds
	}

	// The attackers, each subscribing where its user may and where it may not.
	type attempt struct {
		subject string
		allowed bool
	}
	attackers := []struct {
		ref      string
		attempts func(c Credentials) []attempt
	}{
		{builtin, func(c Credentials) []attempt {
			return []attempt{{"_INBOX.>", false}, {lattice.PrivateInboxRoot + ".>", false}, {c.InboxPrefix + ".>", true}}
		}},
		{providerBin, func(c Credentials) []attempt {
			return []attempt{{"_INBOX.>", true}, {lattice.PrivateInboxRoot + ".>", false}, {c.InboxPrefix + ".>", true}}
		}},
	}
	type listening struct {
		who string
		nc  *nats.Conn
		sub *nats.Subscription
	}
	var listen []listening
	for _, a := range attackers {
		c := credsOf(a.ref)
		if c.InboxPrefix == "" || !strings.HasPrefix(c.InboxPrefix, lattice.PrivateInbox(n.cfg.LatticePrefix, "provider.")) {
			t.Fatalf("%s: minted without a private inbox prefix: %q", a.ref, c.InboxPrefix)
		}
		nc, errs := connectAs(t, n.s.NATSURL(), c, nats.CustomInboxPrefix(c.InboxPrefix))
		for _, at := range a.attempts(c) {
			sub, err := nc.SubscribeSync(at.subject)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if !at.allowed {
				testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error { return errs.has(`Subscription to "` + at.subject + `"`) })
				continue
			}
			listen = append(listen, listening{who: a.ref + " on " + at.subject, nc: nc, sub: sub})
		}
		if err := errs.has(`Subscription to "` + c.InboxPrefix); err == nil {
			t.Fatalf("%s may not subscribe to its own inbox prefix", a.ref)
		}
	}

	// The operator at work, with the real command line and admin.creds.
	host, port, err := net.SplitHostPort(strings.TrimPrefix(n.s.NATSURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), config.EnvDataDir+"="+n.cfg.DataDir, config.EnvNATSListen+"="+net.JoinHostPort(host, port))
	const secret = "attack-marker-5f2c"
	actor := "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"
	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(latticedBin, append([]string{"ctl", "--timeout", "5s"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("latticed ctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctl("link", "put", actor, foreign.ID, "wasmcloud:example", "token="+secret)
	if out := ctl("get", "links"); !strings.Contains(out, secret) {
		t.Fatalf("get links did not show the link:\n%s", out)
	}
	ctl("get", "claims")
	if out := ctl("get", "hosts", "--timeout", "1s"); !strings.Contains(out, n.s.HostID()) {
		t.Fatalf("get hosts did not list this host:\n%s", out)
	}
	ctl("get", "inventory", n.s.HostID())
	// The supervisor asks the host for this provider's links before it starts it.
	n.launch(providerBin2, "default", "{}")
	n.waitProviderState(providerBin2, "default", child.StateRunning)

	// Health checks, seen by an observer with admin rights: several of each
	// provider's, after the attackers subscribed, all answered on the
	// operator's private inbox.
	var mu sync.Mutex
	checks := map[string][]string{}
	for _, ref := range []string{builtin, providerBin} {
		d, _ := n.provider(ref, "default")
		subj := lattice.RPCHealth(n.cfg.LatticePrefix, d.ID, "default")
		sub, err := n.nc.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			checks[ref] = append(checks[ref], m.Reply)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, ref := range []string{builtin, providerBin} {
			if len(checks[ref]) < 3 {
				return fmt.Errorf("%d health checks of %s seen", len(checks[ref]), ref)
			}
		}
		return nil
	})
	mu.Lock()
	for ref, replies := range checks {
		for _, r := range replies {
			if !strings.HasPrefix(r, lattice.OperatorInbox(n.cfg.LatticePrefix)+".") {
				t.Errorf("health check of %s answered to %q, not the operator's private inbox", ref, r)
			}
		}
	}
	mu.Unlock()

	// Every reply was delivered to whoever could subscribe before the
	// commands above returned; a flush makes sure none is still on its way.
	for _, l := range listen {
		if err := l.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if msgs, _, _ := l.sub.Pending(); msgs > 0 {
			m, _ := l.sub.NextMsg(time.Second)
			t.Errorf("%s received %d replies, the first on %s: %.200q", l.who, msgs, m.Subject, m.Data)
		}
	}
}
