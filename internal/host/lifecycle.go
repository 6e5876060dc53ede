package host

import (
	"context"
	"fmt"
	"sync"
)

// keyLocks are per-actor lifecycle locks: starting, scaling, stopping and
// upgrading one actor take its key's lock, so they never interleave, while
// the host-wide actors lock stays free for inventory, ping and heartbeats.
// A waiter gives up when its context ends, so a control request never waits
// longer than its own deadline for an actor that is busy.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	token chan struct{} // holds one value while the key is locked
	refs  int           // holders and waiters; the entry goes at 0
}

// lock takes key's lock, or fails when ctx ends first. The returned unlock
// must be called exactly once.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyLock{token: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	forget := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.token <- struct{}{}:
		return func() { <-l.token; forget() }, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("actor %s is busy starting or stopping: %w", key, ctx.Err())
	}
}
