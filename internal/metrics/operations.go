package metrics

import (
	"sync"
	"sync/atomic"
)

// OperationOther is the operation label value that stands for every
// operation outside an Operations set.
const OperationOther = "other"

// MaxOperations is how many operations of one actor (or one provider) get a
// label value of their own; the rest are counted as OperationOther.
const MaxOperations = 32

// Operations bounds the values of an operation label, which comes from
// whoever sends an invocation: an operation gets a value of its own once
// the actor (or provider) has answered it successfully, while fewer than
// max have; every other call is counted as OperationOther. Made-up names
// thus fail into "other", and even an actor that answers anything (an
// echo) adds at most max series. The zero value is not usable; see
// NewOperations. Safe for concurrent use; a known operation costs one map
// read.
type Operations struct {
	max   int32
	n     atomic.Int32
	known sync.Map // operation → struct{}
}

// NewOperations returns an empty set that admits up to max operations.
func NewOperations(max int) *Operations { return &Operations{max: int32(max)} }

// Label is the label value for one call of operation that succeeded (ok)
// or not.
func (o *Operations) Label(operation string, ok bool) string {
	if _, known := o.known.Load(operation); known {
		return operation
	}
	if !ok || operation == OperationOther {
		return OperationOther
	}
	if o.n.Add(1) > o.max {
		o.n.Add(-1)
		return OperationOther
	}
	if _, loaded := o.known.LoadOrStore(operation, struct{}{}); loaded {
		o.n.Add(-1) // a concurrent call admitted it first
	}
	return operation
}
