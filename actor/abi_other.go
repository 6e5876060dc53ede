//go:build !wasip1

package actor

import (
	"fmt"
	"os"
)

// Outside wasm there is no wasmbus host: host calls fail and console lines go
// to stderr, so actor code can still be exercised in ordinary tests.

func hostCallABI(binding, namespace, operation string, payload []byte) ([]byte, error) {
	return nil, fmt.Errorf("host call %s %s (link %s): %w", namespace, operation, binding, ErrNotInActor)
}

func consoleLogABI(s string) {
	fmt.Fprintln(os.Stderr, s)
}
