package host

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Hammer: P goroutines enter and leave while the gate closes; nothing enters
// after closeAndWait returns, and everything that entered has left by then.
func TestGateAdmitsNothingAfterClosing(t *testing.T) {
	for round := 0; round < 50; round++ {
		var g gate
		var inside, after atomic.Int32
		var closed atomic.Bool
		var wg sync.WaitGroup
		for p := 0; p < 8; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					if !g.enter() {
						return
					}
					if closed.Load() {
						after.Add(1)
					}
					inside.Add(1)
					inside.Add(-1)
					g.leave()
				}
			}()
		}
		g.closeAndWait()
		closed.Store(true)
		if n := inside.Load(); n != 0 {
			t.Fatalf("round %d: %d still inside after closeAndWait", round, n)
		}
		wg.Wait()
		if n := after.Load(); n != 0 {
			t.Fatalf("round %d: %d entered after closeAndWait", round, n)
		}
	}
}
