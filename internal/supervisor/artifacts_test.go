package supervisor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/par"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// cli runs the latticed binary and returns stdout; wantErr says whether it must fail.
func cli(t *testing.T, env []string, wantErr bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, latticedBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err != nil) != wantErr {
		t.Fatalf("latticed %s: err %v, want error %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, wantErr, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// buildHTTPServerArchive builds the standalone httpserver provider and packs
// it with latticed par create for this machine's target.
func buildHTTPServerArchive(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "provider-httpserver")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/provider-httpserver").CombinedOutput(); err != nil {
		t.Fatalf("go build provider-httpserver: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "httpserver.par.gz")
	cli(t, nil, false, "par", "create", "--builtin", "httpserver", "--ver", "0.1.0", "--keys-dir", filepath.Join(dir, "keys"),
		"--binary", trust.ProviderTarget()+"="+bin, "--destination", path)
	return path
}

// retar rewrites an archive's entries through change (name -> new body).
func retar(t *testing.T, data []byte, change func(name string, body []byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body = change(h.Name, body)
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(body)
	}
	_ = tw.Close()
	_ = zw.Close()
	return out.Bytes()
}

func (n *node) ctlEnv(t *testing.T) []string {
	t.Helper()
	u, err := url.Parse(n.s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	return []string{config.EnvDataDir + "=" + n.cfg.DataDir, config.EnvNATSListen + "=" + u.Host}
}

// cacheEntry reads the lattice cache's last message on subject.
func (n *node) cacheEntry(t *testing.T, subject string) map[string]any {
	t.Helper()
	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var m map[string]any
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := js.Stream(ctx, lattice.CacheStream(n.cfg.LatticePrefix))
		if err != nil {
			return err
		}
		msg, err := s.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		return json.Unmarshal(msg.Data, &m)
	})
	return m
}

// An actor and a provider archive pushed with `latticed push` to a real
// registry start by reference on a node (`latticed ctl start`), serve an
// HTTP request together, and are recorded in the lattice cache's refmap;
// altered artifacts and :latest are refused with the reason.
func TestActorAndProviderArchiveFromAnOCIRegistry(t *testing.T) {
	reg := testenv.Registry(t, nil)
	dir := t.TempDir()
	actor := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	parPath := buildHTTPServerArchive(t, dir)
	actorRef, provRef := reg+"/latticed/echo:0.1.0", reg+"/latticed/httpserver:0.1.0"
	cli(t, nil, false, "push", actorRef, actor.Path, "--insecure")
	var pushed pushResultJSON
	if err := json.Unmarshal([]byte(cli(t, nil, false, "push", provRef, parPath, "--insecure", "--output", "json")), &pushed); err != nil {
		t.Fatal(err)
	}
	if pushed.Kind != "provider archive" || !lattice.IsPublicKey(pushed.PublicKey, lattice.KindService) {
		t.Fatalf("push result %+v", pushed)
	}
	inspect := cli(t, nil, false, "par", "inspect", parPath)
	if !strings.Contains(inspect, pushed.PublicKey) || !strings.Contains(inspect, trust.ProviderTarget()) {
		t.Fatalf("par inspect:\n%s", inspect)
	}

	n := startNode(t, map[string]string{config.EnvOCIAllowedInsecure: reg})
	env := n.ctlEnv(t)
	start := time.Now()
	out := cli(t, env, false, "ctl", "start", "actor", actorRef)
	t.Logf("ctl start actor from the registry (pull, verify, compile, start): %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, actor.Key) {
		t.Fatalf("ctl start actor: %s", out)
	}
	cli(t, env, false, "ctl", "start", "provider", "--timeout", "60s", provRef)
	d := n.waitProviderState(provRef, "default", child.StateRunning)
	if d.ID != pushed.PublicKey || d.ContractID != wire.ContractHTTPServer {
		t.Fatalf("provider %+v, want key %s", d, pushed.PublicKey)
	}
	// The extracted binary is private to the node.
	fi, err := os.Stat(filepath.Join(datadir.Path(n.cfg.DataDir, datadir.ProviderBinDir), d.ID))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("extracted binary dir: %v %v", fi, err)
	}
	for ref, key := range map[string]string{actorRef: actor.Key, provRef: pushed.PublicKey} {
		if rm := n.cacheEntry(t, lattice.CacheRefmap(n.cfg.LatticePrefix, ref)); rm["public_key"] != key || rm["oci_url"] != ref {
			t.Errorf("refmap of %s: %v", ref, rm)
		}
	}
	if c := n.cacheEntry(t, lattice.CacheClaims(n.cfg.LatticePrefix, pushed.PublicKey)); c["contract_id"] != wire.ContractHTTPServer {
		t.Errorf("provider claims in the cache: %v", c)
	}

	port := testenv.FreePort(t)
	ld := lattice.LinkDefinition{ActorID: actor.Key, ProviderID: pushed.PublicKey, LinkName: "default", ContractID: wire.ContractHTTPServer,
		Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	var ack lattice.Ack
	n.ctlRequest(lattice.NewCtl("", n.cfg.LatticePrefix).LinkdefsPut(), ld, &ack)
	if !ack.Accepted {
		t.Fatalf("link: %s", ack.Error)
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/hello")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "/hello") {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	})

	// Refusals. Tampered artifacts are pushed with the library (latticed
	// push itself refuses them), as a hostile registry would serve them.
	ctx := context.Background()
	raw := oci.New(oci.Settings{AllowedInsecure: []string{reg}})
	module, _ := os.ReadFile(actor.Path)
	evil := append(append([]byte{}, module...), 0x00, 0x05, 0x04, 'e', 'v', 'i', 'l') // one more custom section
	if _, err := raw.Push(ctx, reg+"/latticed/evil-echo:0.1.0", oci.Actor, evil, false); err != nil {
		t.Fatal(err)
	}
	// A small signed archive (the refusal comes before anything runs), its
	// binary altered after signing.
	issuer, _ := trust.CreateKeyPair(lattice.KindAccount)
	subject, _ := trust.CreateKeyPair(lattice.KindService)
	var archive bytes.Buffer
	if _, err := par.Create(&archive, par.CreateOptions{Name: "evil", ContractID: wire.ContractHTTPServer}, map[string][]byte{trust.ProviderTarget(): []byte("#!/bin/sh\nexit 0\n")}, issuer, subject); err != nil {
		t.Fatal(err)
	}
	tampered := retar(t, archive.Bytes(), func(name string, body []byte) []byte {
		if strings.HasSuffix(name, ".bin") {
			return append(body, 0)
		}
		return body
	})
	if _, err := raw.Push(ctx, reg+"/latticed/evil-httpserver:0.1.0", oci.ProviderArchive, tampered, false); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Push(ctx, reg+"/latticed/echo:latest", oci.Actor, module, true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"tampered module", []string{"ctl", "start", "actor", reg + "/latticed/evil-echo:0.1.0"}, "module hash mismatch"},
		{"tampered archive binary", []string{"ctl", "start", "provider", "--timeout", "60s", reg + "/latticed/evil-httpserver:0.1.0", "--link-name", "evil"}, "does not match its signed claims"},
		{"latest tag", []string{"ctl", "start", "actor", reg + "/latticed/echo:latest"}, "latest"},
		{"no tag", []string{"ctl", "start", "actor", reg + "/latticed/echo"}, "latest"},
		{"latest provider", []string{"ctl", "start", "provider", "--timeout", "60s", reg + "/latticed/httpserver:latest", "--link-name", "latest"}, "latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := cli(t, env, true, tc.args...)
			t.Logf("refused: %s", strings.TrimSpace(out))
			if !strings.Contains(out, tc.want) {
				t.Fatalf("want %q in:\n%s", tc.want, out)
			}
		})
	}
	if _, ok := n.provider(reg+"/latticed/evil-httpserver:0.1.0", "evil"); ok {
		t.Fatal("the tampered provider is listed")
	}
}

type pushResultJSON struct {
	Kind      string `json:"kind"`
	PublicKey string `json:"public_key"`
	Digest    string `json:"digest"`
}

// A provider archive file starts with WASMCLOUD_ALLOW_FILE_LOAD and its
// binary is checked against the claims; an archive missing this machine's
// target is refused with the targets it has.
func TestProviderArchiveFromFile(t *testing.T) {
	dir := t.TempDir()
	issuer, _ := trust.CreateKeyPair(lattice.KindAccount)
	subject, _ := trust.CreateKeyPair(lattice.KindService)
	prog, _ := os.ReadFile(providerBin)
	write := func(name string, bins map[string][]byte) string {
		var buf bytes.Buffer
		if _, err := par.Create(&buf, par.CreateOptions{Name: "test", ContractID: "latticed:test", CompressionLevel: gzip.BestSpeed}, bins, issuer, subject); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.par.gz", map[string][]byte{trust.ProviderTarget(): prog})
	other := write("other.par.gz", map[string][]byte{"mips-plan9": []byte("not for this machine")})
	n := startNode(t, nil)
	n.launch("file://"+good, "default", "")
	if d := n.waitProviderState("file://"+good, "default", child.StateRunning); d.ID != subject.PublicKey() {
		t.Fatalf("key %s, want the claims' subject %s", d.ID, subject.PublicKey())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: "file://" + other, LinkName: "other"})
	if err == nil || !strings.Contains(err.Error(), "no binary for this target "+trust.ProviderTarget()) || !strings.Contains(err.Error(), "mips-plan9") {
		t.Fatalf("archive without this target: %v", err)
	}
}

// privateArtifacts are an actor and a provider archive pushed to a real
// registry that requires login.
type privateArtifacts struct {
	reg                string
	login              *testenv.RegistryLogin
	actorRef, actorKey string
	provRef, provKey   string
}

// pushPrivateArtifacts starts a registry requiring a login and pushes an
// actor and a provider archive to it with `latticed push --user
// --password-stdin`, after checking that an anonymous push is refused.
func pushPrivateArtifacts(t *testing.T) privateArtifacts {
	t.Helper()
	login := &testenv.RegistryLogin{Username: "lattice", Password: "pw-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	reg := testenv.Registry(t, login)
	dir := t.TempDir()
	actor := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	issuer, _ := trust.CreateKeyPair(lattice.KindAccount)
	subject, _ := trust.CreateKeyPair(lattice.KindService)
	prog, _ := os.ReadFile(providerBin)
	var archive bytes.Buffer
	if _, err := par.Create(&archive, par.CreateOptions{Name: "test", ContractID: "latticed:test", CompressionLevel: gzip.BestSpeed}, map[string][]byte{trust.ProviderTarget(): prog}, issuer, subject); err != nil {
		t.Fatal(err)
	}
	parPath := filepath.Join(dir, "test.par.gz")
	if err := os.WriteFile(parPath, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a := privateArtifacts{reg: reg, login: login, actorRef: reg + "/private/echo:1.0.0", actorKey: actor.Key,
		provRef: reg + "/private/test:1.0.0", provKey: subject.PublicKey()}
	if out := cli(t, nil, true, "push", a.actorRef, actor.Path, "--insecure"); !strings.Contains(out, "credential") {
		t.Fatalf("anonymous push to a private registry: %s", out)
	}
	for ref, file := range map[string]string{a.actorRef: actor.Path, a.provRef: parPath} {
		cmd := exec.Command(latticedBin, "push", ref, file, "--insecure", "--user", login.Username, "--password-stdin")
		cmd.Stdin = strings.NewReader(login.Password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("push %s: %v\n%s", ref, err, out)
		}
	}
	return a
}

// startBoth starts the actor (pulled by the host) and the provider archive
// (pulled by the supervisor) from the private registry on n.
func (a privateArtifacts) startBoth(t *testing.T, n *node) {
	t.Helper()
	env := n.ctlEnv(t)
	if out := cli(t, env, false, "ctl", "start", "actor", a.actorRef); !strings.Contains(out, a.actorKey) {
		t.Fatalf("start actor: %s", out)
	}
	cli(t, env, false, "ctl", "start", "provider", "--timeout", "60s", a.provRef)
	if d := n.waitProviderState(a.provRef, "default", child.StateRunning); d.ID != a.provKey {
		t.Fatalf("provider key %s, want %s", d.ID, a.provKey)
	}
}

// assertNoSecretLogged checks that n's log (the supervisor's and, relayed,
// its children's) neither shows password nor needed the redactor to hide a
// secret that a child printed.
func (a privateArtifacts) assertNoSecretLogged(t *testing.T, n *node) {
	t.Helper()
	logs := n.logs.String()
	if strings.Contains(logs, a.login.Password) {
		t.Errorf("the registry password is in the node's log")
	}
	if strings.Contains(logs, child.RedactedSecret) {
		t.Errorf("a child printed a secret (redacted in the log):\n%s", tail(logs, 50))
	}
}

// A node configured with WASMCLOUD_OCI_REGISTRY, _USER and _PASSWORD pulls
// from that private registry, the host an actor and the supervisor a
// provider archive, and neither its log nor /metrics shows the password.
func TestPrivateRegistryLoginFromSettings(t *testing.T) {
	a := pushPrivateArtifacts(t)
	n := startNode(t, map[string]string{
		config.EnvOCIAllowedInsecure: a.reg, config.EnvOCIRegistry: a.reg,
		config.EnvOCIRegistryUser: a.login.Username, config.EnvOCIRegistryPassword: a.login.Password,
	})
	a.startBoth(t, n)
	a.assertNoSecretLogged(t, n)
	resp, err := http.Get("http://" + n.s.health.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 || strings.Contains(string(body), a.login.Password) {
		t.Fatalf("/metrics: status %d, %d bytes, shows the password: %v", resp.StatusCode, len(body), strings.Contains(string(body), a.login.Password))
	}
}

// Credentials for a private registry reach both pullers (the host for
// actors, the supervisor for provider archives) with registries.put, and
// are kept: after the node restarts on the same data dir both pull again
// without another registries.put. The kept file is 0600 and no log line
// shows the password.
func TestPrivateRegistryCredentialsFromRegistriesPut(t *testing.T) {
	a := pushPrivateArtifacts(t)
	n := startNode(t, map[string]string{config.EnvOCIAllowedInsecure: a.reg})
	env := n.ctlEnv(t)
	out := cli(t, env, true, "ctl", "start", "actor", a.actorRef)
	if !strings.Contains(out, "wants a login") || !strings.Contains(out, config.EnvOCIRegistry) {
		t.Fatalf("start from a private registry without credentials: %s", out)
	}
	creds, _ := json.Marshal(map[string]oci.Credential{a.reg: {RegistryType: "oci", Username: a.login.Username, Password: a.login.Password}})
	msg, err := n.nc.Request(lattice.NewCtl("", n.cfg.LatticePrefix).RegistriesPut(), creds, 10*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"accepted":true`) {
		t.Fatalf("registries.put: %v %s", err, msg.Data)
	}
	a.startBoth(t, n)
	file := datadir.Path(n.cfg.DataDir, datadir.OCICredentialsFile)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept credentials %s: %v %v, want mode 0600", file, fi, err)
	}
	a.assertNoSecretLogged(t, n)
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	// Same data dir, new processes, no registries.put; without the blob
	// cache, so that everything comes from the registry again.
	if err := os.RemoveAll(datadir.Path(n.cfg.DataDir, datadir.OCICacheDir)); err != nil {
		t.Fatal(err)
	}
	again := startNode(t, map[string]string{config.EnvOCIAllowedInsecure: a.reg, config.EnvDataDir: n.cfg.DataDir})
	a.startBoth(t, again)
	a.assertNoSecretLogged(t, again)
}
