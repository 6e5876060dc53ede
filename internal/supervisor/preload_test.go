package supervisor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/progress"
)

// A node restarted on its data dir has the host child load its declared
// actor's cached code while it connects (the host hello names the actor);
// the declared start takes that code and the actor answers. On an empty
// cache there is nothing to load ahead.
func TestRestartPreloadsDeclaredActor(t *testing.T) {
	echo := echoActor(t)
	ref := "file://" + echo.Path
	first := startNode(t, nil, ref)
	waitLogged(t, first, progress.CompileFinished) // the code is cached once its compile ends
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(first.logs.String(), host.LogPreloaded) {
		t.Fatal("the first start, on an empty cache, preloaded code")
	}
	again := startNode(t, map[string]string{config.EnvDataDir: first.cfg.DataDir}, ref)
	waitLogged(t, again, host.LogPreloaded)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := again.invokeEcho(ctx, echo.Key, []byte("preloaded")); err != nil || string(out) != "preloaded" {
		t.Fatalf("echo after the restart: %q, %v", out, err)
	}
}

// waitLogged waits for a line containing msg in the node's log (the host
// child's lines are relayed into it).
func waitLogged(t *testing.T, n *node, msg string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a Go actor's compile, under -race on a busy machine
	for !strings.Contains(n.logs.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the node's log", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
