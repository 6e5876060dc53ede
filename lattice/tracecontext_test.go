package lattice

import (
	"maps"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The trace context travels under wasmCloud's key, survives the wire form,
// and is absent (not an empty map) when the sender has none.
func TestInvocationTraceContext(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	many := map[string]string{}
	for i := range MaxTraceContextEntries + 4 {
		many["k"+strconv.Itoa(i)] = "v"
	}
	for _, tc := range []struct {
		name    string
		in      map[string]string
		wantLen int
	}{
		{"none", nil, 0},
		{"traceparent", map[string]string{"traceparent": parent}, 1},
		{"traceparent and tracestate", map[string]string{"traceparent": parent, "tracestate": "a=b"}, 2},
		{"too many entries", many, MaxTraceContextEntries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := &Invocation{Operation: "Op", ID: "id", TraceContext: tc.in}
			b, err := inv.Encode()
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := msgpack.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if _, has := raw["traceContext"]; has != (tc.in != nil) {
				t.Errorf("wire form has traceContext: %v, want %v", has, tc.in != nil)
			}
			got, err := DecodeInvocation(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.TraceContext) != tc.wantLen {
				t.Errorf("decoded %d entries, want %d", len(got.TraceContext), tc.wantLen)
			}
			if tc.wantLen == len(tc.in) && !maps.Equal(got.TraceContext, tc.in) {
				t.Errorf("traceContext %v, want %v", got.TraceContext, tc.in)
			}
		})
	}
}

// A peer's odd values are skipped, not refused.
func TestInvocationTraceContextLenient(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want map[string]string
	}{
		{"nil", nil, nil},
		{"non-string value", map[string]any{"traceparent": "x", "n": 3, "m": map[string]any{"a": 1}}, map[string]string{"traceparent": "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(map[string]any{"operation": "Op", "traceContext": tc.in})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeInvocation(b)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.TraceContext, tc.want) {
				t.Errorf("traceContext %v, want %v", got.TraceContext, tc.want)
			}
		})
	}
	b, _ := Marshal(map[string]any{"operation": "Op", "traceContext": "not a map"})
	if _, err := DecodeInvocation(b); err == nil {
		t.Error("traceContext that is no map decoded without error")
	}
}
