package par

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzRead when
// LATTICED_WRITE_FUZZ_SEEDS is set (keys are fresh each time; no secret is kept).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("LATTICED_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set LATTICED_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	data, _ := create(t, map[string][]byte{"x86_64-linux": []byte("bin-a"), "aarch64-linux": []byte("bin-b")})
	names, bodies := unpack(t, data)
	seeds := map[string][]byte{
		"valid_gz":     data,
		"valid_plain":  pack(t, false, names, bodies),
		"altered_bin":  pack(t, true, names, [][]byte{bodies[0], []byte("bin-x"), bodies[2]}),
		"claims_only":  pack(t, false, names[:1], bodies[:1]),
		"truncated_gz": data[:len(data)/2],
		"nested_paths": pack(t, false, []string{"a/claims.jwt", "b/x86_64-linux.bin"}, bodies[:2]),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
