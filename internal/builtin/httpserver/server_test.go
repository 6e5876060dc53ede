package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
)

func TestOneListenerPerLinkAndPortsAreNotShared(t *testing.T) {
	s := New(nil)
	s.UseInvoker(&fakeInvoker{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	port := strconv.Itoa(testenv.FreePort(t))
	a := lattice.LinkDefinition{ActorID: "MA", Values: map[string]string{"port": port}}
	b := lattice.LinkDefinition{ActorID: "MB", Values: map[string]string{"port": port}}
	if err := s.PutLink(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLink(ctx, b); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second link on the same port: %v", err)
	}
	addr, ok := s.Addr("MA")
	if !ok || addr.String() != "127.0.0.1:"+port {
		t.Fatalf("listener %v", addr)
	}
	if err := s.PutLink(ctx, lattice.LinkDefinition{ActorID: "MC", Values: map[string]string{"port": "x"}}); err == nil {
		t.Fatal("bad link values accepted")
	}
	if err := s.DeleteLink(ctx, a); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Fatal("listener still open after its link was deleted")
	}
	if err := s.PutLink(ctx, b); err != nil { // the port is free again
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLink(ctx, a); err == nil {
		t.Fatal("link accepted after Close")
	}
}
