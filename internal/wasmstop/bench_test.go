package wasmstop_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/latticed/latticed/internal/testing/cpubench"
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
				runtime.GC()
				cpu0 := cpubench.Process()
				for b.Loop() {
					var stop func() bool
					if flag != nil {
						stop = context.AfterFunc(ctx, func() { flag.Set(1) })
					}
					if _, err := invoke(ctx, mod, bc.op, bc.payload); err != nil {
						b.Fatal(err)
					}
					if stop != nil && !stop() {
						b.Fatal("the flag was raised")
					}
				}
				b.ReportMetric(float64(cpubench.Process()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// benchCache spares the benchmark's runs a compile each.
var benchCache = wazero.NewCompilationCache()
