package keyvalue

import (
	"fmt"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
)

type m = map[string]any

// The decoder takes what wasmbus-rpc peers send: fields in any order,
// strings as str or bin, nil or absent fields as zero, unknown fields skipped.
func TestDecodeArgs(t *testing.T) {
	bin := func(s string) []byte { return append([]byte{0xc4, byte(len(s))}, s...) }
	// Arguments as a wasmbus-rpc peer encodes them (strings, lists and maps
	// always encode).
	encodeArg := func(v any) []byte { b, _ := lattice.Marshal(v); return b }
	for _, c := range []struct {
		name  string
		shape argShape
		data  []byte
		want  args
		err   string
	}{
		{"bare str", shapeString, encodeArg("k"), args{key: "k"}, ""},
		{"bare bin", shapeString, bin("k"), args{key: "k"}, ""},
		{"list of strings", shapeStrings, encodeArg([]string{"a", "b"}), args{names: []string{"a", "b"}}, ""},
		{"set request", shapeSet, encodeArg(m{"expires": 9, "value": "v", "key": "k"}), args{key: "k", value: "v", expires: 9}, ""},
		{"set request without expires", shapeSet, encodeArg(m{"key": "k", "value": "v"}), args{key: "k", value: "v"}, ""},
		{"increment with nil value", shapeIncrement, encodeArg(m{"key": "k", "value": nil}), args{key: "k"}, ""},
		{"increment negative", shapeIncrement, encodeArg(m{"key": "k", "value": -9}), args{key: "k", delta: -9}, ""},
		{"list range", shapeListRange, encodeArg(m{"listName": "l", "start": -3, "stop": 70000}), args{key: "l", start: -3, stop: 70000}, ""},
		{"unknown fields skipped", shapeSetValue, encodeArg(m{"setName": "s", "value": "v", "traceContext": m{"a": []any{1, m{}}}}), args{key: "s", value: "v"}, ""},
		{"snake_case is not camelCase", shapeListValue, encodeArg(m{"list_name": "l", "value": "v"}), args{value: "v"}, ""},
		{"negative expires", shapeSet, encodeArg(m{"key": "k", "expires": -1}), args{}, "does not fit a u32"},
		{"string where an int belongs", shapeIncrement, encodeArg(m{"key": "k", "value": "1"}), args{}, "want an integer"},
		{"empty payload", shapeString, nil, args{}, "malformed argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeArgs(c.shape, c.data)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("%+v %v, want %+v", got, err, c.want)
			}
		})
	}
}
