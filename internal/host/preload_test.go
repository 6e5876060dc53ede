package host

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// A host that preloads the actor it will be asked to start hands the loaded
// code to that start, and only to a start of the same bytes; a module the
// cache has no code for, a reference that is not a file, or file loading
// off, preloads nothing.
func TestPreloadHandsCodeToTheStart(t *testing.T) {
	ctx := context.Background()
	wasm := testenv.BuildActor(t, echoPkg)
	dir := t.TempDir()
	path := filepath.Join(t.TempDir(), "echo.wasm")
	if err := os.WriteFile(path, wasm, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := "file://" + path
	newRuntime := func(t *testing.T) *Runtime { return runtimeOn(t, dir) }
	preloaded := func(r *Runtime) bool {
		<-r.pre.registered
		r.pre.mu.Lock()
		defer r.pre.mu.Unlock()
		_, ok := r.pre.byModule[keyOf(wasm)]
		return ok
	}

	cold := newRuntime(t)
	cold.Preload(cold.log, []string{ref}, true)
	if preloaded(cold) {
		t.Fatal("preloaded a module the compilation cache has no code for")
	}
	m, _, err := cold.compileTiered(ctx, cold.log, wasm, -1) // fills the caches
	if err != nil {
		t.Fatal(err)
	}
	m.close(ctx)
	cold.Preload(cold.log, []string{ref}, true) // once per runtime: a no-op
	if preloaded(cold) {
		t.Fatal("a second Preload loaded code")
	}
	if fresh := runtimeOn(t, dir); true {
		fresh.Preload(fresh.log, []string{ref}, true)
		if preloaded(fresh) {
			t.Fatal("preloaded a reference no start ran")
		}
	}
	cold.rememberRef(ref, m.key) // as the start of ref does (startVerified)

	for _, tc := range []struct {
		name      string
		refs      []string
		allowFile bool
	}{
		{"file loading off", []string{ref}, false},
		{"not a file reference", []string{"registry.example/echo:1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuntime(t)
			r.Preload(r.log, tc.refs, tc.allowFile)
			if r.pre.registered != nil && preloaded(r) {
				t.Fatal("preloaded")
			}
		})
	}

	r := newRuntime(t)
	r.Preload(r.log, []string{ref}, true)
	if !preloaded(r) {
		t.Fatal("the module the cache has code for was not preloaded")
	}
	other := append(bytes.Clone(wasm), 0, 3, 1, 'x', 0) // one more custom section
	if om, _, err := r.compileTiered(ctx, r.log, other, -1); err != nil {
		t.Fatal(err)
	} else {
		om.close(ctx)
	}
	if !preloaded(r) {
		t.Fatal("a start of other bytes took the preloaded code")
	}
	m, up, err := r.compileTiered(ctx, r.log, wasm, 0)
	if err != nil || up != nil || m.interpreted || !m.cached {
		t.Fatalf("start: err %v, upgrade %v, interpreted %v, cached %v; want the preloaded optimized code", err, up != nil, m.interpreted, m.cached)
	}
	defer m.close(ctx)
	if preloaded(r) {
		t.Fatal("the start did not take the preloaded code")
	}
	in, err := r.instantiate(ctx, m, "preloaded")
	if err != nil {
		t.Fatal(err)
	}
	defer in.close(ctx)
	msg := []byte("preloaded")
	if out, err := in.call(ctx, &callState{op: []byte("Echo.Echo"), msg: msg, maxHostIO: 1 << 20}); err != nil || !bytes.Equal(out, msg) {
		t.Fatalf("call on the preloaded code: %q, %v", out, err)
	}
}
