//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

// linearMemory is nil off Linux: wazero's default, a Go []byte per instance
// (see linearmem_linux.go for why Linux maps it instead).
var linearMemory experimental.MemoryAllocator
