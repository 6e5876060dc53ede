package host

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/latticed/latticed/internal/memreturn"
	"github.com/latticed/latticed/internal/wasmstop"
	"github.com/latticed/latticed/rpc"
)

// MaxInstances bounds one actor's instance count on a node.
const MaxInstances = 1024

// errBusy means every instance is busy and the wait queue is full; the
// reply is coded busy (rpc.ErrBusy).
var errBusy = rpc.Mark(errors.New("actor is busy: all instances in use and the wait queue is full; scale the actor up or retry"), rpc.ErrBusy)

// errPoolClosed means the actor stopped while the caller waited.
var errPoolClosed = errors.New("actor stopped")

// pool holds an actor's instances. Callers take an idle instance or wait in a
// bounded queue; an instance that times out, traps or exits is discarded and
// replaced, under its id, so the actor keeps its count and its inventory.
type pool struct {
	idle     chan *instance
	queueLen int
	closed   chan struct{}
	// retired is told, outside the lock, the id of each instance that left
	// the pool while it runs: scaled away (idle ones at once, busy ones when
	// they come back) or broken and not replaced. The host announces each
	// (actor_stopped); a pool that closes is the host's to announce.
	retired func(id string)

	mu      sync.Mutex
	spawn   spawnFunc
	code    *module // what spawn instantiates; instances running other code are replaced
	live    map[*instance]struct{}
	leaving map[string]bool // ids of live instances chosen to retire (retire), busy until they come back
	target  int             // instances to keep, those leaving not counted
	waiting int
	done    bool
}

// spawnFunc creates an instance with the given id.
type spawnFunc func(ctx context.Context, id string) (*instance, error)

// newPool returns an empty pool; retired (nil: nobody) is told each
// instance that leaves it while it runs.
func newPool(spawn spawnFunc, queueLen int, retired func(id string)) *pool {
	if retired == nil {
		retired = func(string) {}
	}
	return &pool{
		spawn: spawn, idle: make(chan *instance, MaxInstances), queueLen: queueLen,
		closed: make(chan struct{}), live: map[*instance]struct{}{}, leaving: map[string]bool{}, retired: retired,
	}
}

// scale sets the instance count, creating instances now or retiring idle ones
// (busy ones retire when they come back).
func (p *pool) scale(ctx context.Context, n int) error {
	if n < 0 || n > MaxInstances {
		return fmt.Errorf("instance count %d out of range 0-%d", n, MaxInstances)
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return errPoolClosed
	}
	p.target = n
	missing := n - p.staying()
	p.mu.Unlock()
	for i := 0; i < missing; i++ {
		if _, err := p.add(ctx, uuid.NewString()); err != nil {
			return err
		}
	}
	for missing < 0 { // until the surplus is retired or every idle one is gone
		select {
		case in := <-p.idle:
			// Releases and upgrades retire surplus instances too; each
			// retirement is decided under the lock so that together they
			// never go below the target.
			p.mu.Lock()
			if p.staying() <= p.target {
				p.idle <- in // never blocks: idle holds MaxInstances
				p.mu.Unlock()
				return nil
			}
			p.remove(in)
			p.mu.Unlock()
			in.close(ctx)
			p.retired(in.id)
		default:
			return nil // the rest are busy and retire when released
		}
	}
	return nil
}

// add starts an instance with this id and makes it available, unless the
// pool has its count already (or closed); it reports whether it did.
func (p *pool) add(ctx context.Context, id string) (bool, error) {
	p.mu.Lock()
	spawn, code := p.spawn, p.code
	p.mu.Unlock()
	in, err := spawn(ctx, id)
	if err != nil {
		// An upgrade may have closed the code spawn used while it ran;
		// then the new code is the one to run anyway.
		p.mu.Lock()
		changed := p.code != code
		spawn = p.spawn
		p.mu.Unlock()
		if !changed {
			return false, err
		}
		if in, err = spawn(ctx, id); err != nil {
			return false, err
		}
	}
	p.mu.Lock()
	if p.done || p.staying() >= p.target {
		p.mu.Unlock()
		in.close(ctx)
		return false, nil
	}
	p.live[in] = struct{}{}
	p.mu.Unlock()
	p.idle <- in
	return true, nil
}

func (p *pool) drop(ctx context.Context, in *instance) {
	p.mu.Lock()
	p.remove(in)
	p.mu.Unlock()
	in.close(ctx)
}

// staying is how many live instances stay: those not chosen to retire.
// The caller holds p.mu.
func (p *pool) staying() int { return len(p.live) - len(p.leaving) }

// goes reports whether in is to retire when it comes back: the pool
// closed, it was chosen to, or there are more instances than the target.
// The caller holds p.mu.
func (p *pool) goes(in *instance) bool {
	return p.done || p.leaving[in.id] || p.staying() > p.target
}

// remove takes in out of the live instances. The caller holds p.mu.
func (p *pool) remove(in *instance) {
	delete(p.live, in)
	delete(p.leaving, in.id)
}

// retire retires the instances with these ids that the pool holds and has
// not chosen to retire yet: idle ones now, busy ones when they come back;
// the target drops by as many. It reports how many that is.
func (p *pool) retire(ctx context.Context, ids []string) int {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return 0
	}
	held := make(map[string]bool, len(p.live))
	for in := range p.live {
		held[in.id] = true
	}
	n := 0
	for _, id := range ids {
		if held[id] && !p.leaving[id] {
			p.leaving[id] = true
			n++
		}
	}
	p.target = max(0, p.target-n)
	p.mu.Unlock()
	for _, in := range p.takeIdle() {
		p.putIdle(ctx, in) // retires those chosen
	}
	return n
}

// acquire waits for an idle instance until ctx ends.
func (p *pool) acquire(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	p.mu.Lock()
	if p.waiting >= p.queueLen {
		p.mu.Unlock()
		return nil, errBusy
	}
	p.waiting++
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.waiting--; p.mu.Unlock() }()
	select {
	case in := <-p.idle:
		return in, nil
	case <-p.closed:
		return nil, errPoolClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("no free actor instance: %w", ctx.Err())
	}
}

// release returns an instance; broken ones are closed and replaced, and so
// is one whose stop flag was raised (see stopGuard), whatever the call's
// outcome.
func (p *pool) release(ctx context.Context, in *instance, broken bool) {
	broken = broken || in.stopped
	p.mu.Lock()
	closed := p.done
	surplus := p.goes(in)
	if broken || surplus {
		p.remove(in) // decided and done under one lock (see scale)
	}
	p.mu.Unlock()
	if broken || surplus {
		in.close(ctx)
		if closed {
			return
		}
		if !surplus {
			// Replacement failures leave the pool short; the next scale or
			// call sees fewer instances, and the error is not the caller's.
			if added, _ := p.add(context.WithoutCancel(ctx), in.id); added {
				return
			}
		}
		p.retired(in.id)
		return
	}
	p.putIdle(ctx, p.renew(context.WithoutCancel(ctx), in))
}

// upgrade makes spawn, which instantiates code, the pool's way to create
// instances, and replaces every instance running other code: idle ones now,
// busy ones as they come back. A replacement keeps its instance's id. It
// reports false if the pool is closed.
func (p *pool) upgrade(ctx context.Context, code *module, spawn spawnFunc) bool {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return false
	}
	p.spawn, p.code = spawn, code
	p.mu.Unlock()
	for _, in := range p.takeIdle() {
		p.putIdle(ctx, p.renew(ctx, in))
	}
	return true
}

// takeIdle takes every idle instance out of the pool, for the caller to
// put back (putIdle).
func (p *pool) takeIdle() []*instance {
	var idle []*instance
	for {
		select {
		case in := <-p.idle:
			idle = append(idle, in)
		default:
			return idle
		}
	}
}

// renew returns in, or a replacement running the pool's current code. If
// the replacement cannot be made, in goes on serving.
func (p *pool) renew(ctx context.Context, in *instance) *instance {
	p.mu.Lock()
	spawn, code := p.spawn, p.code
	p.mu.Unlock()
	if code == nil || in.code == code {
		return in
	}
	next, err := spawn(ctx, in.id)
	if err != nil {
		return in
	}
	p.mu.Lock()
	if _, ok := p.live[in]; ok {
		delete(p.live, in)
		p.live[next] = struct{}{}
		p.mu.Unlock()
		in.close(ctx)
		return next
	}
	p.mu.Unlock()
	next.close(ctx) // in was dropped meanwhile
	return in
}

// putIdle makes in available to callers, or closes it if the pool closed or
// was scaled below its live count meanwhile (an upgrade holds instances out
// of idle, where scale cannot retire them). The send never blocks (idle
// holds MaxInstances), so it happens under the lock that close takes, and
// close cannot miss it.
func (p *pool) putIdle(ctx context.Context, in *instance) {
	p.mu.Lock()
	if p.goes(in) {
		closed := p.done
		p.remove(in)
		p.mu.Unlock()
		in.close(ctx)
		if !closed {
			p.retired(in.id)
		}
		return
	}
	p.idle <- in
	p.mu.Unlock()
}

// stats reports live instances (those chosen to retire not counted) and
// waiting callers.
func (p *pool) stats() (live, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.staying(), p.waiting
}

// ids lists the live instance ids.
func (p *pool) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.live))
	for in := range p.live {
		out = append(out, in.id)
	}
	return out
}

// stayingIDs lists the ids of the live instances not chosen to retire.
func (p *pool) stayingIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.live))
	for in := range p.live {
		if !p.leaving[in.id] {
			out = append(out, in.id)
		}
	}
	return out
}

// close stops the pool: waiters fail, idle instances close now, busy ones on release.
func (p *pool) close(ctx context.Context) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	p.target = 0
	close(p.closed)
	p.mu.Unlock()
	for {
		select {
		case in := <-p.idle:
			p.drop(ctx, in)
		default:
			return
		}
	}
}

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
	op        string
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
	mem       *instanceMemory // where its linear memory lives
	// raise sets the guest's stop flag (wasmstop.ExportName): the guest
	// then traps at its next loop header. stopped records that it may
	// have been raised; such an instance is never used again. Interpreted
	// instances have none: wazero closes them when the call's context ends.
	raise   func()
	stopped bool
	// st is the state of the call in progress (invokeActor), one per
	// instance because an instance runs one call at a time.
	st callState
}

// stopGuard calls raise, which sets an instance's stop flag, when ctx ends,
// for the guest code run between it and the call of the function it
// returns. That reports false if raise may have run (the guest then traps,
// or will at its next loop, and the instance must not be reused): it is
// context.AfterFunc's stop. A nil raise (an interpreted instance) never
// runs. Only the goroutine that runs the instance calls it; raise is made
// once per instance, so a call costs AfterFunc's allocations only.
func stopGuard(ctx context.Context, raise func()) (disarm func() bool) {
	if raise == nil {
		return neverRaised
	}
	return context.AfterFunc(ctx, raise)
}

func neverRaised() bool { return true }

// sleeper is an instance's WASI sleep (clock subscriptions of poll_oneoff:
// Go's time.Sleep, Rust's thread::sleep). wazero's own sleep ignores the
// context, so a guest sleeping for minutes would outlive its call deadline;
// this one returns when the context of the work in progress ends, and
// the stop flag (stopGuard; wazero's own check for interpreted code) then
// stops the guest at its next loop. Only the
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
	mem := &instanceMemory{}
	mod, err := m.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem.allocator()), cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	var raise func()
	if !m.interpreted {
		flag, ok := mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
		if !ok { // prepareModule adds it to every module
			_ = mod.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("instantiate: module has no stop flag %q; it was not prepared by the host", wasmstop.ExportName)
		}
		raise = func() { flag.Set(1) }
	}
	// The module's start function first (wasmstop moved it out of the
	// start section so that the flag can stop it), then the initialiser.
	for _, start := range []string{wasmstop.StartExport, exportInitialize, exportStart} {
		if _, ok := exports[start]; !ok {
			continue
		}
		disarm := stopGuard(ctx, raise)
		err := clock.during(ctx, func() error { _, err := mod.ExportedFunction(start).Call(ctx); return err })
		if !disarm() {
			// Stopped, or finished just as ctx ended with the flag raised
			// behind it: either way it must not serve calls.
			_ = mod.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("run %s: %w%s", start, cmp.Or(err, ctx.Err()), stderr.reasonSuffix())
		}
		if err != nil {
			var exit *sys.ExitError
			if !(errors.As(err, &exit) && exit.ExitCode() == 0 && !mod.IsClosed()) {
				_ = mod.Close(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("run %s: %w%s", start, err, stderr.reasonSuffix())
			}
		}
		if start != wasmstop.StartExport {
			break
		}
	}
	return &instance{id: id, mod: mod, guestCall: mod.ExportedFunction(exportGuestCall), stack: make([]uint64, 2),
		stderr: stderr, code: m, clock: clock, returner: r.returner, mem: mem, raise: raise}, nil
}

// call runs one operation in the instance. A deadline on ctx interrupts it.
func (in *instance) call(ctx context.Context, st *callState) ([]byte, error) {
	ctx = context.WithValue(ctx, callKey{}, st)
	in.stack[0], in.stack[1] = uint64(len(st.op)), uint64(len(st.msg))
	disarm := stopGuard(ctx, in.raise)
	err := in.clock.during(ctx, func() error { return in.guestCall.CallWithStack(ctx, in.stack) })
	in.stopped = !disarm()
	if err != nil {
		var exit *sys.ExitError
		switch {
		// ctx first: the stop flag's trap (unreachable) is a deadline stop.
		case ctx.Err() != nil:
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

// close releases the instance. Linear memory on the Go heap is garbage from
// here on, and the returner hands it back to the system once enough has been
// released; a mapping (instanceMemory) is unmapped as the module closes.
func (in *instance) close(ctx context.Context) {
	var size uint64
	if mem := in.mod.Memory(); mem != nil && in.mem.onGoHeap() {
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
	if !m.Memory().WriteString(api.DecodeU32(s[0]), st.op) {
		panic(fmt.Sprintf("out of bounds memory write (%d bytes at %d)", len(st.op), api.DecodeU32(s[0])))
	}
	write(m, api.DecodeU32(s[1]), st.msg)
}

func guestResponse(ctx context.Context, m api.Module, s []uint64) {
	st := stateOf(ctx)
	// A copy, taken now: the ABI lends the guest's buffer for this call
	// only, and a guest frees it before __guest_call returns (a Rust
	// actor's allocator writes its free-list links into the freed bytes).
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
