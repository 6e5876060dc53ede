// Package progress shows a person at a terminal what a long step is doing:
// a first compile of an actor (seconds) or an OCI pull. The steps log a start
// and an end line (the messages and fields below, defined once here); at a
// terminal, Follow turns those lines into one status line, redrawn in place
// with what runs, its size and the seconds so far, and cleared before every
// log line so that the two never mix. Only a terminal gets it: JSON logs and
// piped output have the start and end lines alone.
//
// The lines a host child logs reach its supervisor as JSON records
// (internal/child re-emits them through the supervisor's logger), so the
// supervisor's Follow sees a compile in the host as it would its own pull.
package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// The start and end lines of the long steps, and their fields. Each step
// logs its start at info, and exactly one end line: finished (info) or
// failed (warn, with an "err" field).
const (
	CompileStarted  = "actor compile started"
	CompileFinished = "actor compile finished"
	CompileFailed   = "actor compile failed"
	PullStarted     = "OCI pull started"
	PullFinished    = "OCI artifact pulled"
	PullFailed      = "OCI pull failed"

	// KeyActor names the actor a compile is for (its public key), and
	// KeyName the actor's name from its claims.
	KeyActor = "actor"
	KeyName  = "name"
	// KeyWasmBytes is the size of the module compiled.
	KeyWasmBytes = "wasm_bytes"
	// KeyRef is the OCI reference pulled.
	KeyRef = "ref"
	// KeyBytes is the size of what was pulled (in a progress record: the
	// bytes so far).
	KeyBytes = "bytes"
	// KeyCached says the step was served from a cache: the compile
	// cache (compiled code on disk) or the OCI digest cache.
	KeyCached = "cached"
	// KeySeconds is how long the step took.
	KeySeconds = "seconds"

	// PullProgress is a pull's progress record: KeyRef, KeyBytes so far
	// and KeyTotal, at LevelProgress.
	PullProgress = "OCI pull progress"
	// KeyTotal is the size a step will have reached when it is done.
	KeyTotal = "total_bytes"
)

// LevelProgress is the level of progress records: below every level a node
// logs at, so no log prints them, while Follow shows them and Relay lets
// them through a child's log to its supervisor.
const LevelProgress = slog.LevelDebug - 4

// step is one kind of long step as its log lines show it.
type step struct {
	verb        string // at the terminal: "compiling echo"
	start, ends []string
	progress    string // the message of its progress records, if it has them
	id, label   string // the field naming this run of the step; the one naming it for a person
	size        string // the field with its size
}

var steps = []step{
	{verb: "compiling", start: []string{CompileStarted}, ends: []string{CompileFinished, CompileFailed},
		id: KeyActor, label: KeyName, size: KeyWasmBytes},
	{verb: "pulling", start: []string{PullStarted}, ends: []string{PullFinished, PullFailed}, progress: PullProgress,
		id: KeyRef, label: KeyRef, size: KeyBytes},
}

// IsTerminal reports whether w is a terminal, where a person reads: not a
// pipe, a file, /dev/null or a log collector. (A character-device test
// would take /dev/null for a terminal.)
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Line is the status line at the bottom of a terminal. Everything written
// to the terminal must go through Write, which clears the line first and
// draws it again after.
type Line struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	runs  []*run // in the order they started
	drawn bool   // the status line is on the screen
}

type run struct {
	key   string // verb and id
	what  string
	size  int64
	done  int64 // bytes so far, 0 when the step does not say
	since time.Time
}

// New returns the status line of terminal w.
func New(w io.Writer) *Line { return &Line{w: w, now: time.Now} }

// Write writes p (whole log lines) above the status line.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	n, err := l.w.Write(p)
	l.draw()
	return n, err
}

// Start shows a step: what runs (its verb and a label) and its size in
// bytes (0: unknown). A step already shown with this key starts over.
func (l *Line) Start(key, what string, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remove(key)
	l.runs = append(l.runs, &run{key: key, what: what, size: size, since: l.now()})
	l.clear()
	l.draw()
}

// Update sets the bytes a step has done so far, and its size.
func (l *Line) Update(key string, done, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.runs {
		if r.key == key {
			r.done, r.size = done, size
			l.clear()
			l.draw()
			return
		}
	}
}

// End takes a step off the line.
func (l *Line) End(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.remove(key) {
		return
	}
	l.clear()
	l.draw()
}

// Run redraws the line every interval, so the seconds count up, until ctx
// ends; then it clears the line.
func (l *Line) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.clear()
			l.mu.Unlock()
			return
		case <-t.C:
			l.mu.Lock()
			l.clear()
			l.draw()
			l.mu.Unlock()
		}
	}
}

// remove takes the step off the list and says whether it was there.
func (l *Line) remove(key string) bool {
	for i, r := range l.runs {
		if r.key == key {
			l.runs = append(l.runs[:i], l.runs[i+1:]...)
			return true
		}
	}
	return false
}

// clear erases the status line: carriage return, erase to end of line.
func (l *Line) clear() {
	if l.drawn {
		_, _ = io.WriteString(l.w, "\r\x1b[K")
		l.drawn = false
	}
}

// maxShown is how long a step stays on the line without its end line: one
// whose process died before it could say so must not stay there for good.
const maxShown = 10 * time.Minute

// draw writes the status line (no newline: the cursor stays on it).
func (l *Line) draw() {
	now := l.now()
	l.runs = slices.DeleteFunc(l.runs, func(r *run) bool { return now.Sub(r.since) > maxShown })
	if len(l.runs) == 0 {
		return
	}
	parts := make([]string, len(l.runs))
	for i, r := range l.runs {
		parts[i] = r.what
		switch {
		case r.done > 0 && r.size > 0:
			parts[i] += " (" + FormatBytes(r.done) + " of " + FormatBytes(r.size) + ")"
		case r.done > 0:
			parts[i] += " (" + FormatBytes(r.done) + ")"
		case r.size > 0:
			parts[i] += " (" + FormatBytes(r.size) + ")"
		}
		parts[i] += fmt.Sprintf(" %.1fs", now.Sub(r.since).Seconds())
	}
	status := []rune("… " + strings.Join(parts, ", "))
	if width := l.width(); len(status) > width {
		// A line that wraps could not be cleared: "\r\x1b[K" clears the
		// last row only.
		status = append(status[:width-1], '…')
	}
	_, _ = io.WriteString(l.w, string(status))
	l.drawn = true
}

// defaultWidth is the width of a terminal that does not say its own.
const defaultWidth = 80

// width is how many characters fit on one row of the terminal, less one
// so that the cursor never wraps.
func (l *Line) width() int {
	if f, ok := l.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 10 {
			return w - 1
		}
	}
	return defaultWidth - 1
}

// FormatBytes is n for a person: 2.7 MB, 512 B.
func FormatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGT"[exp])
}

// Follow wraps h so that the start and end lines of the long steps it
// handles show on l. Records pass on to h unchanged.
func Follow(h slog.Handler, l *Line) slog.Handler { return &follower{next: h, line: l} }

type follower struct {
	next  slog.Handler
	line  *Line
	attrs []slog.Attr // from WithAttrs
}

func (f *follower) Enabled(ctx context.Context, level slog.Level) bool {
	// The step lines (info and warn) are followed even when the level
	// hides them: the terminal line must end as surely as it started.
	return level >= slog.LevelInfo || level == LevelProgress || f.next.Enabled(ctx, level)
}

func (f *follower) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == LevelProgress {
		f.progress(r)
		return f.handle(ctx, r)
	}
	// A step shows under its start line and is gone before its end line.
	s, start := f.observe(r)
	if s != nil && !start {
		f.show(r, s, false)
	}
	err := f.handle(ctx, r)
	if s != nil && start {
		f.show(r, s, true)
	}
	return err
}

func (f *follower) handle(ctx context.Context, r slog.Record) error {
	if !f.next.Enabled(ctx, r.Level) {
		return nil
	}
	return f.next.Handle(ctx, r)
}

func (f *follower) WithAttrs(as []slog.Attr) slog.Handler {
	return &follower{next: f.next.WithAttrs(as), line: f.line, attrs: append(f.attrs[:len(f.attrs):len(f.attrs)], as...)}
}

func (f *follower) WithGroup(name string) slog.Handler {
	return &follower{next: f.next.WithGroup(name), line: f.line, attrs: f.attrs}
}

// observe says which step r is a line of, if any, and whether it starts it.
func (f *follower) observe(r slog.Record) (s *step, start bool) {
	for i := range steps {
		switch {
		case slices.Contains(steps[i].start, r.Message):
			return &steps[i], true
		case slices.Contains(steps[i].ends, r.Message):
			return &steps[i], false
		}
	}
	return nil, false
}

// progress updates the step a progress record is of.
func (f *follower) progress(r slog.Record) {
	for _, s := range steps {
		if s.progress != "" && s.progress == r.Message {
			fields := f.fields(r)
			f.line.Update(s.verb+" "+fields[s.id].String(), number(fields[KeyBytes]), number(fields[KeyTotal]))
			return
		}
	}
}

// fields are r's attributes and those given to WithAttrs, by key.
func (f *follower) fields(r slog.Record) map[string]slog.Value {
	fields := map[string]slog.Value{}
	for _, a := range f.attrs {
		fields[a.Key] = a.Value.Resolve()
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Resolve()
		return true
	})
	return fields
}

// show starts or ends step s on the line, by r's fields.
func (f *follower) show(r slog.Record, s *step, start bool) {
	fields := f.fields(r)
	id := fields[s.id].String()
	key := s.verb + " " + id
	if !start {
		f.line.End(key)
		return
	}
	label := id
	if v, ok := fields[s.label]; ok && v.String() != "" {
		label = v.String()
	}
	f.line.Start(key, s.verb+" "+label, number(fields[s.size]))
}

// number reads a size field, whichever kind it arrives as: an int from the
// process's own logger, a json.Number (or float64) from a child's JSON line.
func number(v slog.Value) int64 {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	case slog.KindFloat64:
		return int64(v.Float64())
	case slog.KindAny:
		switch n := v.Any().(type) {
		case float64:
			return int64(n)
		case json.Number: // a child's JSON record, as internal/child decodes it
			i, _ := n.Int64()
			return i
		}
	}
	return 0
}

// Relay wraps a child process's log handler so that progress records reach
// its output too (and from there its supervisor's Follow), whatever its
// level; nothing else changes.
func Relay(h slog.Handler) slog.Handler { return relay{h} }

type relay struct{ slog.Handler }

func (r relay) Enabled(ctx context.Context, level slog.Level) bool {
	return level == LevelProgress || r.Handler.Enabled(ctx, level)
}

func (r relay) WithAttrs(as []slog.Attr) slog.Handler { return relay{r.Handler.WithAttrs(as)} }
func (r relay) WithGroup(name string) slog.Handler    { return relay{r.Handler.WithGroup(name)} }
