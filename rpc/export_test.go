package rpc

import "github.com/latticed/latticed/lattice"

// The tracing hooks, for the allocation test (rpc_test).
var (
	StartServerSpan = startServerSpan
	Inject          = inject
)

func (s serverSpan) End(resp *lattice.InvocationResponse) { s.end(resp) }
