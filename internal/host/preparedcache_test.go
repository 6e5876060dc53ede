package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
)

// An entry is used only when this build wrote it and its module is intact;
// anything else is a miss, and the start prepares the module again.
func TestPreparedCacheEntries(t *testing.T) {
	raw := wasmbuild.TinyEcho()
	prepared, err := prepareModule(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(prepared)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string) // nil: the entry as put
		hit    bool
	}{
		{"as written", nil, true},
		{"another build", func(t *testing.T, path string) {
			writeEntry(t, path, encodePrepared(prepared, sum, "another-build"))
		}, false},
		{"module damaged", func(t *testing.T, path string) {
			b := encodePrepared(prepared, sum, buildID())
			b[len(b)-1] ^= 0xff
			writeEntry(t, path, b)
		}, false},
		{"truncated", func(t *testing.T, path string) {
			writeEntry(t, path, encodePrepared(prepared, sum, buildID())[:len(preparedMagic)+10])
		}, false},
		{"another format", func(t *testing.T, path string) {
			writeEntry(t, path, append([]byte("latticed-prepared-0\n"), prepared...))
		}, false},
		{"gone", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPreparedCache(t.TempDir())
			if c.dir == "" {
				t.Fatalf("no prepared cache on %s: the build ID of the test binary was not read", runtime.GOOS)
			}
			if err := c.put(keyOf(raw), prepared, sum); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				tc.damage(t, c.path(keyOf(raw)))
			}
			got, gotSum, hit := c.get(keyOf(raw))
			if hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
			if hit && (!bytes.Equal(got, prepared) || gotSum != sum) {
				t.Fatal("the entry read back differs from the prepared module put")
			}
			if _, _, other := c.get(keyOf(append(bytes.Clone(raw), 0, 1, 0))); other {
				t.Fatal("another module hit this module's entry")
			}
		})
	}
	if _, _, hit := newPreparedCache("").get(keyOf(raw)); hit {
		t.Fatal("a runtime without a cache dir found a prepared module")
	}
}

// runtimeOn is a runtime with its caches in dir, closed when t ends.
func runtimeOn(t *testing.T, dir string) *Runtime {
	t.Helper()
	r, err := NewRuntime(context.Background(), dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func writeEntry(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A warm start of the Go echo runs the prepared module from the cache: the
// first start's compile writes it (byte-identical to preparing afresh), a
// later runtime starts on the cached optimized code and answers, and a
// damaged entry costs only a fresh preparation, which repairs it.
func TestWarmStartReadsPreparedModule(t *testing.T) {
	ctx := context.Background()
	wasm := testenv.BuildActor(t, echoPkg)
	want, err := prepareModule(wasm)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := func(t *testing.T) *Runtime {
		t.Helper()
		r := runtimeOn(t, dir)
		m, upgrade, err := r.compileTiered(ctx, r.log, wasm, -1) // -1: optimized code only
		if err != nil || upgrade != nil {
			t.Fatalf("compile: %v (upgrade %v)", err, upgrade != nil)
		}
		in, err := r.instantiate(ctx, m, "prepared")
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("prepared")
		out, err := in.call(ctx, &callState{op: "Echo.Echo", msg: msg, maxHostIO: 1 << 20})
		in.close(ctx)
		m.close(ctx)
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("call: %q, %v", out, err)
		}
		return r
	}
	entryOK := func(t *testing.T, r *Runtime) {
		t.Helper()
		got, _, hit := r.prepared.get(keyOf(wasm))
		if !hit || !bytes.Equal(got, want) {
			t.Fatalf("prepared cache: hit=%v, same as prepareModule=%v", hit, bytes.Equal(got, want))
		}
	}
	r := start(t)
	entryOK(t, r)
	r = start(t)
	entryOK(t, r)
	b, err := os.ReadFile(r.prepared.path(keyOf(wasm)))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	writeEntry(t, r.prepared.path(keyOf(wasm)), b)
	entryOK(t, start(t))
}

// The build ID keys the entries: the test binary has one, and a note that is
// not the Go linker's gives none.
func TestGoBuildIDNote(t *testing.T) {
	if runtime.GOOS == "linux" && buildID() == "" {
		t.Fatal("no Go build ID read from the test binary")
	}
	note := func(name string, typ uint32, desc string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		return append(append(b, name...), desc...)
	}
	for _, tc := range []struct {
		name string
		note []byte
		want string
	}{
		{"go note", note("Go\x00\x00", 4, "abc/def"), "abc/def"},
		{"gnu note", note("GNU\x00", 3, "0123"), ""},
		{"desc past the end", note("Go\x00\x00", 4, "abc")[:18], ""},
		{"short", []byte{4, 0, 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseGoBuildIDNote(tc.note, binary.LittleEndian); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzDecodePrepared: any bytes in an entry either decode to a module whose
// hash the entry carries, or are refused; none panics.
func FuzzDecodePrepared(f *testing.F) {
	prepared, err := prepareModule(wasmbuild.TinyEcho())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodePrepared(prepared, sha256.Sum256(prepared), "build"))
	f.Add([]byte(preparedMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, sum, err := decodePrepared(b, "build")
		if err == nil && sha256.Sum256(got) != sum {
			t.Fatal("decoded a module that does not match its hash")
		}
	})
}

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
	if out, err := in.call(ctx, &callState{op: "Echo.Echo", msg: msg, maxHostIO: 1 << 20}); err != nil || !bytes.Equal(out, msg) {
		t.Fatalf("call on the preloaded code: %q, %v", out, err)
	}
}
