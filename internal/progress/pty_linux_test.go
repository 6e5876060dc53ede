package progress

import (
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// A real terminal is one; its other end, where the program's output is
// read from, is too, and a pipe is not (TestIsTerminalRefusesWhatIsNotOne).
func TestIsTerminalOnAPseudoTerminal(t *testing.T) {
	pt, tty := testenv.PTY(t)
	if !IsTerminal(tty) || !IsTerminal(pt) {
		t.Fatalf("pseudo-terminal not taken for a terminal")
	}
}
