package host

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// loadModule sizes its buffer from the file; the bytes it returns and the
// size limit must not depend on that.
func TestLoadModuleReadsWholeFileWithinLimit(t *testing.T) {
	dir := t.TempDir()
	small := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), 100_000)
	for _, tc := range []struct {
		name    string
		size    int64 // a sparse file of this size when content is nil
		content []byte
		wantErr bool
	}{
		{name: "empty", content: []byte{}},
		{name: "800 KB", content: small},
		{name: "one byte over the limit", size: MaxModuleBytes + 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".wasm")
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(tc.size); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			b, err := loadModule("file://"+path, true)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("loadModule of %d bytes: no error, want one over %d", tc.size, MaxModuleBytes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.content != nil && !bytes.Equal(b, tc.content) {
				t.Fatalf("loadModule returned %d bytes, want the file's %d", len(b), len(tc.content))
			}
			if tc.content == nil && int64(len(b)) != tc.size {
				t.Fatalf("loadModule returned %d bytes, want %d", len(b), tc.size)
			}
		})
	}
}
