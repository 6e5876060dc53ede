package wasmstop_test

import (
	"context"
	"encoding/binary"
	"testing"
)

// vec16 is 16 immediate bytes (v128.const, i8x16.shuffle).
var vec16 = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// featuresModule is assembled by hand to hold an instruction of every
// immediate shape Instrument decodes, beyond what the Go and Rust actors
// use: multi-value block types by type index, select with types, br_table,
// float constants, saturating truncation, sign extension, bulk memory,
// reference and table instructions, and SIMD (v128.const, shuffle, lanes,
// loads with a lane). run() returns 42 and loops a few times on the way.
func featuresModule() []byte {
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	section := func(id byte, body []byte) []byte {
		return cat([]byte{id}, binary.AppendUvarint(nil, uint64(len(body))), body)
	}
	code := cat(
		[]byte{0x01, 0x01, 0x7b}, // one v128 local
		// multi-value block (type 1: i32 -> i32 i32)
		[]byte{0x41, 0x05, 0x02, 0x01, 0x41, 0x06, 0x0b, 0x1a, 0x1a},
		// select with a type
		[]byte{0x41, 0x01, 0x41, 0x02, 0x41, 0x00, 0x1c, 0x01, 0x7f, 0x1a},
		// f32.const 1.0, i32.trunc_sat_f32_s; f64.const 2.0, drop
		[]byte{0x43, 0x00, 0x00, 0x80, 0x3f, 0xfc, 0x00, 0x1a},
		[]byte{0x44, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x1a},
		// i64.const -1, i64.extend8_s
		[]byte{0x42, 0x7f, 0xc2, 0x1a},
		// memory.fill, memory.copy, memory.size
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00},
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0a, 0x00, 0x00},
		[]byte{0x3f, 0x00, 0x1a},
		// i32.store, i64.load
		[]byte{0x41, 0x00, 0x41, 0x07, 0x36, 0x02, 0x00, 0x41, 0x00, 0x29, 0x03, 0x00, 0x1a},
		// ref.null func, ref.is_null; table.size; ref.null, table.set
		[]byte{0xd0, 0x70, 0xd1, 0x1a, 0xfc, 0x10, 0x00, 0x1a},
		[]byte{0x41, 0x00, 0xd0, 0x70, 0x26, 0x00},
		// v128.const, i8x16.shuffle with itself, i32x4.extract_lane 3
		cat([]byte{0xfd, 0x0c}, vec16, []byte{0x21, 0x00}),
		cat([]byte{0x20, 0x00, 0x20, 0x00, 0xfd, 0x0d}, vec16, []byte{0xfd, 0x1b, 0x03, 0x1a}),
		// v128.load, v128.load32_lane 1 into it, i32x4.add, local.set
		[]byte{0x41, 0x00, 0xfd, 0x00, 0x04, 0x00, 0x21, 0x00},
		[]byte{0x41, 0x00, 0x20, 0x00, 0xfd, 0x56, 0x02, 0x00, 0x01},
		[]byte{0x20, 0x00, 0xfd, 0xae, 0x01, 0x21, 0x00},
		// a loop br_table leaves once memory[0], counting the rounds, is 10
		[]byte{0x02, 0x40, 0x03, 0x40},
		[]byte{0x41, 0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x41, 0x01, 0x6a, 0x36, 0x02, 0x00}, // m[0]++
		[]byte{0x41, 0x00, 0x28, 0x02, 0x00, 0x41, 0x0a, 0x49},                               // m[0] < 10
		[]byte{0x0e, 0x01, 0x01, 0x00, 0x0b, 0x0b},                                           // br_table [1] 0: < 10 loops
		[]byte{0x41, 0x2a, 0x0b},                                                             // 42
	)
	body := cat(binary.AppendUvarint(nil, uint64(len(code))), code)
	return cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		section(1, []byte{0x02, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x02, 0x7f, 0x7f}),
		section(3, []byte{0x01, 0x00}),
		section(4, []byte{0x01, 0x70, 0x00, 0x01}),
		section(5, []byte{0x01, 0x00, 0x01}),
		section(7, []byte{0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00}),
		section(10, cat([]byte{0x01}, body)),
	)
}

// TestInstrumentDecodesEveryImmediateShape: the features module validates
// and answers the same before and after, on both engines.
func TestInstrumentDecodesEveryImmediateShape(t *testing.T) {
	in := featuresModule()
	out := mustInstrument(t, in)
	for name, cfg := range engines() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, wasm := range [][]byte{in, out} {
				mod := instantiateBare(t, cfg(), wasm)
				res, err := mod.ExportedFunction("run").Call(ctx)
				if err != nil || res[0] != 42 {
					t.Fatalf("run() = %v, %v; want 42", res, err)
				}
			}
		})
	}
}
