// Package wasmbuild compiles this repository's Go actors to wasip1 reactor
// modules, for tests and benchmarks (artifacts are built, never committed).
package wasmbuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory holding this repository's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the latticed module")
	}
	return filepath.Dir(mod), nil
}

// Build compiles the actor package pkg to out. pkg is a directory relative to
// the repository root ("./internal/testing/actors/trap") or an import path:
// the SDK's examples are in the actor module, which a relative path from the
// root does not enter ("github.com/latticed/latticed/actor/examples/echo").
func Build(pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build actor %s: %v\n%s", pkg, err, stderr.String())
	}
	return nil
}
