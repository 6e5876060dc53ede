package wasmbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The Rust toolchain mk/rust.mk installs (`make tools`): Debian's rustc, its
// wasm32 std, and lld-14 behind Debian's rust-lld link. Called by full path:
// a rustup rustc on PATH has no wasm32 std.
const (
	rustRustc   = "/usr/bin/rustc"
	rustWasmStd = "/usr/lib/rustlib/wasm32-unknown-unknown/lib"
	rustLLD     = "/usr/bin/rust-lld"
	// RustEchoSrc is the Rust wasmbus actor the tests build: no wasmCloud
	// crate, the ABI written out by hand (its doc comment lists what it
	// answers).
	RustEchoSrc = "internal/testing/actors/rustecho/lib.rs"
)

// RustEcho compiles RustEchoSrc with rustc for wasm32-unknown-unknown and
// returns the module exactly as rustc writes it (unsigned).
func RustEcho() ([]byte, error) {
	for _, p := range []string{rustRustc, rustWasmStd, rustLLD} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("rust wasm32 toolchain incomplete (%w): run `make tools` (mk/rust.mk installs Debian's rustc, libstd-rust-dev-wasm32 and lld-14)", err)
		}
	}
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rustecho")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "rustecho.wasm")
	cmd := exec.Command(rustRustc, "--edition", "2021", "--crate-type", "cdylib", "--target", "wasm32-unknown-unknown",
		"-C", "opt-level=s", "-C", "panic=abort", "-o", out, filepath.Join(root, RustEchoSrc))
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rustc %s: %w\n%s", RustEchoSrc, err, b)
	}
	return os.ReadFile(out)
}
