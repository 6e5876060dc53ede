package deploy

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// arbitraryUID is a UID from an OpenShift project's range: no passwd entry,
// not the image's user.
const arbitraryUID = 1000770000

// dataDirSpec is the owner and mode the image gives /data, read from the
// runtime stage's COPY to /data (--chown=uid:gid --chmod=mode).
func dataDirSpec(t *testing.T) (uid, gid int, mode fs.FileMode) {
	t.Helper()
	instrs := parseDockerfile(t)
	last := instrs[len(instrs)-1].stage
	for _, in := range instrs {
		f := strings.Fields(in.args)
		if in.stage != last || in.cmd != "COPY" || len(f) == 0 || f[len(f)-1] != "/data" {
			continue
		}
		uid, gid, mode = -1, -1, 0o755 // COPY's defaults when the flags are absent
		for _, a := range f {
			if v, ok := strings.CutPrefix(a, "--chown="); ok {
				u, g, _ := strings.Cut(v, ":")
				uid, _ = strconv.Atoi(u)
				gid, _ = strconv.Atoi(g)
			}
			if v, ok := strings.CutPrefix(a, "--chmod="); ok {
				m, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					t.Fatalf("Dockerfile COPY --chmod=%s: %v", v, err)
				}
				mode = fs.FileMode(m)
			}
		}
		if uid < 0 || gid < 0 {
			t.Fatalf("Dockerfile COPY to /data has no numeric --chown=uid:gid: %q", in.args)
		}
		return uid, gid, mode
	}
	t.Fatal("the Dockerfile's runtime stage copies nothing to /data")
	return
}

// The image under an arbitrary UID in group 0 (docker run --user
// 1000770000:0, or OpenShift's restricted SCC): `latticed up`, against a
// data dir owned and moded as the Dockerfile makes /data, starts, becomes
// ready, and creates its keys, each secret 0600 in 0700 directories.
func TestImageDataDirUnderArbitraryUID(t *testing.T) {
	requireLinux(t, "running as another UID")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run latticed as an arbitrary UID (as CI and the container build do)")
	}
	uid, gid, mode := dataDirSpec(t)

	// A root the other user can traverse, with its own copy of the binary.
	root := t.TempDir()
	for d := root; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "latticed")
	b, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chown(data, 0, 0) })

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "up")
	cmd.Dir = root
	cmd.Env = cleanEnv(
		"HOME=/", // as OpenShift gives a UID without a passwd entry
		"LATTICED_DATA_DIR="+data,
		fmt.Sprintf("LATTICED_NATS_LISTEN=127.0.0.1:%d", freePort(t)),
		"LATTICED_METRICS_ADDR="+metricsAddr,
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: arbitraryUID, Gid: 0, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(liveStopBound):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("latticed up output:\n%s", out)
		}
	})

	client := http.Client{Timeout: 5 * time.Second}
	testenv.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("latticed up as uid %d:0 exited: %v", arbitraryUID, err)
		default:
		}
		resp, err := client.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d %s", resp.StatusCode, body)
		}
		return nil
	})

	// Its keys exist, belong to the arbitrary UID, and are private.
	var secrets int
	err = filepath.WalkDir(filepath.Join(data, "keys"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != arbitraryUID {
			t.Errorf("%s is owned by uid %d, want %d", p, st.Uid, arbitraryUID)
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			secrets++
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("keys under the data dir: %v", err)
	}
	if secrets == 0 {
		t.Error("latticed up created no key files under the data dir")
	}
}
