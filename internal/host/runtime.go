package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/latticed/latticed/internal/memreturn"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/wasmstop"
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
	// warm lists the modules the compiler has cached in cacheDir.
	warm warmIndex
	// prepared keeps prepareModule's output in cacheDir (preparedCache).
	prepared preparedCache
	pre      preloads     // code loaded ahead of its start (Preload)
	log      *slog.Logger // the host sets its own after NewRuntime
}

// maxInterpreting bounds the actors running interpreted at once.
const maxInterpreting = 2

// module is compiled code and the runtime that compiled it, which is the
// only one that can instantiate it.
type module struct {
	cm          wazero.CompiledModule
	rt          wazero.Runtime
	interpreted bool
	cached      bool      // optimized code the warm index expected in the compilation cache
	key         moduleKey // the module's as given (keyOf), before it was prepared
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
	// The interpreter is Go code, so wazero's own check costs it little,
	// and it reads globals with plain loads: the stop flag, set from
	// another goroutine, would be a data race there (stopGuard).
	interp, err := newWazeroRuntime(ctx, wazero.NewRuntimeConfigInterpreter().WithCloseOnContextDone(true), memoryLimitPages)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	compiles, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Runtime{rt: rt, interp: interp, cache: cache, compiles: compiles, stopCompiles: stop,
		interpreting: make(chan struct{}, maxInterpreting),
		returner:     memreturn.New(memreturn.DefaultThreshold, memreturn.DefaultSettle, memreturn.DefaultInterval),
		warm:         newWarmIndex(cacheDir), prepared: newPreparedCache(cacheDir), log: slog.Default()}
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
// WASI and the wasmbus host module. The compiler runs without
// WithCloseOnContextDone, which makes compiled code call out to Go at every
// loop header: a call's deadline stops a compiled guest through the flag
// wasmstop adds to every module instead (prepareModule, stopGuard).
func newWazeroRuntime(ctx context.Context, cfg wazero.RuntimeConfig, memoryLimitPages uint32) (wazero.Runtime, error) {
	cfg = cfg.
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
	r.stopPreloads()
	r.stopReturner()
	return errors.Join(r.rt.Close(ctx), r.interp.Close(ctx), r.cache.Close(ctx))
}

// cancelCompiles makes every compile in progress, and every later one, end
// with an error; the host calls it first when it stops.
func (r *Runtime) cancelCompiles() { r.stopCompiles() }

// Compile compiles (or loads from the cache) a module and checks it exports
// the wasmbus ABI.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	wasm, err := prepareModule(wasm)
	if err != nil {
		return nil, err
	}
	return compileABI(ctx, r.rt, wasm)
}

// prepareModule is the module as the host compiles it: data segments
// packed, and the stop flag with its checks added (wasmstop), which is how a
// call's deadline stops a guest that never returns. It is deterministic, so
// the compilation cache and the warm index key on its output. A module that
// cannot be instrumented is refused: it could run past every deadline.
func prepareModule(wasm []byte) ([]byte, error) {
	out, err := wasmstop.Instrument(packDataSegments(wasm))
	if err != nil {
		return nil, fmt.Errorf("compile module: %w", err)
	}
	return out, nil
}

// compiled is the outcome of a background compile.
type compiled struct {
	m   *module
	err error
}

// compileTiered returns code to run the actor with as soon as there is some.
// Optimized code from the compilation cache arrives within headStart (at
// least warmHeadStart for a module the warm index lists) and is returned
// alone. Otherwise the interpreter's code (a few hundred
// milliseconds for a Go actor, against seconds for the compiler) is
// returned, and the optimized code follows on upgrade when the compiler is
// done; upgrade always delivers exactly once, and its receiver must call
// interpretedDone after closing the interpreted code. headStart < 0 never
// interprets, and neither does a start while maxInterpreting actors are
// interpreted.
//
// The optimizing compile logs a start line and one end line on log (which
// names the actor), with the module's size, whether the compile cache was
// expected to have its code, and the seconds it took (package progress
// defines the lines; a terminal shows them as a status line).
func (r *Runtime) compileTiered(ctx context.Context, log *slog.Logger, wasm []byte, headStart time.Duration) (first *module, upgrade <-chan compiled, err error) {
	size := len(wasm) // as the operator knows the file, before it is prepared
	key := keyOf(wasm)
	if !r.background.enter() {
		return nil, nil, errRuntimeClosed
	}
	if p := r.preloadFor(ctx, key); p != nil {
		if m, err := r.takePreloaded(ctx, log, p, size); m != nil || err != nil {
			return m, nil, err
		}
		// A preload that failed (the host is stopping, say): compile as
		// any start does, which reports why.
	}
	// Both engines compile the prepared module; a warm start reads it
	// from the prepared cache instead of preparing it again.
	raw := wasm
	wasm, sum, hit := r.prepared.get(key)
	if !hit {
		if wasm, err = prepareModule(raw); err != nil {
			r.background.leave()
			return nil, nil, err
		}
		sum = sha256.Sum256(wasm)
	}
	done := make(chan compiled, 1)
	warm := r.warm.has(sum)
	if warm && headStart >= 0 {
		headStart = max(headStart, warmHeadStart)
	}
	log.Info(progress.CompileStarted, progress.KeyWasmBytes, size, progress.KeyCached, warm)
	r.compiling.Add(1)
	began := time.Now()
	go func() {
		defer r.background.leave()
		defer r.compiling.Add(-1)
		// The compile outlives a caller that gives up: its result is
		// cached for the next start, and the upgrade waits for it. Only
		// the runtime closing cancels it.
		cm, err := compileABI(experimental.WithCompilationWorkers(r.compiles, compileWorkers), r.rt, wasm)
		took := time.Since(began).Seconds()
		if err != nil {
			level := slog.LevelWarn
			if r.compiles.Err() != nil {
				level = slog.LevelInfo // the host is stopping: nothing to act on
			}
			log.Log(context.Background(), level, progress.CompileFailed, progress.KeyWasmBytes, size,
				progress.KeyCached, warm, progress.KeySeconds, took, "err", err)
			done <- compiled{err: err}
			return
		}
		log.Info(progress.CompileFinished, progress.KeyWasmBytes, size, progress.KeyCached, warm, progress.KeySeconds, took)
		if !warm {
			if err := r.warm.add(sum); err != nil {
				// Only the next start's head start depends on it.
				r.log.Warn("compiled module not recorded as cached; its next start may run interpreted first", "err", err)
			}
		}
		if !hit {
			// Recorded once the module compiled: an entry is a module
			// both preparation and the compiler accepted.
			if err := r.prepared.put(key, wasm, sum); err != nil {
				r.log.Warn("prepared module not cached; the next start prepares it again", "err", err)
			}
		}
		done <- compiled{m: &module{cm: cm, rt: r.rt, cached: warm, key: key}}
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
	return &module{cm: icm, rt: r.interp, interpreted: true, key: key}, done, nil
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
