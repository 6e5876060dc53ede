//go:build wasip1

package actor

import (
	"runtime"
	"unsafe"
)

// The wasmbus imports (docs/protocol.md §5). Pointers lower to i32 offsets into
// this module's memory. Go's linker keeps only the imports a module reaches,
// so an actor that never calls HostCall does not import __host_call.

//go:wasmimport wasmbus __guest_request
func guestRequest(opPtr, msgPtr *byte)

//go:wasmimport wasmbus __guest_response
func guestResponse(ptr *byte, n uint32)

//go:wasmimport wasmbus __guest_error
func guestError(ptr *byte, n uint32)

//go:wasmimport wasmbus __host_call
func hostCallImport(bdPtr *byte, bdLen uint32, nsPtr *byte, nsLen uint32, opPtr *byte, opLen uint32, ptr *byte, n uint32) uint32

//go:wasmimport wasmbus __host_response_len
func hostResponseLen() uint32

//go:wasmimport wasmbus __host_response
func hostResponse(ptr *byte)

//go:wasmimport wasmbus __host_error_len
func hostErrorLen() uint32

//go:wasmimport wasmbus __host_error
func hostError(ptr *byte)

//go:wasmimport wasmbus __console_log
func consoleLogImport(ptr *byte, n uint32)

// rpcVersion is the wasmbus-rpc ABI version this SDK speaks.
const rpcVersion = 1

// wasmbusRPCVersion marks the module as a wasmbus actor; hosts check only
// that the export exists.
//
//go:wasmexport __wasmbus_rpc_version
func wasmbusRPCVersion() uint32 {
	return rpcVersion
}

// opBuf is the operation name's buffer, reused from call to call: unlike the
// payload, no handler sees it (dispatch looks the handler up without a copy
// and names the operation by its registered string), and inside a wasm
// guest each allocation costs far more than natively. A call takes it and
// puts it back, so a nested call, were a host ever to make one, would
// allocate its own.
var opBuf []byte

// guestCall is the host's entry point for one invocation: fetch the
// operation and payload, dispatch, hand back the reply or the error, and
// return 1 (success) or 0 (guest error).
//
//go:wasmexport __guest_call
func guestCall(opLen, msgLen uint32) uint32 {
	op := opBuf
	opBuf = nil
	if uint32(cap(op)) < opLen {
		op = make([]byte, opLen)
	}
	op = op[:opLen]
	// The payload gets its own allocation because a handler may keep it.
	msg := make([]byte, msgLen)
	guestRequest(bytePtr(op), bytePtr(msg))
	runtime.KeepAlive(msg)

	reply, err := dispatch(op, msg)
	opBuf = op
	if err != nil {
		text := err.Error()
		guestError(stringPtr(text), uint32(len(text)))
		runtime.KeepAlive(text)
		return 0
	}
	guestResponse(bytePtr(reply), uint32(len(reply)))
	runtime.KeepAlive(reply)
	return 1
}

func hostCallABI(binding, namespace, operation string, payload []byte) ([]byte, error) {
	rc := hostCallImport(
		stringPtr(binding), uint32(len(binding)),
		stringPtr(namespace), uint32(len(namespace)),
		stringPtr(operation), uint32(len(operation)),
		bytePtr(payload), uint32(len(payload)))
	runtime.KeepAlive(binding)
	runtime.KeepAlive(namespace)
	runtime.KeepAlive(operation)
	runtime.KeepAlive(payload)
	// wasmCloud hosts return u32 max on failure; anything but 1 is failure.
	if rc != 1 {
		msg := make([]byte, hostErrorLen())
		if len(msg) > 0 {
			hostError(&msg[0])
		}
		return nil, &HostError{Binding: binding, Namespace: namespace, Operation: operation, Message: string(msg)}
	}
	n := hostResponseLen()
	if n == 0 {
		return nil, nil
	}
	reply := make([]byte, n)
	hostResponse(&reply[0])
	return reply, nil
}

func consoleLogABI(s string) {
	consoleLogImport(stringPtr(s), uint32(len(s)))
	runtime.KeepAlive(s)
}

// scratch is what an empty buffer points at. &b[0] of an empty slice panics,
// and a nil pointer would hand the host offset 0, which some hosts refuse or
// which aliases whatever Go keeps there; the host never writes to it because
// the length it is given is 0.
var scratch [1]byte

func bytePtr(b []byte) *byte {
	if len(b) == 0 {
		return &scratch[0]
	}
	return &b[0]
}

func stringPtr(s string) *byte {
	if len(s) == 0 {
		return &scratch[0]
	}
	return unsafe.StringData(s)
}
