// Package testenv gives tests real parts: an embedded NATS server on a free
// loopback port, wasm actors built from this repository's Go source, and a
// polling helper instead of sleeps.
package testenv

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// NATS starts an embedded nats-server with JetStream on 127.0.0.1 and a random
// port; it is shut down when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), MaxPayload: 2 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not become ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect opens a client connection closed at test end.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// CheckFor polls fn every interval until it returns nil or total elapses.
func CheckFor(t testing.TB, total, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(interval)
	}
	t.Fatalf("condition not met after %s: %v", total, err)
}

var (
	buildMu    sync.Mutex
	buildDir   string
	builtPaths = map[string]string{}
)

// ModuleRoot is the repository root (where go.mod is).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// BuildActor compiles the Go actor package pkg (as wasmbuild.Build takes it)
// to a wasip1 reactor module once per test binary and returns its bytes.
func BuildActor(t testing.TB, pkg string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out, ok := builtPaths[pkg]
	if !ok {
		if buildDir == "" {
			d, err := os.MkdirTemp("", "latticed-actors-")
			if err != nil {
				t.Fatal(err)
			}
			buildDir = d // removed by CleanupBuilds from TestMain
		}
		out = filepath.Join(buildDir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".wasm")
		if err := wasmbuild.Build(pkg, out); err != nil {
			t.Fatal(err)
		}
		builtPaths[pkg] = out
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CleanupBuilds removes built actors; call it from TestMain after m.Run.
func CleanupBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// SignedActor is a built, signed actor module written to a file.
type SignedActor struct {
	Path   string
	Key    string // the module's public key
	Module []byte
	Claims *trust.ActorClaims
}

// SignActor builds pkg and signs it with fresh keys and the given options,
// writing the module under dir.
func SignActor(t testing.TB, dir, pkg string, opts trust.SignActorOptions) SignedActor {
	t.Helper()
	acct, err := trust.CreateKeyPair(lattice.KindAccount)
	if err != nil {
		t.Fatal(err)
	}
	return SignActorWith(t, dir, pkg, opts, acct)
}

// SignActorWith is SignActor with a given account key.
func SignActorWith(t testing.TB, dir, pkg string, opts trust.SignActorOptions, acct *trust.KeyPair) SignedActor {
	t.Helper()
	mod, err := trust.CreateKeyPair(lattice.KindModule)
	if err != nil {
		t.Fatal(err)
	}
	return SignActorAs(t, dir, pkg, opts, acct, mod)
}

// ActorKeys makes an account key and a module key: the identity that the
// revisions of one actor share (SignActorAs).
func ActorKeys(t testing.TB) (account, module *trust.KeyPair) {
	t.Helper()
	account, err := trust.CreateKeyPair(lattice.KindAccount)
	if err != nil {
		t.Fatal(err)
	}
	if module, err = trust.CreateKeyPair(lattice.KindModule); err != nil {
		t.Fatal(err)
	}
	return account, module
}

// SignActorAs is SignActor with given account and module keys: revisions
// of one actor (a live update's) share the module key. The file is named
// for the package, the key and the revision.
func SignActorAs(t testing.TB, dir, pkg string, opts trust.SignActorOptions, acct, mod *trust.KeyPair) SignedActor {
	t.Helper()
	signed, claims, err := trust.SignActor(BuildActor(t, pkg), opts, acct, mod)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-rev%d.wasm", filepath.Base(pkg), mod.PublicKey()[:8], opts.Rev))
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	return SignedActor{Path: path, Key: mod.PublicKey(), Module: signed, Claims: claims}
}

// JSONLogger logs everything from debug up into w as JSON lines, as a node
// logs, for tests that read the records back.
func JSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// SyncBuffer collects output written from several goroutines (a child
// process's stdout and stderr, a logger) for assertions.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
