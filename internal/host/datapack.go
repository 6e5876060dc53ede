package host

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/latticed/latticed/internal/wasmbin"
)

// packDataSegments merges a module's active data segments that lie close
// together into one segment each, filling the gaps with zeros; the memory
// the module starts with is the same byte for byte.
//
// Why: wazero keeps, for every instance, a slice header (24 bytes) per data
// segment of its module, and Go's linker emits a segment for every run of
// non-zero bytes: the Go echo actor has 31,491 segments, 740 KiB of headers
// in each instance, a quarter of its extra RSS (RATIONALE.md, "Data
// segments are packed"). Its segments are a few dozen bytes apart, so the pages of the
// gaps are written by the segment copy at instantiation anyway; merged
// across gaps smaller than a page, it is one segment, and the copy
// touches no page it did not touch before.
//
// Only the plain form is rewritten: every segment active in memory 0 at an
// i32.const offset, no two overlapping, and no data count
// section (whose bulk-memory instructions name segments by index). Anything
// else, and anything malformed, is returned unchanged for wazero to accept
// or reject as it would.
func packDataSegments(wasm []byte) []byte {
	out, err := packData(wasm)
	if err != nil {
		return wasm
	}
	return out
}

// maxDataGap is the widest run of zeros merged into a segment: less than a
// page, so a merged segment writes no page the separate ones would not.
const maxDataGap = 4096

const (
	sectionData      = 11
	sectionDataCount = 12
	opI32Const       = 0x41
	opEnd            = 0x0b
)

var errNotPlain = errors.New("not a plain data section")

// dataSegment is an active data segment of memory 0.
type dataSegment struct {
	offset uint32
	init   []byte
}

// packData returns the module with its data section packed, or errNotPlain
// (or a decoding error) when it leaves the module alone.
func packData(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errNotPlain
	}
	var dataStart, dataEnd int // the data section, id and size included
	var body []byte
	for pos := 8; pos < len(wasm); {
		start := pos
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		if n <= 0 || size > uint64(len(wasm)-pos-1-n) {
			return nil, errNotPlain
		}
		pos += 1 + n
		switch id {
		case sectionDataCount:
			return nil, errNotPlain
		case sectionData:
			if body != nil {
				return nil, errNotPlain
			}
			dataStart, dataEnd, body = start, pos+int(size), wasm[pos:pos+int(size)]
		}
		pos += int(size)
	}
	if body == nil {
		return nil, errNotPlain
	}
	segs, err := parseDataSection(body)
	if err != nil {
		return nil, err
	}
	groups := mergeSegments(segs)
	if len(groups) == len(segs) {
		return nil, errNotPlain
	}
	// One allocation of the final size, each byte written once: this runs
	// at every actor start, and growing the merged segments by append
	// copied the module's data several times over (most of a cached
	// start's CPU after wazero's own work).
	bodyLen := dataSectionLen(groups)
	tail := wasm[dataEnd:]
	out := make([]byte, 0, dataStart+1+uvarintLen(uint64(bodyLen))+bodyLen+len(tail))
	out = append(out, wasm[:dataStart]...)
	out = append(out, sectionData)
	out = binary.AppendUvarint(out, uint64(bodyLen))
	out = appendDataSection(out, segs, groups)
	return append(out, tail...), nil
}

// parseDataSection decodes a data section of plain segments (see
// packDataSegments) and returns them sorted by offset.
func parseDataSection(b []byte) ([]dataSegment, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errNotPlain
	}
	b = b[n:]
	segs := make([]dataSegment, 0, count)
	for i := uint64(0); i < count; i++ {
		// flags 0: active, memory 0, then a constant expression.
		if len(b) < 2 || b[0] != 0 || b[1] != opI32Const {
			return nil, fmt.Errorf("segment %d: %w: not active at an i32.const offset", i, errNotPlain)
		}
		off, n, ok := wasmbin.SignedLEB32(b[2:])
		if !ok || len(b) < 2+n+1 || b[2+n] != opEnd {
			return nil, fmt.Errorf("segment %d: %w: offset not a lone i32.const", i, errNotPlain)
		}
		b = b[2+n+1:]
		size, m := binary.Uvarint(b)
		if m <= 0 || size > uint64(len(b)-m) {
			return nil, fmt.Errorf("segment %d: %w: size %d past the section's end", i, errNotPlain, size)
		}
		init := b[m : m+int(size)]
		b = b[m+int(size):]
		segs = append(segs, dataSegment{offset: uint32(off), init: init})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last segment", errNotPlain, len(b))
	}
	// Segments apply in order, a later one overwriting an earlier one;
	// without overlap the order does not matter, and sorted they merge.
	byOffset := func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) }
	if !slices.IsSortedFunc(segs, byOffset) { // a linker writes them in order
		slices.SortStableFunc(segs, byOffset)
	}
	var end uint64
	for _, s := range segs {
		if uint64(s.offset) < end {
			return nil, fmt.Errorf("%w: segments overlap at offset %d", errNotPlain, s.offset)
		}
		end = uint64(s.offset) + uint64(len(s.init))
	}
	return segs, nil
}

// segGroup is a run of segments (segs[first:last+1]) that become one
// segment: from the first one's offset to the last one's end.
type segGroup struct {
	first, last int
	offset      uint32
	size        uint64
}

// mergeSegments groups segments less than maxDataGap apart. Segments are
// sorted and do not overlap (parseDataSection).
func mergeSegments(segs []dataSegment) []segGroup {
	var out []segGroup
	for i, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := uint64(last.offset) + last.size
			if gap := uint64(s.offset) - end; gap < maxDataGap {
				last.last, last.size = i, uint64(s.offset)+uint64(len(s.init))-uint64(last.offset)
				continue
			}
		}
		out = append(out, segGroup{first: i, last: i, offset: s.offset, size: uint64(len(s.init))})
	}
	return out
}

// dataSectionLen is the length of the data section body appendDataSection
// writes for groups.
func dataSectionLen(groups []segGroup) int {
	n := uvarintLen(uint64(len(groups)))
	for _, g := range groups {
		n += 3 + signedLEB32Len(int32(g.offset)) + uvarintLen(g.size) + int(g.size)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func signedLEB32Len(v int32) int {
	var b [5]byte
	return len(wasmbin.AppendSignedLEB32(b[:0], v))
}

// appendDataSection encodes groups of segs as a data section body, the
// gaps between a group's segments zero filled.
func appendDataSection(b []byte, segs []dataSegment, groups []segGroup) []byte {
	b = binary.AppendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		b = append(b, 0, opI32Const)
		b = wasmbin.AppendSignedLEB32(b, int32(g.offset))
		b = append(b, opEnd)
		b = binary.AppendUvarint(b, g.size)
		base := len(b)
		b = slices.Grow(b, int(g.size))[:base+int(g.size)] // packData sized it: no copy
		clear(b[base:])
		for _, s := range segs[g.first : g.last+1] {
			copy(b[base+int(s.offset-g.offset):], s.init)
		}
	}
	return b
}
