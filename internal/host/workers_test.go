package host

import (
	"sync"
	"testing"
	"time"
)

// Invocations never queue behind each other in workers: n deliveries that
// all block run at the same time, and the goroutines that served them are
// reused afterwards, then exit when the host's life ends.
func TestWorkersServeConcurrentlyAndReuse(t *testing.T) {
	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		running int
		peak    int
		served  int
	)
	release := make(chan struct{})
	var done sync.WaitGroup
	w := newWorkers(stop, func(delivery) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		served++
		mu.Unlock()
		done.Done()
	})
	const n = 8
	done.Add(n)
	for range n {
		w.run(delivery{})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		r := running
		mu.Unlock()
		if r == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries running; workers queued them", r, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	done.Wait()

	// The n goroutines now wait for work: a hand-off reaches one of them.
	handOff := func() bool {
		done.Add(1)
		select {
		case w.work <- delivery{}:
			done.Wait()
			return true
		default:
			done.Done()
			return false
		}
	}
	for !handOff() {
		if time.Now().After(deadline) {
			t.Fatal("no worker waits for work after serving")
		}
		time.Sleep(time.Millisecond)
	}

	close(stop)
	for handOff() { // each worker sees stop; none takes work any more
		if time.Now().After(deadline) {
			t.Fatal("workers still take work after stop")
		}
	}
	mu.Lock()
	total := served
	mu.Unlock()
	if total < n+1 {
		t.Fatalf("served %d, want at least %d", total, n+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != n {
		t.Fatalf("peak concurrency %d, want %d", peak, n)
	}
}
