package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// The cross-node rows (issue 7): an actor calling another actor on its own
// host, on another host on the same NATS server, and on a host connected to
// another server of a NATS cluster (the call crosses a route), measured in
// one run against the same three `latticed up` processes.

const crossPrefix = "benchx"

// forwardArg is the hostcall test actor's Call.Forward argument.
type forwardArg struct {
	Binding   string `msgpack:"binding"`
	Namespace string `msgpack:"namespace"`
	Operation string `msgpack:"operation"`
	Payload   []byte `msgpack:"payload"`
}

// runCrossNode is -only crossnode.
func runCrossNode(o options) error {
	if _, err := natsServerBin(); err != nil {
		return err
	}
	return onlySection(o, func(tmp string, rep *Report) error {
		bin, err := buildLatticed(tmp)
		if err != nil {
			return err
		}
		return benchCrossNode(context.Background(), o, bin, tmp, rep)
	})
}

// finishOnly prints a partial run's rows; it writes the JSON report only
// when -out is given explicitly, so that a partial run does not replace the
// full run's results.
func finishOnly(rep *Report, o options) error {
	print(rep)
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "out" })
	if explicit && o.out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		return os.WriteFile(o.out, append(b, '\n'), 0o644)
	}
	return nil
}

// natsServerBin is the pinned nats-server: $LATTICED_NATS_SERVER_BIN (make
// bench sets it), else the bench kit's, else .tools/bin/nats-server (make
// tools installs it).
func natsServerBin() (string, error) {
	if p := os.Getenv("LATTICED_NATS_SERVER_BIN"); p != "" {
		return p, nil
	}
	if kit := kitDir(); kit != "" {
		return filepath.Join(kit, "nats-server"), nil
	}
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".tools", "bin", "nats-server")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the cross-node rows need the pinned nats-server: run `make tools` or set LATTICED_NATS_SERVER_BIN (%v)", err)
	}
	return p, nil
}

// lockedBuilder collects a child's stdout and stderr.
type lockedBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a child process of the bench, stopped by SIGTERM (then SIGKILL)
// to its process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuilder
}

func startProc(bin string, env []string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{}), out: &lockedBuilder{b: &strings.Builder{}}}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// benchCrossNode starts two clustered nats-servers (s1, s2), three
// `latticed up` nodes (A and B on s1, C on s2), the hostcall actor on A and
// one echo actor on each node, then measures, at concurrency 1, a client on
// s1 calling A's forwarding actor, which calls Echo.Echo on A, B or C.
// Without the nats-server binary the rows are skipped, loudly (-only
// crossnode fails instead).
func benchCrossNode(ctx context.Context, o options, bin, tmp string, rep *Report) error {
	nsBin, err := natsServerBin()
	if err != nil {
		progress("cross-node rows SKIPPED: %v", err)
		return nil
	}
	progress("cross-node: 2 clustered nats-servers, 3 latticed up nodes")
	root := filepath.Join(tmp, "crossnode")
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()

	// Two servers, one route between them, JetStream on both (the lattice
	// cache stream, R1).
	client, route := []int{freePort(), freePort()}, []int{freePort(), freePort()}
	var urls []string
	for i := range client {
		name := fmt.Sprintf("s%d", i+1)
		conf := fmt.Sprintf("server_name: %s\nlisten: \"127.0.0.1:%d\"\njetstream { store_dir: %q }\ncluster {\n  name: benchx\n  listen: \"127.0.0.1:%d\"\n  routes: [\"nats-route://127.0.0.1:%d\"]\n}\n",
			name, client[i], filepath.Join(root, name), route[i], route[1-i])
		path := filepath.Join(root, name+".conf")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return err
		}
		p, err := startProc(nsBin, os.Environ(), "-c", path)
		if err != nil {
			return err
		}
		stops = append(stops, p.stop)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	nc, err := nats.Connect(urls[0], nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := waitFor(60*time.Second, func() error { return jetStreamReady(ctx, nc) }); err != nil {
		return fmt.Errorf("cross-node: the NATS cluster has no JetStream: %w", err)
	}

	// Three nodes with their own cluster keys, trusting each other and the
	// bench client's key.
	signer, _ := trust.CreateKeyPair(lattice.KindCluster)
	type upNode struct {
		name, server string
		key          *trust.KeyPair
		hostID       string
		metrics      string // its /metrics address
		started      int    // actors started on it
	}
	nodes := []*upNode{{name: "A", server: "s1"}, {name: "B", server: "s1"}, {name: "C", server: "s2"}}
	issuers := []string{signer.PublicKey()}
	for _, n := range nodes {
		n.key, _ = trust.CreateKeyPair(lattice.KindCluster)
		issuers = append(issuers, n.key.PublicKey())
	}
	var procs []*proc
	for _, n := range nodes {
		hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
		n.hostID = hostKey.PublicKey()
		port := strconv.Itoa(client[0])
		if n.server == "s2" {
			port = strconv.Itoa(client[1])
		}
		dir := filepath.Join(root, "node-"+n.name)
		n.metrics = "127.0.0.1:" + strconv.Itoa(freePort())
		env := append(os.Environ(),
			config.EnvDataDir+"="+dir, "HOME="+dir,
			config.EnvMetricsAddr+"="+n.metrics,
			config.EnvLogLevel+"=warn", config.EnvAllowFileLoad+"=true",
			config.EnvLatticePrefix+"="+crossPrefix,
			config.EnvClusterSeed+"="+n.key.Seed(), config.EnvClusterIssuers+"="+strings.Join(issuers, ","),
			config.EnvHostSeed+"="+hostKey.Seed(),
			config.EnvRPCHost+"=127.0.0.1", config.EnvRPCPort+"="+port,
			config.EnvCtlHost+"=127.0.0.1", config.EnvCtlPort+"="+port)
		p, err := startProc(bin, env, "up")
		if err != nil {
			return err
		}
		stops = append(stops, p.stop)
		procs = append(procs, p)
	}
	ctl := ctlclient.New(nc, "", crossPrefix)
	if err := waitFor(60*time.Second, func() error {
		hosts, err := ctl.Hosts(ctx, 300*time.Millisecond)
		if err != nil {
			return err
		}
		if len(hosts) != len(nodes) {
			return fmt.Errorf("%d of %d hosts answer", len(hosts), len(nodes))
		}
		return nil
	}); err != nil {
		var logs strings.Builder
		for i, p := range procs {
			fmt.Fprintf(&logs, "\nnode %s:\n%s", nodes[i].name, p.out.String())
		}
		return fmt.Errorf("cross-node: nodes not up: %w%s", err, logs.String())
	}

	// Actors: the forwarding actor on A, one echo (own key) on each node.
	progress("cross-node: building and starting the actors")
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	sign := func(pkg, name string) (string, string, error) {
		wasm := filepath.Join(root, name+".unsigned.wasm")
		if err := buildActor(pkg, wasm); err != nil {
			return "", "", err
		}
		unsigned, err := os.ReadFile(wasm)
		if err != nil {
			return "", "", err
		}
		mod, _ := trust.CreateKeyPair(lattice.KindModule)
		signed, _, err := trust.SignActor(unsigned, trust.SignActorOptions{Name: name}, acct, mod)
		if err != nil {
			return "", "", err
		}
		path := filepath.Join(root, name+".wasm")
		return path, mod.PublicKey(), os.WriteFile(path, signed, 0o644)
	}
	// Each start waits for compiled code: latency is measured in steady state.
	start := func(n *upNode, path string) error {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := ctl.StartActor(sctx, n.hostID, lattice.StartActorCommand{ActorRef: "file://" + path, Count: 1}); err != nil {
			return err
		}
		n.started++
		return waitCompiled(n.metrics, n.started)
	}
	fwdPath, fwdKey, err := sign(hostcallPkg, "fwd")
	if err != nil {
		return err
	}
	if err := start(nodes[0], fwdPath); err != nil {
		return fmt.Errorf("cross-node: start fwd on A: %w", err)
	}
	echoKeys := make([]string, len(nodes))
	for i, n := range nodes {
		path, key, err := sign(echoPkg, "echo-"+n.name)
		if err != nil {
			return err
		}
		if err := start(n, path); err != nil {
			return fmt.Errorf("cross-node: start echo on %s: %w", n.name, err)
		}
		echoKeys[i] = key
	}

	payload := make([]byte, payloadSize)
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	callVia := func(target string) (func([]byte) error, error) {
		arg, err := lattice.Marshal(forwardArg{Namespace: target, Operation: "Echo.Echo", Payload: payload})
		if err != nil {
			return nil, err
		}
		return func([]byte) error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			out, err := rpc.Invoke(cctx, nc, signer, nodes[0].hostID, lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(fwdKey),
				lattice.RPCActor(crossPrefix, fwdKey), "Call.Forward", arg)
			if err == nil && len(out) != len(payload) {
				err = fmt.Errorf("reply of %d bytes, want %d", len(out), len(payload))
			}
			return err
		}, nil
	}
	// The reference: one invocation, client -> echo on A, no actor hop.
	direct := func([]byte) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := rpc.Invoke(cctx, nc, signer, nodes[0].hostID, lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echoKeys[0]),
			lattice.RPCActor(crossPrefix, echoKeys[0]), "Echo.Echo", payload)
		if err == nil && len(out) != len(payload) {
			err = fmt.Errorf("reply of %d bytes, want %d", len(out), len(payload))
		}
		return err
	}
	paths := []struct{ name, target string }{
		{"same host (A -> A, server s1)", echoKeys[0]},
		{"other host, same server (A -> B, both on s1)", echoKeys[1]},
		{"other host across a route (A on s1 -> C on s2)", echoKeys[2]},
		{"", ""}, // the reference, reported apart
	}
	// Two rounds, alternating the paths, so that drift over the run hits
	// each alike; percentiles over both rounds.
	lats := make([][]time.Duration, len(paths))
	for round := 0; round < 2; round++ {
		for i, p := range paths {
			call := direct
			if p.target == "" {
				progress("cross-node round %d: reference, client -> actor on A", round+1)
			} else {
				progress("cross-node round %d: %s", round+1, p.name)
				if call, err = callVia(p.target); err != nil {
					return err
				}
			}
			_, l, errs, _ := load(call, payload, 1, o.dur)
			if errs > 0 {
				return fmt.Errorf("cross-node %s: %d errors", p.name, errs)
			}
			lats[i] = append(lats[i], l...)
		}
	}
	for _, q := range []float64{0.5, 0.99} {
		pq := strconv.FormatFloat(q*100, 'f', -1, 64)
		same := quantile(lats[0], q)
		for i, p := range paths {
			row := Row{Name: fmt.Sprintf("cross-node c=1 p%s: actor -> actor, %s", pq, p.name),
				Value: float64(quantile(lats[i], q).Microseconds()), Unit: "µs"}
			switch {
			case p.target == "":
				row.Name = fmt.Sprintf("cross-node c=1 p%s: reference, client -> actor on A (one invocation, no actor hop)", pq)
			case i > 0:
				row.Ratio, row.RatioTo = float64(quantile(lats[i], q))/float64(same), "same host"
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	return nil
}

// jetStreamReady is nil once an R1 stream can be created and deleted.
func jetStreamReady(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: "BENCHREADY", Subjects: []string{"benchready.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		return err
	}
	return js.DeleteStream(cctx, "BENCHREADY")
}

// waitFor polls fn until it returns nil or total passes.
func waitFor(total time.Duration, fn func() error) error {
	deadline := time.Now().Add(total)
	err := errors.New("not tried")
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // polling processes that start
	}
	return err
}
