package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// providerConns lists the open connections of the lattice account whose
// name starts with "provider <contract>", by contract, through the system
// account's CONNZ.
func providerConns(ctx context.Context, sys *nats.Conn, account string) (map[string][]uint64, error) {
	body, _ := json.Marshal(server.ConnzOptions{State: server.ConnOpen, Account: account, Limit: 1024})
	msg, err := sys.RequestWithContext(ctx, "$SYS.REQ.ACCOUNT."+account+".CONNZ", body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data *server.Connz `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil || resp.Data == nil {
		return nil, fmt.Errorf("connz: %v %s", err, msg.Data)
	}
	out := map[string][]uint64{}
	for _, c := range resp.Data.Conns {
		for _, contract := range []string{wire.ContractHTTPServer, wire.ContractKeyValue} {
			if strings.HasPrefix(c.Name, "provider "+contract+" ") {
				out[contract] = append(out[contract], c.Cid)
			}
		}
	}
	return out, nil
}

// Issue 17, defect 1, on the real parts: `latticed up` against an
// operator-mode nats-server with an account signing key, provider
// credentials at the shortest allowed lifetime (10 s), the built-in
// httpserver and keyvalue providers serving kvcounter, steady HTTP load
// for more than five lifetimes. Every request succeeds, no provider exits
// or restarts, and each provider holds one connection: a renewal moves it
// make-before-break to a new one (the server cuts a connection when the
// JWT it was made with expires), so two exist only during a handover.
func TestBuiltinProvidersOutliveTheirCredentialsUnderLoad(t *testing.T) {
	waitBound(t)
	const lifetime = 10 * time.Second // config's floor
	o := startOperatorServer(t)
	actor := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue},
	})
	env := o.env(false)
	env[config.EnvProviderCredsLifetime] = lifetime.String()
	u := startUp(t, env, "--start-actor", "file://"+actor.Path)

	nc, err := nats.Connect("127.0.0.1:"+strconv.Itoa(o.port), nats.UserCredentials(o.hostCreds))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sys, err := nats.Connect("127.0.0.1:"+strconv.Itoa(o.port), nats.UserCredentials(o.sysCreds))
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()

	ctx := context.Background()
	for _, ref := range []string{"builtin:httpserver", "builtin:keyvalue"} {
		if err := u.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
			t.Fatal(err)
		}
	}
	providers := func() []lattice.ProviderDescription {
		st, err := u.admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Providers
	}
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		for _, p := range providers() {
			if p.State != child.StateRunning {
				return fmt.Errorf("%s is %s", p.Name, p.State)
			}
		}
		return nil
	})
	port := testenv.FreePort(t)
	ctl := lattice.NewCtl("", "default")
	for _, b := range builtin.All() {
		ld := lattice.LinkDefinition{ActorID: actor.Key, ProviderID: b.Key(), LinkName: "default", ContractID: b.Contract}
		if b.Contract == wire.ContractHTTPServer {
			ld.Values = map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}
		}
		if err := ld.Normalize(); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(ld)
		msg, err := nc.Request(ctl.LinkdefsPut(), body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ack lattice.Ack
		if err := json.Unmarshal(msg.Data, &ack); err != nil || !ack.Accepted {
			t.Fatalf("link %s: %v %s", b.Contract, err, ack.Error)
		}
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	// Steady load for 5.5 lifetimes, sampling the providers' connections.
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	client := &http.Client{Timeout: 10 * time.Second}
	loadCtx, stopLoad := context.WithTimeout(ctx, lifetime*11/2)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			resp, err := client.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
				}
			}
			if err != nil {
				failed.Add(1)
				failMu.Lock()
				failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
				failMu.Unlock()
				continue
			}
			ok.Add(1)
		}
	}()
	seen := map[string]map[uint64]bool{}
	maxConns := map[string]int{}
	samples, overlaps := 0, 0
	sample := time.NewTicker(200 * time.Millisecond)
	defer sample.Stop()
	for sampling := true; sampling; {
		select {
		case <-loadDone:
			sampling = false
			continue
		case <-sample.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conns, err := providerConns(sctx, sys, o.account)
		cancel()
		if err != nil {
			t.Logf("connz: %v", err)
			continue
		}
		samples++
		for _, c := range []string{wire.ContractHTTPServer, wire.ContractKeyValue} {
			if seen[c] == nil {
				seen[c] = map[uint64]bool{}
			}
			for _, cid := range conns[c] {
				seen[c][cid] = true
			}
			maxConns[c] = max(maxConns[c], len(conns[c]))
			if len(conns[c]) != 1 {
				overlaps++
			}
		}
	}
	<-loadDone
	t.Logf("%d requests ok, %d failed over %s (credentials lifetime %s); %d connection samples, %d with a provider not at exactly one connection; connections per provider over the run: httpserver %d, keyvalue %d",
		ok.Load(), failed.Load(), lifetime*11/2, lifetime, samples, overlaps, len(seen[wire.ContractHTTPServer]), len(seen[wire.ContractKeyValue]))

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed:\n%s", n, n+ok.Load(), strings.Join(failures, "\n"))
	}
	for _, p := range providers() {
		if p.State != child.StateRunning || p.Restarts != 0 {
			t.Errorf("provider %s: state %s, %d restarts (last exit %q)", p.Name, p.State, p.Restarts, p.ExitReason)
		}
	}
	conns, err := providerConns(ctx, sys, o.account)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{wire.ContractHTTPServer, wire.ContractKeyValue} {
		if len(conns[c]) != 1 {
			t.Errorf("%s holds %d connections at the end, want 1", c, len(conns[c]))
		}
		if maxConns[c] > 2 {
			t.Errorf("%s held %d connections at once (one, two during a handover)", c, maxConns[c])
		}
		// At least one renewal per half-lifetime must have moved it.
		if len(seen[c]) < 5 {
			t.Errorf("%s used %d connections over 5.5 lifetimes: its credentials were not renewed", c, len(seen[c]))
		}
	}
	if strings.Contains(u.stderr.String(), "authentication expired") {
		t.Error("a connection was cut for an expired JWT")
	}
}
