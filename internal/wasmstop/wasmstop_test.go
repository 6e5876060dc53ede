package wasmstop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/internal/wasmstop"
)

// spinModule is a module assembled by hand, with no language runtime: it
// exports spin(n), which counts down from n in a loop (n = 0: forever),
// and a global of its own, so the stop global is not index 0.
func spinModule() []byte {
	return []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		// type: (i32) -> i32
		0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f,
		// function 0 of type 0
		0x03, 0x02, 0x01, 0x00,
		// global: mutable i32 = 7
		0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x07, 0x0b,
		// export "spin" func 0
		0x07, 0x08, 0x01, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00,
		// code
		0x0a, 0x17, 0x01, 0x15, 0x00,
		0x03, 0x40, // loop
		0x20, 0x00, 0x45, 0x0d, 0x00, // br_if 0 (n == 0): forever
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, // br_if 0 (n = n - 1; n != 0)
		0x0b,             // end loop
		0x23, 0x00, 0x0b, // global.get 0; end
	}
}

// TestStartFunctionRunsWhenTheHostCallsIt: a start function that never
// returns would run inside InstantiateModule, out of the flag's reach, so
// Instrument moves it out of the start section to StartExport.
func TestStartFunctionRunsWhenTheHostCallsIt(t *testing.T) {
	forever := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type () -> ()
		0x03, 0x02, 0x01, 0x00, // function 0 of it
		0x08, 0x01, 0x00, // start: function 0
		0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end
	}
	out := mustInstrument(t, forever)
	for name, cfg := range engines() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mod := instantiateBare(t, cfg(), out) // returns: nothing runs yet
			start := mod.ExportedFunction(wasmstop.StartExport)
			if start == nil {
				t.Fatalf("no export %q", wasmstop.StartExport)
			}
			done := make(chan error, 1)
			go func() { _, err := start.Call(ctx); done <- err }()
			time.Sleep(10 * time.Millisecond) // let it spin a little; it passes without too
			mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal).Set(1)
			wantStopTrap(t, done, "the start function")
		})
	}
}

// wantStopTrap waits for the call whose error done delivers, once its stop
// flag is (about to be) set, to end in the trap the flag's check raises.
func wantStopTrap(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: %v; want the unreachable trap", what, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s still runs a minute after its flag was set", what)
	}
}

// mustInstrument is Instrument, failing the test on an error.
func mustInstrument(t *testing.T, wasm []byte) []byte {
	t.Helper()
	out, err := wasmstop.Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// instantiateBare instantiates a module that imports nothing on a runtime
// of its own.
func instantiateBare(t *testing.T, cfg wazero.RuntimeConfig, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func engines() map[string]func() wazero.RuntimeConfig {
	return map[string]func() wazero.RuntimeConfig{
		"compiler":    wazero.NewRuntimeConfigCompiler,
		"interpreter": wazero.NewRuntimeConfigInterpreter,
	}
}

func TestSpinStopsWhenTheFlagIsSet(t *testing.T) {
	out := mustInstrument(t, spinModule())
	for name, cfg := range engines() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mod := instantiateBare(t, cfg(), out)
			res, err := mod.ExportedFunction("spin").Call(ctx, 1000)
			if err != nil || res[0] != 7 {
				t.Fatalf("spin(1000) = %v, %v; want 7", res, err)
			}
			flag := mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
			done := make(chan error, 1)
			go func() { _, err := mod.ExportedFunction("spin").Call(ctx, 0); done <- err }()
			// A stop-the-world while the guest spins: it completes only if
			// the guest leaves compiled code now and then (the yields).
			// Without them the whole process stops, timers included, and
			// the failure is go test's -timeout.
			collected := make(chan struct{})
			go func() { runtime.GC(); close(collected) }()
			select {
			case <-collected:
			case <-time.After(time.Minute):
				t.Fatal("a garbage collection waited a minute for the spinning guest")
			}
			flag.Set(1)
			wantStopTrap(t, done, "spin")
		})
	}
}

// call is one wasmbus invocation in flight (docs/protocol.md §5).
type call struct {
	op, msg, reply []byte
	guestErr       string
}

type callKey struct{}

// newRuntime is a runtime of the given engine with WASI and a wasmbus host
// module that answers just what an invocation without host calls needs.
func newRuntime(t testing.TB, cfg wazero.RuntimeConfig) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	of := func(ctx context.Context) *call { return ctx.Value(callKey{}).(*call) }
	mem := func(m api.Module, ptr, n uint32) []byte {
		b, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic("out of bounds")
		}
		return b
	}
	// The two functions every call runs are Go module functions, as the
	// host's are (internal/host), so BenchmarkGuestCall times the guest
	// rather than WithFunc's reflection.
	i32 := []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}
	_, err := r.NewHostModuleBuilder("wasmbus").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		c := of(ctx)
		m.Memory().Write(api.DecodeU32(stack[0]), c.op)
		m.Memory().Write(api.DecodeU32(stack[1]), c.msg)
	}), i32, nil).Export("__guest_request").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		of(ctx).reply = append([]byte(nil), mem(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))...)
	}), i32, nil).Export("__guest_response").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		of(ctx).guestErr = string(mem(m, ptr, n))
	}).Export("__guest_error").
		NewFunctionBuilder().WithFunc(func(context.Context, uint32, uint32, uint32, uint32, uint32, uint32, uint32, uint32) uint32 {
		return 0
	}).Export("__host_call").
		NewFunctionBuilder().WithFunc(func(context.Context) uint32 { return 0 }).Export("__host_response_len").
		NewFunctionBuilder().WithFunc(func(context.Context, uint32) {}).Export("__host_response").
		NewFunctionBuilder().WithFunc(func(context.Context) uint32 { return 0 }).Export("__host_error_len").
		NewFunctionBuilder().WithFunc(func(context.Context, uint32) {}).Export("__host_error").
		NewFunctionBuilder().WithFunc(func(context.Context, uint32, uint32) {}).Export("__console_log").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// actorInstance instantiates a wasmbus actor and runs its initialiser.
func actorInstance(t testing.TB, r wazero.Runtime, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	// The host's clocks (internal/host): a Go guest reads none in a call
	// that does not collect, but its collector does, and paces itself by
	// them.
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	for _, start := range []string{"_initialize", "_start"} {
		if f := mod.ExportedFunction(start); f != nil {
			if _, err := f.Call(ctx); err != nil {
				t.Fatalf("%s: %v", start, err)
			}
			break
		}
	}
	return mod
}

// invoke runs one operation; the error is the call's, or the guest's.
func invoke(ctx context.Context, mod api.Module, op string, msg []byte) ([]byte, error) {
	return invokeExport(ctx, mod.ExportedFunction("__guest_call"), op, msg)
}

// invokeExport runs one operation through fn, an export with __guest_call's
// signature and ABI.
func invokeExport(ctx context.Context, fn api.Function, op string, msg []byte) ([]byte, error) {
	c := &call{op: []byte(op), msg: msg}
	res, err := fn.Call(context.WithValue(ctx, callKey{}, c), uint64(len(op)), uint64(len(msg)))
	switch {
	case err != nil:
		return nil, err
	case c.guestErr != "":
		return nil, errors.New(c.guestErr)
	case res[0] != 1:
		return nil, fmt.Errorf("%s returned %d", op, res[0])
	}
	return c.reply, nil
}

// buildGo builds a Go actor of this repository (wasip1, c-shared).
func buildGo(t testing.TB, pkg string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "actor.wasm")
	if err := wasmbuild.Build(pkg, out); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestInstrumentedActorsBehaveTheSameAndStop runs real actors, built now,
// instrumented on both of wazero's engines: they answer as before, and a
// Go guest spinning in Loop.Forever stops once the flag is set from
// another goroutine.
func TestInstrumentedActorsBehaveTheSameAndStop(t *testing.T) {
	loop := buildGo(t, "./internal/testing/actors/loop")
	rust, err := wasmbuild.RustEcho()
	if err != nil {
		t.Fatal(err)
	}
	actors := []struct {
		name  string
		wasm  []byte
		op    string
		spins bool // has Loop.Forever
	}{
		{"go loop actor", loop, "Echo.Echo", true},
		{"go echo example", buildGo(t, "github.com/latticed/latticed/actor/examples/echo"), "Echo.Echo", false},
		{"rust echo", rust, "Echo.Echo", false},
		{"tiny echo", wasmbuild.TinyEcho(), "Any.Thing", false},
	}
	for _, a := range actors {
		out, err := wasmstop.Instrument(a.wasm)
		if err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		for engine, cfg := range engines() {
			t.Run(a.name+"/"+engine, func(t *testing.T) {
				ctx := context.Background()
				r := newRuntime(t, cfg())
				mod := actorInstance(t, r, out)
				got, err := invoke(ctx, mod, a.op, []byte("hello"))
				if err != nil || string(got) != "hello" {
					t.Fatalf("%s = %q, %v; want hello", a.op, got, err)
				}
				if !a.spins {
					return
				}
				flag := mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
				callCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				stop := context.AfterFunc(callCtx, func() { flag.Set(1) })
				defer stop()
				done := make(chan error, 1)
				go func() { _, err := invoke(ctx, mod, "Loop.Forever", nil); done <- err }()
				wantStopTrap(t, done, "Loop.Forever")
			})
		}
	}
}

func TestInstrumentRefuses(t *testing.T) {
	spin := spinModule()
	// The spin module's code section, with its loop's block type replaced
	// by an opcode no engine knows (an atomic, 0xfe).
	atomic := append([]byte(nil), spin...)
	i := len(atomic) - 20 // the loop opcode in the only function body
	if atomic[i] != 0x03 {
		t.Fatalf("byte %d is %#x, not the loop opcode", i, atomic[i])
	}
	atomic[i] = 0xfe
	reserved := wasmbuild.TinyEcho()
	reserved, err := wasmstop.Instrument(reserved) // exports latticed:stop
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), "not a WebAssembly 1.0 binary"},
		{"truncated", spin[:len(spin)-3], "runs past the end"},
		{"unknown opcode", atomic, "unknown opcode 0xfe at offset 1"},
		{"already instrumented", reserved, `already exports "latticed:stop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wasmstop.Instrument(tc.wasm)
			if !errors.Is(err, wasmstop.ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v; want ErrUnsafe saying %q", err, tc.want)
			}
		})
	}
}

// TestInstrumentIsDeterministic: the compilation cache keys on the output.
func TestInstrumentIsDeterministic(t *testing.T) {
	a, err := wasmstop.Instrument(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := wasmstop.Instrument(spinModule())
	if !bytes.Equal(a, b) {
		t.Fatal("two instrumentations of one module differ")
	}
}
