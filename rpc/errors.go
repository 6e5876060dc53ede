package rpc

import (
	"errors"

	"github.com/latticed/latticed/lattice"
)

// ErrNoResponders means nothing in the lattice serves the target. Invoke's
// error for it also matches ErrRequestTimeout and reads as it does:
// wasmCloud gives both failures one text.
var ErrNoResponders = errors.New("no responders: the target is not running in this lattice")

// ErrRequestTimeout means the callee did not answer in time, or nothing
// serves it (then the error matches ErrNoResponders too). Its text is
// wasmCloud's for the same failure (docs/protocol.md §5), and Invoke's error
// starts with it; the detail after it names the subject.
var ErrRequestTimeout = errors.New("Failed to perform RPC call: request timeout")

// Sentinels for the codes a callee's error reply can carry
// (lattice.HeaderErrorCode, docs/protocol.md §3). Invoke's *RemoteError
// matches the one its code names with errors.Is; on the receive side, a
// Handle error that matches one (see Mark) is sent with its code.
var (
	// ErrUnavailable: the callee, or a provider it called, is not running
	// yet or is stopping; retrying later can succeed.
	ErrUnavailable = errors.New("unavailable: retry later")
	// ErrBusy: every instance of the callee is in use and its wait queue is
	// full; retrying later can succeed.
	ErrBusy = errors.New("busy: every instance is in use and the wait queue is full")
	// ErrTooLarge: the invocation exceeds the callee's payload limit
	// (a rejection, lattice.ReasonTooLarge).
	ErrTooLarge = errors.New("invocation exceeds the callee's payload limit")
	// ErrCapabilityNotClaimed: the callee is an actor whose claims lack the
	// calling provider's contract (a rejection,
	// lattice.ReasonCapabilityNotClaimed).
	ErrCapabilityNotClaimed = errors.New("the callee's claims lack the caller's capability")
)

// sentinels maps each sentinel to its code on the wire.
var sentinels = []struct {
	err  error
	code string
}{
	{ErrUnavailable, lattice.ErrorCodeUnavailable},
	{ErrBusy, lattice.ErrorCodeBusy},
	{ErrTooLarge, string(lattice.ReasonTooLarge)},
	{ErrCapabilityNotClaimed, string(lattice.ReasonCapabilityNotClaimed)},
}

// RemoteError is the callee's error reply: its text, unchanged, and the
// code the callee classified it with (lattice.HeaderErrorCode; "" when the
// callee gave none, as wasmCloud's hosts and providers do).
type RemoteError struct {
	Msg  string
	Code string
}

func (e *RemoteError) Error() string { return e.Msg }

// Is matches the sentinel of e's code: errors.Is(err, ErrBusy) is true for
// a reply coded busy.
func (e *RemoteError) Is(target error) bool {
	for _, c := range sentinels {
		if c.err == target {
			return e.Code == c.code
		}
	}
	return false
}

// Reason is the rejection reason e's code names, "" when the callee did not
// refuse the invocation (it failed, or gave no code).
func (e *RemoteError) Reason() lattice.RejectReason {
	for _, r := range lattice.RejectReasons {
		if string(r) == e.Code {
			return r
		}
	}
	return ""
}

// codeOf is the code a reply carrying err is sent with: a rejection's
// reason, else the code of the sentinel err matches, else "" (no header).
func codeOf(err error) string {
	if r := lattice.ReasonOf(err); r != "" {
		return string(r)
	}
	for _, c := range sentinels {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// Mark returns an error that reads exactly as err and also matches sentinel
// (one of this package's) with errors.Is: a callee classifies a failure for
// the wire without changing the text its callers see.
func Mark(err, sentinel error) error { return &marked{err: err, sentinel: sentinel} }

type marked struct{ err, sentinel error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.sentinel} }
