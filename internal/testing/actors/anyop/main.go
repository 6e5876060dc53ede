//go:build wasip1

// Command anyop answers every operation successfully, whatever its name,
// with the name as the reply: the worst case for a metric labelled by
// operation, since the operations an actor answers are what the host may
// give a label value of their own. It speaks the wasmbus ABI directly
// (without the SDK, whose dispatch knows registered operations only).
package main

import "runtime"

//go:wasmimport wasmbus __guest_request
func guestRequest(opPtr, msgPtr *byte)

//go:wasmimport wasmbus __guest_response
func guestResponse(ptr *byte, n uint32)

//go:wasmexport __wasmbus_rpc_version
func wasmbusRPCVersion() uint32 { return 1 }

//go:wasmexport __guest_call
func guestCall(opLen, msgLen uint32) uint32 {
	op := make([]byte, opLen+1) // +1: a valid pointer even when empty
	msg := make([]byte, msgLen+1)
	guestRequest(&op[0], &msg[0])
	guestResponse(&op[0], opLen) // the reply is the operation's name
	runtime.KeepAlive(op)
	runtime.KeepAlive(msg)
	return 1
}

// main is not run in a reactor module.
func main() {}
