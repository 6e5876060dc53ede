package host

import (
	"context"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// A start whose module the compiler cached before (a restart with a warm
// compilation cache) runs the cached optimized code from the first call:
// it waits for it rather than starting interpreted after the 100 ms head
// start, which a cache hit of a Go actor can take longer than on a busy or
// many-core machine. An empty cache still starts interpreted.
func TestWarmCacheStartsCompiled(t *testing.T) {
	ctx := context.Background()
	wasm := testenv.BuildActor(t, echoPkg)
	dir := t.TempDir()
	var r *Runtime
	start := func(t *testing.T, headStart time.Duration) *module {
		t.Helper()
		var err error
		r, err = NewRuntime(ctx, dir, 4096)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(ctx) })
		first, upgrade, err := r.compileTiered(ctx, r.log, wasm, headStart)
		if err != nil {
			t.Fatal(err)
		}
		if upgrade == nil {
			return first
		}
		c := <-upgrade // the compile ends, cached for the next runtime
		r.interpretedDone()
		first.close(ctx)
		if c.err != nil {
			t.Fatal(c.err)
		}
		c.m.close(ctx)
		return first
	}
	if cold := start(t, time.Millisecond); !cold.interpreted || cold.cached {
		t.Fatalf("empty cache: interpreted=%v cached=%v, want an interpreted start", cold.interpreted, cold.cached)
	}
	warm := start(t, time.Millisecond)
	if warm.interpreted || !warm.cached {
		t.Fatalf("warm cache: interpreted=%v cached=%v, want the cached optimized code", warm.interpreted, warm.cached)
	}
	in, err := r.instantiate(ctx, warm, "warm")
	if err != nil {
		t.Fatal(err)
	}
	defer in.close(ctx)
	msg := []byte("warm")
	out, err := in.call(ctx, &callState{op: "Echo.Echo", msg: msg, maxHostIO: 1 << 20})
	if err != nil || string(out) != string(msg) {
		t.Fatalf("call on the cached code: %q, %v", out, err)
	}
	warm.close(ctx)
}
