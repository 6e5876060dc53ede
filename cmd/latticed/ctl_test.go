package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testhost"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// ctlEnv runs the latticed binary (built by TestMain) with a controlled
// environment: its own HOME and data dir plus the given variables.
type ctlEnv struct {
	t       *testing.T
	dataDir string
	env     map[string]string
}

func newCtlEnv(t *testing.T, env map[string]string) *ctlEnv {
	e := &ctlEnv{t: t, dataDir: filepath.Join(t.TempDir(), "data"), env: map[string]string{}}
	for k, v := range env {
		e.env[k] = v
	}
	return e
}

func (e *ctlEnv) run(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binPath, args...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "HOME" && name != "XDG_DATA_HOME" && !strings.HasPrefix(name, "LATTICED_") && !strings.HasPrefix(name, "WASMCLOUD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	root := filepath.Dir(e.dataDir)
	cmd.Env = append(cmd.Env, "HOME="+filepath.Join(root, "home"), "LATTICED_DATA_DIR="+e.dataDir)
	for k, v := range e.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil && ctx.Err() == context.DeadlineExceeded {
			_ = cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("run latticed %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// json runs args with --output json and decodes the envelope's value under
// key (the whole envelope when key is "") into out.
func (e *ctlEnv) json(out any, key string, args ...string) {
	e.t.Helper()
	r := e.run(append(args, "--output", "json")...)
	r.want(e.t, 0)
	decodeEnvelope(e.t, r.stdout, key, out)
}

// decodeEnvelope decodes the envelope --output json prints on success
// (envelopeValue) or fails the test.
func decodeEnvelope(t testing.TB, stdout, key string, out any) {
	t.Helper()
	if err := envelopeValue(stdout, key, out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
}

// envelopeValue checks stdout is the envelope --output json prints on
// success, one object saying "success": true, and decodes its value under
// key (the whole object when key is "") into out.
func envelopeValue(stdout, key string, out any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &fields); err != nil {
		return fmt.Errorf("output is not one JSON object: %w", err)
	}
	if string(fields["success"]) != "true" {
		return errors.New(`output lacks "success": true`)
	}
	raw := json.RawMessage(stdout)
	if key != "" {
		var ok bool
		if raw, ok = fields[key]; !ok {
			return fmt.Errorf("output lacks the key %q", key)
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("output under %q is not the expected JSON: %w", key, err)
	}
	return nil
}

// errorEnvelope checks r is a failure as --output json reports one, wash's
// error envelope {"success": false, "error": "..."} alone on stderr and
// nothing on stdout, and returns the error message.
func errorEnvelope(t testing.TB, r result) string {
	t.Helper()
	var env struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if r.stdout != "" {
		t.Errorf("a failure under --output json printed on stdout: %q", r.stdout)
	}
	dec := json.NewDecoder(strings.NewReader(r.stderr))
	if err := dec.Decode(&env); err != nil || env.Success == nil || *env.Success || env.Error == "" {
		t.Fatalf(`stderr is not {"success": false, "error": "..."} (%v):\n%s`, err, r.stderr)
	}
	if dec.More() {
		t.Errorf("stderr holds more than the error envelope:\n%s", r.stderr)
	}
	return env.Error
}

// testHost is a real wasm host running in this process.
type testHost struct {
	*host.Host
	stop func() // stops the host and waits for it (idempotent)
}

func startTestHost(t *testing.T, s *server.Server, cluster *trust.KeyPair, prefix string, labels map[string]string, tweaks ...func(*host.Options)) *testHost {
	t.Helper()
	hostKey, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	opts := host.Options{
		HostSettings: config.HostSettings{
			LatticePrefix: prefix, AllowFileLoad: true, CompileCacheDir: t.TempDir(), MemoryLimitPages: 1024, Labels: labels,
		},
		HostKey: hostKey, ClusterKey: cluster,
		RPC: testenv.Connect(t, s), Ctl: testenv.Connect(t, s),
		HeartbeatInterval: time.Hour,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	h, stop := testhost.Start(t, opts)
	return &testHost{Host: h, stop: stop}
}

// oneHostLattice is a real NATS server with one real host on it, and the
// latticed binary set up to control that lattice (the lattice of one's seed
// file holds the cluster seed, so ctl call signs with it).
func oneHostLattice(t *testing.T, prefix string, labels map[string]string) (*testHost, *ctlEnv) {
	t.Helper()
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	h := startTestHost(t, s, cluster, prefix, labels)
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	writeSecretFile(t, filepath.Join(e.dataDir, "keys", "cluster.nk"), cluster.Seed()+"\n")
	return h, e
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func serverPort(t *testing.T, s *server.Server) string {
	t.Helper()
	return strconv.Itoa(s.Addr().(*net.TCPAddr).Port)
}

func writeSecretFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestCtl drives `latticed ctl` against two real hosts on a real NATS server.
// Hosts keep claims and links in their own memory for now and one host of
// a queue group answers get.claims/get.links, so those are checked once only
// the host running the actor is left.
func TestCtl(t *testing.T) {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "ctltest"
	a := startTestHost(t, s, cluster, prefix, map[string]string{"zone": "a"})
	b := startTestHost(t, s, cluster, prefix, map[string]string{"zone": "b"})
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	// The lattice of one's seed file signs `ctl call` when no seed is configured.
	writeSecretFile(t, filepath.Join(e.dataDir, "keys", "cluster.nk"), cluster.Seed()+"\n")

	dir := t.TempDir()
	acct, echoKey := testenv.ActorKeys(t)
	signEcho := func(rev int32) testenv.SignedActor {
		return testenv.SignActorAs(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{
			Name: "echo", CallAlias: "echo", Caps: []string{wire.ContractHTTPServer}, Rev: rev,
		}, acct, echoKey)
	}
	echo := signEcho(1)
	echoRef := "file://" + echo.Path

	t.Run("get hosts", func(t *testing.T) {
		r := e.run("ctl", "get", "hosts", "--timeout", "1s")
		r.want(t, 0)
		mustContain(t, "hosts table", r.stdout, "HOST ID", "FRIENDLY NAME", "UPTIME", "LABELS", a.ID(), b.ID(), "zone=a", "zone=b")

		var hosts []lattice.HostInfo
		e.json(&hosts, "hosts", "ctl", "get", "hosts", "--timeout-ms", "1000", "--quiet", "0") // wash's spelling; both hosts in the whole window
		if len(hosts) != 2 {
			t.Fatalf("hosts: %+v", hosts)
		}
		for _, h := range hosts {
			want := map[string]string{a.ID(): "a", b.ID(): "b"}[h.ID]
			if want == "" || h.Labels["zone"] != want || h.LatticePrefix != prefix || h.Issuer != cluster.PublicKey() {
				t.Errorf("host info %+v", h)
			}
		}
	})

	t.Run("get inventory needs a host id with two hosts", func(t *testing.T) {
		r := e.run("ctl", "get", "inventory", "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "2 hosts answered", a.ID(), b.ID())
	})

	t.Run("start actor", func(t *testing.T) {
		r := e.run("ctl", "start", "actor", echoRef, "--constraint", "zone=b", "--timeout", "2s")
		r.want(t, 0)
		if r.stdout != echo.Key+"\n" {
			t.Fatalf("stdout %q, want the actor key", r.stdout)
		}
		if inv := b.Inventory(); len(inv.Actors) != 1 || inv.Actors[0].ID != echo.Key {
			t.Fatalf("host b inventory: %+v", inv.Actors)
		}
		if inv := a.Inventory(); len(inv.Actors) != 0 {
			t.Fatalf("host a runs %+v, but only zone=b matched", inv.Actors)
		}
	})

	t.Run("start actor failures", func(t *testing.T) {
		r := e.run("ctl", "start", "actor", echoRef, "--constraint", "zone=c", "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "no host matches constraints zone=c")

		unsigned := filepath.Join(dir, "unsigned.wasm")
		if err := os.WriteFile(unsigned, testenv.BuildActor(t, "github.com/latticed/latticed/actor/examples/echo"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = e.run("ctl", "start", "actor", "file://"+unsigned, "--host-id", a.ID())
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "could not start actor", "claims")
		if r.stdout != "" {
			t.Errorf("a failed start printed %q", r.stdout)
		}
	})

	t.Run("call Echo.Echo raw", func(t *testing.T) {
		r := e.run("ctl", "call", echo.Key, "Echo.Echo", "--data", `"hello"`, "--raw")
		r.want(t, 0)
		if want := "\xa5hello"; r.stdout != want {
			t.Fatalf("raw reply %q, want %q (msgpack str)", r.stdout, want)
		}
	})

	// Over the chunking threshold both ways: the invocation and the actor's
	// reply travel through the lattice's object store.
	t.Run("call Echo.Echo chunked", func(t *testing.T) {
		big := strings.Repeat("latticed", 2<<20/8)
		file := filepath.Join(dir, "big.json")
		if err := os.WriteFile(file, []byte(`"`+big+`"`), 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.run("ctl", "call", echo.Key, "Echo.Echo", "--data-file", file, "--raw", "--timeout", "15s")
		r.want(t, 0)
		if want := "\xdb\x00\x20\x00\x00" + big; r.stdout != want { // msgpack str32 of 2 MiB
			t.Fatalf("raw reply of %d bytes, want the %d bytes sent back", len(r.stdout), len(want))
		}
		r = e.run("ctl", "call", echo.Key, "Echo.Echo", "--data-file", file, "--data", `"x"`)
		r.want(t, 2)
	})

	t.Run("call HttpServer.HandleRequest", func(t *testing.T) {
		r := e.run("ctl", "call", echo.Key, "HttpServer.HandleRequest",
			"--data", `{"method":"GET","path":"/hi","queryString":"a=1","header":{},"body":""}`)
		r.want(t, 0)
		var resp struct {
			StatusCode int                 `json:"statusCode"`
			Header     map[string][]string `json:"header"`
			Body       string              `json:"body"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
			t.Fatalf("reply is not JSON: %v\n%s", err, r.stdout)
		}
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, "/hi") || resp.Header["Content-Type"][0] != "application/json" {
			t.Fatalf("reply %+v", resp)
		}
		// The body was bin holding JSON: shown as text, it parses.
		var body map[string]string
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body["path"] != "/hi" || body["query_string"] != "a=1" || body["method"] != "GET" {
			t.Fatalf("body %q: %v", resp.Body, err)
		}
	})

	t.Run("scale actor", func(t *testing.T) {
		// The host is found from inventories: the first match ends the
		// wait, so a generous --timeout costs nothing and leaves the scale
		// itself (three instantiations on a busy machine) time to answer.
		r := e.run("ctl", "scale", "actor", echo.Key, "3", "--timeout", "10s")
		r.want(t, 0)
		mustContain(t, "stdout", r.stdout, b.ID())
		var inv lattice.HostInventory
		e.json(&inv, "inventory", "ctl", "get", "inventory", b.ID())
		if inv.HostID != b.ID() || len(inv.Actors) != 1 || len(inv.Actors[0].Instances) != 3 || inv.Actors[0].ImageRef != echoRef {
			t.Fatalf("inventory after scale: %+v", inv)
		}
		r = e.run("ctl", "get", "inventory", b.ID())
		r.want(t, 0)
		mustContain(t, "inventory text", r.stdout, "ACTOR ID", echo.Key, "echo", "3", "No providers.")
	})

	t.Run("update actor", func(t *testing.T) {
		instances := func() (ref string, revs []int32, ids []string) {
			var inv lattice.HostInventory
			e.json(&inv, "inventory", "ctl", "get", "inventory", b.ID())
			for _, d := range inv.Actors {
				ref = d.ImageRef
				for _, in := range d.Instances {
					revs, ids = append(revs, in.Revision), append(ids, in.InstanceID)
				}
			}
			slices.Sort(ids)
			return ref, slices.Compact(revs), ids
		}
		_, _, before := instances()
		rev2 := "file://" + signEcho(2).Path
		r := e.run("ctl", "update", "actor", echo.Key, rev2, "--timeout", "10s")
		r.want(t, 0)
		mustContain(t, "stdout", r.stdout, "updated", b.ID())
		if ref, revs, ids := instances(); ref != rev2 || !slices.Equal(revs, []int32{2}) || !slices.Equal(ids, before) {
			t.Fatalf("after the update the inventory has %s, revisions %v, instances %v; want %s, [2], the same %v", ref, revs, ids, rev2, before)
		}
		// The same revision again is refused, with the host's reason.
		r = e.run("ctl", "update", "actor", echo.Key, rev2, "--host-id", b.ID())
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "Unable to perform live update", "higher revision")
	})

	t.Run("labels", func(t *testing.T) {
		e.run("ctl", "label", "put", a.ID(), "tier=gold").want(t, 0)
		var hosts []lattice.HostInfo
		e.json(&hosts, "hosts", "ctl", "get", "hosts", "--timeout", "1s")
		for _, h := range hosts {
			if (h.ID == a.ID()) != (h.Labels["tier"] == "gold") {
				t.Errorf("labels of %s: %v", h.ID, h.Labels)
			}
		}
		e.run("ctl", "label", "del", a.ID(), "tier").want(t, 0)
		r := e.run("ctl", "label", "del", a.ID(), "tier")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "not set")
	})

	t.Run("stop host", func(t *testing.T) {
		r := e.run("ctl", "stop", "host", a.ID())
		r.want(t, 0)
		select {
		case <-a.Stopped(): // the stop command took effect
		case <-time.After(10 * time.Second):
			t.Fatal("host a did not stop")
		}
		a.stop() // and its Run returned cleanly
		// Now one host is left: get inventory finds it by itself.
		testenv.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
			r := e.run("ctl", "get", "inventory", "--timeout", "300ms", "--output", "json")
			if r.code != 0 || !strings.Contains(r.stdout, b.ID()) {
				return fmt.Errorf("exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			return nil
		})
	})

	t.Run("get claims and call by alias", func(t *testing.T) {
		var claims []lattice.CachedClaims
		e.json(&claims, "claims", "ctl", "get", "claims")
		if len(claims) != 1 || claims[0].Subject != echo.Key || claims[0].CallAlias != "echo" {
			t.Fatalf("claims: %+v", claims)
		}
		r := e.run("ctl", "get", "claims")
		r.want(t, 0)
		mustContain(t, "claims table", r.stdout, "CALL ALIAS", echo.Key, wire.ContractHTTPServer)

		r = e.run("ctl", "call", "echo", "Echo.Echo", "--data", `{"b":[1,2.5,null,true],"a":"x"}`)
		r.want(t, 0)
		var got any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if b, _ := json.Marshal(got); string(b) != `{"a":"x","b":[1,2.5,null,true]}` {
			t.Errorf("echoed %s", b)
		}

		r = e.run("ctl", "call", "nope", "Echo.Echo")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, `"nope" is neither an actor key`, "known aliases: echo")
	})

	t.Run("call errors", func(t *testing.T) {
		stranger, _ := trust.CreateKeyPair(lattice.KindModule)
		r := e.run("ctl", "call", stranger.PublicKey(), "Echo.Echo", "--timeout", "2s")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, stranger.PublicKey(), "not running")

		r = e.run("ctl", "call", echo.Key, "No.Such")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "No.Such")

		// A seed in the environment replaces the file; an untrusted one is refused.
		other, _ := trust.CreateKeyPair(lattice.KindCluster)
		e.env["WASMCLOUD_CLUSTER_SEED"] = other.Seed()
		r = e.run("ctl", "call", echo.Key, "Echo.Echo")
		delete(e.env, "WASMCLOUD_CLUSTER_SEED")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "issuer")
		if strings.Contains(r.stdout+r.stderr, other.Seed()) {
			t.Error("output shows the seed")
		}
		r = e.run("ctl", "call", echo.Key, "Echo.Echo", "--data", `"x"`, "--cluster-seed", cluster.Seed(), "--raw")
		r.want(t, 0)
		if r.stdout != "\xa1x" {
			t.Errorf("reply %q", r.stdout)
		}

		r = e.run("ctl", "call", echo.Key, "Echo.Echo", "--data", `{"a":`)
		r.want(t, 2)
		mustContain(t, "stderr", r.stderr, "--data", "invalid JSON", "Run 'latticed ctl call --help' for usage.")
	})

	t.Run("links", func(t *testing.T) {
		prov, _ := trust.CreateKeyPair(lattice.KindService)
		r := e.run("ctl", "link", "put", echo.Key, prov.PublicKey(), wire.ContractHTTPServer, "PORT=8080", "--link-name", "web")
		r.want(t, 0)
		var links []lattice.LinkDefinition
		e.json(&links, "links", "ctl", "link", "get")
		if len(links) != 1 || links[0].ActorID != echo.Key || links[0].ProviderID != prov.PublicKey() ||
			links[0].ContractID != wire.ContractHTTPServer || links[0].LinkName != "web" || links[0].Values["PORT"] != "8080" {
			t.Fatalf("links: %+v", links)
		}
		r = e.run("ctl", "get", "links")
		r.want(t, 0)
		mustContain(t, "links table", r.stdout, echo.Key, prov.PublicKey(), "web", "PORT=8080")

		e.run("ctl", "link", "del", echo.Key, wire.ContractHTTPServer, "--link-name", "web").want(t, 0)
		e.json(&links, "links", "ctl", "get", "links")
		if len(links) != 0 {
			t.Fatalf("links after delete: %+v", links)
		}
		r = e.run("ctl", "link", "del", echo.Key, wire.ContractHTTPServer, "--link-name", "web")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "no link definition")

		r = e.run("ctl", "link", "put", prov.PublicKey(), echo.Key, wire.ContractHTTPServer)
		r.want(t, 2)
		mustContain(t, "stderr", r.stderr, "not an actor")
	})

	t.Run("providers without a supervisor", func(t *testing.T) {
		r := e.run("ctl", "start", "provider", "registry.example/p:1", "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "no host matches constraints")
		r = e.run("ctl", "start", "provider", "registry.example/p:1", "--host-id", b.ID(), "--config", `{"a":1}`)
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "cannot manage providers")
		prov, _ := trust.CreateKeyPair(lattice.KindService)
		r = e.run("ctl", "revoke", "provider", prov.PublicKey(), "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "not running on any host")
	})

	t.Run("stop actor by annotation", func(t *testing.T) {
		// annotated counts the instances on b, and those with app=shop.
		annotated := func() (ref string, all, shop int) {
			var inv lattice.HostInventory
			e.json(&inv, "inventory", "ctl", "get", "inventory", b.ID())
			for _, d := range inv.Actors {
				ref = d.ImageRef
				for _, in := range d.Instances {
					all++
					if in.Annotations["app"] == "shop" {
						shop++
					}
				}
			}
			return ref, all, shop
		}
		ref, before, _ := annotated()
		e.run("ctl", "start", "actor", ref, "--host-id", b.ID(), "--count", "2", "--annotation", "app=shop").want(t, 0)
		if _, all, shop := annotated(); all != before+2 || shop != 2 {
			t.Fatalf("after starting 2 with app=shop: %d instances, %d with it", all, shop)
		}
		e.run("ctl", "stop", "actor", echo.Key, "--host-id", b.ID(), "--count", "1", "--annotation", "app=shop").want(t, 0)
		if _, all, shop := annotated(); all != before+1 || shop != 1 {
			t.Fatalf("after stopping 1 with app=shop: %d instances, %d with it; want %d and 1", all, shop, before+1)
		}
		e.run("ctl", "stop", "actor", echo.Key, "--host-id", b.ID(), "--annotation", "app=shop").want(t, 0)
		if _, all, shop := annotated(); all != before || shop != 0 {
			t.Fatalf("after stopping all with app=shop: %d instances, %d with it; want the %d without", all, shop, before)
		}
		r := e.run("ctl", "stop", "actor", echo.Key, "--annotation", "app")
		r.want(t, 2)
		mustContain(t, "stderr", r.stderr, "expected key=value")
	})

	t.Run("stop actor", func(t *testing.T) {
		r := e.run("ctl", "stop", "actor", echo.Key, "--host-id", b.ID(), "--output", "json")
		r.want(t, 0)
		mustContain(t, "stdout", r.stdout, `"success": true`, `"result": "Actor `+echo.Key+` stopped on host `+b.ID())
		var inv lattice.HostInventory
		e.json(&inv, "inventory", "ctl", "get", "inventory", b.ID())
		if len(inv.Actors) != 0 {
			t.Fatalf("actors after stop: %+v", inv.Actors)
		}
		r = e.run("ctl", "stop", "actor", echo.Key, "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "not running on any host")
	})

	t.Run("unknown host", func(t *testing.T) {
		ghost, _ := trust.CreateKeyPair(lattice.KindServer)
		r := e.run("ctl", "get", "inventory", ghost.PublicKey())
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, "no host "+ghost.PublicKey())
	})

	t.Run("embedded server address by default", func(t *testing.T) {
		d := newCtlEnv(t, map[string]string{"LATTICED_NATS_LISTEN": "127.0.0.1:" + serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix})
		var hosts []lattice.HostInfo
		d.json(&hosts, "hosts", "ctl", "get", "hosts", "--timeout", "500ms")
		if len(hosts) != 1 || hosts[0].ID != b.ID() {
			t.Fatalf("hosts: %+v", hosts)
		}
		// {data dir}/creds/admin.creds is used when it exists.
		creds := filepath.Join(d.dataDir, "creds", "admin.creds")
		writeSecretFile(t, creds, "not a creds file\n")
		r := d.run("ctl", "get", "hosts", "--timeout", "500ms")
		r.want(t, 1)
		mustContain(t, "stderr", r.stderr, creds)
	})
}

func TestCtlNoServer(t *testing.T) {
	port := strconv.Itoa(closedPort(t))
	e := newCtlEnv(t, map[string]string{"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": port})
	r := e.run("ctl", "get", "hosts")
	r.want(t, 1)
	mustContain(t, "stderr", r.stderr, "cannot connect to NATS at nats://127.0.0.1:"+port, "WASMCLOUD_CTL_HOST")
	if strings.Contains(r.stderr, "for usage.") {
		t.Errorf("a connection failure is no usage error:\n%s", r.stderr)
	}

	d := newCtlEnv(t, map[string]string{"LATTICED_NATS_LISTEN": "127.0.0.1:" + port})
	r = d.run("ctl", "get", "inventory")
	r.want(t, 1)
	mustContain(t, "stderr", r.stderr, "nats://127.0.0.1:"+port, "LATTICED_NATS_LISTEN", "latticed up", "WASMCLOUD_CTL_HOST")
}

func TestCtlUsageErrors(t *testing.T) {
	// No server is needed: usage and configuration errors come first.
	e := newCtlEnv(t, map[string]string{"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": strconv.Itoa(closedPort(t))})
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	seed, _ := trust.CreateKeyPair(lattice.KindCluster)
	prov, _ := trust.CreateKeyPair(lattice.KindService)
	hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ctl", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"ctl", "get", "hosts", "extra"}, "too many arguments"},
		{[]string{"ctl", "get", "hosts", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"ctl", "get", "hosts", "--output", "yaml"}, "want json or text"},
		{[]string{"ctl", "get", "inventory", "NOTAHOST"}, "not a host ID"},
		{[]string{"ctl", "start", "actor"}, "missing argument <ref>"},
		{[]string{"ctl", "start", "actor", "x", "--count", "0"}, "--count must be at least 1"},
		{[]string{"ctl", "start", "actor", "x", "--constraint", "nokv"}, `--constraint "nokv": expected key=value`},
		{[]string{"ctl", "start", "provider", "x", "--config", "{bad"}, "--config must be JSON"},
		{[]string{"ctl", "scale", "actor", mod.PublicKey(), "x"}, "<count> must be a number 0 or more"},
		{[]string{"ctl", "link", "put", mod.PublicKey(), "V"}, "missing argument <contract-id>"},
		{[]string{"ctl", "link", "del", "x", "c"}, "not an actor key"},
		{[]string{"ctl", "label", "put", "x"}, "missing argument <key=value>"},
		{[]string{"ctl", "label", "put", hostKey.PublicKey(), "a.b*>=v"}, `invalid request: label key "a.b*>"`},
		{[]string{"ctl", "link", "put", mod.PublicKey(), prov.PublicKey(), "wasmcloud:httpserver", "PORT=1", "port=2"}, "differ only in case"},
		{[]string{"ctl", "link", "put", mod.PublicKey(), prov.PublicKey(), "wasmcloud:httpserver", "--link-name", "x.>"}, `invalid request: link name "x.>"`},
		{[]string{"ctl", "link", "put", mod.PublicKey(), prov.PublicKey(), "wasmcloud:httpserver", "port=1", "port=2"}, "key port is given twice"},
		{[]string{"ctl", "link", "del", mod.PublicKey(), "c", "--link-name", "a.b*>"}, `invalid request: link name "a.b*>"`},
		{[]string{"ctl", "start", "provider", "x", "--link-name", "x.>"}, `invalid request: link name "x.>"`},
		{[]string{"ctl", "start", "actor", "x", "--count", "-5"}, "--count must be at least 1"},
		{[]string{"ctl", "call", mod.PublicKey(), "Op", "--data", "1 2"}, "more than one value"},
		{[]string{"ctl", "call", mod.PublicKey(), "Op"}, filepath.Join(e.dataDir, "keys", "cluster.nk")},
		{[]string{"ctl", "call", mod.PublicKey(), "Op", "--cluster-seed", "SCNOTASEED"}, "WASMCLOUD_CLUSTER_SEED"},
		{[]string{"ctl", "get", "hosts", "--ctl-port", "70000"}, "WASMCLOUD_CTL_PORT"},
		{[]string{"ctl", "get", "hosts", "--quiet", "-1s"}, "--quiet must not be negative"},
		{[]string{"ctl", "get", "hosts", "--timeout-ms", "0"}, "--timeout-ms must be positive"},
		{[]string{"ctl", "get", "hosts", "--timeout-ms", "10", "--timeout", "1s"}, "give one"},
		{[]string{"ctl", "start", "provider", "builtin:nope"}, `"builtin:nope" is no built-in provider: the built-ins are builtin:httpserver, builtin:keyvalue`},
		{[]string{"ctl", "link", "del", mistype(mod.PublicKey()), "c"}, "checksum does not match"},
		{[]string{"ctl", "get", "inventory", hostKey.PublicKey()[:50]}, "it has 50 characters; a server key is 56 characters starting with N"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run(tt.args...)
			r.want(t, 2)
			mustContain(t, "stderr", r.stderr, "latticed: ", tt.want)
			if strings.Contains(r.stderr, seed.Seed()) {
				t.Error("stderr shows a seed")
			}
		})
	}
}

func TestCtlHelp(t *testing.T) {
	e := newCtlEnv(t, nil)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"ctl", "--help"}, []string{"get", "start", "stop", "scale", "revoke", "link", "label", "call", "LATTICED_NATS_LISTEN", "admin.creds"}},
		{[]string{"ctl", "get", "hosts", "--help"}, []string{"--ctl-host", "WASMCLOUD_CTL_HOST", "--ctl-credsfile", "--ctl-tls", "--lattice-prefix", "WASMCLOUD_LATTICE_PREFIX", "--ctl-topic-prefix", "--timeout", "--timeout-ms", "--quiet", "-o, --output"}},
		{[]string{"ctl", "link", "query", "--help"}, []string{"List every link definition"}},
		{[]string{"ctl", "start", "actor", "--help"}, []string{"--host-id", "--count", "--annotation", "--constraint", "--wait"}},
		{[]string{"ctl", "call", "--help"}, []string{"--data", "--raw", "--cluster-seed", "WASMCLOUD_CLUSTER_SEED", "keys/cluster.nk", "base64"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run(tt.args...)
			r.want(t, 0)
			mustContain(t, "help", r.stdout, tt.want...)
		})
	}
}

// mistype changes a key's last character, as a typo would: the key keeps
// its length and alphabet, and its checksum no longer matches.
func mistype(key string) string {
	last := byte('A')
	if key[len(key)-1] == 'A' {
		last = 'B'
	}
	return key[:len(key)-1] + string(last)
}
