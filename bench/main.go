// Command bench measures latticed against the floor on the same machine, in
// the same run, and prints each figure with its ratio to that floor.
//
//	go run ./bench [-duration 2s] [-concurrency 1,16,64,256] [-http-concurrency 16,64,256] [-out bench/results/latest.json] [-only node] [-make-kit DIR]
//
// Run as `bench floor-responder` it is the topology floors' responder, and
// as `bench floor-httpd` the HTTP topology floor's HTTP server: children the
// bench starts itself (topofloor.go, httpfloor.go); they are not for people
// to run.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/supervisor"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// Row is one measured figure.
type Row struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Ratio compares Value with the floor named in RatioTo (Value / floor).
	Ratio   float64 `json:"ratio,omitempty"`
	RatioTo string  `json:"ratio_to,omitempty"`
}

// Report is what bench writes as JSON.
type Report struct {
	Time    time.Time `json:"time"`
	Machine string    `json:"machine"`
	Rows    []Row     `json:"rows"`
}

const payloadSize = 256

// options are the command line's knobs.
type options struct {
	dur         time.Duration
	conc        []int
	httpConc    []int
	scale       []int
	revocations int
	links       []int // link counts for -only links
	out         string
	pathsOnly   bool // -only paths: the floors and the latticed path, nothing after them
}

func main() {
	runBenchChild() // the floors' children: bench floor-responder, bench floor-httpd
	dur := flag.Duration("duration", 2*time.Second, "how long each throughput cell runs")
	conc := flag.String("concurrency", "1,16,64,256", "client concurrency levels (NATS paths: in-process host and node)")
	httpConc := flag.String("http-concurrency", "16,64,256", "HTTP load generator clients (keep-alive)")
	scale := flag.String("scale", "1,10,100", "distinct actors for the scaling rows")
	links := flag.String("links", "1000,10000,100000", "link counts for -only links (issue 24.1)")
	revocations := flag.Int("revocations", 100, "revocations measured (at least 100 for a p99)")
	quick := flag.Bool("quick", false, "short cells, fewer actors and revocations: a smoke run, not figures")
	out := flag.String("out", "bench/results/latest.json", "where to write the JSON report")
	only := flag.String("only", "", "run only this section and print its rows ("+sectionNames()+"); JSON only with an explicit -out")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	kitOut := flag.String("make-kit", "", "build the bench kit tarball (this bench, latticed, the actors, nats-server) into this directory and exit; needs Go and the repository (make bench-kit)")
	flag.Parse()
	if *kitOut != "" {
		out, err := makeKit(*kitOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: make kit:", err)
			os.Exit(1)
		}
		fmt.Println(out)
		return
	}
	kitNote()
	o := options{dur: *dur, revocations: *revocations, out: *out}
	if *quick {
		o.dur, *conc, *scale, o.revocations, *links = 500*time.Millisecond, "1,16", "1,10", 20, "1000,10000"
	}
	var err error
	for _, l := range []struct {
		s   string
		dst *[]int
	}{{*conc, &o.conc}, {*httpConc, &o.httpConc}, {*scale, &o.scale}, {*links, &o.links}} {
		if *l.dst, err = ints(l.s); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
	}
	run := run
	if *only != "" {
		run = func(o options) error { return runOnly(*only, o) }
	}
	stopProfile := func() {}
	if *cpuprofile != "" {
		if stopProfile, err = startCPUProfile(*cpuprofile); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
	}
	err = run(o)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// startCPUProfile profiles this process (client, NATS server and in-process
// host alike) until the returned stop is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func ints(list string) ([]int, error) {
	var out []int
	for _, c := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q in %q", c, list)
		}
		out = append(out, n)
	}
	return out, nil
}

// progress tells the terminal which section runs (the table comes at the end).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(o options) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "lbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	a, err := buildEchoActors(tmp)
	if err != nil {
		return err
	}
	echoPath, signed := a.echoPath, a.signed
	rep := &Report{Time: time.Now().UTC(), Machine: machine()}
	f, err := newFloors(tmp, o.dur, rep, true)
	if err != nil {
		return err
	}
	defer f.close()
	progress("actor start (compile cold vs cached)")
	if err := benchActorStart(ctx, tmp, signed, rep); err != nil {
		return err
	}
	bin, err := buildLatticed(tmp)
	if err != nil {
		return err
	}
	progress("cold start of latticed up")
	if err := benchColdStart(bin, tmp, echoPath, rep); err != nil {
		return err
	}
	if err := benchInProcess(ctx, o, tmp, a, f, rep); err != nil {
		return err
	}
	releaseInProcess()
	if err := benchNode(ctx, o, bin, tmp, a, f, rep); err != nil {
		return err
	}
	if err := benchCrossNode(ctx, o, bin, tmp, rep); err != nil {
		return err
	}

	print(rep)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		return writeChart(rep, filepath.Join(filepath.Dir(o.out), "throughput.svg"))
	}
	return nil
}

// releaseInProcess gives back what the in-process host held once it has
// stopped: the scaling rows' 100 compiled modules leave the bench process
// near 900 MB resident until collections run their finalizers, and the
// HTTP topology floor measured next (this process is its load generator
// and NATS server) cost 1.5–2 × the CPU per request it costs in
// `-only http` (bench process 141.6 vs 72.1 µs at c=64).
func releaseInProcess() {
	runtime.GC() // runs the finalizers that unmap the closed modules' code
	runtime.GC() // frees what they held
	debug.FreeOSMemory()
}

// benchNode runs the rows that need a real node: memory of the host child,
// invocations from a client outside the node, the HTTP path through
// `latticed provider httpserver`, and revocations.
func benchNode(ctx context.Context, o options, bin, tmp string, a *echoActors, f *floors, rep *Report) error {
	// The floors of the HTTP rows too (the HTTP topology floor with them)
	// are measured before the node starts: its idle children would count
	// in the topology floors' CPU.
	for _, c := range o.httpConc {
		if _, err := f.httpCell(c); err != nil {
			return err
		}
	}
	progress("starting a node (supervisor + host child)")
	n, err := startNode(bin, filepath.Join(tmp, "node"))
	if err != nil {
		return err
	}
	defer n.stop()
	progress("memory of the host child")
	if err := benchMemory(ctx, n, []struct{ name, path string }{{"tiny wat echo", a.tinyPath}, {"Go echo", a.echoPath}}, rep); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := benchNodePaths(ctx, o, n, a, f, rep); err != nil {
		return err
	}
	if err := benchHTTPPath(ctx, o, n, a, f, rep); err != nil {
		return err
	}
	progress("%d revocations", o.revocations)
	if err := benchRevocation(n, a.mod.PublicKey(), o.revocations, rep); err != nil {
		return err
	}
	return benchRevocationCurve(tmp, o, rep)
}

// benchInProcess runs the NATS-path rows against an host.Host in this
// process: throughput and latency of the floors and the latticed path (to
// the Go echo and to the minimal wasm echo), delegated signing vs the
// cluster seed, and scaling over distinct actors.
func benchInProcess(ctx context.Context, o options, tmp string, a *echoActors, f *floors, rep *Report) error {
	ns, err := supervisor.StartNATS(supervisor.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(tmp, "js"), MaxPayload: 1 << 20})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	conns := make([]*nats.Conn, 3)
	for i := range conns {
		if conns[i], err = nats.Connect(ns.ClientURL()); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	client, hostRPC, hostCtl := conns[0], conns[1], conns[2]

	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
	h, err := host.New(ctx, host.Options{
		HostSettings: config.HostSettings{
			AllowFileLoad: true, CompileCacheDir: filepath.Join(tmp, "cache"), QueueLength: 1024,
		},
		HostKey: hostKey, ClusterKey: cluster, RPC: hostRPC, Ctl: hostCtl, Metrics: metrics.New(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	hctx, stopHost := context.WithCancel(ctx)
	hostDone := make(chan error, 1)
	go func() { hostDone <- h.Run(hctx) }()
	defer func() { stopHost(); <-hostDone }()
	<-h.Ready()
	// Steady state: the actors run compiled code (not the interpreter a
	// cold start begins with) and no compile burns CPU during a measurement.
	for _, path := range []string{a.echoPath, a.tinyPath} {
		claims, err := h.StartActor(ctx, "file://"+path, runtime.NumCPU()*2, nil)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = h.WaitCompiled(wctx, claims.Subject)
		cancel()
		if err != nil {
			return err
		}
	}

	// The two floors come first (floors.cell); each latticed path is
	// compared with both.
	paths := []struct{ name, actor string }{
		{"latticed signed invocation -> policy -> Go echo", a.mod.PublicKey()},
		{"latticed signed invocation -> policy -> minimal wasm echo", a.tinyKey.PublicKey()},
	}
	payload := make([]byte, payloadSize)
	for _, n := range o.conc {
		fl, err := f.cell(n)
		if err != nil {
			return err
		}
		progress("in-process latticed paths at concurrency %d", n)
		for _, p := range paths {
			got, errs := measureCell(latticedPath(client, cluster, hostKey.PublicKey(), p.actor), payload, n, o.dur, processCPU)
			if errs > 0 {
				return fmt.Errorf("%s at concurrency %d: %d errors", p.name, n, errs)
			}
			rep.Rows = append(rep.Rows,
				Row{Name: fmt.Sprintf("throughput c=%d: %s", n, p.name), Value: got.rps, Unit: "req/s", Ratio: got.rps / fl.raw.rps, RatioTo: rawFloorName},
				Row{Name: fmt.Sprintf("throughput c=%d: %s vs crypto floor", n, p.name), Value: got.rps, Unit: "req/s", Ratio: got.rps / fl.crypto.rps, RatioTo: cryptoFloorName},
				Row{Name: fmt.Sprintf("CPU per call c=%d: %s", n, p.name), Value: got.cpuPerCall, Unit: "µs", Ratio: got.cpuPerCall / fl.crypto.cpuPerCall, RatioTo: cryptoFloorName})
			if n == 1 {
				for _, q := range []float64{0.5, 0.99, 0.999} {
					rep.Rows = append(rep.Rows, Row{Name: fmt.Sprintf("latency c=1 p%s: %s", strconv.FormatFloat(q*100, 'f', -1, 64), p.name),
						Value: float64(quantile(got.lat, q).Microseconds()), Unit: "µs"})
				}
			}
		}
	}
	if o.pathsOnly {
		return nil
	}
	progress("provider -> actor: delegated signing vs cluster seed")
	if err := benchDelegation(client, cluster, hostKey.PublicKey(), a.mod.PublicKey(), o.dur, rep); err != nil {
		return err
	}
	progress("scaling over %v distinct actors", o.scale)
	return benchScaling(ctx, h, client, cluster, tmp, a.unsigned, a.acct, o, rep)
}

// benchActorStart times compiling the actor with an empty compilation cache
// and again, in a fresh runtime, with the cache that compile left on disk.
func benchActorStart(ctx context.Context, tmp string, module []byte, rep *Report) error {
	compile := func(dir string) (time.Duration, error) {
		rt, err := host.NewRuntime(ctx, dir, 4096)
		if err != nil {
			return 0, err
		}
		defer rt.Close(ctx)
		start := time.Now()
		cm, err := rt.Compile(ctx, module)
		if err != nil {
			return 0, err
		}
		d := time.Since(start)
		return d, cm.Close(ctx)
	}
	var cold, warm []time.Duration
	for i := 0; i < 3; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("cache-%d", i))
		c, err := compile(dir)
		if err != nil {
			return err
		}
		w, err := compile(dir)
		if err != nil {
			return err
		}
		cold, warm = append(cold, c), append(warm, w)
	}
	c, w := quantile(cold, 0.5), quantile(warm, 0.5)
	rep.Rows = append(rep.Rows,
		Row{Name: "actor start: compile, empty cache (median of 3)", Value: ms(c), Unit: "ms"},
		Row{Name: "actor start: compile, warm cache (median of 3)", Value: ms(w), Unit: "ms", Ratio: float64(c) / float64(w), RatioTo: "empty cache (speed-up)"})
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rawPath is the floor: a Go responder echoing the payload, optionally with
// one Ed25519 sign (client) and verify (responder) per message. Its two
// halves are floorRespond and floorCall, which the topology floor runs in two
// processes.
func rawPath(client, server *nats.Conn, crypto bool) (func([]byte) error, func(), error) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	subject := nats.NewInbox()
	sub, err := floorRespond(server, subject, pub, crypto)
	if err != nil {
		return nil, nil, err
	}
	return floorCall(client, subject, priv, crypto), func() { _ = sub.Unsubscribe() }, nil
}

// floorRespond is the floor's responder on subject: it echoes the payload,
// or with crypto verifies the Ed25519 signature the payload ends with (by
// pub) and answers with the payload without it, nil when it does not verify.
// Each message is answered on a goroutine of its own, as the host hands an
// invocation off its subscription's callback.
func floorRespond(server *nats.Conn, subject string, pub ed25519.PublicKey, crypto bool) (*nats.Subscription, error) {
	sub, err := server.Subscribe(subject, func(m *nats.Msg) {
		go func() {
			if crypto {
				if len(m.Data) < ed25519.SignatureSize {
					_ = m.Respond(nil)
					return
				}
				body, sig := m.Data[:len(m.Data)-ed25519.SignatureSize], m.Data[len(m.Data)-ed25519.SignatureSize:]
				if !ed25519.Verify(pub, body, sig) {
					_ = m.Respond(nil)
					return
				}
				_ = m.Respond(body)
				return
			}
			_ = m.Respond(m.Data)
		}()
	})
	if err != nil {
		return nil, err
	}
	if err := server.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return sub, nil
}

// floorCall is the floor's client: a request to subject, with crypto signed
// by priv, whose reply must be as long as the payload.
func floorCall(client *nats.Conn, subject string, priv ed25519.PrivateKey, crypto bool) func([]byte) error {
	return func(p []byte) error {
		data := p
		if crypto {
			data = append(append([]byte(nil), p...), ed25519.Sign(priv, p)...)
		}
		msg, err := client.Request(subject, data, 5*time.Second)
		if err != nil {
			return err
		}
		if len(msg.Data) != len(p) {
			return fmt.Errorf("bad reply: %d bytes, want %d", len(msg.Data), len(p))
		}
		return nil
	}
}

// latticedPath is the full path: a signed invocation through the issuer
// policy into the echo actor and back.
func latticedPath(client *nats.Conn, cluster *trust.KeyPair, hostID, actorKey string) func([]byte) error {
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor(lattice.DefaultLatticePrefix, actorKey)
	return func(p []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := rpc.Invoke(ctx, client, cluster, hostID, lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(actorKey), subject, "Echo.Echo", p)
		if err == nil && len(out) != len(p) {
			err = fmt.Errorf("bad reply")
		}
		return err
	}
}

// load runs n workers calling for d and returns requests/s, the latencies of
// every call (for percentiles), the error count, and the CPU time this
// process spent meanwhile (client, NATS server and in-process host alike).
func load(call func([]byte) error, payload []byte, n int, d time.Duration) (float64, []time.Duration, int64, time.Duration) {
	return measureWith(call, payload, n, d, 200, processCPU)
}

// measure is load with warm calls before the clock starts: few for large
// payloads, whose calls are slow.
func measure(call func([]byte) error, payload []byte, n int, d time.Duration, warm int) (float64, []time.Duration, int64, time.Duration) {
	return measureWith(call, payload, n, d, warm, processCPU)
}

// measureWith is measure with the CPU clock it reads once before and once
// after the cell: processCPU, or treeCPU when the work happens in child
// processes.
func measureWith(call func([]byte) error, payload []byte, n int, d time.Duration, warm int, cpuNow func() time.Duration) (float64, []time.Duration, int64, time.Duration) {
	// Warm up connections, instances and caches.
	for i := 0; i < warm; i++ {
		_ = call(payload)
	}
	var total, errs atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuNow()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := call(payload); err != nil {
					errs.Add(1)
					continue // requests/s and latencies count answered calls only
				}
				local = append(local, time.Since(t))
				total.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), lats, errs.Load(), cpuNow() - cpu0
}

// processCPU is the user and system CPU time of this process so far. CPU per
// call is steadier than throughput on a machine with other work on it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func print(rep *Report) {
	fmt.Printf("latticed bench — %s\n\n", rep.Machine)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tvalue\tunit\tratio\tto")
	for _, r := range rep.Rows {
		ratio := ""
		if r.Ratio != 0 {
			ratio = strconv.FormatFloat(r.Ratio, 'f', 2, 64)
		}
		fmt.Fprintf(w, "%s\t%.1f\t%s\t%s\t%s\n", r.Name, r.Value, r.Unit, ratio, r.RatioTo)
	}
	_ = w.Flush()
}
