package par

import (
	"strings"
	"testing"
)

// FuzzRead feeds untrusted archive bytes to Read: it must never panic, and
// whatever it accepts must be internally consistent. The seed corpus
// (testdata/fuzz/FuzzRead) holds a valid archive and damaged variants.
func FuzzRead(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(data)
		if err != nil {
			return
		}
		if a.Claims == nil || len(a.Targets) == 0 {
			t.Fatalf("accepted an archive without claims or binaries")
		}
		for target, b := range a.Targets {
			if !strings.EqualFold(Hash(b), a.Claims.Wascap.TargetHashes[target]) {
				t.Fatalf("accepted target %s whose hash is not in the claims", target)
			}
		}
	})
}
