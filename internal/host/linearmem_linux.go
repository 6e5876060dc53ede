package host

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// instanceMemory gives each instance its own anonymous mapping for its
// linear memory instead of a Go []byte (wazero's default); see RATIONALE.md,
// "Each instance's linear memory is its own mapping". Measured with the Go
// echo actor: its runtime grows the 3 MiB memory in steps at init, wazero's
// default copies the slice into a larger one each time, so an instance held
// about 4 MiB of Go heap and left the copies as garbage, 6.3 MiB of RSS an
// instance. A reservation of the instance's maximum, made accessible page by
// page as the guest grows, never moves, never copies, and costs resident
// memory only for the pages the guest (or its data segments) writes; closing
// the instance unmaps it, so the memory goes back at once rather than after
// a collection.
type instanceMemory struct {
	mem *mappedMemory
}

// allocator is what InstantiateModule is given for the instance.
func (a *instanceMemory) allocator() experimental.MemoryAllocator { return a }

// Allocate implements experimental.MemoryAllocator, once per instance.
func (a *instanceMemory) Allocate(capacity, max uint64) experimental.LinearMemory {
	a.mem = newMappedMemory(capacity, max)
	return a.mem
}

// onGoHeap reports whether the instance's memory is Go heap (the fallback),
// which the memory returner must hear of when the instance closes; a
// mapping goes back to the system as it closes.
func (a *instanceMemory) onGoHeap() bool { return a.mem == nil || !a.mem.mapped }

// mappedMemory is one instance's linear memory: reserved holds the whole
// maximum as inaccessible address space, of which the first committed bytes
// are readable and writable.
type mappedMemory struct {
	reserved  []byte
	committed uint64
	fallback  []byte // used when the reservation failed
	mapped    bool
}

// newMappedMemory reserves max bytes (the module's maximum, never more than
// the host's memory limit, LATTICED_ACTOR_MEMORY_PAGES) of address space. A
// reservation that fails (an address-space ulimit) falls back to a Go slice:
// slower to grow and heavier, but the instance still runs.
func newMappedMemory(capacity, max uint64) *mappedMemory {
	if max == 0 {
		return &mappedMemory{fallback: make([]byte, 0, capacity)}
	}
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &mappedMemory{fallback: make([]byte, 0, capacity)}
	}
	return &mappedMemory{reserved: b, mapped: true}
}

// Reallocate implements experimental.LinearMemory: it makes the first size
// bytes accessible. The address never changes, so compiled code that holds
// the memory's base stays valid across memory.grow. It returns nil (grow
// fails, the guest sees memory.grow return -1) beyond the reservation or
// when the kernel refuses the pages.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if !m.mapped {
		if size <= uint64(cap(m.fallback)) {
			m.fallback = m.fallback[:size]
			return m.fallback
		}
		m.fallback = append(m.fallback, make([]byte, size-uint64(len(m.fallback)))...)
		return m.fallback
	}
	if size > uint64(len(m.reserved)) {
		return nil
	}
	if size > m.committed {
		// Wasm pages are 64 KiB, a multiple of the system page size, so
		// size is page aligned.
		if err := syscall.Mprotect(m.reserved[m.committed:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = size
	}
	return m.reserved[:size:size]
}

// Free implements experimental.LinearMemory. wazero calls it when the
// instance closes, never while guest code runs, and the host keeps no view
// of guest memory past a call (it copies what it reads).
func (m *mappedMemory) Free() {
	if m.mapped && m.reserved != nil {
		_ = syscall.Munmap(m.reserved)
	}
	m.reserved, m.fallback = nil, nil
}
