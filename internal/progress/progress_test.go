package progress

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// clock is a time the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestLine() (*Line, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	l := New(&buf)
	l.now = c.now
	return l, &buf, c
}

func TestIsTerminalRefusesWhatIsNotOne(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, w := range map[string]any{"pipe": w, "/dev/null": null, "file": file, "buffer": &bytes.Buffer{}, "nil": nil} {
		if IsTerminal(w) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}

// The status line shows each step with its size and seconds so far, is
// cleared before a log line and drawn again after it, counts up, and goes
// when its steps end.
func TestLineDrawsClearsAndEnds(t *testing.T) {
	l, buf, c := newTestLine()
	l.Start("compiling K1", "compiling echo", 2_700_000)
	if got, want := buf.String(), "… compiling echo (2.7 MB) 0.0s"; got != want {
		t.Fatalf("after Start: %q, want %q", got, want)
	}
	buf.Reset()
	c.t = c.t.Add(1500 * time.Millisecond)
	if _, err := l.Write([]byte("level=INFO msg=hello\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "\r\x1b[Klevel=INFO msg=hello\n… compiling echo (2.7 MB) 1.5s"; got != want {
		t.Fatalf("log line: %q, want %q", got, want)
	}
	buf.Reset()
	l.Start("pulling r", "pulling localhost:5000/echo:1", 0)
	if got, want := buf.String(), "\r\x1b[K… compiling echo (2.7 MB) 1.5s, pulling localhost:5000/echo:1 0.0s"; got != want {
		t.Fatalf("two steps: %q, want %q", got, want)
	}
	buf.Reset()
	l.End("compiling K1")
	l.End("pulling r")
	if got, want := buf.String(), "\r\x1b[K… pulling localhost:5000/echo:1 0.0s\r\x1b[K"; got != want {
		t.Fatalf("ends: %q, want %q", got, want)
	}
	buf.Reset()
	if _, err := l.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "after\n" {
		t.Fatalf("with no step, a log line is written as it is: %q", buf.String())
	}
}

// A step whose end line never came (its process died) leaves the line.
func TestLineDropsStaleSteps(t *testing.T) {
	l, buf, c := newTestLine()
	l.Start("compiling K1", "compiling echo", 0)
	c.t = c.t.Add(maxShown + time.Second)
	buf.Reset()
	_, _ = l.Write([]byte("x\n"))
	if got := buf.String(); got != "\r\x1b[Kx\n" {
		t.Fatalf("stale step still drawn: %q", got)
	}
}

func TestRunCountsUpAndClearsAtTheEnd(t *testing.T) {
	var buf testenv.SyncBuffer
	l := New(&buf)
	l.Start("compiling K1", "compiling echo", 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), "\r\x1b[K… compiling echo") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("not redrawn: %q", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !strings.HasSuffix(buf.String(), "\r\x1b[K") {
		t.Fatalf("line not cleared when Run ends: %q", buf.String())
	}
}

// Follow turns the steps' start and end lines into the status line: from
// the process's own logger (ints) and from a child's relayed JSON records
// (json.Number, fields given with WithAttrs), and even when the log
// level hides the lines.
func TestFollowShowsStepsFromTheirLogLines(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		log   func(*slog.Logger)
		want  string // the status line after the start line
	}{
		{"compile in this process", slog.LevelInfo, func(l *slog.Logger) {
			l.Info(CompileStarted, KeyActor, "MKEY", KeyName, "echo", KeyWasmBytes, 2_700_000, KeyCached, false)
		}, "… compiling echo (2.7 MB) 0.0s"},
		{"compile relayed from the host child", slog.LevelInfo, func(l *slog.Logger) {
			l.With("child", "host").Info(CompileStarted, KeyActor, "MKEY", KeyName, "", KeyWasmBytes, json.Number("1234"), KeyCached, true)
		}, "… compiling MKEY (1.2 kB) 0.0s"},
		{"pull at level warn", slog.LevelWarn, func(l *slog.Logger) {
			l.With(KeyRef, "localhost:5000/echo:1").Info(PullStarted, "kind", "actor")
		}, "… pulling localhost:5000/echo:1 0.0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, buf, _ := newTestLine()
			var logs bytes.Buffer
			log := slog.New(Follow(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: tc.level}), l))
			tc.log(log)
			if !strings.HasSuffix(buf.String(), tc.want) {
				t.Fatalf("status line %q, want it to end with %q", buf.String(), tc.want)
			}
			if shown := logs.Len() > 0; shown != (tc.level <= slog.LevelInfo) {
				t.Errorf("level %v: start line logged = %v", tc.level, shown)
			}
			buf.Reset()
			log.Debug("unrelated")
			for _, end := range []string{CompileFinished, PullFailed} {
				log.Warn(end, KeyActor, "MKEY", KeyRef, "localhost:5000/echo:1")
			}
			if buf.String() != "\r\x1b[K" {
				t.Fatalf("after the end line: %q, want the line cleared", buf.String())
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 2_700_000: "2.7 MB", 3 << 30: "3.2 GB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A pull's progress records move its status line on (bytes so far of the
// total) and are printed by no log; a child's Relay lets them out of its
// log whatever its level, as JSON its supervisor reads back at their level.
func TestPullProgressFromAChild(t *testing.T) {
	var child bytes.Buffer
	clog := slog.New(Relay(slog.NewJSONHandler(&child, &slog.HandlerOptions{Level: slog.LevelWarn})))
	clog.Info(PullStarted, KeyRef, "r:1") // below the child's level: not relayed
	clog.Debug("debug")
	clog.Log(context.Background(), LevelProgress, PullProgress, KeyRef, "r:1", KeyBytes, 1_200_000, KeyTotal, 27_000_000)
	lines := strings.Split(strings.TrimSpace(child.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"DEBUG-4"`) || !strings.Contains(lines[0], `"msg":"`+PullProgress+`"`) {
		t.Fatalf("child's output %q, want the progress record alone", child.String())
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte("DEBUG-4")); err != nil || lvl != LevelProgress {
		t.Fatalf("the supervisor reads the level back as %v, %v", lvl, err)
	}

	l, buf, _ := newTestLine()
	var logs bytes.Buffer
	log := slog.New(Follow(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}), l))
	log.Info(PullStarted, KeyRef, "r:1")
	buf.Reset()
	// As the supervisor re-emits the child's JSON record: float64 numbers.
	log.Log(context.Background(), LevelProgress, PullProgress, KeyRef, "r:1", KeyBytes, 1.2e6, KeyTotal, 2.7e7)
	if got, want := buf.String(), "\r\x1b[K… pulling r:1 (1.2 MB of 27.0 MB) 0.0s"; got != want {
		t.Fatalf("status line %q, want %q", got, want)
	}
	if strings.Contains(logs.String(), PullProgress) {
		t.Fatalf("a progress record was logged at level debug: %q", logs.String())
	}
	buf.Reset()
	log.Log(context.Background(), LevelProgress, PullProgress, KeyRef, "other:1", KeyBytes, 5, KeyTotal, 10)
	if buf.Len() != 0 {
		t.Fatalf("progress of a pull not shown drew %q", buf.String())
	}
}

// A status line longer than the terminal is wide is cut, so that it never
// wraps onto a second row that clearing would leave behind.
func TestLineFitsOneRow(t *testing.T) {
	l, buf, _ := newTestLine()
	long := strings.Repeat("x", 200)
	l.Start("pulling "+long, "pulling "+long, 0)
	if got := []rune(buf.String()); len(got) != defaultWidth-1 || got[len(got)-1] != '…' {
		t.Fatalf("status line of %d characters: %q", len(got), buf.String())
	}
}
