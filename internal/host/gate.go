package host

import "sync"

// gate counts work in flight and, once closed, admits no more, so that
// waiting for the work to finish cannot race with new work arriving (a bare
// WaitGroup would: Add during Wait is a misuse).
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter admits one unit of work, or reports false once the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// leave ends one unit of work admitted by enter.
func (g *gate) leave() { g.wg.Done() }

// closeAndWait admits nothing more and waits for the work already admitted.
func (g *gate) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
