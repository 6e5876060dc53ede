package wasmstop_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/internal/wasmstop"
	"github.com/latticed/latticed/wire"
)

// BenchmarkGuestCall is one __guest_call into the Go echo example (Echo.Echo,
// and the GET the HTTP rows of make bench send) under each way of making a
// call stoppable: none (the floor, not safe for a host), wazero's
// WithCloseOnContextDone (an exit to Go at every loop header and a watchdog
// goroutine per call), and the module instrumented by Instrument with its
// flag armed per call by context.AfterFunc, as internal/host does. Every call
// has a deadline, as the host's do. cpu-ns/op is the process's CPU per call,
// which on a shared machine says more than the wall time.
func BenchmarkGuestCall(b *testing.B) {
	wasm := buildGo(b, "github.com/latticed/latticed/actor/examples/echo")
	instrumented, err := wasmstop.Instrument(wasm)
	if err != nil {
		b.Fatal(err)
	}
	echo := []byte("0123456789abcdef0123456789abcdef")
	httpReq := (&wire.HTTPRequest{Method: "GET", Path: "/bench", QueryString: "x=1",
		Header: map[string][]string{"host": {"127.0.0.1:8080"}, "user-agent": {"Go-http-client/1.1"}}}).Encode()
	for _, mode := range []struct {
		name string
		cfg  wazero.RuntimeConfig
		wasm []byte
		flag bool
	}{
		{"unstoppable", wazero.NewRuntimeConfigCompiler(), wasm, false},
		{"close-on-done", wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true), wasm, false},
		{"wasmstop", wazero.NewRuntimeConfigCompiler(), instrumented, true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		b.Cleanup(cancel)
		for _, bc := range []struct {
			op      string
			payload []byte
		}{{"Echo.Echo", echo}, {wire.OpHTTPHandleRequest, httpReq}} {
			b.Run(mode.name+"/"+bc.op, func(b *testing.B) {
				// A fresh instance each run: a Go guest's heap and the
				// host's garbage differ after a long run.
				mod := actorInstance(b, newRuntime(b, mode.cfg.WithCompilationCache(benchCache)), mode.wasm)
				var flag api.MutableGlobal
				if mode.flag {
					flag = mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
				}
				loopCalls(b, ctx, flag, mod.ExportedFunction("__guest_call"), bc.op, bc.payload)
			})
		}
	}
}

// loopCalls times calls of fn (an export with __guest_call's ABI) for the
// benchmark, each with a deadline armed as the host arms it when flag is
// not nil, and reports the process's CPU per call.
func loopCalls(b *testing.B, ctx context.Context, flag api.MutableGlobal, fn api.Function, op string, payload []byte) {
	b.Helper()
	runtime.GC()
	cpu0 := cpubench.Process()
	for b.Loop() {
		var stop func() bool
		if flag != nil {
			stop = context.AfterFunc(ctx, func() { flag.Set(1) })
		}
		if _, err := invokeExport(ctx, fn, op, payload); err != nil {
			b.Fatal(err)
		}
		if stop != nil && !stop() {
			b.Fatal("the flag was raised")
		}
	}
	b.ReportMetric(float64(cpubench.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkGuestSteps splits a Go guest's per-call cost into steps
// (internal/testing/actors/guestcost exports one function per step, each
// doing one thing more than the last), instrumented and called as the host
// calls an actor, next to the hand-written tiny echo (no language runtime)
// and the SDK's whole __guest_call. gc/op counts the guest's garbage
// collections per call and gc-ns/op the guest runtime's own estimate of its
// collector's CPU per call; the gogc=2000 rows run the same calls with the
// guest's collector made ten times rarer, so the difference is its share.
// The probe rows price single operations (internal/testing/actors/guestcost).
func BenchmarkGuestSteps(b *testing.B) {
	cost, err := wasmstop.Instrument(buildGo(b, "./internal/testing/actors/guestcost"))
	if err != nil {
		b.Fatal(err)
	}
	tiny, err := wasmstop.Instrument(wasmbuild.TinyEcho())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	echo := []byte("0123456789abcdef0123456789abcdef")
	httpReq := (&wire.HTTPRequest{Method: "GET", Path: "/bench", QueryString: "x=1",
		Header: map[string][]string{"host": {"127.0.0.1:8080"}, "user-agent": {"Go-http-client/1.1"}}}).Encode()
	for _, bc := range []struct {
		name, export, op string
		payload          []byte
		gcPercent        int32
	}{
		{"tinyecho", "", "Echo.Echo", echo, 0},
		{"echo/0-empty", "step0_empty", "Echo.Echo", echo, 0},
		{"echo/1-make", "step1_make", "Echo.Echo", echo, 0},
		{"echo/2-request", "step2_request", "Echo.Echo", echo, 0},
		{"echo/3-lookup", "step3_lookup", "Echo.Echo", echo, 0},
		{"echo/4-respond", "step4_respond", "Echo.Echo", echo, 0},
		{"echo/sdk", "__guest_call", "Echo.Echo", echo, 0},
		{"echo/sdk-gogc=2000", "__guest_call", "Echo.Echo", echo, 2000},
		{"http/2-request", "step2_request", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/probe-walk", "probe_walk", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/probe-alloc", "probe_alloc", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/probe-map", "probe_map", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/3-decode", "http1_decode", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/4-encode", "http2_encode", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/5-respond", "http3_respond", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/sdk", "__guest_call", wire.OpHTTPHandleRequest, httpReq, 0},
		{"http/sdk-gogc=2000", "__guest_call", wire.OpHTTPHandleRequest, httpReq, 2000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			wasm, export := cost, bc.export
			if bc.export == "" {
				wasm, export = tiny, "__guest_call"
			}
			mod := actorInstance(b, newRuntime(b, wazero.NewRuntimeConfigCompiler().WithCompilationCache(benchCache)), wasm)
			flag := mod.ExportedGlobal(wasmstop.ExportName).(api.MutableGlobal)
			gc, gcNanos := mod.ExportedFunction("gc_cycles"), mod.ExportedFunction("gc_cpu_ns")
			if bc.gcPercent != 0 {
				if _, err := mod.ExportedFunction("set_gc_percent").Call(ctx, uint64(bc.gcPercent)); err != nil {
					b.Fatal(err)
				}
			}
			read := func(fn api.Function) uint64 {
				if fn == nil {
					return 0
				}
				v, err := fn.Call(ctx)
				if err != nil {
					b.Fatal(err)
				}
				return v[0]
			}
			gc0, gcNanos0 := read(gc), read(gcNanos)
			loopCalls(b, ctx, flag, mod.ExportedFunction(export), bc.op, bc.payload)
			if gc != nil {
				b.ReportMetric(float64(read(gc)-gc0)/float64(b.N), "gc/op")
				b.ReportMetric(float64(read(gcNanos)-gcNanos0)/float64(b.N), "gc-ns/op")
			}
		})
	}
}

// benchCache spares the benchmark's runs a compile each.
var benchCache = wazero.NewCompilationCache()
