// Package wasmstop makes a WebAssembly module stoppable from outside while it
// runs: Instrument adds a mutable i32 global, exported as ExportName, and a
// check of it at the head of every loop, which traps (unreachable) once the
// global is non-zero. The host sets the global from another goroutine when a
// call's deadline passes.
//
// Why not wazero's WithCloseOnContextDone: its compiled code calls out to Go
// at every loop header and starts a goroutine per call; Go guests, whose
// every jump goes through a per-function dispatch loop, pay that on every
// branch (RATIONALE.md, "Guests stop on an in-guest flag"). The check added
// here is a load, a compare and a branch, inline.
//
// The guest must still leave compiled code now and then: Go cannot preempt a
// goroutine running wazero's machine code, so a guest that never left it
// would hold its thread through every stop-the-world of the garbage
// collector, and the whole process, the goroutine that would raise the flag
// included, would wait for it forever. So each loop header also counts down
// a second global, and every YieldEvery iterations runs memory.grow 0, which
// wazero's compiler implements as an exit to Go (where the scheduler can
// stop the goroutine) and which changes nothing. A module without a memory
// gets an empty one for it.
package wasmstop

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/latticed/latticed/internal/wasmbin"
)

// ExportName is the export under which Instrument exposes the stop global.
// A module that already exports it is refused: its own global would shadow
// the host's flag.
const ExportName = "latticed:stop"

// StartExport is the export under which Instrument exposes the module's
// start function, whose start section it removes: wazero runs a start
// function inside InstantiateModule, before the host has the flag to raise,
// so a start function that never returned could not be stopped. The host
// calls it right after instantiation instead, as the start section would
// have, with the flag armed. Reserved like ExportName.
const StartExport = "latticed:start"

// ErrUnsafe marks a module Instrument cannot make stoppable: an instruction
// or section it does not know, or a malformed module. A host must not run it,
// since a guest loop it could not instrument could run past every deadline.
var ErrUnsafe = errors.New("module cannot be made stoppable; the actor cannot be run safely")

// YieldEvery is how many loop iterations a guest runs between two exits to
// Go: each costs tens of nanoseconds, and a loop iteration at least one, so
// the exits cost a few percent at most while the scheduler and the garbage
// collector wait microseconds, not forever.
const YieldEvery = 1 << 12

// Section ids (WebAssembly core specification 2.0, §5.5).
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secDataCount = 12
)

// sectionRank is each known section's place in the required order; the data
// count section (12) comes between element (9) and code (10).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, secDataCount: 10, 10: 11, 11: 12}

const (
	opUnreachable = 0x00
	opLoop        = 0x03
	opIf          = 0x04
	opEnd         = 0x0b
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opI32Const    = 0x41
	opI32Eqz      = 0x45
	opI32Sub      = 0x6b
	opMemoryGrow  = 0x40
	opDrop        = 0x1a
	blockEmpty    = 0x40
	valI32        = 0x7f
	exportFunc    = 0
	exportGlobal  = 3
)

// section is one section of the module as found.
type section struct {
	id   byte
	body []byte
}

// Instrument returns wasm with the stop global and a check of it after every
// loop instruction. The result depends only on the input, so a compilation
// cache keyed on it stays valid. An error wraps ErrUnsafe.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrUnsafe)
	}
	var sections []section
	var importedGlobals, definedGlobals, memories, start uint32
	hasStart := false
	lastRank := 0
	for pos := 8; pos < len(wasm); {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 || size > uint64(len(wasm)-pos-1-n) {
			return nil, fmt.Errorf("%w: section %d at offset %d: size runs past the end", ErrUnsafe, id, pos)
		}
		body := wasm[pos+1+n : pos+1+n+int(size)]
		if id != secCustom {
			rank, ok := sectionRank[id]
			if !ok {
				return nil, fmt.Errorf("%w: unknown section id %d at offset %d", ErrUnsafe, id, pos)
			}
			if rank <= lastRank {
				return nil, fmt.Errorf("%w: section %d at offset %d out of order or repeated", ErrUnsafe, id, pos)
			}
			lastRank = rank
		}
		var err error
		switch id {
		case secImport:
			var imported uint32
			importedGlobals, imported, err = countImports(body)
			memories += imported
		case secMemory:
			var n uint32
			n, _, err = vecCount(body)
			memories += n
		case secGlobal:
			definedGlobals, _, err = vecCount(body)
		case secExport:
			err = checkExports(body)
		case secStart:
			start, hasStart, err = startFunction(body)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d at offset %d: %w", ErrUnsafe, id, pos, err)
		}
		sections = append(sections, section{id: id, body: body})
		pos += 1 + n + int(size)
	}
	stop := importedGlobals + definedGlobals
	if stop < importedGlobals {
		return nil, fmt.Errorf("%w: global count overflows", ErrUnsafe)
	}

	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, wasm[:8]...)
	globalDone, exportDone := false, false
	// exports appends what Instrument exports to an export section body.
	exports := func(b []byte) []byte {
		b = appendExport(b, ExportName, exportGlobal, stop)
		if hasStart {
			b = appendExport(b, StartExport, exportFunc, start)
		}
		return b
	}
	added := uint32(1)
	if hasStart {
		added++
	}
	memoryDone := memories > 0
	// flush emits the new memory, global and export sections due before a
	// section of the given rank, where the module has none of its own.
	flush := func(rank int) {
		if !memoryDone && rank > sectionRank[secMemory] {
			out = appendSection(out, secMemory, []byte{1, 0, 0}) // one memory, no pages, no maximum
			memoryDone = true
		}
		if !globalDone && rank > sectionRank[secGlobal] {
			out = appendSection(out, secGlobal, appendStopGlobals(binary.AppendUvarint(nil, 2)))
			globalDone = true
		}
		if !exportDone && rank > sectionRank[secExport] {
			out = appendSection(out, secExport, exports(binary.AppendUvarint(nil, uint64(added))))
			exportDone = true
		}
	}
	for _, s := range sections {
		if s.id == secCustom {
			out = appendSection(out, s.id, s.body)
			continue
		}
		flush(sectionRank[s.id])
		switch s.id {
		case secGlobal:
			out = appendSection(out, s.id, appendStopGlobals(extendVec(s.body, definedGlobals, 2)))
			globalDone = true
		case secExport:
			count, _, _ := vecCount(s.body) // checked above
			out = appendSection(out, s.id, exports(extendVec(s.body, count, added)))
			exportDone = true
		case secStart: // exported as StartExport instead
		case secCode:
			body, err := instrumentCode(s.body, stop)
			if err != nil {
				return nil, fmt.Errorf("%w: code section: %w", ErrUnsafe, err)
			}
			out = appendSection(out, s.id, body)
		default:
			out = appendSection(out, s.id, s.body)
		}
	}
	flush(len(sectionRank) + 1)
	return out, nil
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// extendVec re-encodes a vector's body with its count more elements.
func extendVec(body []byte, count, more uint32) []byte {
	_, n, _ := vecCount(body)
	out := binary.AppendUvarint(make([]byte, 0, len(body)+16), uint64(count)+uint64(more))
	return append(out, body[n:]...)
}

// appendStopGlobals appends the two globals Instrument adds: the stop flag
// (mutable i32, initially 0) and, after it, the countdown to the next exit
// to Go (mutable i32, initially YieldEvery).
func appendStopGlobals(b []byte) []byte {
	b = append(b, valI32, 1, opI32Const, 0, opEnd)
	b = append(b, valI32, 1, opI32Const)
	b = wasmbin.AppendSignedLEB32(b, YieldEvery)
	return append(b, opEnd)
}

// appendExport appends an export of the given kind and index.
func appendExport(b []byte, name string, kind byte, index uint32) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return binary.AppendUvarint(b, uint64(index))
}

// startFunction decodes a start section: one function index.
func startFunction(body []byte) (uint32, bool, error) {
	r := &reader{b: body}
	index := r.u32()
	if r.err == nil && r.pos != len(body) {
		r.fail("%d bytes after the start function's index", len(body)-r.pos)
	}
	return index, r.err == nil, r.err
}

// reader decodes the immediates of a section or function body.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: "+format, append([]any{r.pos}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.pos >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.fail("bad u32")
		return 0
	}
	r.pos += n
	return uint32(v)
}

// skipLEB skips a signed or unsigned LEB128 of at most max bytes.
func (r *reader) skipLEB(max int) {
	for i := 0; i < max; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("LEB128 longer than %d bytes", max)
}

func (r *reader) skip(n int) {
	if r.err == nil && n > len(r.b)-r.pos {
		r.fail("unexpected end")
		return
	}
	if r.err == nil {
		r.pos += n
	}
}

// name skips a length-prefixed name and returns it.
func (r *reader) name() string {
	n := r.u32()
	start := r.pos
	r.skip(int(min(n, 1<<30)))
	if r.err != nil {
		return ""
	}
	return string(r.b[start:r.pos])
}

// limits skips table or memory limits (flag 0: min; 1: min, max).
func (r *reader) limits() {
	switch flag := r.byte(); flag {
	case 0:
		r.u32()
	case 1:
		r.u32()
		r.u32()
	default:
		r.fail("limits flag %#x not supported", flag)
	}
}

func vecCount(body []byte) (count uint32, n int, err error) {
	r := &reader{b: body}
	count = r.u32()
	return count, r.pos, r.err
}

// countImports counts the global and memory imports of an import section.
func countImports(body []byte) (globals, memories uint32, err error) {
	r := &reader{b: body}
	for i, count := uint32(0), r.u32(); i < count && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0: // function: type index
			r.u32()
		case 1: // table: reference type, limits
			r.byte()
			r.limits()
		case 2: // memory
			r.limits()
			memories++
		case 3: // global: value type, mutability
			r.byte()
			r.byte()
			globals++
		default:
			r.fail("import kind %#x not supported", kind)
		}
	}
	return globals, memories, r.err
}

// checkExports refuses a module exporting a name Instrument reserves.
func checkExports(body []byte) error {
	r := &reader{b: body}
	for i, count := uint32(0), r.u32(); i < count && r.err == nil; i++ {
		if name := r.name(); name == ExportName || name == StartExport {
			return fmt.Errorf("the module already exports %q, a name reserved for the host", name)
		}
		r.byte()
		r.u32()
	}
	return r.err
}

// instrumentCode rewrites a code section: every function body gets the stop
// check after each of its loop instructions, and its size re-encoded.
func instrumentCode(body []byte, stop uint32) ([]byte, error) {
	r := &reader{b: body}
	count := r.u32()
	check := loopCheck(stop)
	out := binary.AppendUvarint(make([]byte, 0, len(body)+len(body)/16+16), uint64(count))
	var fn []byte
	for i := uint32(0); i < count; i++ {
		size := r.u32()
		start := r.pos
		r.skip(int(min(size, 1<<30)))
		if r.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, r.err)
		}
		var err error
		fn, err = instrumentFunc(fn[:0], body[start:r.pos], check)
		if err != nil {
			return nil, fmt.Errorf("function %d (body at section offset %d): %w", i, start, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.pos != len(body) {
		return nil, fmt.Errorf("%d bytes after the last function body", len(body)-r.pos)
	}
	return out, nil
}

// loopCheck is what Instrument inserts at every loop header, with stop the
// flag's global index and stop+1 the countdown's:
//
//	global.get $stop  if  unreachable  end
//	global.get $count  i32.const 1  i32.sub  global.set $count
//	global.get $count  i32.eqz
//	if  i32.const 0  memory.grow 0  drop  i32.const YieldEvery  global.set $count  end
func loopCheck(stop uint32) []byte {
	s := binary.AppendUvarint(nil, uint64(stop))
	c := binary.AppendUvarint(nil, uint64(stop)+1)
	b := append([]byte{opGlobalGet}, s...)
	b = append(b, opIf, blockEmpty, opUnreachable, opEnd, opGlobalGet)
	b = append(b, c...)
	b = append(b, opI32Const, 1, opI32Sub, opGlobalSet)
	b = append(b, c...)
	b = append(b, opGlobalGet)
	b = append(b, c...)
	b = append(b, opI32Eqz, opIf, blockEmpty, opI32Const, 0, opMemoryGrow, 0, opDrop, opI32Const)
	b = wasmbin.AppendSignedLEB32(b, YieldEvery)
	b = append(b, opGlobalSet)
	b = append(b, c...)
	return append(b, opEnd)
}

// instrumentFunc appends body to out with check inserted after every loop
// instruction and its block type. Offsets in errors are from the start of
// the function body.
func instrumentFunc(out, body, check []byte) ([]byte, error) {
	r := &reader{b: body}
	for i, groups := uint32(0), r.u32(); i < groups && r.err == nil; i++ {
		r.u32()  // how many
		r.byte() // of which value type
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	copied := 0
	for r.pos < len(body) && r.err == nil {
		at := r.pos
		op := r.byte()
		if !skipImmediates(r, op) {
			return nil, fmt.Errorf("unknown opcode %#x at offset %d", op, at)
		}
		if op == opLoop && r.err == nil {
			out = append(out, body[copied:r.pos]...)
			out = append(out, check...)
			copied = r.pos
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, body[copied:]...), nil
}

// skipImmediates moves r past the immediates of op, reporting false for an
// opcode the host's wazero configuration (CoreFeaturesV2: MVP,
// sign-extension, non-trapping float-to-int, bulk memory, reference types,
// multi-value, SIMD) does not accept. A prefixed opcode whose sub-opcode is
// unknown sets r's error.
func skipImmediates(r *reader, op byte) bool {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
		// unreachable, nop, else, end, return, drop, select, ref.is_null
	case op >= 0x02 && op <= 0x04: // block, loop, if: block type (s33)
		r.skipLEB(5)
	case op == 0x0c, op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
			r.u32()
		}
		r.u32()
	case op == 0x10: // call
		r.u32()
	case op == 0x11: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		r.skip(int(min(n, 1<<30)))
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		r.u32()
		r.u32()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow: memory 0
		r.u32()
	case op == 0x41: // i32.const
		r.skipLEB(5)
	case op == 0x42: // i64.const
		r.skipLEB(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null: reference type
		r.byte()
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		skipMisc(r)
	case op == 0xfd:
		skipSIMD(r)
	default:
		return false
	}
	return true
}

// skipMisc skips a 0xfc instruction: saturating truncations and bulk memory
// and table operations.
func skipMisc(r *reader) {
	at := r.pos - 1
	switch sub := r.u32(); {
	case sub <= 7: // i32/i64.trunc_sat_*
	case sub == 8: // memory.init: data, memory
		r.u32()
		r.byte()
	case sub == 9: // data.drop
		r.u32()
	case sub == 10: // memory.copy: memory, memory
		r.byte()
		r.byte()
	case sub == 11: // memory.fill: memory
		r.byte()
	case sub == 12, sub == 14: // table.init: elem, table; table.copy: table, table
		r.u32()
		r.u32()
	case sub == 13, sub >= 15 && sub <= 17: // elem.drop, table.grow/size/fill
		r.u32()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("unknown opcode 0xfc %d at offset %d", sub, at)
		}
	}
}

// simdUnassigned are the SIMD sub-opcodes below 0x100 that name no
// instruction (WebAssembly 2.0, §5.4.8).
var simdUnassigned = map[uint32]bool{
	0x9a: true, 0xa2: true, 0xa5: true, 0xa6: true, 0xaf: true, 0xb0: true, 0xb2: true,
	0xb3: true, 0xb4: true, 0xbb: true, 0xc2: true, 0xc5: true, 0xc6: true, 0xcf: true,
	0xd0: true, 0xd2: true, 0xd3: true, 0xd4: true, 0xe2: true, 0xee: true,
}

// skipSIMD skips a 0xfd (vector) instruction.
func skipSIMD(r *reader) {
	at := r.pos - 1
	switch sub := r.u32(); {
	case r.err != nil:
	case sub <= 11, sub == 92, sub == 93: // v128.load*, v128.store, load*_zero: memarg
		r.u32()
		r.u32()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load*_lane, store*_lane: memarg, lane
		r.u32()
		r.u32()
		r.byte()
	case sub <= 0xff && !simdUnassigned[sub]:
	default:
		r.err = fmt.Errorf("unknown opcode 0xfd %d at offset %d", sub, at)
	}
}
