package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// `latticed up --apply` with the echo actor behind the HTTP server, run as
// an operator would: at a terminal (a pseudo-terminal as its stderr) the
// host child's first compile shows on a status line and start-up ends with
// a banner saying where echo, the metrics and the console are; piped, the
// logs are JSON with the compile's start and end lines relayed from the
// host child and the banner as one "node serves" line, and no status line.
func TestUpShowsProgressAndBanner(t *testing.T) {
	echo, manifest, httpPort := echoBehindHTTP(t, t.TempDir())
	echoURL := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)

	for _, atTerminal := range []bool{false, true} {
		t.Run(map[bool]string{false: "piped", true: "terminal"}[atTerminal], func(t *testing.T) {
			dir := t.TempDir()
			metricsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			consoleAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			cmd := exec.Command(binPath, "up", "--apply", manifest)
			cmd.Env = nodeEnviron(map[string]string{"HOME": filepath.Join(dir, "home"), config.EnvDataDir: filepath.Join(dir, "data"),
				config.EnvNATSListen: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), config.EnvMetricsAddr: metricsAddr,
				config.EnvConsoleAddr: consoleAddr, config.EnvLogLevel: "info", config.EnvAllowFileLoad: "true"})
			out := &testenv.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if atTerminal {
				pt, tty := testenv.PTY(t)
				cmd.Stderr = tty
				go func() { _, _ = io.Copy(out, pt) }() // ends when the test closes pt
			}
			exited := runNode(t, cmd, out)

			banner := []string{"echo     " + echoURL, "metrics  http://" + metricsAddr + "/metrics", "console  http://" + consoleAddr}
			testenv.CheckFor(t, 3*time.Minute, 100*time.Millisecond, func() error {
				select {
				case <-exited:
					t.Fatalf("latticed up exited: %v", cmd.ProcessState)
				default:
				}
				if atTerminal {
					for _, b := range banner {
						if !strings.Contains(out.String(), b) {
							return fmt.Errorf("no banner line %q yet", b)
						}
					}
					return nil
				}
				if serves := jsonLine(out.String(), "node serves"); serves == nil {
					return fmt.Errorf("no node serves line yet")
				}
				return nil
			})
			if code, _, err := getBody(echoURL); err != nil || code != http.StatusOK {
				t.Fatalf("echo at the banner's URL %s: %d, %v", echoURL, code, err)
			}
			got := out.String()
			if atTerminal {
				// The status line named the actor and its size, and was
				// cleared before the next log line.
				status := "\r\x1b[K… compiling echo (" + progress.FormatBytes(int64(len(echo.Module))) + ") "
				if !strings.Contains(got, status) || !strings.Contains(got, "\r\x1b[Ktime=") {
					t.Fatalf("no status line %q cleared before the logs", status)
				}
				if strings.Index(got, status) > strings.Index(got, banner[0]) {
					t.Fatal("the status line came after the banner")
				}
				return
			}
			if strings.Contains(got, "…") || strings.Contains(got, "\x1b[") {
				t.Fatal("piped output has a status line")
			}
			serves := jsonLine(got, "node serves")
			if serves["http"] != "echo "+echoURL || serves["metrics"] != "http://"+metricsAddr+"/metrics" || serves["console"] != "http://"+consoleAddr+"/" {
				t.Errorf("node serves line %v, want echo at %s, the metrics and the console", serves, echoURL)
			}
			// The actor serves from the interpreter before its compile ends,
			// so the node may be ready first: wait for the compile's end.
			testenv.CheckFor(t, 3*time.Minute, 100*time.Millisecond, func() error {
				if jsonLine(out.String(), progress.CompileFinished) == nil {
					return fmt.Errorf("no %s line yet", progress.CompileFinished)
				}
				return nil
			})
			got = out.String()
			for _, msg := range []string{progress.CompileStarted, progress.CompileFinished} {
				l := jsonLine(got, msg)
				if l == nil || l["child"] != "host" || l[progress.KeyName] != "echo" || l[progress.KeyWasmBytes] != float64(len(echo.Module)) {
					t.Errorf("%s line relayed from the host child: %v", msg, l)
				}
			}
		})
	}
}

// jsonLine is the first JSON log line in logs with message msg, or nil.
func jsonLine(logs, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// `ctl start` waiting on a host shows a status line at a terminal and
// clears it when the wait ends; piped, it writes nothing.
func TestTerminalStepOnlyAtATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	terminalStep(context.Background(), w, "starting echo")()
	w.Close()
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Fatalf("piped: %q, want nothing", b)
	}

	pt, tty := testenv.PTY(t)
	out := &testenv.SyncBuffer{}
	copied := make(chan struct{})
	go func() { defer close(copied); _, _ = io.Copy(out, pt) }() // EIO once the terminal end is closed
	stop := terminalStep(context.Background(), tty, "starting echo")
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if strings.Count(out.String(), "… starting echo") < 2 {
			return fmt.Errorf("not redrawn yet: %q", out.String())
		}
		return nil
	})
	stop()
	tty.Close()
	<-copied
	if s := out.String(); !strings.HasPrefix(s, "… starting echo 0.") || !strings.Contains(s, "\r\x1b[K… starting echo ") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("at a terminal: %q, want the step drawn, redrawn and cleared", s)
	}
}
