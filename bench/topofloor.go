package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/cpuprofile"
)

// The topology floor is the crypto floor with the node's process topology:
// the client (with its signing) and the embedded NATS server in the bench
// process, the responder (with its verify) in a child process connected over
// loopback TCP, as the node's `latticed host` child is. Its gap to the crypto
// floor is what crossing processes costs (wake-ups of another process, the
// kernel's loopback TCP between them), none of it latticed's own work.
const (
	topoFloorName = cryptoFloorName + ", responder in its own process"
	// floorResponderCmd is the hidden subcommand (argv[1]) the bench runs
	// its own executable with to be the topology floor's responder: the
	// bench kit has no Go toolchain, so the child is this binary.
	floorResponderCmd = "floor-responder"
	roleFloor         = "floor responder child"
	// floorResponderStop bounds the child's clean exit after SIGTERM before
	// it is killed.
	floorResponderStop = 5 * time.Second
)

// floorResponderSpec is what the responder child reads from its stdin (one
// JSON value), as the host child reads its host data: where the server is,
// the subject to answer on, the key that verifies. Nothing in it is secret.
type floorResponderSpec struct {
	URL       string            `json:"url"`
	Subject   string            `json:"subject"`
	PublicKey ed25519.PublicKey `json:"public_key"`
}

// floorResponder is a running responder child and the call that reaches it.
type floorResponder struct {
	proc    *child.Process
	subject string
	// key signs what the responder verifies: floor-httpd signs with it.
	key  ed25519.PrivateKey
	call func([]byte) error
}

// startFloorResponder starts this executable as the topology floor's
// responder on the NATS server at url and returns once it answers. The child
// is started as the supervisor starts the host (startBenchChild); stop ends
// it.
func startFloorResponder(ctx context.Context, client *nats.Conn, url string) (*floorResponder, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("topology floor: %w", err)
	}
	spec := floorResponderSpec{URL: url, Subject: nats.NewInbox(), PublicKey: pub}
	proc, err := startBenchChild(roleFloor, floorResponderCmd, spec)
	if err != nil {
		return nil, fmt.Errorf("topology floor: %w", err)
	}
	r := &floorResponder{proc: proc, subject: spec.Subject, key: priv, call: floorCall(client, spec.Subject, priv, true)}
	payload := make([]byte, payloadSize)
	if err := waitChild(ctx, proc, 30*time.Second, func() error { return r.call(payload) }); err != nil {
		r.stop()
		return nil, fmt.Errorf("topology floor: %w", err)
	}
	return r, nil
}

// startBenchChild starts this executable with the hidden subcommand cmd
// (runBenchChild) and spec as one JSON value on its stdin, as the supervisor
// starts the host child (internal/child: its own process group, killed by
// the kernel if the bench dies, its stdin a pipe whose end also ends it).
// secrets are values in spec the child's output must never carry into the
// log.
func startBenchChild(role, cmd string, spec any, secrets ...string) (*child.Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the bench executable to run as %s: %w", role, err)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	return child.Start(child.Command{
		Name: role, Path: exe, Args: []string{cmd}, Env: os.Environ(), Stdin: append(in, '\n'), Secrets: secrets,
	}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
}

// waitChild calls try until it succeeds: a starting child fails it at once
// (no responders on its subject, nothing listening on its port yet).
func waitChild(ctx context.Context, proc *child.Process, limit time.Duration, try func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-proc.Done():
			return fmt.Errorf("child (pid %d) ended before it answered: %s; its stderr is above", proc.PID(), proc.Exit("").String())
		case <-ctx.Done():
			return fmt.Errorf("child (pid %d) did not answer within %v: %v", proc.PID(), limit, err)
		case <-time.After(5 * time.Millisecond): // polling a starting process
		}
	}
}

// stop ends the child (SIGTERM, then SIGKILL after floorResponderStop) and
// returns once it was reaped.
func (r *floorResponder) stop() { r.proc.Terminate(floorResponderStop) }

// measureTopoFloor measures the topology floor at concurrency n with a
// responder child of its own, gone when it returns: it must not sit in the
// process tree while other rows count every process's CPU.
func measureTopoFloor(ctx context.Context, client *nats.Conn, url string, n int, d time.Duration) (cell, error) {
	r, err := startFloorResponder(ctx, client, url)
	if err != nil {
		return cell{}, err
	}
	defer r.stop()
	got, errs := measureTree(r.call, make([]byte, payloadSize), n, d)
	if errs > 0 {
		return got, fmt.Errorf("%s at concurrency %d: %d errors", topoFloorName, n, errs)
	}
	return got, nil
}

// topoFloorRows are the topology floor's rows at concurrency n: requests/s
// and CPU per call of every process against the crypto floor, that CPU
// split by process, and at c=1 the latency percentiles.
func topoFloorRows(n int, got, crypto cell) []Row {
	rows := []Row{
		{Name: fmt.Sprintf("throughput c=%d: %s", n, topoFloorName), Value: got.rps, Unit: "req/s", Ratio: got.rps / crypto.rps, RatioTo: cryptoFloorName},
		{Name: fmt.Sprintf("CPU per call c=%d: %s (all processes)", n, topoFloorName), Value: got.cpuPerCall, Unit: "µs",
			Ratio: got.cpuPerCall / crypto.cpuPerCall, RatioTo: cryptoFloorName},
	}
	rows = append(rows, splitRows(fmt.Sprintf("CPU per call c=%d: %s", n, topoFloorName), got)...)
	if n == 1 {
		for _, q := range []float64{0.5, 0.99, 0.999} {
			r := Row{Name: fmt.Sprintf("latency c=1 p%s: %s", strconv.FormatFloat(q*100, 'f', -1, 64), topoFloorName),
				Value: float64(quantile(got.lat, q).Microseconds()), Unit: "µs"}
			if q == 0.5 {
				r.Ratio, r.RatioTo = float64(quantile(got.lat, q))/float64(max(quantile(crypto.lat, q), time.Microsecond)), cryptoFloorName+" p50"
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// vsTopoFloorRows are a node row's extra ratio lines to the topology floor
// at the same concurrency (throughputRows keeps those to the crypto floor,
// which the goals are stated against): how far the node path is
// from a path with its process topology and none of latticed's work.
func vsTopoFloorRows(kind string, c int, name string, got, topo cell) []Row {
	if topo.rps == 0 {
		return nil // not measured in this run
	}
	return []Row{
		{Name: fmt.Sprintf("%s c=%d: %s vs topology floor", kind, c, name), Value: got.rps, Unit: "req/s", Ratio: got.rps / topo.rps, RatioTo: topoFloorName},
		{Name: fmt.Sprintf("%s c=%d p50: %s vs topology floor", kind, c, name), Value: float64(quantile(got.lat, 0.5).Microseconds()), Unit: "µs",
			Ratio: float64(quantile(got.lat, 0.5)) / float64(max(quantile(topo.lat, 0.5), time.Microsecond)), RatioTo: topoFloorName + " p50"},
		{Name: fmt.Sprintf("CPU per call %s c=%d: %s (all processes) vs topology floor", kind, c, name), Value: got.cpuPerCall, Unit: "µs",
			Ratio: got.cpuPerCall / topo.cpuPerCall, RatioTo: topoFloorName},
	}
}

// floorResponderMain is the responder child (`bench floor-responder`): it
// reads its floorResponderSpec from stdin and answers as the crypto floor's
// responder does (floorRespond) until serveChild's context ends. With
// LATTICED_CPUPROFILE_DIR set it writes a CPU profile there
// (floor-responder-<pid>.pprof), as the host child does.
func floorResponderMain(stdin io.Reader) error {
	var spec floorResponderSpec
	return serveChild(stdin, &spec, floorResponderCmd, func(ctx context.Context, stop context.CancelFunc) error {
		if len(spec.PublicKey) != ed25519.PublicKeySize || spec.URL == "" || spec.Subject == "" {
			return errors.New("responder spec on stdin lacks url, subject or a 32-byte public_key")
		}
		nc, err := nats.Connect(spec.URL, nats.Name(roleFloor), nats.ClosedHandler(func(*nats.Conn) { stop() }))
		if err != nil {
			return fmt.Errorf("connect to the bench's NATS server %s: %w", spec.URL, err)
		}
		defer nc.Close()
		if _, err := floorRespond(nc, spec.Subject, spec.PublicKey, true); err != nil {
			return fmt.Errorf("subscribe %s: %w", spec.Subject, err)
		}
		<-ctx.Done()
		return nil
	})
}

// serveChild is the frame of the bench's own children: it decodes spec (one
// JSON value) from stdin, starts a CPU profile named profile when
// LATTICED_CPUPROFILE_DIR is set (profiled as the node's children are, for
// the same comparison), and runs serve with a context that ends on SIGTERM
// or SIGINT, or when stdin ends (the bench closed it, or died); serve also
// gets that context's cancel (for a NATS connection closed for good) and
// returns once the context ended.
func serveChild(stdin io.Reader, spec any, profile string, serve func(ctx context.Context, stop context.CancelFunc) error) error {
	dec := json.NewDecoder(stdin)
	if err := dec.Decode(spec); err != nil {
		return fmt.Errorf("read the %s spec from stdin (the bench writes it): %w", profile, err)
	}
	stopProfile, err := cpuprofile.Start(os.LookupEnv, profile)
	if err != nil {
		return err
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Owned by this function: it ends at stdin's end, which the process's
	// exit brings about at the latest.
	go func() {
		_, _ = io.Copy(io.Discard, io.MultiReader(dec.Buffered(), stdin))
		stop()
	}()
	return serve(ctx, stop)
}

// benchChildren are the bench's hidden subcommands (argv[1]): the children
// it starts from its own executable, since the bench kit has no Go
// toolchain to build them.
var benchChildren = map[string]func(io.Reader) error{
	floorResponderCmd: floorResponderMain,
	floorHTTPDCmd:     floorHTTPDMain,
}

// runBenchChild runs the child's main when this process was started as one
// of benchChildren and exits; otherwise it returns. main and the tests'
// TestMain call it first.
func runBenchChild() {
	if len(os.Args) < 2 {
		return
	}
	run, ok := benchChildren[os.Args[1]]
	if !ok {
		return
	}
	if err := run(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "bench "+os.Args[1]+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}
