package host

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

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
// replaced so the actor keeps its count.
type pool struct {
	idle     chan *instance
	queueLen int
	closed   chan struct{}

	mu      sync.Mutex
	spawn   spawnFunc
	code    *module // what spawn instantiates; instances running other code are replaced
	live    map[*instance]struct{}
	target  int
	waiting int
	done    bool
}

// spawnFunc creates an instance with the given id.
type spawnFunc func(ctx context.Context, id string) (*instance, error)

func newPool(spawn spawnFunc, queueLen int) *pool {
	return &pool{
		spawn: spawn, idle: make(chan *instance, MaxInstances), queueLen: queueLen,
		closed: make(chan struct{}), live: map[*instance]struct{}{},
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
	missing := n - len(p.live)
	p.mu.Unlock()
	for i := 0; i < missing; i++ {
		if err := p.add(ctx); err != nil {
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
			if len(p.live) <= p.target {
				p.idle <- in // never blocks: idle holds MaxInstances
				p.mu.Unlock()
				return nil
			}
			delete(p.live, in)
			p.mu.Unlock()
			in.close(ctx)
		default:
			return nil // the rest are busy and retire when released
		}
	}
	return nil
}

func (p *pool) add(ctx context.Context) error {
	id := uuid.NewString()
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
			return err
		}
		if in, err = spawn(ctx, id); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if p.done || len(p.live) >= p.target {
		p.mu.Unlock()
		in.close(ctx)
		return nil
	}
	p.live[in] = struct{}{}
	p.mu.Unlock()
	p.idle <- in
	return nil
}

func (p *pool) drop(ctx context.Context, in *instance) {
	p.mu.Lock()
	delete(p.live, in)
	p.mu.Unlock()
	in.close(ctx)
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

// release returns an instance; broken ones are closed and replaced.
func (p *pool) release(ctx context.Context, in *instance, broken bool) {
	p.mu.Lock()
	surplus := p.done || len(p.live) > p.target
	if broken || surplus {
		delete(p.live, in) // decided and done under one lock (see scale)
	}
	p.mu.Unlock()
	if broken || surplus {
		in.close(ctx)
		if broken && !surplus {
			// Replacement failures leave the pool short; the next scale or
			// call sees fewer instances, and the error is not the caller's.
			_ = p.add(context.WithoutCancel(ctx))
		}
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
	var idle []*instance
	for more := true; more; {
		select {
		case in := <-p.idle:
			idle = append(idle, in)
		default:
			more = false
		}
	}
	for _, in := range idle {
		p.putIdle(ctx, p.renew(ctx, in))
	}
	return true
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
	if p.done || len(p.live) > p.target {
		delete(p.live, in)
		p.mu.Unlock()
		in.close(ctx)
		return
	}
	p.idle <- in
	p.mu.Unlock()
}

// stats reports live instances and waiting callers.
func (p *pool) stats() (live, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live), p.waiting
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
