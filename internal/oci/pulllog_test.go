package oci

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// Each pull logs a start line and one end line: pulled, with the bytes,
// whether they came from the digest cache and the seconds taken, or
// failed, with the error. A download says how far it got in progress
// records, at a level below every level a node logs at.
func TestPullLogsStartAndEnd(t *testing.T) {
	reg := testenv.Registry(t, nil)
	ctx := context.Background()
	logs := &testenv.SyncBuffer{}
	c := newClient(t, reg, Settings{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: progress.LevelProgress}))})
	data := randomBytes(t, 300<<10)
	ref := reg + "/logged:1"
	if _, err := c.Push(ctx, ref, Actor, data, false); err != nil {
		t.Fatal(err)
	}
	missing := reg + "/missing:1"
	for _, pull := range []string{ref, ref, missing} {
		_, err := c.Pull(ctx, pull, Actor)
		if (err != nil) != (pull == missing) {
			t.Fatalf("pull %s: %v", pull, err)
		}
	}

	type line struct {
		msg, ref string
		bytes    any
		cached   any
		err      bool
	}
	var got []line
	progressed := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		msg := rec["msg"].(string)
		if msg == progress.PullProgress {
			// Only the cold pull downloads: its progress comes between its
			// start and end lines, with the bytes so far and the total.
			if len(got) != 1 || rec[progress.KeyRef] != ref || rec["level"] != "DEBUG-4" ||
				rec[progress.KeyTotal] != float64(len(data)) || rec[progress.KeyBytes].(float64) <= 0 {
				t.Errorf("progress record %v after lines %v", rec, got)
			}
			progressed++
			continue
		}
		if msg != progress.PullStarted && msg != progress.PullFinished && msg != progress.PullFailed {
			continue
		}
		if rec["kind"] != Actor.String() {
			t.Errorf("%s line without the kind: %v", msg, rec)
		}
		if s, ok := rec[progress.KeySeconds].(float64); (msg == progress.PullStarted) == ok || (ok && s <= 0) {
			t.Errorf("%s line's seconds: %v", msg, rec)
		}
		_, hasErr := rec["err"]
		got = append(got, line{msg: msg, ref: rec[progress.KeyRef].(string), bytes: rec[progress.KeyBytes], cached: rec[progress.KeyCached], err: hasErr})
	}
	size := float64(len(data))
	want := []line{
		{msg: progress.PullStarted, ref: ref},
		{msg: progress.PullFinished, ref: ref, bytes: size, cached: false},
		{msg: progress.PullStarted, ref: ref},
		{msg: progress.PullFinished, ref: ref, bytes: size, cached: true},
		{msg: progress.PullStarted, ref: missing},
		{msg: progress.PullFailed, ref: missing, err: true},
	}
	if progressed == 0 {
		t.Error("the cold pull made no progress record")
	}
	if len(got) != len(want) {
		t.Fatalf("pull lines:\n%v\nwant\n%v\nlog:\n%s", got, want, logs.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
