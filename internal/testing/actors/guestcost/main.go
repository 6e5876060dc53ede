//go:build wasip1

// Command guestcost splits the Go actor SDK's per-call cost into steps, for
// BenchmarkGuestSteps (internal/wasmstop): besides the SDK's own __guest_call
// (Echo.Echo answers its payload; HttpServer.HandleRequest answers a fixed
// JSON body, so the echo example's JSON encoder is the difference between
// the two actors), it exports one function per step, each doing what the
// previous one does and one thing more, all with __guest_call's signature
// so the benchmark drives them the same way. The steps repeat what the SDK
// does rather than call it, which is what makes each one separable.
package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"

	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

//go:wasmimport wasmbus __guest_request
func guestRequest(opPtr, msgPtr *byte)

//go:wasmimport wasmbus __guest_response
func guestResponse(ptr *byte, n uint32)

// body is the fixed reply of the HTTP handler: the size of the echo
// example's JSON for the benchmark's GET.
var body = []byte(`{"method":"GET","path":"/bench","query_string":"x=1","body":""}`)

func httpHandler(wire.HTTPRequest) (wire.HTTPResponse, error) {
	return wire.HTTPResponse{
		StatusCode: 200,
		Header:     map[string][]string{"Content-Type": {"application/json"}},
		Body:       body,
	}, nil
}

func init() {
	actor.HandleHTTP(httpHandler)
	actor.Handle("Echo.Echo", func(payload []byte) ([]byte, error) { return payload, nil })
}

// The SDK's registry, as the steps see it.
var registry = struct {
	sync.RWMutex
	handlers map[string]actor.HandlerFunc
}{handlers: map[string]actor.HandlerFunc{
	"Echo.Echo": func(payload []byte) ([]byte, error) { return payload, nil },
}}

// step0: the export's entry and return alone.
//
//go:wasmexport step0_empty
func step0(opLen, msgLen uint32) uint32 { return 1 }

// step1: + the two allocations of the operation and the payload.
//
//go:wasmexport step1_make
func step1(opLen, msgLen uint32) uint32 {
	op := make([]byte, opLen)
	msg := make([]byte, msgLen)
	runtime.KeepAlive(op)
	runtime.KeepAlive(msg)
	return 1
}

// step2: + __guest_request filling them.
//
//go:wasmexport step2_request
func step2(opLen, msgLen uint32) uint32 {
	op, msg := request(opLen, msgLen)
	runtime.KeepAlive(op)
	runtime.KeepAlive(msg)
	return 1
}

// step3: + string(op) and the handler lookup under the registry's lock.
//
//go:wasmexport step3_lookup
func step3(opLen, msgLen uint32) uint32 {
	op, msg := request(opLen, msgLen)
	fn := lookup(string(op))
	runtime.KeepAlive(msg)
	if fn == nil {
		return 0
	}
	return 1
}

// step4: + the handler (Echo.Echo) and __guest_response: the SDK's call
// without dispatch's recover.
//
//go:wasmexport step4_respond
func step4(opLen, msgLen uint32) uint32 {
	op, msg := request(opLen, msgLen)
	fn := lookup(string(op))
	reply, _ := fn(msg)
	respond(reply)
	return 1
}

// decodeHTTP is how HandleHTTP decodes a request.
var decodeHTTP = wire.DecodeHTTPRequestNoCopy

// http1: the request (step2) + decoding it as HandleHTTP does.
//
//go:wasmexport http1_decode
func http1(opLen, msgLen uint32) uint32 {
	_, ok := decoded(opLen, msgLen)
	return b2u(ok)
}

// http2: + the handler's answer and its encoding (HTTPResponse.Encode).
//
//go:wasmexport http2_encode
func http2(opLen, msgLen uint32) uint32 {
	reply, ok := answered(opLen, msgLen)
	runtime.KeepAlive(reply)
	return b2u(ok)
}

// http3: + __guest_response: HandleHTTP's work without the lookup.
//
//go:wasmexport http3_respond
func http3(opLen, msgLen uint32) uint32 {
	reply, ok := answered(opLen, msgLen)
	if ok {
		respond(reply)
	}
	return b2u(ok)
}

func decoded(opLen, msgLen uint32) (wire.HTTPRequest, bool) {
	_, msg := request(opLen, msgLen)
	req, err := decodeHTTP(msg)
	return req, err == nil
}

func answered(opLen, msgLen uint32) ([]byte, bool) {
	req, ok := decoded(opLen, msgLen)
	if !ok {
		return nil, false
	}
	resp, _ := httpHandler(req)
	return resp.Encode(), true
}

func b2u(ok bool) uint32 {
	if ok {
		return 1
	}
	return 0
}

// gc_cycles is the number of garbage collections the guest has run.
//
//go:wasmexport gc_cycles
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gc_cpu_ns is the runtime's estimate of the CPU time its collector has
// spent, in nanoseconds (the guest's clock is the host's, as in the host).
//
//go:wasmexport gc_cpu_ns
func gcCPUNanos() uint64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return uint64(s[0].Value.Float64() * 1e9)
}

// set_gc_percent is debug.SetGCPercent, for a run with GC made rare.
//
//go:wasmexport set_gc_percent
func setGCPercent(p int32) int32 { return int32(debug.SetGCPercent(int(p))) }

func request(opLen, msgLen uint32) (op, msg []byte) {
	op = make([]byte, opLen)
	msg = make([]byte, msgLen)
	guestRequest(&op[0], &msg[0])
	return op, msg
}

func lookup(op string) actor.HandlerFunc {
	registry.RLock()
	defer registry.RUnlock()
	return registry.handlers[op]
}

func respond(reply []byte) {
	guestResponse(&reply[0], uint32(len(reply)))
	runtime.KeepAlive(reply)
}

func main() {}

// The probes price single operations on top of the request (step2), to
// explain the steps: walking the request's msgpack without decoding it, one
// 96-byte allocation with pointers (an HTTPRequest), and a two-entry header
// map. Each result goes to a package variable, so it is a heap allocation
// as in the SDK, not one the compiler can keep on the stack.
var (
	sinkReq *wire.HTTPRequest
	sinkMap map[string][]string
)

//go:wasmexport probe_walk
func probeWalk(opLen, msgLen uint32) uint32 {
	_, msg := request(opLen, msgLen)
	r := wire.NewReader(msg)
	if err := r.Fields(func([]byte) error { return r.Skip() }); err != nil {
		return 0
	}
	return 1
}

//go:wasmexport probe_alloc
func probeAlloc(opLen, msgLen uint32) uint32 {
	_, msg := request(opLen, msgLen)
	sinkReq = new(wire.HTTPRequest)
	runtime.KeepAlive(msg)
	return 1
}

//go:wasmexport probe_map
func probeMap(opLen, msgLen uint32) uint32 {
	_, msg := request(opLen, msgLen)
	h := make(map[string][]string, 2)
	h["host"] = nil
	h["user-agent"] = nil
	sinkMap = h
	runtime.KeepAlive(msg)
	return 1
}
