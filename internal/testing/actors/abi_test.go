//go:build !wasip1

package actors_test

// The SDK's end-to-end proof: build real actors with `go build`, run them in
// wazero behind a minimal wasmbus host written here, and drive __guest_call
// the way latticed's host does. The host below is deliberately small; it is
// a model of the ABI, not of internal/host.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/latticed/latticed/internal/wasmstop"
	"github.com/latticed/latticed/wire"
)

// buildDir holds the actors built by this test binary, each built once.
var (
	buildDir string
	builds   sync.Map // package path → *build
	// compileCache lets every runtime in the process reuse one compilation
	// of each module, as the host's disk cache does across restarts.
	compileCache = wazero.NewCompilationCache()
)

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actor-abi-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildActor compiles the actor package (relative to this directory, or an
// import path) as a
// wasip1 reactor and returns the module bytes.
func buildActor(tb testing.TB, pkg string) []byte {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("go not on PATH: cannot build actors")
	}
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		out := filepath.Join(buildDir, path.Base(pkg)+".wasm")
		cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
			return
		}
		b.wasm, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// invocation is the host's state for one __guest_call, reached from the
// wasmbus imports through the call's context: wazero hands the context given
// to Function.Call to every host function the guest calls.
type invocation struct {
	op, msg  []byte
	reply    []byte
	guestErr *string
	hostResp []byte
	hostErr  []byte
	onHost   func(binding, namespace, operation string, payload []byte) ([]byte, error)
	console  []string
	calls    []string // binding namespace operation of each __host_call
}

type invocationKey struct{}

func current(ctx context.Context) *invocation { return ctx.Value(invocationKey{}).(*invocation) }

// read copies guest memory: Memory.Read returns a view that the guest's next
// memory.grow may invalidate.
func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Sprintf("guest pointer out of range: %d+%d", ptr, n))
	}
	return bytes.Clone(b)
}

func write(m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(fmt.Sprintf("guest pointer out of range: %d+%d", ptr, len(b)))
	}
}

// hostCallFailed is what wasmCloud's __host_call returns on failure (u32 max).
const hostCallFailed = ^uint32(0)

func instantiateWasmbus(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder("wasmbus").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, opPtr, msgPtr uint32) {
		inv := current(ctx)
		write(m, opPtr, inv.op)
		write(m, msgPtr, inv.msg)
	}).Export("__guest_request").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		current(ctx).reply = read(m, ptr, n)
	}).Export("__guest_response").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		s := string(read(m, ptr, n))
		current(ctx).guestErr = &s
	}).Export("__guest_error").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, bdPtr, bdLen, nsPtr, nsLen, opPtr, opLen, ptr, n uint32) uint32 {
		inv := current(ctx)
		inv.hostResp, inv.hostErr = nil, nil
		bd, ns, op := string(read(m, bdPtr, bdLen)), string(read(m, nsPtr, nsLen)), string(read(m, opPtr, opLen))
		inv.calls = append(inv.calls, bd+" "+ns+" "+op)
		if inv.onHost == nil {
			inv.hostErr = []byte("no host calls in this test")
			return hostCallFailed
		}
		reply, err := inv.onHost(bd, ns, op, read(m, ptr, n))
		if err != nil {
			inv.hostErr = []byte(err.Error())
			return hostCallFailed
		}
		inv.hostResp = reply
		return 1
	}).Export("__host_call").
		NewFunctionBuilder().WithFunc(func(ctx context.Context) uint32 {
		return uint32(len(current(ctx).hostResp))
	}).Export("__host_response_len").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr uint32) {
		write(m, ptr, current(ctx).hostResp)
	}).Export("__host_response").
		NewFunctionBuilder().WithFunc(func(ctx context.Context) uint32 {
		return uint32(len(current(ctx).hostErr))
	}).Export("__host_error_len").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr uint32) {
		write(m, ptr, current(ctx).hostErr)
	}).Export("__host_error").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		inv := current(ctx)
		inv.console = append(inv.console, string(read(m, ptr, n)))
	}).Export("__console_log").
		Instantiate(ctx)
	return err
}

// newRuntime is a wazero runtime with WASI preview1 and the wasmbus host.
func newRuntime(tb testing.TB, cfg wazero.RuntimeConfig) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCompilationCache(compileCache))
	tb.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if err := instantiateWasmbus(ctx, r); err != nil {
		tb.Fatal(err)
	}
	return r
}

// moduleConfig is what a host should give a Go actor: real clocks and
// randomness (wazero's defaults are fake and deterministic), no _start (a
// reactor has none; _initialize is called explicitly), and an anonymous name
// so one compiled module can be instantiated many times.
func moduleConfig(stderr *bytes.Buffer) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader)
	if stderr != nil {
		cfg = cfg.WithStderr(stderr)
	}
	return cfg
}

// instance is one initialised actor instance.
type instance struct {
	mod       api.Module
	guestCall api.Function
	stderr    bytes.Buffer
	onHost    func(binding, namespace, operation string, payload []byte) ([]byte, error)
}

func instantiate(tb testing.TB, r wazero.Runtime, compiled wazero.CompiledModule) *instance {
	tb.Helper()
	ctx := context.Background()
	in := &instance{}
	mod, err := r.InstantiateModule(ctx, compiled, moduleConfig(&in.stderr))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mod.Close(ctx) })
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		tb.Fatalf("_initialize: %v\n%s", err, in.stderr.String())
	}
	in.mod, in.guestCall = mod, mod.ExportedFunction("__guest_call")
	return in
}

// call performs one invocation. guestErr is set when the guest reported an
// error; err when the call itself failed (trap, exit, timeout).
func (in *instance) call(ctx context.Context, op string, msg []byte) (reply []byte, guestErr string, err error) {
	reply, guestErr, _, err = in.callTraced(ctx, op, msg)
	return reply, guestErr, err
}

func (in *instance) callTraced(ctx context.Context, op string, msg []byte) ([]byte, string, *invocation, error) {
	inv := &invocation{op: []byte(op), msg: msg, onHost: in.onHost}
	res, err := in.guestCall.Call(context.WithValue(ctx, invocationKey{}, inv), uint64(len(op)), uint64(len(msg)))
	if err != nil {
		return nil, "", inv, err
	}
	rc := uint32(res[0])
	switch {
	case inv.guestErr != nil:
		if rc != 0 {
			return nil, "", inv, fmt.Errorf("guest error %q with return code %d", *inv.guestErr, rc)
		}
		return nil, *inv.guestErr, inv, nil
	case rc != 1:
		return nil, "", inv, fmt.Errorf("operation failed with exit code %d", rc)
	}
	return inv.reply, "", inv, nil
}

// mustCall fails the test unless the invocation succeeds.
func (in *instance) mustCall(tb testing.TB, op string, msg []byte) []byte {
	tb.Helper()
	reply, guestErr, err := in.call(context.Background(), op, msg)
	if err != nil || guestErr != "" {
		tb.Fatalf("%s: err %v, guest error %q\n%s", op, err, guestErr, in.stderr.String())
	}
	return reply
}

// load builds, compiles and instantiates one actor on a fresh runtime.
func load(tb testing.TB, pkg string, cfg wazero.RuntimeConfig) *instance {
	tb.Helper()
	r := newRuntime(tb, cfg)
	compiled, err := r.CompileModule(context.Background(), buildActor(tb, pkg))
	if err != nil {
		tb.Fatal(err)
	}
	return instantiate(tb, r, compiled)
}

func TestEchoOverTheABI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wasm := buildActor(t, "github.com/latticed/latticed/actor/examples/echo")
	// A runtime without the shared cache, so the compile time is real.
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if err := instantiateWasmbus(ctx, r); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	compileTime := time.Since(start)

	exports := compiled.ExportedFunctions()
	for _, name := range []string{"__guest_call", "__wasmbus_rpc_version", "_initialize"} {
		if exports[name] == nil {
			t.Errorf("export %s missing", name)
		}
	}
	if exports["_start"] != nil {
		t.Error("a c-shared build exports _start; hosts would run main")
	}
	if compiled.ExportedMemories()["memory"] == nil {
		t.Error("memory not exported")
	}
	var imports []string
	for _, f := range compiled.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod == "wasmbus" {
			imports = append(imports, name)
		}
	}
	// echo makes no host calls, and Go's linker drops unreached imports.
	if got := strings.Join(imports, " "); got != "__guest_request __guest_response __guest_error" {
		t.Errorf("wasmbus imports = %s", got)
	}

	start = time.Now()
	in := instantiate(t, r, compiled)
	initTime := time.Since(start)
	pagesAfterInit := in.mod.Memory().Size() / 65536
	if v, err := in.mod.ExportedFunction("__wasmbus_rpc_version").Call(ctx); err != nil || v[0] != 1 {
		t.Errorf("__wasmbus_rpc_version = %v, %v", v, err)
	}

	t.Run("Echo.Echo returns its payload", func(t *testing.T) {
		for _, payload := range [][]byte{[]byte("hello"), nil, bytes.Repeat([]byte{0xab}, 1<<20)} {
			if got := in.mustCall(t, "Echo.Echo", payload); !bytes.Equal(got, payload) {
				t.Errorf("Echo.Echo(%d bytes) returned %d bytes", len(payload), len(got))
			}
		}
	})

	t.Run("HandleRequest twice on one instance", func(t *testing.T) {
		for i, req := range []wire.HTTPRequest{
			{Method: "GET", Path: "/a", QueryString: "x=1"},
			{Method: "POST", Path: "/b/c", Body: []byte(`{"k":"v"}`), Header: map[string][]string{"Accept": {"*/*"}}},
		} {
			resp, err := wire.DecodeHTTPResponse(in.mustCall(t, wire.OpHTTPHandleRequest, req.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header["Content-Type"][0] != "application/json" {
				t.Errorf("request %d: status %d, header %v", i, resp.StatusCode, resp.Header)
			}
			var body map[string]string
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatalf("request %d: body %q: %v", i, resp.Body, err)
			}
			want := map[string]string{"method": req.Method, "path": req.Path, "query_string": req.QueryString, "body": string(req.Body)}
			if fmt.Sprint(body) != fmt.Sprint(want) {
				t.Errorf("request %d: body %v; want %v", i, body, want)
			}
		}
	})

	t.Run("unknown and empty operations are guest errors", func(t *testing.T) {
		for _, op := range []string{"No.Such", ""} {
			_, guestErr, err := in.call(ctx, op, []byte("x"))
			if err != nil || guestErr != "unsupported operation: "+op {
				t.Errorf("%q: guest error %q, err %v", op, guestErr, err)
			}
		}
		in.mustCall(t, "Echo.Echo", nil) // and the instance still works
	})

	t.Run("_initialize is required", func(t *testing.T) {
		mod, err := r.InstantiateModule(ctx, compiled, moduleConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		if _, err := mod.ExportedFunction("__guest_call").Call(ctx, 0, 0); err == nil {
			t.Fatal("__guest_call before _initialize succeeded; Go's runtime aborts it")
		}
	})

	const calls = 2000
	payload := []byte("0123456789abcdef0123456789abcdef")
	start = time.Now()
	for range calls {
		in.mustCall(t, "Echo.Echo", payload)
	}
	perCall := time.Since(start) / calls
	t.Logf("echo.wasm %d bytes; compile %v; instantiate+_initialize %v; Echo.Echo %v/call; memory %d pages after _initialize, %d after %d calls",
		len(wasm), compileTime.Round(time.Millisecond), initTime.Round(10*time.Microsecond), perCall,
		pagesAfterInit, in.mod.Memory().Size()/65536, calls)
}

func TestReactorLifecycle(t *testing.T) {
	t.Parallel()
	in := load(t, "./lifecycle", wazero.NewRuntimeConfig())

	if got := string(in.mustCall(t, "Life.MainRan", nil)); got != "false" {
		t.Errorf("main ran = %s: a c-shared reactor must not run main", got)
	}
	for want := 1; want <= 3; want++ {
		if got := string(in.mustCall(t, "Life.Count", nil)); got != fmt.Sprint(want) {
			t.Errorf("Life.Count = %s; want %d: globals persist across calls on one instance", got, want)
		}
	}
	slept, err := time.ParseDuration(string(in.mustCall(t, "Life.Sleep", []byte("20"))))
	if err != nil || slept < 20*time.Millisecond {
		t.Errorf("Life.Sleep(20ms) slept %v (%v)", slept, err)
	}
	if got := string(in.mustCall(t, "Life.Goroutine", []byte("hi"))); got != "from goroutine: hi" {
		t.Errorf("Life.Goroutine = %q", got)
	}
}

func TestKVCounterIncrementsThroughTheHost(t *testing.T) {
	t.Parallel()
	in := load(t, "github.com/latticed/latticed/actor/examples/kvcounter", wazero.NewRuntimeConfig())
	store := map[string]int32{}
	var failure error
	in.onHost = func(binding, namespace, operation string, payload []byte) ([]byte, error) {
		if failure != nil {
			return nil, failure
		}
		if binding != "default" || namespace != wire.ContractKeyValue || operation != wire.OpKVIncrement {
			return nil, fmt.Errorf("unexpected call %s %s %s", binding, namespace, operation)
		}
		arg, err := wire.DecodeKVIncrementRequest(payload)
		if err != nil {
			return nil, err
		}
		store[arg.Key] += arg.Value
		w := wire.NewWriter(5)
		w.Int32(store[arg.Key])
		return w.Bytes(), nil
	}
	request := (&wire.HTTPRequest{Method: "GET", Path: "/"}).Encode()
	handle := func() *wire.HTTPResponse {
		resp, err := wire.DecodeHTTPResponse(in.mustCall(t, wire.OpHTTPHandleRequest, request))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for want := 1; want <= 2; want++ {
		resp := handle()
		if resp.StatusCode != 200 || string(resp.Body) != fmt.Sprintf(`{"counter":%d}`, want) {
			t.Errorf("call %d: %d %s", want, resp.StatusCode, resp.Body)
		}
	}
	// A failed increment comes back as the actor's error (a guest error,
	// which the HTTP server provider logs and answers with a short 500),
	// never as a body: the host's error names lattice internals.
	failure = errors.New("missing link definition")
	reply, guestErr, err := in.call(context.Background(), wire.OpHTTPHandleRequest, request)
	if err != nil || reply != nil || !strings.Contains(guestErr, "missing link definition") {
		t.Errorf("failed increment: reply %q, guest error %q, err %v; want the host's error as a guest error", reply, guestErr, err)
	}
}

func TestHostCallForwarding(t *testing.T) {
	t.Parallel()
	in := load(t, "./hostcall", wazero.NewRuntimeConfig())
	in.onHost = func(binding, namespace, operation string, payload []byte) ([]byte, error) {
		if namespace == "wasmcloud:denied" {
			return nil, errors.New("missing capability claim")
		}
		return append([]byte(binding+"|"+namespace+"|"+operation+"|"), payload...), nil
	}
	forward := func(binding, namespace, operation string, payload []byte) []byte {
		w := wire.NewWriter(0)
		w.MapHeader(4)
		for _, kv := range [][2]string{{"binding", binding}, {"namespace", namespace}, {"operation", operation}} {
			w.Str(kv[0])
			w.Str(kv[1])
		}
		w.Str("payload")
		w.Bin(payload)
		return w.Bytes()
	}

	reply := in.mustCall(t, "Call.Forward", forward("b", "MABC", "X.Y", []byte("data")))
	if string(reply) != "b|MABC|X.Y|data" {
		t.Errorf("forwarded reply %q", reply)
	}
	reply = in.mustCall(t, "Call.Forward", forward("", "", "", nil))
	if string(reply) != "|||" {
		t.Errorf("empty strings forwarded as %q", reply)
	}
	_, guestErr, err := in.call(context.Background(), "Call.Forward", forward("default", "wasmcloud:denied", "X.Y", nil))
	if err != nil || guestErr != "missing capability claim" {
		t.Errorf("refused call: guest error %q, err %v; want the host's message verbatim", guestErr, err)
	}
}

func TestLoggerUsesTheBuiltins(t *testing.T) {
	t.Parallel()
	in := load(t, "./logger", wazero.NewRuntimeConfig())
	var logged []wire.LogEntry
	in.onHost = func(binding, namespace, operation string, payload []byte) ([]byte, error) {
		switch namespace + " " + operation {
		case wire.ContractLogging + " " + wire.OpLogWrite:
			e, err := wire.DecodeLogEntry(payload)
			if err != nil {
				return nil, err
			}
			logged = append(logged, *e)
			return nil, nil
		case wire.ContractNumberGen + " " + wire.OpNumGenGUID:
			w := wire.NewWriter(0)
			w.Str("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
			return w.Bytes(), nil
		}
		return nil, fmt.Errorf("unexpected %s %s %s", binding, namespace, operation)
	}
	if got := string(in.mustCall(t, "Gen.Guid", nil)); got != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Errorf("Gen.Guid = %q", got)
	}
	in.mustCall(t, "Log.Write", []byte("hello"))
	if fmt.Sprint(logged) != "[{info generating a guid} {info hello}]" {
		t.Errorf("logged %v", logged)
	}
}

// TestFailureModes pins down how each way of failing looks to a host.
func TestFailureModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRuntime(t, wazero.NewRuntimeConfig())
	compiled, err := r.CompileModule(ctx, buildActor(t, "./trap"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a handler panic is a guest error and the instance lives", func(t *testing.T) {
		in := instantiate(t, r, compiled)
		_, guestErr, err := in.call(ctx, "Trap.Panic", nil)
		if err != nil || guestErr != "panic in handler for Trap.Panic: boom" {
			t.Fatalf("guest error %q, err %v", guestErr, err)
		}
		in.mustCall(t, "Echo.Echo", []byte("still here"))
	})

	t.Run("os.Exit ends the module with its code", func(t *testing.T) {
		in := instantiate(t, r, compiled)
		_, _, err := in.call(ctx, "Trap.Exit", nil)
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Fatalf("err %v; want sys.ExitError code 3", err)
		}
		if _, _, err := in.call(ctx, "Echo.Echo", nil); err == nil {
			t.Fatal("a call after proc_exit succeeded")
		}
	})

	t.Run("a memory fault is a wasm trap", func(t *testing.T) {
		in := instantiate(t, r, compiled)
		_, _, err := in.call(ctx, "Trap.Fault", nil)
		var exit *sys.ExitError
		if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "out of bounds memory access") {
			t.Fatalf("err %v; want an out-of-bounds trap", err)
		}
	})

	t.Run("a panic on another goroutine is a trap", func(t *testing.T) {
		in := instantiate(t, r, compiled)
		_, _, err := in.call(ctx, "Trap.GoroutinePanic", nil)
		var exit *sys.ExitError
		if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "wasm error: unreachable") {
			t.Fatalf("err %.300v; want the trap of runtime.abort", err)
		}
		if !strings.Contains(in.stderr.String(), "panic: boom in a goroutine") {
			t.Errorf("stderr lacks the panic:\n%.300s", in.stderr.String())
		}
	})
}

// TestHostileActors shows what a host's limits do to hostile Go actors.
func TestHostileActors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a spinning guest is stopped by the call's deadline", func(t *testing.T) {
		// As the host does it (internal/host stopGuard): the module
		// instrumented by wasmstop, its stop flag raised when the call's
		// context ends, and the guest trapping at its next loop.
		wasm, err := wasmstop.Instrument(buildActor(t, "./loop"))
		if err != nil {
			t.Fatal(err)
		}
		r := newRuntime(t, wazero.NewRuntimeConfig())
		compiled, err := r.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		in := instantiate(t, r, compiled)
		flag := in.mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
		callCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		defer context.AfterFunc(callCtx, func() { flag.Set(1) })()
		_, _, err = in.call(callCtx, "Loop.Forever", nil)
		if err == nil || !strings.Contains(err.Error(), "wasm error: unreachable") || callCtx.Err() == nil {
			t.Fatalf("err %v (context: %v); want the trap of the stop flag after the deadline", err, callCtx.Err())
		}
	})

	// 256 MiB: room for the runtime, not for the bombs.
	limited := wazero.NewRuntimeConfig().WithMemoryLimitPages(4096)

	// A Go fatal error in a c-shared module is not exit(2): the runtime
	// treats the host as owning the process and aborts, a wasm trap
	// ("unreachable"). The reason is only on stderr.
	fatal := func(t *testing.T, in *instance, err error, reason string) {
		t.Helper()
		var exit *sys.ExitError
		if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "wasm error: unreachable") {
			t.Fatalf("err %.300v; want the trap of runtime.abort", err)
		}
		if !strings.Contains(in.stderr.String(), reason) {
			t.Errorf("stderr lacks %q:\n%.500s", reason, in.stderr.String())
		}
	}

	t.Run("memory exhaustion is a fatal error and a trap", func(t *testing.T) {
		in := load(t, "./membomb", limited)
		if got := string(in.mustCall(t, "Mem.GrowOnce", nil)); got != "1" {
			t.Fatalf("Mem.GrowOnce = %q", got)
		}
		_, _, err := in.call(ctx, "Mem.Grow", nil)
		fatal(t, in, err, "fatal error: out of memory")
	})

	t.Run("unbounded recursion is a fatal error and a trap", func(t *testing.T) {
		in := load(t, "./recurse", limited)
		_, _, err := in.call(ctx, "Recurse.Deep", nil)
		// The goroutine stack doubles in linear memory, so the memory limit
		// is hit long before Go's 1 GB stack limit.
		fatal(t, in, err, "fatal error: out of memory")
	})
}

// BenchmarkInstantiate is the cost of one fresh instance: instantiate,
// _initialize (the Go runtime's start-up), close.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, wazero.NewRuntimeConfig())
	compiled, err := r.CompileModule(ctx, buildActor(b, "github.com/latticed/latticed/actor/examples/echo"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		mod, err := r.InstantiateModule(ctx, compiled, moduleConfig(nil))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
			b.Fatal(err)
		}
		mod.Close(ctx)
	}
}
