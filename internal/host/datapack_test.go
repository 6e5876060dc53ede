package host

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
)

// wasmModule assembles a module from sections (id, body).
func wasmModule(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s[0])
		m = binary.AppendUvarint(m, uint64(len(s)-1))
		m = append(m, s[1:]...)
	}
	return m
}

// section is id followed by body.
func section(id byte, body []byte) []byte { return append([]byte{id}, body...) }

// activeData encodes plain active segments (offset, bytes), in this order.
func activeData(segs ...dataSegment) []byte {
	groups := make([]segGroup, len(segs))
	for i, s := range segs {
		groups[i] = segGroup{first: i, last: i, offset: s.offset, size: uint64(len(s.init))}
	}
	return section(sectionData, appendDataSection(nil, segs, groups))
}

// memoryImage is what a module's data segments write, applied in order:
// offset -> byte, zero bytes left out.
func memoryImage(t *testing.T, wasm []byte) map[uint32]byte {
	t.Helper()
	img := map[uint32]byte{}
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		pos += 1 + n
		if id == sectionData {
			segs, err := parseDataSection(wasm[pos : pos+int(size)])
			if err != nil {
				t.Fatalf("data section: %v", err)
			}
			for _, s := range segs {
				for i, b := range s.init {
					if b != 0 {
						img[s.offset+uint32(i)] = b
					} else {
						delete(img, s.offset+uint32(i))
					}
				}
			}
		}
		pos += int(size)
	}
	return img
}

// withoutData is the module's sections other than data, in order.
func withoutData(t *testing.T, wasm []byte) []byte {
	t.Helper()
	var out []byte
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		end := pos + 1 + n + int(size)
		if id != sectionData {
			out = append(out, wasm[pos:end]...)
		}
		pos = end
	}
	return out
}

func TestPackDataSegments(t *testing.T) {
	custom := section(0, []byte("\x04jwt.claims"))
	memory := section(5, []byte{1, 0, 1}) // one memory, min 1 page
	seg := func(off uint32, s string) dataSegment { return dataSegment{offset: off, init: []byte(s)} }
	for _, tc := range []struct {
		name     string
		wasm     []byte
		segments int // after packing; 0: left unchanged
	}{
		{"close segments merge", wasmModule(memory, activeData(seg(16, "ab"), seg(40, "cd"), seg(100, "ef")), custom), 1},
		{"out of order, no overlap", wasmModule(memory, activeData(seg(100, "ef"), seg(16, "ab"), seg(40, "cd"))), 1},
		{"a page apart stay apart", wasmModule(memory, activeData(seg(0, "a"), seg(8192, "b"), seg(8200, "c"))), 2},
		{"adjacent", wasmModule(memory, activeData(seg(0, "ab"), seg(2, "cd"))), 1},
		{"negative i32 offset", wasmModule(memory, activeData(seg(0x8000_0000, "a"), seg(0x8000_0004, "b"))), 1},
		{"overlap: unchanged", wasmModule(memory, activeData(seg(0, "abc"), seg(1, "x"))), 0},
		{"one segment: unchanged", wasmModule(memory, activeData(seg(0, "abc"))), 0},
		{"data count section: unchanged", wasmModule(memory, section(sectionDataCount, []byte{2}), activeData(seg(0, "a"), seg(4, "b"))), 0},
		{"passive segment: unchanged", wasmModule(memory, section(sectionData, []byte{2, 1, 1, 'a', 0, opI32Const, 4, opEnd, 1, 'b'})), 0},
		{"global offset: unchanged", wasmModule(memory, section(sectionData, []byte{2, 0, 0x23, 0, opEnd, 1, 'a', 0, opI32Const, 4, opEnd, 1, 'b'})), 0},
		{"truncated: unchanged", wasmModule(memory, activeData(seg(0, "a"), seg(4, "b")))[:20], 0},
		{"no data: unchanged", wasmModule(memory, custom), 0},
		{"not wasm: unchanged", []byte("hello world"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := packDataSegments(tc.wasm)
			if tc.segments == 0 {
				if !bytes.Equal(out, tc.wasm) {
					t.Fatalf("module rewritten, want it unchanged")
				}
				return
			}
			checkPacked(t, tc.wasm, out)
			n, _ := binary.Uvarint(dataSectionBody(t, out))
			if int(n) != tc.segments {
				t.Fatalf("%d segments after packing, want %d", n, tc.segments)
			}
		})
	}
}

// The Go echo actor's 31,491 segments (Go's linker emits one per run of
// non-zero bytes) pack into one, with the same memory image.
func TestPackDataSegmentsGoActor(t *testing.T) {
	wasm := testenv.BuildActor(t, echoPkg)
	out := packDataSegments(wasm)
	checkPacked(t, wasm, out)
	before, _ := binary.Uvarint(dataSectionBody(t, wasm))
	after, _ := binary.Uvarint(dataSectionBody(t, out))
	if after*20 > before {
		t.Fatalf("%d data segments packed into %d; want at most a twentieth", before, after)
	}
	t.Logf("%d data segments packed into %d; module %d -> %d bytes", before, after, len(wasm), len(out))
}

// checkPacked fails unless out is in rewritten with the same memory image
// and the other sections untouched.
func checkPacked(t *testing.T, in, out []byte) {
	t.Helper()
	if bytes.Equal(in, out) {
		t.Fatal("module left unchanged, want its data packed")
	}
	if !bytes.Equal(withoutData(t, in), withoutData(t, out)) {
		t.Fatal("sections other than data changed")
	}
	a, b := memoryImage(t, in), memoryImage(t, out)
	if len(a) != len(b) {
		t.Fatalf("memory image: %d non-zero bytes, want %d", len(b), len(a))
	}
	for off, v := range a {
		if b[off] != v {
			t.Fatalf("memory image at %d: %#x, want %#x", off, b[off], v)
		}
	}
}

func dataSectionBody(t *testing.T, wasm []byte) []byte {
	t.Helper()
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		pos += 1 + n
		if id == sectionData {
			return wasm[pos : pos+int(size)]
		}
		pos += int(size)
	}
	t.Fatal("no data section")
	return nil
}

// FuzzPackDataSegments: any bytes (a module comes from an actor's signed
// but otherwise untrusted artifact) either come back unchanged or packed with
// the same memory image and other sections.
func FuzzPackDataSegments(f *testing.F) {
	memory := section(5, []byte{1, 0, 1})
	f.Add(wasmModule(memory, activeData(dataSegment{16, []byte("ab")}, dataSegment{40, []byte("cd")})))
	f.Add(wasmModule(memory, activeData(dataSegment{100, []byte("x")}, dataSegment{0, []byte("y")})))
	f.Add(wasmModule(memory, section(sectionDataCount, []byte{1}), activeData(dataSegment{0, []byte("a")})))
	f.Add(wasmbuild.TinyEcho())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out := packDataSegments(wasm)
		if bytes.Equal(out, wasm) {
			return
		}
		checkPacked(t, wasm, out)
	})
}

// BenchmarkPackDataSegmentsGoEcho is the packing every start of the Go echo
// actor does (a compile-cache hit included).
func BenchmarkPackDataSegmentsGoEcho(b *testing.B) {
	wasm := testenv.BuildActor(b, echoPkg)
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if out := packDataSegments(wasm); len(out) == len(wasm) {
			b.Fatal("module left unchanged")
		}
	}
}
