package lattice

import (
	"fmt"

	"github.com/latticed/latticed/wire"
)

// MaxTraceContextEntries bounds the entries of an invocation's traceContext
// kept by the decoder; W3C trace context needs two (traceparent,
// tracestate), baggage a few more. Further entries are skipped, not refused.
const MaxTraceContextEntries = 16

// readTraceContext decodes a map of strings (traceContext), leniently: nil
// and an empty map read as no map, entries whose value is not a string and
// entries past MaxTraceContextEntries are skipped.
func readTraceContext(r *wire.Reader) (map[string]string, error) {
	if t, err := r.Next(); err != nil || t == wire.Nil {
		return nil, r.Skip()
	}
	n, err := r.MapLen()
	if err != nil || n == 0 {
		return nil, err
	}
	out := make(map[string]string, min(n, MaxTraceContextEntries))
	for i := 0; i < n; i++ {
		key, err := r.Str()
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		if t, err := r.Next(); err != nil || t != wire.Str || len(out) >= MaxTraceContextEntries {
			if err := r.Skip(); err != nil {
				return nil, err
			}
			continue
		}
		if out[key], err = r.Str(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
