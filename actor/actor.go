package actor

import (
	"errors"
	"fmt"
	"sync"
)

// HandlerFunc answers one invocation: it receives the operation's payload
// (usually msgpack) and returns the reply payload or an error, which the host
// sees as a guest error.
type HandlerFunc func(payload []byte) ([]byte, error)

// ErrNotInActor is returned by host calls made outside a wasm actor (a
// non-wasip1 build), where no wasmbus host exists.
var ErrNotInActor = errors.New("actor: no wasmbus host: host calls work only in a GOOS=wasip1 actor")

// HostError is a failure reported by the host for a HostCall: a missing link
// or capability claim, a provider's error, an unreachable target, a timeout.
type HostError struct {
	Binding   string
	Namespace string
	Operation string
	// Message is the host's error string exactly as the host gave it.
	Message string
}

func (e *HostError) Error() string {
	return fmt.Sprintf("host call %s %s (link %s): %s", e.Namespace, e.Operation, e.Binding, e.Message)
}

// handler is a registered handler and the operation it answers, kept so
// that messages name the operation without copying the caller's bytes.
type handler struct {
	operation string
	fn        HandlerFunc
}

// registry holds the handlers by operation name. Wasm runs one goroutine at a
// time, but the mutex keeps the package correct in host-side tests and costs
// nothing measurable next to an invocation.
var registry = struct {
	sync.RWMutex
	handlers map[string]handler
}{handlers: map[string]handler{}}

// Handle registers fn as the handler of operation (e.g. "HttpServer.HandleRequest").
// Call it from an init function: main is not run in a reactor module.
// Registering the same operation twice, an empty operation or a nil fn panics,
// because each is a programming error best caught when the module initialises.
func Handle(operation string, fn HandlerFunc) {
	if operation == "" {
		panic("actor: Handle with an empty operation name")
	}
	if fn == nil {
		panic("actor: Handle " + operation + " with a nil handler")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.handlers[operation]; dup {
		panic("actor: handler for " + operation + " registered twice")
	}
	registry.handlers[operation] = handler{operation, fn}
}

// dispatch runs the handler registered for operation. It is the whole of
// __guest_call except moving bytes across the ABI, so it can be tested on
// any GOOS. operation is only read: the map index converts it without a
// copy, and the handler's name is the string it was registered under.
func dispatch(operation []byte, payload []byte) (reply []byte, err error) {
	registry.RLock()
	h, ok := registry.handlers[string(operation)]
	registry.RUnlock()
	if !ok {
		return nil, errors.New("unsupported operation: " + string(operation))
	}
	// A panic must not unwind into the host: in a c-shared module Go prints
	// it and aborts (a wasm "unreachable" trap), killing an instance that
	// later invocations could still use.
	defer func() {
		if r := recover(); r != nil {
			reply, err = nil, fmt.Errorf("panic in handler for %s: %v", h.operation, r)
		}
	}()
	return h.fn(payload)
}

// hostCall and consoleLog are the ABI's outbound half. The wasip1 build binds
// them to the wasmbus imports; other builds bind stubs, and tests swap in fakes.
var (
	hostCall   = hostCallABI
	consoleLog = consoleLogABI
)

// HostCall invokes operation on namespace through the host: namespace is a
// capability contract id (routed over the link named binding), an actor's
// public key, or an actor's call alias. It returns the reply payload (nil when
// empty) or a *HostError.
func HostCall(binding, namespace, operation string, payload []byte) ([]byte, error) {
	return hostCall(binding, namespace, operation, payload)
}

// ConsoleLog writes s to the host's console log (__console_log). wasmCloud
// hosts only trace these lines; use Log for lines an operator should see.
func ConsoleLog(s string) {
	consoleLog(s)
}
