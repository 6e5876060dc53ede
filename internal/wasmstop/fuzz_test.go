package wasmstop_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/internal/wasmstop"
)

// FuzzInstrument feeds Instrument arbitrary bytes; its seed corpus
// (testdata/fuzz/FuzzInstrument) holds small real modules: the spin and
// features modules, the tiny echo actor, and an instrumented one (which it
// must refuse). Properties: it never
// panics, it accepts every module wazero compiles (but one that already
// exports the reserved name), and wazero compiles what it returns.
func FuzzInstrument(f *testing.F) {
	f.Add(spinModule())
	f.Add(wasmbuild.TinyEcho())
	f.Add(featuresModule())
	ctx := context.Background()
	// The interpreter validates a module as the compiler does, much faster.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { r.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := wasmstop.Instrument(wasm)
		if err != nil && !errors.Is(err, wasmstop.ErrUnsafe) {
			t.Fatalf("error %v does not wrap ErrUnsafe", err)
		}
		if !countsFit(wasm) {
			// Invalid by the format alone, and wazero may spend seconds
			// and gigabytes on it: it sizes its tables by the counts it
			// reads before it finds the end.
			return
		}
		in, cerr := r.CompileModule(ctx, wasm)
		if cerr != nil {
			return
		}
		in.Close(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "reserved for the host") {
				return
			}
			t.Fatalf("wazero compiles the module, Instrument refuses it: %v", err)
		}
		cm, err := r.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero compiles the module but not its instrumented form: %v", err)
		}
		cm.Close(ctx)
	})
}

// countsFit reports whether every section fits in the module and every
// section that starts with a count (all but custom and start) counts no
// more elements than it has bytes.
func countsFit(wasm []byte) bool {
	if len(wasm) < 8 {
		return false
	}
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 || size > uint64(len(wasm)-pos-1-n) {
			return false
		}
		body := wasm[pos+1+n : pos+1+n+int(size)]
		if id != 0 && id != 8 {
			if count, m := binary.Uvarint(body); m <= 0 || count > uint64(len(body)) {
				return false
			}
		}
		pos += 1 + n + int(size)
	}
	return true
}
