package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/latticed/latticed/internal/memreturn"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/rpc"
)

// wasmbus ABI names (docs/protocol.md §5).
const (
	abiModule        = "wasmbus"
	exportGuestCall  = "__guest_call"
	exportInitialize = "_initialize"
	exportStart      = "_start"
)

// Instance failure kinds (metric label values, defined in package metrics).
const (
	failTimeout = metrics.FailureTimeout
	failTrap    = metrics.FailureTrap
	failExit    = metrics.FailureExit
)

// ErrStartTimeout means an actor instance did not finish starting (its
// runtime initialisation, _initialize or _start) within the start deadline,
// LATTICED_ACTOR_START_TIMEOUT.
var ErrStartTimeout = errors.New("actor did not finish starting (LATTICED_ACTOR_START_TIMEOUT)")

// errGuest is a handled error the actor reported with __guest_error; the
// instance stays healthy. unavailable says a host call of this invocation
// failed because its target was not running (rpc.ErrNoResponders) or
// answered unavailable itself: the actor's error is most likely that one
// passed on, so the reply is coded lattice.ErrorCodeUnavailable and callers
// may retry.
type errGuest struct {
	msg         string
	unavailable bool
}

func (e *errGuest) Error() string { return e.msg }

// Is makes an unavailable guest error rpc.ErrUnavailable, which codes the reply.
func (e *errGuest) Is(target error) bool { return e.unavailable && target == rpc.ErrUnavailable }

// instanceError is a failure that leaves the instance unusable.
type instanceError struct {
	kind string
	err  error
}

func (e *instanceError) Error() string { return e.err.Error() }
func (e *instanceError) Unwrap() error { return e.err }

// HostCaller routes an actor's __host_call. It is implemented by the Host.
type hostCaller interface {
	hostCall(ctx context.Context, a *actor, binding, namespace, operation string, payload []byte) ([]byte, error)
}

// callState is one __guest_call in flight. Host functions find it through the
// context, so the single wasmbus host module serves every instance.
type callState struct {
	actor     *actor
	op        []byte
	msg       []byte
	response  []byte
	guestErr  *string
	hostResp  []byte
	hostErr   []byte
	maxHostIO uint32
	router    hostCaller
	log       *slog.Logger
	// unavailable: a host call failed because its target is not running
	// (see errGuest).
	unavailable bool
}

type callKey struct{}

// Runtime is the node's wazero runtime: the optimizing compiler with one
// compilation cache, WASI and the wasmbus host module shared by all
// instances, and beside it an interpreter that serves an actor while the
// compiler works on it (compileTiered).
type Runtime struct {
	rt     wazero.Runtime
	interp wazero.Runtime
	cache  wazero.CompilationCache
	// compiles ends the background compiles (compileTiered) when the
	// runtime closes, and background counts them: a host that stops must
	// not wait seconds for optimized code it will never run.
	compiles     context.Context
	stopCompiles context.CancelFunc
	background   gate
	compiling    atomic.Int32 // optimizing compiles in progress
	// interpreting holds a slot per actor running interpreted code. That
	// code is large (about 95 MiB of heap for a 2 MiB Go actor, against
	// 4 MiB for the compiled code), so only a few actors start this way at
	// once; the others wait for the compiler, as they would without it.
	interpreting chan struct{}
	// returner gives closed instances' linear memory (Go heap) back to the
	// system soon after a large release, instead of at the runtime's
	// forced collection minutes later; its goroutine stops in Close.
	returner     *memreturn.Returner
	stopReturner func()
}

// maxInterpreting bounds the actors running interpreted at once.
const maxInterpreting = 2

// module is compiled code and the runtime that compiled it, which is the
// only one that can instantiate it.
type module struct {
	cm          wazero.CompiledModule
	rt          wazero.Runtime
	interpreted bool
}

func (m *module) close(ctx context.Context) { _ = m.cm.Close(ctx) }

// NewRuntime creates the runtime. cacheDir holds compiled code across restarts
// ("" = in memory only); memoryLimitPages bounds each instance's memory (64 KiB pages).
func NewRuntime(ctx context.Context, cacheDir string, memoryLimitPages uint32) (*Runtime, error) {
	var cache wazero.CompilationCache
	var err error
	if cacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(cacheDir); err != nil {
			return nil, fmt.Errorf("compilation cache in %s: %w", cacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	rt, err := newWazeroRuntime(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache), memoryLimitPages)
	if err != nil {
		return nil, err
	}
	interp, err := newWazeroRuntime(ctx, wazero.NewRuntimeConfigInterpreter(), memoryLimitPages)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	compiles, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Runtime{rt: rt, interp: interp, cache: cache, compiles: compiles, stopCompiles: stop,
		interpreting: make(chan struct{}, maxInterpreting),
		returner:     memreturn.New(memreturn.DefaultThreshold, memreturn.DefaultSettle, memreturn.DefaultInterval)}
	returnCtx, stopReturns := context.WithCancel(context.WithoutCancel(ctx))
	returned := make(chan struct{})
	go func() { defer close(returned); r.returner.Run(returnCtx) }()
	r.stopReturner = func() { stopReturns(); <-returned }
	return r, nil
}

// errRuntimeClosed refuses a compile once the runtime is closing.
var errRuntimeClosed = errors.New("compile module: the wasm runtime is closing")

// compileWorkers is how many goroutines compile one module. wazero checks
// for cancellation between functions only when it compiles with more than
// one (experimental.WithCompilationWorkers); with one, a compile of a Go
// actor (seconds, more under -race) could not be stopped at all.
const compileWorkers = 2

// newWazeroRuntime is one engine with the limits every instance runs under,
// WASI and the wasmbus host module.
func newWazeroRuntime(ctx context.Context, cfg wazero.RuntimeConfig, memoryLimitPages uint32) (wazero.Runtime, error) {
	cfg = cfg.
		// A per-call deadline must be able to stop a guest that never returns.
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(memoryLimitPages)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateABI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	return rt, nil
}

// Close cancels the compiles in progress, waits for them to notice (between
// two functions, milliseconds), and releases the runtime and every module in
// it. The engine must not close under a compile that still adds to it.
func (r *Runtime) Close(ctx context.Context) error {
	r.stopCompiles()
	r.background.closeAndWait()
	r.stopReturner()
	return errors.Join(r.rt.Close(ctx), r.interp.Close(ctx), r.cache.Close(ctx))
}

// cancelCompiles makes every compile in progress, and every later one, end
// with an error; the host calls it first when it stops.
func (r *Runtime) cancelCompiles() { r.stopCompiles() }

// Compile compiles (or loads from the cache) a module and checks it exports
// the wasmbus ABI.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	return compileABI(ctx, r.rt, wasm)
}

// compiled is the outcome of a background compile.
type compiled struct {
	m   *module
	err error
}

// compileTiered returns code to run the actor with as soon as there is some.
// Optimized code from the compilation cache arrives within headStart and is
// returned alone. Otherwise the interpreter's code (a few hundred
// milliseconds for a Go actor, against seconds for the compiler) is
// returned, and the optimized code follows on upgrade when the compiler is
// done; upgrade always delivers exactly once, and its receiver must call
// interpretedDone after closing the interpreted code. headStart < 0 never
// interprets, and neither does a start while maxInterpreting actors are
// interpreted.
func (r *Runtime) compileTiered(ctx context.Context, wasm []byte, headStart time.Duration) (first *module, upgrade <-chan compiled, err error) {
	done := make(chan compiled, 1)
	if !r.background.enter() {
		return nil, nil, errRuntimeClosed
	}
	r.compiling.Add(1)
	go func() {
		defer r.background.leave()
		defer r.compiling.Add(-1)
		// The compile outlives a caller that gives up: its result is
		// cached for the next start, and the upgrade waits for it. Only
		// the runtime closing cancels it.
		cm, err := compileABI(experimental.WithCompilationWorkers(r.compiles, compileWorkers), r.rt, wasm)
		if err != nil {
			done <- compiled{err: err}
			return
		}
		done <- compiled{m: &module{cm: cm, rt: r.rt}}
	}()
	// abandon hands the compile's result, whenever it comes, to a
	// goroutine that closes it, for a caller that no longer waits.
	abandon := func() {
		if !r.background.enter() {
			return // closing: the runtime's Close releases the module
		}
		go func() {
			defer r.background.leave()
			if c := <-done; c.m != nil {
				c.m.close(context.Background())
			}
		}()
	}
	wait := func() (*module, <-chan compiled, error) {
		select {
		case c := <-done:
			return c.m, nil, c.err
		case <-ctx.Done():
			abandon()
			return nil, nil, fmt.Errorf("compile module: %w", ctx.Err())
		}
	}
	if headStart < 0 {
		return wait()
	}
	timer := time.NewTimer(headStart)
	defer timer.Stop()
	select {
	case c := <-done:
		return c.m, nil, c.err
	case <-timer.C:
	case <-ctx.Done():
		abandon()
		return nil, nil, fmt.Errorf("compile module: %w", ctx.Err())
	}
	select {
	case r.interpreting <- struct{}{}:
	default:
		return wait()
	}
	icm, err := compileABI(ctx, r.interp, wasm)
	if err != nil {
		r.interpretedDone()
		// The module is bad for both engines; report the compiler's verdict.
		return wait()
	}
	return &module{cm: icm, rt: r.interp, interpreted: true}, done, nil
}

// interpretedDone frees the slot of an actor that no longer runs
// interpreted code.
func (r *Runtime) interpretedDone() { <-r.interpreting }

// compileABI compiles wasm in rt and checks that it exports the wasmbus ABI.
func compileABI(ctx context.Context, rt wazero.Runtime, wasm []byte) (wazero.CompiledModule, error) {
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile module: %w", err)
	}
	exports := cm.ExportedFunctions()
	if _, ok := exports[exportGuestCall]; !ok {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("module does not export %s: not a wasmbus actor", exportGuestCall)
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, fn, _ := imp.Import()
		if mod == abiModule {
			if _, ok := abiFunctions[fn]; !ok {
				_ = cm.Close(ctx)
				return nil, fmt.Errorf("module imports unknown wasmbus function %q", fn)
			}
		}
	}
	return cm, nil
}

// instance is one live module instance; only one call runs in it at a time.
type instance struct {
	id        string
	mod       api.Module
	guestCall api.Function
	stack     []uint64
	stderr    *tailBuffer // why a Go guest aborted is only written here
	code      *module     // what it runs; the pool replaces interpreted instances
	clock     *sleeper    // ends the guest's sleeps with the call's context
	returner  *memreturn.Returner
}

// sleeper is an instance's WASI sleep (clock subscriptions of poll_oneoff:
// Go's time.Sleep, Rust's thread::sleep). wazero's own sleep ignores the
// context, so a guest sleeping for minutes would outlive its call deadline;
// this one returns when the context of the work in progress ends, and
// WithCloseOnContextDone then stops the guest at its next check. Only the
// goroutine running the instance uses it (one call at a time), so it needs
// no lock.
type sleeper struct{ ctx context.Context }

func (s *sleeper) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	ctx := s.ctx
	if ctx == nil { // no call in progress: nothing to observe
		ctx = context.Background()
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// during runs fn with the guest's sleeps bound to ctx.
func (s *sleeper) during(ctx context.Context, fn func() error) error {
	s.ctx = ctx
	defer func() { s.ctx = nil }()
	return fn()
}

// instantiate creates a fresh instance and runs its initialiser: `_initialize`
// for reactors (Go c-shared builds), `_start` for commands (TinyGo), nothing
// for plain modules (Rust wasmbus actors). A deadline on ctx bounds all of
// it, the guest's sleeps included: the error then wraps ErrStartTimeout.
func (r *Runtime) instantiate(ctx context.Context, m *module, id string) (*instance, error) {
	in, err := r.instantiateUnbounded(ctx, m, id)
	switch {
	case err == nil:
		return in, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: %w", ErrStartTimeout, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("actor start abandoned: %w: %w", ctx.Err(), err)
	}
	return nil, err
}

func (r *Runtime) instantiateUnbounded(ctx context.Context, m *module, id string) (*instance, error) {
	cm := m.cm
	exports := cm.ExportedFunctions()
	stderr := &tailBuffer{max: 512}
	clock := &sleeper{}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithArgs("main.wasm").
		WithSysWalltime().WithSysNanotime().WithNanosleep(clock.sleep).
		WithRandSource(rand.Reader).
		WithStderr(stderr).
		WithStartFunctions()
	mod, err := m.rt.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	for _, start := range []string{exportInitialize, exportStart} {
		if _, ok := exports[start]; !ok {
			continue
		}
		err := clock.during(ctx, func() error { _, err := mod.ExportedFunction(start).Call(ctx); return err })
		if err != nil {
			var exit *sys.ExitError
			if !(errors.As(err, &exit) && exit.ExitCode() == 0 && !mod.IsClosed()) {
				_ = mod.Close(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("run %s: %w%s", start, err, stderr.reasonSuffix())
			}
		}
		break
	}
	return &instance{id: id, mod: mod, guestCall: mod.ExportedFunction(exportGuestCall), stack: make([]uint64, 2),
		stderr: stderr, code: m, clock: clock, returner: r.returner}, nil
}

// call runs one operation in the instance. A deadline on ctx interrupts it.
func (in *instance) call(ctx context.Context, st *callState) ([]byte, error) {
	ctx = context.WithValue(ctx, callKey{}, st)
	in.stack[0], in.stack[1] = uint64(len(st.op)), uint64(len(st.msg))
	err := in.clock.during(ctx, func() error { return in.guestCall.CallWithStack(ctx, in.stack) })
	if err != nil {
		var exit *sys.ExitError
		switch {
		case errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled):
			return nil, &instanceError{kind: failTimeout, err: fmt.Errorf("actor call interrupted: %w", context.DeadlineExceeded)}
		case errors.As(err, &exit):
			return nil, &instanceError{kind: failExit, err: fmt.Errorf("actor exited with code %d%s", exit.ExitCode(), in.stderr.reasonSuffix())}
		default:
			return nil, &instanceError{kind: failTrap, err: fmt.Errorf("actor trapped: %w%s", err, in.stderr.reasonSuffix())}
		}
	}
	if st.guestErr != nil {
		return nil, &errGuest{msg: *st.guestErr, unavailable: st.unavailable}
	}
	if rc := api.DecodeI32(in.stack[0]); rc != 1 {
		return nil, &errGuest{msg: fmt.Sprintf("operation failed with exit code %d", rc), unavailable: st.unavailable}
	}
	return st.response, nil
}

// close releases the instance. Its linear memory, a Go heap allocation, is
// garbage from here on; the returner hands it back to the system once enough
// has been released.
func (in *instance) close(ctx context.Context) {
	var size uint64
	if mem := in.mod.Memory(); mem != nil {
		size = uint64(mem.Size())
	}
	_ = in.mod.Close(ctx)
	in.returner.Released(size)
}

// --- the wasmbus host module ---

var i32 = api.ValueTypeI32

var abiFunctions = map[string]struct {
	fn      api.GoModuleFunc
	params  []api.ValueType
	results []api.ValueType
}{
	"__guest_request":     {guestRequest, []api.ValueType{i32, i32}, nil},
	"__guest_response":    {guestResponse, []api.ValueType{i32, i32}, nil},
	"__guest_error":       {guestError, []api.ValueType{i32, i32}, nil},
	"__host_call":         {hostCallABI, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	"__host_response_len": {hostResponseLen, nil, []api.ValueType{i32}},
	"__host_response":     {hostResponse, []api.ValueType{i32}, nil},
	"__host_error_len":    {hostErrorLen, nil, []api.ValueType{i32}},
	"__host_error":        {hostError, []api.ValueType{i32}, nil},
	"__console_log":       {consoleLog, []api.ValueType{i32, i32}, nil},
}

func instantiateABI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abiModule)
	for name, f := range abiFunctions {
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiate wasmbus host module: %w", err)
	}
	return nil
}

// stateOf returns the call in flight; a guest calling the ABI outside a
// __guest_call (e.g. from _initialize) gets a trap.
func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil {
		panic("wasmbus function called outside __guest_call")
	}
	return st
}

func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Sprintf("out of bounds memory read (%d bytes at %d)", n, ptr))
	}
	return b
}

func write(m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(fmt.Sprintf("out of bounds memory write (%d bytes at %d)", len(b), ptr))
	}
}

func guestRequest(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	write(m, api.DecodeU32(s[0]), st.op)
	write(m, api.DecodeU32(s[1]), st.msg)
}

func guestResponse(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	st.response = append([]byte(nil), read(m, api.DecodeU32(s[0]), api.DecodeU32(s[1]))...)
}

func guestError(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	msg := string(read(m, api.DecodeU32(s[0]), api.DecodeU32(s[1])))
	st.guestErr = &msg
}

func hostCallABI(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	st.hostResp, st.hostErr = nil, nil
	fail := func(err error) {
		st.hostErr = []byte(err.Error())
		s[0] = api.EncodeI32(-1)
	}
	if n := api.DecodeU32(s[7]); n > st.maxHostIO {
		fail(fmt.Errorf("host call payload of %d bytes exceeds the %d byte limit", n, st.maxHostIO))
		return
	}
	binding := string(read(m, api.DecodeU32(s[0]), api.DecodeU32(s[1])))
	namespace := string(read(m, api.DecodeU32(s[2]), api.DecodeU32(s[3])))
	operation := string(read(m, api.DecodeU32(s[4]), api.DecodeU32(s[5])))
	payload := append([]byte(nil), read(m, api.DecodeU32(s[6]), api.DecodeU32(s[7]))...)
	resp, err := st.router.hostCall(ctx, st.actor, binding, namespace, operation, payload)
	if err != nil {
		if errors.Is(err, rpc.ErrNoResponders) || errors.Is(err, rpc.ErrUnavailable) {
			st.unavailable = true
		}
		fail(err)
		return
	}
	st.hostResp = resp
	s[0] = api.EncodeI32(1)
}

func hostResponseLen(ctx context.Context, _ api.Module, s []uint64) {
	s[0] = api.EncodeU32(uint32(len(stateOf(ctx).hostResp)))
}

func hostResponse(ctx context.Context, m api.Module, s []uint64) {
	write(m, api.DecodeU32(s[0]), stateOf(ctx).hostResp)
}

func hostErrorLen(ctx context.Context, _ api.Module, s []uint64) {
	s[0] = api.EncodeU32(uint32(len(stateOf(ctx).hostErr)))
}

func hostError(ctx context.Context, m api.Module, s []uint64) {
	write(m, api.DecodeU32(s[0]), stateOf(ctx).hostErr)
}

// maxConsoleLine bounds what one __console_log may put in the host log.
const maxConsoleLine = 4096

func consoleLog(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	n := api.DecodeU32(s[1])
	if n > maxConsoleLine {
		n = maxConsoleLine
	}
	st.log.Info(string(read(m, api.DecodeU32(s[0]), n)), "actor", st.actor.key, "source", "console_log")
}

// since is a tiny helper for durations in seconds (metrics).
func since(t time.Time) float64 { return time.Since(t).Seconds() }

// tailBuffer keeps the last max bytes written to it, and the line that says
// why the guest died. Only the goroutine that owns the instance writes to it,
// so it needs no lock.
type tailBuffer struct {
	max int
	buf []byte
	// The reason line is picked up as lines complete, not from the tail: Go
	// prints "fatal error: out of memory" and then a stack trace longer than
	// the tail, which would push the reason out.
	line   []byte // the current line, at most maxReasonLine bytes of it
	reason string // the best reason line seen so far
	rank   int    // its rank in reasonPrefixes (0: none yet)
}

// maxReasonLine bounds the reason line kept from a guest's stderr.
const maxReasonLine = 256

// reasonPrefixes rank the lines that say why a guest died, best first: a
// "fatal error" (out of memory) outranks a "panic:" and a "runtime:" detail.
var reasonPrefixes = []string{"fatal error", "panic:", "runtime:"}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i]
		}
		if room := maxReasonLine - len(b.line); room > 0 {
			b.line = append(b.line, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		b.endLine()
		rest = rest[i+1:]
	}
	return len(p), nil
}

// endLine keeps the line just completed if it is a better reason.
func (b *tailBuffer) endLine() {
	line := strings.TrimSpace(string(b.line))
	b.line = b.line[:0]
	for i, prefix := range reasonPrefixes {
		if rank := len(reasonPrefixes) - i; strings.HasPrefix(line, prefix) && rank > b.rank {
			b.reason, b.rank = line, rank
			return
		}
	}
}

// reasonSuffix renders the line that says why the guest died, e.g. Go's
// "fatal error: out of memory", as an error suffix.
func (b *tailBuffer) reasonSuffix() string {
	if len(b.line) > 0 { // a last line without its newline
		b.endLine()
	}
	if b.reason == "" {
		return ""
	}
	return " (" + b.reason + ")"
}
