package host

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/trust"
)

// A host compiling a Go actor logs the compile's start and end lines (JSON,
// as a node's host child logs), naming the actor, with the module's size,
// whether the compile cache had its code, and the seconds it took; a second
// host on the same compile cache says the code came from the cache.
func TestCompileLogsStartAndEnd(t *testing.T) {
	cacheDir := t.TempDir()
	var sa testenv.SignedActor
	for _, wantCached := range []bool{false, true} {
		logs := &testenv.SyncBuffer{}
		f := newFixture(t, func(o *Options) {
			o.CompileCacheDir = cacheDir
			o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		if sa.Path == "" {
			sa = f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo", Caps: []string{"wasmcloud:httpserver"}})
		} else {
			f.startSigned(t, sa, 1)
		}
		end := waitLogLine(t, logs, progress.CompileFinished)
		start := waitLogLine(t, logs, progress.CompileStarted)
		for _, rec := range []map[string]any{start, end} {
			if rec[progress.KeyActor] != sa.Key || rec[progress.KeyName] != "echo" ||
				rec[progress.KeyWasmBytes] != float64(len(sa.Module)) || rec[progress.KeyCached] != wantCached {
				t.Errorf("cached=%v: %s line %v, want actor %s, name echo, %d wasm bytes, cached %v",
					wantCached, rec["msg"], rec, sa.Key, len(sa.Module), wantCached)
			}
		}
		if s, ok := end[progress.KeySeconds].(float64); !ok || s <= 0 || s > 600 {
			t.Errorf("cached=%v: end line's %s = %v, want the compile's duration", wantCached, progress.KeySeconds, end[progress.KeySeconds])
		}
		if _, ok := start[progress.KeySeconds]; ok {
			t.Errorf("start line has %s: %v", progress.KeySeconds, start)
		}
		if err := f.stopHost(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLogLine waits for the JSON log line with message msg and returns it.
func waitLogLine(t *testing.T, logs *testenv.SyncBuffer, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // a cold compile under -race on a loaded machine
	for {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in the host's log:\n%s", msg, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
