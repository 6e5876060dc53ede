package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/latticed/latticed/internal/progress"
)

// preloads are compiles of cached code started before anyone asked for
// them (Runtime.Preload): the actors a supervisor will start first, loaded
// while the host connects to NATS and reports ready, instead of after.
type preloads struct {
	mu         sync.Mutex
	byModule   map[moduleKey]*preloaded // by the module's key (keyOf)
	registered chan struct{}            // closed once every preload is in byModule or given up; nil: none asked
}

// preloaded is one preload's compile; m and err are set when done closes.
type preloaded struct {
	done   chan struct{}
	began  time.Time
	m      *module
	err    error
	expire *time.Timer // releases code nobody took
}

// LogPreloaded is the debug line of code loaded ahead of its start
// (Runtime.Preload).
const LogPreloaded = "actor code loaded ahead of its start"

// preloadKeep is how long preloaded code waits for its start: longer than
// a host takes to become ready and be asked, bounded so that code for a
// start that never comes (it failed its policy check, say) is released.
const preloadKeep = 2 * time.Minute

// Preload loads, ahead of their start, the compiled code of the actors at
// refs (file:// references; others are skipped) whose code the compilation
// cache holds, in the background. The code loaded is that of the module
// the last start of the same reference ran (rememberRef), from its
// prepared cache entry, which this build wrote; it runs only after a start
// read the module, verified it as every start does, and found its bytes
// identical (the same SHA-256) to those the code was loaded for: a file
// changed since loads code that is never used. It returns at once; call it
// once, before the first start.
func (r *Runtime) Preload(log *slog.Logger, refs []string, allowFile bool) {
	var files []string
	for _, ref := range refs {
		if strings.HasPrefix(ref, "file://") {
			files = append(files, ref)
		}
	}
	if len(files) == 0 || !allowFile || !r.background.enter() {
		return
	}
	r.pre.mu.Lock()
	if r.pre.registered != nil {
		r.pre.mu.Unlock()
		r.background.leave()
		return
	}
	registered := make(chan struct{})
	r.pre.registered = registered
	r.pre.mu.Unlock()
	go func() {
		defer r.background.leave()
		defer close(registered)
		for _, ref := range files {
			r.preloadOne(log, ref)
		}
	}()
}

// preloadOne starts the compile of the cached code of the module a start
// of ref last ran (rememberRef): its prepared module is read from the
// cache, the module itself is not, so the compile starts sooner.
func (r *Runtime) preloadOne(log *slog.Logger, ref string) {
	key, ok := r.prepared.keyOfRef(ref)
	if !ok {
		return // never started here: compiling is the start's business
	}
	wasm, sum, hit := r.prepared.get(key)
	if !hit || !r.warm.has(sum) {
		return // no cached code: compiling is the start's business
	}
	p := &preloaded{done: make(chan struct{}), began: time.Now()}
	r.pre.mu.Lock()
	if r.pre.byModule == nil {
		r.pre.byModule = map[moduleKey]*preloaded{}
	}
	if _, dup := r.pre.byModule[key]; dup || !r.background.enter() {
		r.pre.mu.Unlock()
		return
	}
	r.pre.byModule[key] = p
	p.expire = time.AfterFunc(preloadKeep, func() {
		if r.takePreload(key) == p {
			<-p.done
			if p.m != nil {
				p.m.close(context.Background())
			}
		}
	})
	r.pre.mu.Unlock()
	go func() {
		defer r.background.leave()
		defer close(p.done)
		cm, err := compileABI(experimental.WithCompilationWorkers(r.compiles, compileWorkers), r.rt, wasm)
		if err != nil {
			p.err = err
			log.Debug("actor code not loaded ahead of its start; the start compiles it", "ref", ref, "err", err)
			return
		}
		p.m = &module{cm: cm, rt: r.rt, cached: true, key: key}
		log.Debug(LogPreloaded, "ref", ref, "seconds", time.Since(p.began).Seconds())
	}()
}

// preloadFor waits until the preloads are registered, then takes the one
// of the module with this key, if any.
func (r *Runtime) preloadFor(ctx context.Context, key moduleKey) *preloaded {
	r.pre.mu.Lock()
	registered := r.pre.registered
	r.pre.mu.Unlock()
	if registered == nil {
		return nil
	}
	select {
	case <-registered: // reading and verifying a few files: milliseconds
	case <-ctx.Done():
		return nil
	}
	return r.takePreload(key)
}

func (r *Runtime) takePreload(key moduleKey) *preloaded {
	r.pre.mu.Lock()
	defer r.pre.mu.Unlock()
	p := r.pre.byModule[key]
	if p != nil {
		delete(r.pre.byModule, key)
		p.expire.Stop()
	}
	return p
}

// rememberRef records that a start of the file reference ref ran the
// module with this key, for the next host's Preload; other references are
// not preloaded and not recorded. A failure only costs the next start its
// preload.
func (r *Runtime) rememberRef(ref string, key moduleKey) {
	if !strings.HasPrefix(ref, "file://") {
		return
	}
	if known, ok := r.prepared.keyOfRef(ref); ok && known == key {
		return
	}
	if err := r.prepared.putRef(ref, key); err != nil {
		r.log.Debug("actor reference not recorded for preloading", "ref", ref, "err", err)
	}
}

// takePreloaded waits for a preload the caller took, inside the caller's
// background.enter: its code, or nil and no error when the preload failed
// (the caller compiles then, still inside). Otherwise it leaves background.
func (r *Runtime) takePreloaded(ctx context.Context, log *slog.Logger, p *preloaded, size int) (*module, error) {
	log.Info(progress.CompileStarted, progress.KeyWasmBytes, size, progress.KeyCached, true)
	select {
	case <-p.done:
	case <-ctx.Done():
		// The code, when it comes, is closed; the runtime's Close
		// cancels the compile and waits for this goroutine.
		go func() {
			defer r.background.leave()
			if <-p.done; p.m != nil {
				p.m.close(context.Background())
			}
		}()
		return nil, fmt.Errorf("compile module: %w", ctx.Err())
	}
	if p.err != nil {
		return nil, nil
	}
	r.background.leave()
	log.Info(progress.CompileFinished, progress.KeyWasmBytes, size, progress.KeyCached, true,
		progress.KeySeconds, time.Since(p.began).Seconds())
	return p.m, nil
}

// stopPreloads stops the expiry timers of the preloads nobody took; the
// runtime's Close releases their code.
func (r *Runtime) stopPreloads() {
	r.pre.mu.Lock()
	defer r.pre.mu.Unlock()
	for sum, p := range r.pre.byModule {
		p.expire.Stop()
		delete(r.pre.byModule, sum)
	}
}
