package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/testing/testenv"
)

func TestAdminSocketIsPrivateAndRefusesUnknownVersionsAndOperations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "admin.sock")
	a, err := admin.Listen(path, (&Supervisor{}).answerAdmin, testenv.JSONLogger(&testenv.SyncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	go a.Serve()
	t.Cleanup(a.Close)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	// A second supervisor on the same socket is refused.
	if _, err := admin.Listen(path, (&Supervisor{}).answerAdmin, testenv.JSONLogger(&testenv.SyncBuffer{})); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second listener: %v", err)
	}

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, tc := range []struct{ req, wantErr string }{
		{`{"v":2,"op":"status"}`, "unsupported admin protocol version 2"},
		{`{"v":1,"op":"reboot"}`, `unknown admin operation "reboot"`},
		{`not json`, "invalid request"},
		{`{"v":1,"op":"launch"}`, `missing "launch"`},
	} {
		if _, err := c.Write([]byte(tc.req + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var resp admin.Response
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.OK || resp.V != admin.ProtocolVersion || !strings.Contains(resp.Error, tc.wantErr) {
			t.Errorf("%s → %+v, want error %q", tc.req, resp, tc.wantErr)
		}
	}
	// The client reports the supervisor's error as its own.
	if _, err := admin.NewClient(path, nil).Do(context.Background(), admin.Request{Op: "reboot"}); err == nil || !strings.Contains(err.Error(), "unknown admin operation") {
		t.Errorf("client: %v", err)
	}
}
