package child

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/latticed/latticed/internal/metrics"
)

// ExitReason says why a child process ended. The same value is the reason
// label of the child metrics, the exit_reason in inventories and events.
type ExitReason string

// Exit reasons.
const (
	ExitCleanStop   ExitReason = "clean_stop"          // asked to stop, and it did
	ExitCrash       ExitReason = "crash"               // ended on its own (any status) or by a signal
	ExitRevoked     ExitReason = "revoked"             // its NATS user was revoked and the process stopped
	ExitHealthCheck ExitReason = "health_check_failed" // stopped after failing health checks
	ExitCrashLoop   ExitReason = "crash_loop"          // crashed too often; not restarted until told
)

// ExitReasons lists every reason (metrics pre-create a series per reason).
var ExitReasons = []ExitReason{ExitCleanStop, ExitCrash, ExitRevoked, ExitHealthCheck, ExitCrashLoop}

// Exit describes how one run of a child ended.
type Exit struct {
	Reason ExitReason
	Code   int    // exit status; -1 when killed by a signal
	Signal string // e.g. "killed", "segmentation fault"; "" when it exited
	At     time.Time
	Uptime time.Duration
}

// String is the human form shown in inventories, e.g. "crash: exit status 3".
func (e Exit) String() string {
	switch {
	case e.Reason == "":
		return ""
	case e.Signal != "":
		return fmt.Sprintf("%s: signal: %s", e.Reason, e.Signal)
	default:
		return fmt.Sprintf("%s: exit status %d", e.Reason, e.Code)
	}
}

// Command is how to start one child process.
type Command struct {
	Name  string   // identity in the supervisor's log: "host", "provider V…/default"
	Path  string   // executable
	Args  []string // without argv[0]
	Env   []string // the complete environment: nothing is inherited implicitly
	Stdin []byte   // written to stdin at start; the pipe then stays open until exit
	// Secrets are the values handed to the child (seeds, the HostData line
	// and its JSON) that its output must never carry into the log, in any
	// encoding the redactor knows.
	Secrets []string
	// OnMetricsAddr, if set, receives the loopback address a child announces
	// for its private metrics endpoint (a JSON output line with the field
	// metrics.AnnounceKey).
	OnMetricsAddr func(addr string)
}

// Process is a started child, in its own process group.
type Process struct {
	name    string
	cmd     *exec.Cmd
	pid     int
	started time.Time
	stdin   io.WriteCloser
	done    chan struct{} // closed once the process was reaped
	state   *os.ProcessState
}

// spawnRequests is served by one goroutine locked to its OS thread for the
// life of the program. Linux delivers a child's parent-death signal when the
// *thread* that forked it exits, and the Go runtime may retire threads, so
// every child is forked from this one thread, which never exits.
var spawnRequests = sync.OnceValue(func() chan spawnRequest {
	ch := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range ch {
			r.result <- r.cmd.Start()
		}
	}()
	return ch
})

type spawnRequest struct {
	cmd    *exec.Cmd
	result chan error
}

// Start starts spec in its own process group, with a parent-death signal,
// its output captured line by line into log with child=spec.Name.
func Start(spec Command, log *slog.Logger) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.SysProcAttr = childProcAttr()
	red := newRedactor(spec.Secrets...)
	out := &lineLogger{log: log, child: spec.Name, stream: "stdout", onAddr: spec.OnMetricsAddr, redact: red}
	errw := &lineLogger{log: log, child: spec.Name, stream: "stderr", onAddr: spec.OnMetricsAddr, redact: red}
	cmd.Stdout, cmd.Stderr = out, errw
	// Wait returns at most this long after the process ended even if a
	// grandchild still holds its output pipes.
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	req := spawnRequest{cmd: cmd, result: make(chan error, 1)}
	spawnRequests() <- req
	if err := <-req.result; err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Path, err)
	}
	p := &Process{name: spec.Name, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), stdin: stdin, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		out.flush()
		errw.flush()
		close(p.done)
	}()
	if len(spec.Stdin) > 0 {
		// A child that never reads stdin must not block us: the pipe buffer
		// (64 KiB) holds any HostData line; write in the background anyway.
		go func() { _, _ = stdin.Write(spec.Stdin) }()
	}
	return p, nil
}

// Done is closed when the process has ended and was reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Name is the process's identity in the log (Command.Name).
func (p *Process) Name() string { return p.name }

// PID is the process's id, also its process group's.
func (p *Process) PID() int { return p.pid }

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.started }

// SignalGroup sends sig to the child's whole process group.
func (p *Process) SignalGroup(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Kill ends the process group at once and waits until it was reaped.
func (p *Process) Kill() {
	p.SignalGroup(syscall.SIGKILL)
	<-p.done
	// Anything left in the group (a grandchild that ignored nothing: SIGKILL
	// cannot be ignored) is gone too; sweep once more for late forks.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// Terminate asks the group to stop with SIGTERM and kills it after grace.
func (p *Process) Terminate(grace time.Duration) {
	p.SignalGroup(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	case <-t.C:
		p.Kill()
	}
}

// WaitDone waits for the process to end, up to d; it reports whether it did.
func (p *Process) WaitDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Exit classifies how the process ended; reason is what the supervisor
// asked for ("" = nothing: the process ended on its own, a crash). Call it
// once Done is closed.
func (p *Process) Exit(reason ExitReason) Exit {
	e := Exit{Reason: reason, At: time.Now(), Uptime: time.Since(p.started), Code: -1}
	if reason == "" {
		e.Reason = ExitCrash
	}
	if p.state == nil {
		return e
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
		return e
	}
	e.Code = p.state.ExitCode()
	return e
}

// seedPattern matches nkeys seeds; a child's output is scrubbed of them
// before it reaches the supervisor's log. It catches seeds the supervisor
// did not hand out; the redactor catches those it did, in other encodings.
var seedPattern = regexp.MustCompile(`\bS[ACMNOUVX][A-Z2-7]{56}\b`)

// lineLogger re-emits a child's output through the supervisor's logger, one
// record per line, with the child's identity. JSON lines (slog, tracing)
// keep their level, message and fields.
type lineLogger struct {
	log    *slog.Logger
	child  string
	stream string
	onAddr func(string)
	redact *redactor // nil: no secrets handed out
	mu     sync.Mutex
	buf    []byte
}

// maxLine bounds one log line; longer lines are cut.
const maxLine = 64 << 10

func (w *lineLogger) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b...)
			if len(w.buf) > maxLine {
				w.emit(w.buf[:maxLine])
				w.buf = w.buf[:0]
			}
			break
		}
		w.buf = append(w.buf, b[:i]...)
		w.emit(w.buf)
		w.buf = w.buf[:0]
		b = b[i+1:]
	}
	return n, nil
}

func (w *lineLogger) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	line = w.redact.redact(line)
	if line[0] == '{' {
		if rec, ok := decodeRecord(line); ok {
			// Decoding undoes JSON escapes that hid a secret from the raw line.
			w.emitJSON(w.redact.redactValue(rec).(map[string]any))
			return
		}
	}
	w.log.Info(string(line), "child", w.child, "stream", w.stream)
}

// decodeRecord decodes a JSON log line. Numbers keep their digits
// (json.Number): a size of 2745600 bytes is re-emitted as 2745600, not as
// the float 2.7456e+06 a text log would print.
func decodeRecord(line []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var rec map[string]any
	if dec.Decode(&rec) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // more than one value: not a record
	}
	return rec, true
}

func (w *lineLogger) emitJSON(rec map[string]any) {
	if a, ok := rec[metrics.AnnounceKey].(string); ok && w.onAddr != nil && isLoopbackAddr(a) {
		w.onAddr(a)
	}
	level := slog.LevelInfo
	if s, ok := rec["level"].(string); ok {
		var l slog.Level
		if l.UnmarshalText([]byte(s)) == nil {
			level = l
		} else if s == "TRACE" || s == "trace" {
			level = slog.LevelDebug
		}
	}
	msg, _ := rec["msg"].(string)
	if msg == "" {
		if m, ok := rec["message"].(string); ok {
			msg = m
		} else if f, ok := rec["fields"].(map[string]any); ok {
			msg, _ = f["message"].(string)
		}
	}
	attrs := make([]any, 0, 2*len(rec)+2)
	attrs = append(attrs, "child", w.child)
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		switch k {
		case "time", "timestamp", "level", "msg", "message":
			continue
		}
		attrs = append(attrs, k, rec[k])
	}
	w.log.Log(context.Background(), level, msg, attrs...)
}

// isLoopbackAddr reports whether addr is ip:port on a loopback IP: the only
// addresses the supervisor scrapes on a child's word.
func isLoopbackAddr(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().IsLoopback() && ap.Port() != 0
}
