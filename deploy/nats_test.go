package deploy

import (
	"context"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testpki"

	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

var natsConfigs = []string{
	"deploy/nats/cluster/cluster-common.conf",
	"deploy/nats/cluster/nats-1.conf",
	"deploy/nats/cluster/nats-2.conf",
	"deploy/nats/cluster/nats-3.conf",
	"deploy/nats/leaf/leaf.conf",
}

// natsSecrets are what the configurations expect next to them in
// /etc/nats: an nsc-style resolver.conf, TLS files, a leaf credential; and a
// lattice-account user for latticed.
type natsSecrets struct {
	resolverConf []byte
	caPEM        []byte
	certPEM      []byte
	keyPEM       []byte
	userCreds    []byte // a user of the lattice account, unrestricted
	account      nkeys.KeyPair
}

// user mints a user of the lattice account with perms and returns its .creds.
func (s *natsSecrets) user(t *testing.T, name string, perms jwt.Permissions) []byte {
	t.Helper()
	u, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := u.PublicKey()
	accPub, _ := s.account.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.IssuerAccount = accPub
	uc.Permissions = perms
	j, err := uc.Encode(s.account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := u.Seed()
	creds, err := jwt.FormatUserConfig(j, seed)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// rolePermissions are the least-privilege users of docs/operations.md
// ("Credentials per role") for a host on an external NATS.
func rolePermissions(prefix string) map[string]jwt.Permissions {
	resp := &jwt.ResponsePermission{MaxMsgs: 1}
	// What the host does with a stream or bucket: create it, read its info,
	// follow it with an ordered consumer.
	follow := func(stream string) []string {
		return []string{
			"$JS.API.STREAM.INFO." + stream, "$JS.API.STREAM.CREATE." + stream,
			"$JS.API.CONSUMER.CREATE." + stream, "$JS.API.CONSUMER.CREATE." + stream + ".>",
			"$JS.API.CONSUMER.DELETE." + stream + ".*", "$JS.API.CONSUMER.INFO." + stream + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
		}
	}
	obj := "OBJ_" + prefix
	ctlPub := jwt.StringList{"wasmbus.evt." + prefix, "$JS.API.INFO",
		"lc." + prefix + ".claims.*", "lc." + prefix + ".linkdefs.*", "lc." + prefix + ".refmap.*",
		"$KV.LATTICEDATA_" + prefix + ".*"}
	for _, stream := range []string{"LATTICECACHE_" + prefix, "KV_LATTICED_REVOCATIONS_" + prefix, "KV_LATTICEDATA_" + prefix} {
		ctlPub = append(ctlPub, follow(stream)...)
	}
	return map[string]jwt.Permissions{
		"host-rpc": {
			Pub: jwt.Permission{Allow: jwt.StringList{"wasmbus.rpc." + prefix + ".>", "wasmbus.rpcevt." + prefix,
				// The object store of large payloads (chunking), which the
				// operator creates: read, write and delete objects.
				"$O." + prefix + ".>", "$JS.API.STREAM.INFO." + obj, "$JS.API.DIRECT.GET." + obj, "$JS.API.DIRECT.GET." + obj + ".>",
				"$JS.API.STREAM.MSG.GET." + obj, "$JS.API.CONSUMER.CREATE." + obj, "$JS.API.CONSUMER.CREATE." + obj + ".>",
				"$JS.API.CONSUMER.DELETE." + obj + ".*", "$JS.API.STREAM.PURGE." + obj, "$JS.FC." + obj + ".>",
			}},
			Sub:  jwt.Permission{Allow: jwt.StringList{"wasmbus.rpc." + prefix + ".*", "_INBOX.>"}},
			Resp: resp,
		},
		"host-ctl": {
			Pub:  jwt.Permission{Allow: ctlPub},
			Sub:  jwt.Permission{Allow: jwt.StringList{"wasmbus.ctl." + prefix + ".>", "_INBOX.>"}},
			Resp: resp,
		},
	}
}

func newNATSSecrets(t *testing.T) *natsSecrets {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, _ := op.PublicKey()
	sys, err := nkeys.CreateAccount()
	must(err)
	sysPub, _ := sys.PublicKey()
	acc, err := nkeys.CreateAccount()
	must(err)
	accPub, _ := acc.PublicKey()

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "deploytest"
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	must(err)
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(op)
	must(err)
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "LATTICE"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accJWT, err := ac.Encode(op)
	must(err)
	user, err := nkeys.CreateUser()
	must(err)
	userPub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.Name = "latticed"
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(acc)
	must(err)
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)

	// The shape `nsc generate config --nats-resolver` writes, relative dir included.
	resolver := fmt.Sprintf(`# Operator named deploytest
operator: %s
# System Account named SYS
system_account: %s
resolver {
    type: full
    dir: './jwt'
    allow_delete: false
    interval: "2m"
    timeout: "1.9s"
}
resolver_preload: {
    %s: %s,
    %s: %s,
}
`, opJWT, sysPub, sysPub, sysJWT, accPub, accJWT)

	s := &natsSecrets{resolverConf: []byte(resolver), userCreds: creds, account: acc}
	s.caPEM, s.certPEM, s.keyPEM = newTLS(t)
	return s
}

// newTLS makes a CA and a server certificate for the cluster's host names
// and loopback.
func newTLS(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	ca := testpki.NewCA(t, "deploytest CA")
	certPEM, keyPEM = ca.Issue(t, testpki.Server, "nats",
		"nats-1.example.internal", "nats-2.example.internal", "nats-3.example.internal", "localhost", "127.0.0.1")
	return ca.PEM(), certPEM, keyPEM
}

// install lays the configurations out as on a server: everything in one
// etc/nats directory (as /etc/nats), state under varLib (as /var/lib/nats),
// with rewrite applied to each file after the path changes.
func (s *natsSecrets) install(t *testing.T, etc, varLib string, rewrite func(string) string) {
	t.Helper()
	for _, d := range []string{filepath.Join(etc, "tls"), varLib} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{
		"resolver.conf": s.resolverConf, "leaf.creds": s.userCreds,
		"tls/ca.crt": s.caPEM, "tls/server.crt": s.certPEM, "tls/server.key": s.keyPEM,
	}
	for _, rel := range natsConfigs {
		text := readFile(t, rel)
		text = strings.ReplaceAll(text, "/etc/nats/", etc+"/")
		text = strings.ReplaceAll(text, "/var/lib/nats", varLib)
		if rewrite != nil {
			text = rewrite(text)
		}
		files[filepath.Base(rel)] = []byte(text)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(etc, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Every configuration passes `nats-server -t` with the pinned server.
func TestNATSConfigs(t *testing.T) {
	ns := tool(t, "nats-server", "LATTICED_NATS_SERVER_BIN")
	root := t.TempDir()
	etc := filepath.Join(root, "etc", "nats")
	newNATSSecrets(t).install(t, etc, filepath.Join(root, "var", "lib", "nats"), nil)
	for _, rel := range natsConfigs {
		if strings.HasSuffix(rel, "common.conf") {
			continue // included by nats-N.conf
		}
		out, err := runTool(t, 30*time.Second, etc, ns, "-t", "-c", filepath.Join(etc, filepath.Base(rel)))
		if err != nil {
			t.Errorf("nats-server -t -c %s: %v\n%s", rel, err, out)
		}
	}

	// Three distinct servers of one cluster with JetStream.
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		conf := readFile(t, fmt.Sprintf("deploy/nats/cluster/nats-%d.conf", i))
		m := regexp.MustCompile(`(?m)^server_name:\s*(\S+)`).FindStringSubmatch(conf)
		if m == nil || names[m[1]] {
			t.Errorf("nats-%d.conf needs its own server_name", i)
		} else {
			names[m[1]] = true
		}
	}
	common := readFile(t, "deploy/nats/cluster/cluster-common.conf")
	for _, want := range []string{"jetstream {", "cluster {", "leafnodes {", "nats-1.example.internal:6222", "nats-2.example.internal:6222", "nats-3.example.internal:6222"} {
		if !strings.Contains(common, want) {
			t.Errorf("cluster-common.conf lacks %q", want)
		}
	}
}

// natsProc is a running nats-server.
type natsProc struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	exited chan struct{}
}

func startNATS(t *testing.T, bin, conf string) *natsProc {
	t.Helper()
	p := &natsProc{cmd: exec.Command(bin, "-c", conf), out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, within time.Duration, exited <-chan struct{}, output fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(within)
	c := http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("process exited before %s answered:\n%s", url, output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not OK after %s (%v):\n%s", url, within, err, output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The shipped cluster and leaf configurations really run (on loopback
// ports): 3 JetStream servers in operator mode with TLS routes, a latticed
// node on it keeping LATTICECACHE with 3 replicas, and a sidecar leaf node
// through which a second latticed node and a JetStream client reach the
// same lattice.
func TestNATSClusterLive(t *testing.T) {
	requireLinux(t, "the live NATS cluster test")
	ns := tool(t, "nats-server", "LATTICED_NATS_SERVER_BIN")
	secrets := newNATSSecrets(t)
	root := t.TempDir()

	type ports struct{ client, http, route, leaf int }
	var srv [3]ports
	for i := range srv {
		srv[i] = ports{freePort(t), freePort(t), freePort(t), freePort(t)}
	}
	procs := make([]*natsProc, 3)
	for i := range srv {
		i := i
		etc := filepath.Join(root, fmt.Sprintf("nats-%d", i+1), "etc")
		secrets.install(t, etc, filepath.Join(root, fmt.Sprintf("nats-%d", i+1), "var"), func(s string) string {
			s = strings.ReplaceAll(s, "0.0.0.0:4222", fmt.Sprintf("127.0.0.1:%d", srv[i].client))
			s = strings.ReplaceAll(s, "0.0.0.0:8222", fmt.Sprintf("127.0.0.1:%d", srv[i].http))
			s = strings.ReplaceAll(s, "0.0.0.0:6222", fmt.Sprintf("127.0.0.1:%d", srv[i].route))
			s = strings.ReplaceAll(s, "0.0.0.0:7422", fmt.Sprintf("127.0.0.1:%d", srv[i].leaf))
			for j := range srv {
				s = strings.ReplaceAll(s, fmt.Sprintf("nats-%d.example.internal:6222", j+1), fmt.Sprintf("127.0.0.1:%d", srv[j].route))
			}
			return s
		})
		procs[i] = startNATS(t, ns, filepath.Join(etc, fmt.Sprintf("nats-%d.conf", i+1)))
	}
	for i, p := range procs {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", srv[i].http), 60*time.Second, p.exited, p.out)
	}

	// /healthz answers before the JetStream meta group has a leader; a host
	// started before that runs without its lattice cache.
	admin, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", srv[0].client), nats.UserJWTAndSeed(jwtAndSeed(t, secrets.userCreds)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	waitJetStream(t, admin, "")

	// One user per role, with only the permissions the docs list.
	const prefix = "deploytest"
	credsDir := t.TempDir()
	writeCreds := func(name string, data []byte) string {
		p := filepath.Join(credsDir, name+".creds")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds := writeCreds("admin", secrets.userCreds)
	perms := rolePermissions(prefix)
	node := startLatticed(t,
		"WASMCLOUD_LATTICE_PREFIX="+prefix,
		"WASMCLOUD_RPC_HOST=127.0.0.1", fmt.Sprintf("WASMCLOUD_RPC_PORT=%d", srv[1].client),
		"WASMCLOUD_CTL_HOST=127.0.0.1", fmt.Sprintf("WASMCLOUD_CTL_PORT=%d", srv[1].client),
		"WASMCLOUD_RPC_CREDSFILE="+writeCreds("host-rpc", secrets.user(t, "host-rpc", perms["host-rpc"])),
		"WASMCLOUD_CTL_CREDSFILE="+writeCreds("host-ctl", secrets.user(t, "host-ctl", perms["host-ctl"])),
		"LATTICED_CACHE_REPLICAS=3",
	)

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", srv[0].client), nats.UserCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	info := streamInfo(t, nc, "LATTICECACHE_"+prefix)
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("LATTICECACHE_%s: %d replicas configured, cluster %+v; want 3 (a leader and 2 peers)", prefix, info.Config.Replicas, info.Cluster)
	}

	// The sidecar leaf node: no credentials on its loopback port.
	leafDir := filepath.Join(root, "leaf", "etc")
	leafPort, leafHTTP := freePort(t), freePort(t)
	secrets.install(t, leafDir, filepath.Join(root, "leaf", "var"), func(s string) string {
		s = strings.ReplaceAll(s, "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", leafPort))
		s = strings.ReplaceAll(s, "127.0.0.1:8222", fmt.Sprintf("127.0.0.1:%d", leafHTTP))
		for j := range srv {
			s = strings.ReplaceAll(s, fmt.Sprintf("nats-%d.example.internal:7422", j+1), fmt.Sprintf("127.0.0.1:%d", srv[j].leaf))
		}
		return s
	})
	leaf := startNATS(t, ns, filepath.Join(leafDir, "leaf.conf"))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", leafHTTP), 30*time.Second, leaf.exited, leaf.out)
	lnc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", leafPort))
	if err != nil {
		t.Fatal(err)
	}
	defer lnc.Close()
	var leafInfo jetstream.StreamInfo
	deadline := time.Now().Add(30 * time.Second)
	for { // the leaf connection comes up shortly after the leaf server
		js, _ := jetstream.NewWithDomain(lnc, "hub")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, "LATTICECACHE_"+prefix)
		if err == nil {
			var i *jetstream.StreamInfo
			if i, err = s.Info(ctx); err == nil {
				leafInfo = *i
			}
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream through the leaf node: %v\n%s", err, leaf.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if leafInfo.Config.Replicas != 3 {
		t.Errorf("through the leaf, LATTICECACHE_%s has %d replicas, want 3", prefix, leafInfo.Config.Replicas)
	}

	// A second node on the leaf joins the same lattice.
	startLatticed(t,
		"WASMCLOUD_LATTICE_PREFIX="+prefix,
		"WASMCLOUD_RPC_HOST=127.0.0.1", fmt.Sprintf("WASMCLOUD_RPC_PORT=%d", leafPort),
		"WASMCLOUD_CTL_HOST=127.0.0.1", fmt.Sprintf("WASMCLOUD_CTL_PORT=%d", leafPort),
		"WASMCLOUD_JS_DOMAIN=hub",
		"LATTICED_CACHE_REPLICAS=3",
	)
	// Each node is ready once its own server has its subscriptions; their
	// interest reaches the other servers of the cluster and the leaf a
	// moment later, so a ping may miss a node that just started.
	var out string
	testenv.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		var err error
		out, err = runLatticed(t, []string{
			"WASMCLOUD_LATTICE_PREFIX=" + prefix,
			"WASMCLOUD_CTL_HOST=127.0.0.1", fmt.Sprintf("WASMCLOUD_CTL_PORT=%d", srv[2].client),
			"WASMCLOUD_CTL_CREDSFILE=" + creds,
		}, "ctl", "get", "hosts", "--output", "json")
		if err != nil {
			return fmt.Errorf("latticed ctl get hosts: %v\n%s", err, out)
		}
		var env struct { // wash's envelope: {"hosts": [...], "success": true}
			Hosts []struct {
				ID            string `json:"id"`
				LatticePrefix string `json:"lattice_prefix"`
			} `json:"hosts"`
			Success bool `json:"success"`
		}
		if err := json.Unmarshal([]byte(out), &env); err != nil || !env.Success {
			return fmt.Errorf("latticed ctl get hosts --output json: %v\n%s", err, out)
		}
		ids := map[string]bool{}
		for _, h := range env.Hosts {
			if h.LatticePrefix == prefix {
				ids[h.ID] = true
			}
		}
		if len(ids) != 2 {
			return fmt.Errorf("latticed ctl get hosts through the cluster sees %d host(s), want 2 (the cluster's node and the leaf's sidecar):\n%s\ncluster node's log:\n%s", len(ids), out, node.out)
		}
		return nil
	})
}

// waitJetStream waits until the JetStream API (of domain, "" = local)
// answers account info, i.e. the meta group has a leader.
func waitJetStream(t *testing.T, nc *nats.Conn, domain string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		js, err := jetstream.NewWithDomain(nc, domain)
		if domain == "" {
			js, err = jetstream.New(nc)
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream not available after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jwtAndSeed(t *testing.T, creds []byte) (string, string) {
	t.Helper()
	j, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	return j, string(seed)
}

func streamInfo(t *testing.T, nc *nats.Conn, name string) *jetstream.StreamInfo {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

// startLatticed runs `latticed up` with env (plus a data dir and a metrics
// port) until the test ends, and waits for /readyz.
func startLatticed(t *testing.T, env ...string) *natsProc {
	t.Helper()
	dir := t.TempDir()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &natsProc{cmd: exec.Command(binPath, "up"), out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = cleanEnv(append([]string{"HOME=" + dir, "LATTICED_DATA_DIR=" + filepath.Join(dir, "data"), "LATTICED_METRICS_ADDR=" + metrics}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(liveStopBound):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	waitHTTP(t, "http://"+metrics+"/readyz", 60*time.Second, p.exited, p.out)
	return p
}

func runLatticed(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(append([]string{"HOME=" + dir, "LATTICED_DATA_DIR=" + filepath.Join(dir, "data")}, env...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out) + string(ee.Stderr), err
	}
	return string(out), err
}
