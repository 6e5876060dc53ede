package supervisor

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Under a Type=notify unit the supervisor says READY=1 once the node serves,
// RELOADING=1 then READY=1 around a reload, and STOPPING=1 when it stops.
func TestSystemdNotifications(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case msg := <-got:
			if !strings.HasPrefix(msg, want) {
				t.Fatalf("got %q, want %s", msg, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s notification", want)
		}
	}
	n := startNode(t, map[string]string{"NOTIFY_SOCKET": sock})
	next("READY=1")
	if err := n.s.Reload(n.cfg.Supervisor()); err != nil {
		t.Fatal(err)
	}
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1")
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1")
}
