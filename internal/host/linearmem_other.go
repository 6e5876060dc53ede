//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

// instanceMemory leaves an instance's linear memory to wazero's default off
// Linux, a Go []byte (see linearmem_linux.go for why Linux maps it instead).
type instanceMemory struct{}

// allocator is nil: wazero's default.
func (*instanceMemory) allocator() experimental.MemoryAllocator { return nil }

// onGoHeap is always true: the memory is Go heap.
func (*instanceMemory) onGoHeap() bool { return true }
