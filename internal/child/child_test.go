package child

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/restart"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// shChild is a Child whose runs are real /bin/sh processes running script,
// each minted one made-up user, with what the hooks saw recorded.
type shChild struct {
	*Child
	m *metrics.Metrics

	mu      sync.Mutex
	starts  int
	revoked []string
	failed  int
	ended   []ExitReason
}

func newShChild(t *testing.T, script string, policy restart.Policy) *shChild {
	t.Helper()
	var buf testenv.SyncBuffer
	c := &shChild{m: metrics.New()}
	c.Child = New(Spec{
		Name: "test", Noun: "the test child", Role: metrics.RoleProvider, RearmHint: "rearm it",
		Policy: policy, Log: testenv.JSONLogger(&buf), Metrics: c.m,
		Revoke: func(_ context.Context, user string) error {
			c.mu.Lock()
			c.revoked = append(c.revoked, user)
			c.mu.Unlock()
			return nil
		},
		Hooks: Hooks{
			Start: func(context.Context) (*Process, []string, error) {
				c.mu.Lock()
				c.starts++
				user := fmt.Sprintf("U%d", c.starts)
				c.mu.Unlock()
				p, err := Start(Command{Name: "test", Path: "/bin/sh", Args: []string{"-c", script}}, testenv.JSONLogger(&buf))
				return p, []string{user}, err
			},
			Watch: func(ctx context.Context, p *Process) ExitReason {
				c.Ready()
				select {
				case <-p.Done():
					return ""
				case <-ctx.Done(): // stopped: end the process as the host child does
					p.Terminate(5 * time.Second)
					return ExitCleanStop
				}
			},
			Failed: func(Exit) {
				c.mu.Lock()
				c.failed++
				c.mu.Unlock()
			},
			Ended: func(r ExitReason) {
				c.mu.Lock()
				c.ended = append(c.ended, r)
				c.mu.Unlock()
			},
		},
	})
	return c
}

// run runs the loop until the test ends; the returned channel gets why it ended.
func (c *shChild) run(t *testing.T, ctx context.Context) <-chan ExitReason {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan ExitReason, 1)
	go func() { out <- c.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Error("the loop did not end")
		}
	})
	return out
}

// waitEnded waits for the loop to end, after what, and checks why.
func waitEnded(t *testing.T, ended <-chan ExitReason, want ExitReason, after string) {
	t.Helper()
	select {
	case r := <-ended:
		if r != want {
			t.Errorf("Run ended with %q, want %q", r, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not end %s", after)
	}
}

func (c *shChild) count(vec string, reason ExitReason) int {
	v := c.m.ChildExits
	if vec == "restarts" {
		v = c.m.ChildRestarts
	}
	return int(testutil.ToFloat64(v.WithLabelValues(metrics.RoleProvider, string(reason))))
}

func (c *shChild) waitState(t *testing.T, state string) {
	t.Helper()
	testenv.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		if st := c.State(); st != state {
			return fmt.Errorf("state %s, want %s", st, state)
		}
		return nil
	})
}

func (c *shChild) revokedUsers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.revoked...)
}

var fastPolicy = restart.Policy{Backoff: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Stable: time.Minute,
	CrashLoopCount: 3, CrashLoopWindow: time.Minute}

// A crashing process is restarted after a backoff until a crash loop marks
// it failed; each run's user is revoked as it ends; Rearm starts it again.
func TestChildRestartsACrashThenMarksACrashLoopFailed(t *testing.T) {
	c := newShChild(t, "exit 3", fastPolicy)
	c.run(t, context.Background())
	c.waitState(t, StateFailed)

	st := c.Status()
	if st.Restarts != 2 || st.PID != 0 || st.LastExit.String() != "crash: exit status 3" {
		t.Errorf("status %+v, want 2 restarts, no pid, crash: exit status 3", st)
	}
	for _, tc := range []struct {
		vec    string
		reason ExitReason
		want   int
	}{
		{"exits", ExitCrash, 3}, {"exits", ExitCrashLoop, 1}, {"restarts", ExitCrash, 2}, {"exits", ExitCleanStop, 0},
	} {
		if got := c.count(tc.vec, tc.reason); got != tc.want {
			t.Errorf("%s{%s} = %d, want %d", tc.vec, tc.reason, got, tc.want)
		}
	}
	if got := c.revokedUsers(); fmt.Sprint(got) != "[U1 U2 U3]" {
		t.Errorf("revoked users %v, want each run's: [U1 U2 U3]", got)
	}
	c.mu.Lock()
	failed := c.failed
	c.mu.Unlock()
	if failed != 1 {
		t.Errorf("Failed hook called %d times, want 1", failed)
	}

	// Rearmed, it runs (and, here, crash-loops) again with a fresh history.
	c.Rearm()
	testenv.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		if n := c.count("exits", ExitCrashLoop); n != 2 {
			return fmt.Errorf("%d crash loops, want 2", n)
		}
		return nil
	})
	if st := c.Status(); st.Restarts != 5 {
		t.Errorf("restarts after rearming: %d, want 5", st.Restarts)
	}
}

// Ending the context stops a running process (Watch's graceful stop); the
// loop reports a clean stop, counts it and revokes the run's user.
func TestChildStopsARunningProcessWhenItsContextEnds(t *testing.T) {
	c := newShChild(t, "exec sleep 60", fastPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	ended := c.run(t, ctx)
	c.waitState(t, StateRunning)
	pid := c.Status().PID
	if pid == 0 {
		t.Fatal("a running child has no pid")
	}
	cancel()
	waitEnded(t, ended, ExitCleanStop, "after its context")
	if st := c.State(); st != StateStopped {
		t.Errorf("state %s, want %s", st, StateStopped)
	}
	if n := c.count("exits", ExitCleanStop); n != 1 {
		t.Errorf("clean stops counted: %d, want 1", n)
	}
	if got := c.revokedUsers(); fmt.Sprint(got) != "[U1]" {
		t.Errorf("revoked users %v, want [U1]", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fmt.Sprint(c.ended) != "[clean_stop]" {
		t.Errorf("Ended hook told %v, want [clean_stop]", c.ended)
	}
}

// A revocation ends the child for good without restarting it, and the loop
// leaves the (already revoked) user alone; revoking twice is ErrRevoked.
func TestChildRevokedIsNotRestarted(t *testing.T) {
	c := newShChild(t, "exec sleep 60", fastPolicy)
	ended := c.run(t, context.Background())
	c.waitState(t, StateRunning)
	proc, err := c.Stop(ExitRevoked)
	if err != nil || proc == nil {
		t.Fatalf("Stop(revoked) = %v, %v; want the running process", proc, err)
	}
	c.Quit()
	proc.Kill()
	waitEnded(t, ended, ExitRevoked, "after the revocation")
	st := c.Status()
	if st.State != StateRevoked || st.Restarts != 0 || st.LastExit.Reason != ExitRevoked {
		t.Errorf("status %+v, want revoked, no restart", st)
	}
	if got := c.revokedUsers(); len(got) != 0 {
		t.Errorf("the loop revoked %v again", got)
	}
	if _, err := c.Stop(ExitRevoked); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoking again: %v, want ErrRevoked", err)
	}
}

// A stop while the child waits out its backoff ends the loop at once.
func TestChildStopDuringBackoffEndsTheLoop(t *testing.T) {
	c := newShChild(t, "exit 1", restart.Policy{Backoff: time.Hour, BackoffMax: time.Hour, CrashLoopCount: 100, CrashLoopWindow: time.Minute})
	ended := c.run(t, context.Background())
	c.waitState(t, StateBackoff)
	if proc, err := c.Stop(ExitCleanStop); err != nil || proc != nil {
		t.Fatalf("Stop during backoff = %v, %v; want no process", proc, err)
	}
	c.Quit()
	waitEnded(t, ended, ExitCleanStop, "after Stop and Quit")
	if st := c.Status(); st.State != StateStopped || st.Restarts != 0 {
		t.Errorf("status %+v, want stopped without a restart", st)
	}
}
