package lattice

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// MaxTraceContextEntries bounds the entries of an invocation's traceContext
// kept by the decoder; W3C trace context needs two (traceparent,
// tracestate), baggage a few more. Further entries are skipped, not refused.
const MaxTraceContextEntries = 16

// strMap decodes a map of strings (traceContext), leniently: nil is an empty
// map, entries whose value is not a string and entries past
// MaxTraceContextEntries are skipped.
func (r mapReader) strMap() (map[string]string, error) {
	code, err := r.d.PeekCode()
	if err != nil {
		return nil, err
	}
	if code == msgpcode.Nil {
		return nil, r.d.Skip()
	}
	if !msgpcode.IsFixedMap(code) && code != msgpcode.Map16 && code != msgpcode.Map32 {
		return nil, fmt.Errorf("want a map of strings, got code 0x%02x", code)
	}
	n, err := r.d.DecodeMapLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	out := make(map[string]string, min(n, MaxTraceContextEntries))
	for i := 0; i < n; i++ {
		key, err := r.d.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		code, err := r.d.PeekCode()
		if err != nil {
			return nil, err
		}
		if !msgpcode.IsString(code) || len(out) >= MaxTraceContextEntries {
			if err := r.skip(1); err != nil {
				return nil, err
			}
			continue
		}
		if out[key], err = r.d.DecodeString(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
