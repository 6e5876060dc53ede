package host

import (
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/trust"
)

// RATIONALE.md promises that an actor killed by its memory limit fails with
// the reason its runtime printed: Go's "fatal error: out of memory" comes
// before a stack trace longer than the stderr tail the host keeps.
func TestOutOfMemoryTrapCarriesTheReason(t *testing.T) {
	// 40 MiB: the bomb's first 64 MiB chunk is refused at once, so the
	// call traps well inside its deadline even when interpreted.
	f := newFixture(t, func(o *Options) { o.MemoryLimitPages, o.RPCTimeout = 640, 20*time.Second })
	bomb := f.startActor(t, membombPkg, 1, trust.SignActorOptions{Name: "bomb"})
	_, err := f.call(t, bomb.Key, "Mem.Grow", nil)
	if err == nil || !strings.Contains(err.Error(), "trapped") || !strings.Contains(err.Error(), "fatal error: out of memory") {
		t.Fatalf("memory bomb: %v, want a trap that says fatal error: out of memory", err)
	}
}
