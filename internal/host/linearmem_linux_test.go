package host

import (
	"testing"
	"unsafe"
)

// A mapped linear memory grows in place up to its maximum, starts zeroed,
// keeps what was written across a grow, and refuses to grow past the
// maximum, which is how the memory limit holds (wazero then fails
// memory.grow, see TestOutOfMemoryTrapCarriesTheReason).
func TestMappedMemoryGrowsInPlace(t *testing.T) {
	const page = 64 << 10
	a := &instanceMemory{}
	lm := a.Allocate(page, 4*page)
	if a.onGoHeap() {
		t.Fatal("the reservation failed: memory fell back to the Go heap")
	}
	t.Cleanup(lm.Free)
	b := lm.Reallocate(page)
	if len(b) != page {
		t.Fatalf("len %d, want %d", len(b), page)
	}
	for i, v := range b {
		if v != 0 {
			t.Fatalf("byte %d of a new memory is %#x, want 0", i, v)
		}
	}
	b[page-1] = 7
	grown := lm.Reallocate(3 * page)
	if len(grown) != 3*page || unsafe.SliceData(grown) != unsafe.SliceData(b) {
		t.Fatal("grow moved the memory or has the wrong length")
	}
	if grown[page-1] != 7 || grown[3*page-1] != 0 {
		t.Fatal("grow lost a write or the new pages are not zero")
	}
	grown[3*page-1] = 1 // the new pages are writable
	if lm.Reallocate(5*page) != nil {
		t.Fatal("grew past the maximum")
	}
}
