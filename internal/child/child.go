// Package child keeps one child process alive. A Child starts its process,
// follows each run until it ends, classifies why it ended (ExitReason),
// revokes the NATS users minted for that run, and starts it again after an
// exponential backoff with jitter, until a crash loop marks it failed
// (restart.go). Processes run in their own process groups with a
// parent-death signal, their output re-emitted in the supervisor's log
// without the secrets they were handed (process.go, redact.go).
//
// The supervisor runs the host and every provider instance as a Child; what
// differs between them (how a run starts, when it is ready or unhealthy,
// what an ended run means to the lattice) comes in through Hooks.
package child

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/restart"
	"github.com/latticed/latticed/lattice"
)

// Child states, as inventories and the admin socket's status show them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateBackoff  = "backoff" // crashed; restarts after a delay
	StateStopping = "stopping"
	StateStopped  = "stopped"
	StateFailed   = "failed" // crash loop: not restarted until told
	StateRevoked  = lattice.ProviderStateRevoked
)

// revokeTimeout bounds the revocation of one ended run's user.
const revokeTimeout = 5 * time.Second

// ErrRevoked is returned by Stop when asked to revoke a child that already
// was.
var ErrRevoked = errors.New("already revoked")

// Spec is what a Child needs to know of the child it keeps alive.
type Spec struct {
	Name string // the "child" attribute of its log records: "host", "provider V…/default"
	Noun string // how log messages name it: "the host", "provider"
	// Role is the role label of the child metrics (metrics.RoleHost,
	// metrics.RoleProvider); "<role> process ended" is its log message.
	Role string
	// RearmHint tells an operator, in the crash-loop log message, how to
	// have the child started again.
	RearmHint string
	Policy    restart.Policy
	Log       *slog.Logger
	Metrics   *metrics.Metrics // ChildExits and ChildRestarts are counted here
	// Revoke revokes one NATS user of an ended run, so a leaked credential
	// dies with its process; nil when users cannot be revoked.
	Revoke func(ctx context.Context, user string) error
	Hooks  Hooks
}

// Hooks are what the child's owner does at each step. Start and Watch are
// required; the others may be nil. They run on Run's goroutine (Start also
// on the caller's, through Child.Start), never under the Child's lock.
type Hooks struct {
	// Start begins one run: it mints the run's credentials, starts the
	// process (Start) and returns it with the public keys of the NATS users
	// minted for it, which are revoked when the run ends. Users returned
	// with an error are revoked too.
	Start func(ctx context.Context) (*Process, []string, error)
	// Watch follows a run until its process has ended: it waits for the
	// child to be ready (and then calls Child.Ready), checks its health, and
	// kills it when it is not. It returns why the supervisor ended the run
	// (ExitHealthCheck, ExitCleanStop), or "" when it ended on its own. ctx
	// ends when the child is told to stop (Run's ctx, or Quit).
	Watch func(ctx context.Context, p *Process) ExitReason
	// Exit is told of every ended run, once it is recorded and before its
	// users are revoked: the owner forgets what belonged to the run.
	Exit func(Exit)
	// Crashed is told of every run that ended without being asked to,
	// before the backoff.
	Crashed func(Exit)
	// Failed is told when a crash loop marks the child failed.
	Failed func(Exit)
	// Ended is told once, when the child ends for good: ExitCleanStop or
	// ExitRevoked.
	Ended func(ExitReason)
	// State is told of every state change (the state gauge follows it).
	State func(state string)
}

// Child keeps one child process alive, as its Spec says. Run is its
// supervision loop; the other methods are safe to call from any goroutine.
type Child struct {
	spec    Spec
	tracker *restartTracker // only Run's goroutine uses it
	rearm   chan struct{}
	quit    chan struct{} // closed by Quit: Run ends once no process runs
	quitMu  sync.Once
	done    chan struct{} // closed when Run returned

	mu       sync.Mutex // a leaf: nothing is called while it is held
	state    string
	proc     *Process // the running process, nil between runs
	users    []string // the running process's NATS users
	restarts int
	lastExit Exit
	// stopReason is why the child ends for good (a stop or a revocation),
	// "" while it may run. It outlives every run. A health-check kill is
	// not recorded here: it ends one run, which Watch reports, and the next
	// run starts with a clean slate.
	stopReason ExitReason
}

// New prepares a child in state starting; Run (or Start, then Run) starts it.
func New(spec Spec) *Child {
	if spec.Log == nil {
		spec.Log = slog.Default()
	}
	return &Child{
		spec: spec, tracker: newRestartTracker(spec.Policy),
		rearm: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		state: StateStarting,
	}
}

// Status is a child's state as inventories show it.
type Status struct {
	State    string
	PID      int // 0 between runs
	Restarts int
	LastExit Exit // how the last run ended; zero before the first ended
}

// Status reports the child's state.
func (c *Child) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state, Restarts: c.restarts, LastExit: c.lastExit}
	if c.proc != nil {
		st.PID = c.proc.pid
	}
	return st
}

// State is the child's state.
func (c *Child) State() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Process is the running process, nil between runs.
func (c *Child) Process() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// StopReason is why the child ends for good, "" while it may run.
func (c *Child) StopReason() ExitReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopReason
}

// Done is closed when Run has returned.
func (c *Child) Done() <-chan struct{} { return c.done }

func (c *Child) setState(st string) {
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
	c.changed(st)
}

func (c *Child) changed(st string) {
	if c.spec.Hooks.State != nil {
		c.spec.Hooks.State(st)
	}
}

// Ready marks a starting child running (Watch calls it once the run is
// ready).
func (c *Child) Ready() {
	c.mu.Lock()
	st := c.state
	if st == StateStarting {
		c.state, st = StateRunning, StateRunning
	}
	c.mu.Unlock()
	c.changed(st)
}

// Stop records that the child ends for good, and why: ExitCleanStop (it
// is being stopped: the state says stopping while a process runs) or
// ExitRevoked (a revocation outranks a stop; revoking a revoked child is
// ErrRevoked). It returns the running process, nil between runs, for the
// caller to end as it must; a run starting meanwhile is killed at once.
// Quit then ends the loop's waiting.
func (c *Child) Stop(reason ExitReason) (*Process, error) {
	c.mu.Lock()
	if reason == ExitRevoked && c.state == StateRevoked {
		c.mu.Unlock()
		return nil, ErrRevoked
	}
	if c.stopReason == "" || reason == ExitRevoked {
		c.stopReason = reason
	}
	proc, st := c.proc, c.state
	if reason == ExitCleanStop && proc != nil && st != StateRevoked {
		c.state, st = StateStopping, StateStopping
	}
	c.mu.Unlock()
	c.changed(st)
	return proc, nil
}

// Quit ends the supervision loop where it waits (backoff, crash loop):
// Run returns once no process runs. Call Stop first to say why.
func (c *Child) Quit() {
	c.quitMu.Do(func() { close(c.quit) })
}

// Rearm starts a failed (crash-looping) child again, and a child in
// backoff at once.
func (c *Child) Rearm() {
	select {
	case c.rearm <- struct{}{}:
	default:
	}
}

// untilQuit is ctx, ended by Quit too. Its goroutine ends with ctx: the
// caller cancels it when done.
func (c *Child) untilQuit(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Start begins a run through Hooks.Start, whose ctx Quit ends too, and
// records it. Run calls it for every run it starts; an owner that wants
// the first start's error calls it itself and hands the process to Run.
func (c *Child) Start(ctx context.Context) (*Process, error) {
	ctx, cancel := c.untilQuit(ctx)
	defer cancel()
	c.setState(StateStarting)
	proc, users, err := c.spec.Hooks.Start(ctx)
	c.mu.Lock()
	c.users = users
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.proc = proc
	// A stop or revocation that came while this process was starting saw
	// no process to end: end it here.
	ending := c.stopReason != ""
	c.mu.Unlock()
	if ending {
		proc.Kill()
	}
	return proc, nil
}

// Run supervises the child until it ends for good, and returns why:
// ExitCleanStop (ctx ended, or Stop and Quit, or Watch saw the child stop
// itself cleanly) or ExitRevoked. first is the first run's process when
// the caller started it (Start), nil to have Run start it.
func (c *Child) Run(ctx context.Context, first *Process) ExitReason {
	defer close(c.done)
	ctx, cancel := c.untilQuit(ctx)
	defer cancel()
	proc := first
	if proc == nil {
		proc = c.startLogged(ctx)
	}
	for {
		exit := c.watch(ctx, proc)
		c.finish(exit)
		if exit.Reason == ExitCleanStop || exit.Reason == ExitRevoked {
			return c.end(exit.Reason)
		}
		if c.spec.Hooks.Crashed != nil {
			c.spec.Hooks.Crashed(exit)
		}
		if !c.backoff(ctx, exit) {
			reason := c.StopReason()
			if reason == "" {
				reason = ExitCleanStop // ctx ended
			}
			return c.end(reason)
		}
		c.spec.Metrics.ChildRestarts.WithLabelValues(c.spec.Role, string(exit.Reason)).Inc()
		c.mu.Lock()
		c.restarts++
		c.mu.Unlock()
		proc = c.startLogged(ctx)
	}
}

// startLogged starts a run; a failed start is logged and counts as a crash
// (nil process).
func (c *Child) startLogged(ctx context.Context) *Process {
	proc, err := c.Start(ctx)
	if err != nil {
		c.spec.Log.Error("cannot start "+c.spec.Noun, "child", c.spec.Name, "err", err)
		return nil
	}
	return proc
}

// watch follows one run to its end and classifies it.
func (c *Child) watch(ctx context.Context, proc *Process) Exit {
	if proc == nil {
		return Exit{Reason: ExitCrash, Code: -1, At: time.Now()}
	}
	reason := c.spec.Hooks.Watch(ctx, proc)
	if r := c.StopReason(); r != "" { // a stop or revocation outranks what this run ended for
		reason = r
	}
	return proc.Exit(reason)
}

// finish records an ended run (state, metrics, log) and revokes its users
// (unless the revocation already happened), so its credentials die with
// it.
func (c *Child) finish(exit Exit) {
	c.mu.Lock()
	c.lastExit = exit
	users := c.users
	c.users, c.proc = nil, nil
	c.mu.Unlock()
	if c.spec.Hooks.Exit != nil {
		c.spec.Hooks.Exit(exit)
	}
	c.spec.Metrics.ChildExits.WithLabelValues(c.spec.Role, string(exit.Reason)).Inc()
	if exit.Reason == ExitCleanStop {
		c.spec.Log.Info(c.spec.Role+" stopped", "child", c.spec.Name, "exit", exit.String())
	} else {
		c.spec.Log.Warn(c.spec.Role+" process ended", "child", c.spec.Name, "exit", exit.String(), "uptime", exit.Uptime.Round(time.Millisecond).String())
	}
	if exit.Reason == ExitRevoked || c.spec.Revoke == nil {
		return
	}
	for _, u := range users {
		ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
		if err := c.spec.Revoke(ctx, u); err != nil {
			c.spec.Log.Warn("could not revoke the user of an ended "+c.spec.Role, "child", c.spec.Name, "user", u, "err", err)
		}
		cancel()
	}
}

// backoff waits out the delay after a crash (or, in a crash loop, until
// Rearm). It reports false when ctx ended meanwhile.
func (c *Child) backoff(ctx context.Context, exit Exit) bool {
	delay, loop := c.tracker.crashed(time.Now(), exit.Uptime)
	if loop {
		// Count before the state says so: whoever sees "failed" sees it counted.
		c.spec.Metrics.ChildExits.WithLabelValues(c.spec.Role, string(ExitCrashLoop)).Inc()
		c.setState(StateFailed)
		p := c.tracker.policy
		c.spec.Log.Error(c.spec.Noun+" is crash-looping; not restarting it until told ("+c.spec.RearmHint+")",
			"child", c.spec.Name, "crashes", p.CrashLoopCount, "window", p.CrashLoopWindow.String(), "last_exit", exit.String())
		if c.spec.Hooks.Failed != nil {
			c.spec.Hooks.Failed(exit)
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.rearm:
			c.tracker.reset()
			return true
		}
	}
	c.setState(StateBackoff)
	c.spec.Log.Warn(c.spec.Noun+" ended unexpectedly; restarting it", "child", c.spec.Name, "exit", exit.String(), "in", delay.Round(time.Millisecond).String())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-c.rearm:
	case <-t.C:
	}
	return true
}

// end settles the state of a child that ended for good and tells the owner.
func (c *Child) end(reason ExitReason) ExitReason {
	st := StateStopped
	if reason == ExitRevoked {
		st = StateRevoked
	}
	c.setState(st)
	if c.spec.Hooks.Ended != nil {
		c.spec.Hooks.Ended(reason)
	}
	return reason
}
