package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
)

// Child roles (the role label of the child metrics).
const (
	roleHost     = metrics.RoleHost
	roleProvider = metrics.RoleProvider
)

// Child states.
const (
	stateStarting = "starting"
	stateRunning  = "running"
	stateBackoff  = "backoff" // crashed; restarts after a delay
	stateStopping = "stopping"
	stateStopped  = "stopped"
	stateFailed   = "failed" // crash loop: not restarted until told
	stateRevoked  = lattice.ProviderStateRevoked
)

var providerStates = []string{stateStarting, stateRunning, stateBackoff, stateStopping, stateFailed, stateRevoked}

// hostChild supervises the `latticed host` process. Providers run beside
// it, not under it: a host crash restarts the host alone, with the same
// host ID, and the supervisor starts its actors again.
type hostChild struct {
	sup     *Supervisor
	tracker *restartTracker

	mu          sync.Mutex
	state       string
	proc        *process
	restarts    int
	lastExit    Exit
	creds       []Credentials
	readyCh     chan admin.HostReport // the current run's readiness report
	metricsAddr string
	rearm       chan struct{}
}

func newHostChild(s *Supervisor) *hostChild {
	cfg := s.config()
	return &hostChild{sup: s, state: stateStarting, rearm: make(chan struct{}, 1),
		tracker: newRestartTracker(RestartPolicy{
			Backoff: cfg.RestartBackoff, BackoffMax: cfg.RestartBackoffMax, Stable: cfg.RestartStable,
			CrashLoopCount: cfg.CrashLoopCount, CrashLoopWindow: cfg.CrashLoopWindow,
		})}
}

func (h *hostChild) status() admin.ChildStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := admin.ChildStatus{State: h.state, Restarts: h.restarts, ExitReason: h.lastExit.String()}
	if h.proc != nil {
		st.PID = h.proc.pid
	}
	return st
}

func (h *hostChild) setState(st string) {
	h.mu.Lock()
	h.state = st
	h.mu.Unlock()
}

func (h *hostChild) signal(sig syscall.Signal) {
	h.mu.Lock()
	p := h.proc
	h.mu.Unlock()
	if p != nil {
		p.signalGroup(sig)
	}
}

// run keeps the host running until ctx ends (then it stops it gracefully
// and returns nil) or the host stops itself on a control command
// (errHostStopped).
func (h *hostChild) run(ctx context.Context) error {
	s := h.sup
	everReady := false
	for {
		h.setState(stateStarting)
		proc, readyCh, err := h.start()
		var exit Exit
		if err != nil {
			s.log.Error("cannot start the host", "err", err)
			exit = Exit{Reason: ExitCrash, Code: -1, At: time.Now()}
		} else {
			wasReady, stopped := h.supervise(ctx, proc, readyCh, !everReady)
			everReady = everReady || wasReady
			if stopped {
				h.finish(proc.exit(ExitCleanStop))
				h.setState(stateStopped)
				return nil
			}
			exit = proc.exit("")
			if exit.Code == 0 && exit.Signal == "" && wasReady {
				// A ctl stop command: the host exited cleanly on its own.
				exit.Reason = ExitCleanStop
				h.finish(exit)
				h.setState(stateStopped)
				return errHostStopped
			}
		}
		h.finish(exit)
		s.actors.hostCrashed()
		s.publishEvent(lattice.EventHostCrashed, map[string]any{"host_id": s.hostID, "reason": string(exit.Reason), "exit": exit.String()})
		delay, loop := h.tracker.crashed(time.Now(), exit.Uptime)
		if loop {
			s.m.ChildExits.WithLabelValues(roleHost, string(ExitCrashLoop)).Inc()
			h.setState(stateFailed)
			s.log.Error("the host is crash-looping; not restarting it until told (latticed ctl restart host, or restart latticed up)",
				"crashes", s.config().CrashLoopCount, "window", s.config().CrashLoopWindow.String(), "last_exit", exit.String())
			select {
			case <-ctx.Done():
				return nil
			case <-h.rearm:
				h.tracker.reset()
			}
		} else {
			h.setState(stateBackoff)
			s.log.Warn("the host ended unexpectedly; restarting it", "exit", exit.String(), "in", delay.Round(time.Millisecond).String())
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-h.rearm:
				t.Stop()
			case <-t.C:
			}
		}
		h.mu.Lock()
		h.restarts++
		h.mu.Unlock()
		s.m.ChildRestarts.WithLabelValues(roleHost, string(exit.Reason)).Inc()
	}
}

// supervise waits for the host's readiness report, then for its end. It
// returns whether it became ready and whether ctx asked it to stop (in
// which case it was stopped gracefully).
func (h *hostChild) supervise(ctx context.Context, proc *process, readyCh <-chan admin.HostReport, first bool) (ready, stopped bool) {
	s := h.sup
	limit := time.NewTimer(hostStartLimit)
	defer limit.Stop()
	for !ready {
		select {
		case r := <-readyCh:
			ready = true
			h.mu.Lock()
			h.state, h.metricsAddr = stateRunning, r.MetricsAddr
			h.mu.Unlock()
			go s.onHostReady(first)
		case <-proc.Done():
			return false, false
		case <-limit.C:
			s.log.Error("the host did not become ready in time; killing it", "limit", hostStartLimit.String())
			proc.kill()
			return false, false
		case <-ctx.Done():
			h.stopGracefully(proc)
			return false, true
		}
	}
	select {
	case <-proc.Done():
		return true, false
	case <-ctx.Done():
		h.stopGracefully(proc)
		return true, true
	}
}

// stopGracefully sends SIGTERM (the host stops taking invocations, drains
// those in flight and exits) and kills it after the grace period.
func (h *hostChild) stopGracefully(proc *process) {
	h.setState(stateStopping)
	proc.terminate(h.sup.config().StopGrace)
}

// finish records an ended run: metrics, log, and its users revoked so a
// leaked creds file is worthless.
func (h *hostChild) finish(exit Exit) {
	s := h.sup
	h.mu.Lock()
	h.lastExit = exit
	creds := h.creds
	h.creds = nil
	h.metricsAddr = ""
	h.mu.Unlock()
	s.m.ChildExits.WithLabelValues(roleHost, string(exit.Reason)).Inc()
	if exit.Reason != ExitCleanStop {
		s.log.Warn("host process ended", "child", roleHost, "exit", exit.String(), "uptime", exit.Uptime.Round(time.Millisecond).String())
	}
	if s.auth != nil && s.auth.CanRevoke() {
		for _, c := range creds {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.auth.Revoke(ctx, c.UserKey); err != nil {
				s.log.Warn("could not revoke a host user", "user", c, "err", err)
			}
			cancel()
		}
	}
}

// start mints the host's users, writes their creds files and starts
// `latticed host`.
func (h *hostChild) start() (*process, <-chan admin.HostReport, error) {
	s := h.sup
	env, creds, err := h.environment()
	if err != nil {
		return nil, nil, err
	}
	readyCh := make(chan admin.HostReport, 1)
	h.mu.Lock()
	h.creds, h.readyCh = creds, readyCh
	h.mu.Unlock()
	secrets := []string{s.opts.HostKey.Seed()}
	for _, c := range creds {
		secrets = append(secrets, c.Seed)
	}
	proc, err := startProcess(childSpec{Name: roleHost, Path: s.opts.Executable, Args: []string{"host"}, Env: env, Secrets: secrets}, s.log)
	if err != nil {
		return nil, nil, err
	}
	h.mu.Lock()
	h.proc = proc
	h.mu.Unlock()
	s.recordSpawn(proc)
	s.log.Info("host process started", "child", roleHost, "pid", proc.pid, "host_id", s.hostID)
	return proc, readyCh, nil
}

// hostReady is the host child's readiness report over the admin socket.
func (s *Supervisor) hostReady(r admin.HostReport) error {
	if r.HostID != s.hostID {
		return fmt.Errorf("host %s is not the host this supervisor runs (%s)", r.HostID, s.hostID)
	}
	h := s.hostProc
	h.mu.Lock()
	ch := h.readyCh
	pid := 0
	if h.proc != nil {
		pid = h.proc.pid
	}
	h.mu.Unlock()
	if ch == nil || (r.PID != 0 && r.PID != pid) {
		return fmt.Errorf("no host start is pending for pid %d", r.PID)
	}
	select {
	case ch <- r:
	default:
	}
	return nil
}

// hostSettings tells the host child how to use the users minted for it.
func (s *Supervisor) hostSettings() admin.HostSettings {
	if s.mode != modeEmbedded {
		return admin.HostSettings{}
	}
	return admin.HostSettings{RPCInboxPrefix: inboxPrefix(s.prefix, RoleHostRPC), CtlInboxPrefix: inboxPrefix(s.prefix, RoleHostCtl)}
}

// supervisorOnly are settings the host child must not see: they are the
// supervisor's, or belong to providers.
var supervisorOnly = []string{
	config.EnvAccountSigningSeed, config.EnvOperatorSigningSeed, config.EnvSystemCredsFile,
	config.EnvProvRPCJWT, config.EnvProvRPCSeed, config.EnvProvRPCCredsFile,
}

// environment is the host child's environment: the supervisor's (with the
// command line's settings), minus supervisor-only secrets, plus where its
// credentials are. It holds file paths, never credentials themselves.
func (h *hostChild) environment() ([]string, []Credentials, error) {
	s := h.sup
	set := map[string]string{
		config.EnvHostSeed:          s.opts.HostKey.Seed(), // the host's own identity, same across restarts
		config.EnvAdminSocket:       s.adminPath,
		config.EnvMetricsAddr:       "127.0.0.1:0", // the supervisor serves the node's metrics, merging the host's
		config.EnvStructuredLogging: "true",        // JSON lines, re-emitted by the supervisor with their fields
	}
	var creds []Credentials
	if s.mode == modeEmbedded {
		u, err := urlHostPort(s.natsURL)
		if err != nil {
			return nil, nil, err
		}
		type connEnv struct{ host, port, creds, jwt, seed, tls string }
		for _, r := range []struct {
			role Role
			env  connEnv
			file string
		}{
			{RoleHostRPC, connEnv{config.EnvRPCHost, config.EnvRPCPort, config.EnvRPCCredsFile, config.EnvRPCJWT, config.EnvRPCSeed, config.EnvRPCTLS}, datadir.HostRPCCreds},
			{RoleHostCtl, connEnv{config.EnvCtlHost, config.EnvCtlPort, config.EnvCtlCredsFile, config.EnvCtlJWT, config.EnvCtlSeed, config.EnvCtlTLS}, datadir.HostCtlCreds},
		} {
			c, err := s.auth.Mint(r.role, "host "+string(r.role), Scope{})
			if err != nil {
				return nil, nil, err
			}
			b, err := c.CredsFile()
			if err != nil {
				return nil, nil, err
			}
			path := filepath.Join(s.runDir, r.file)
			if err := datadir.WriteSecret(path, b); err != nil {
				return nil, nil, fmt.Errorf("write %s: %w", path, err)
			}
			creds = append(creds, c)
			set[r.env.host], set[r.env.port] = u.host, u.port
			set[r.env.creds], set[r.env.jwt], set[r.env.seed], set[r.env.tls] = path, "", "", "false"
		}
	}
	env := make([]string, 0, len(s.opts.Environ)+len(set))
	for _, kv := range s.opts.Environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, override := set[name]; override || contains(supervisorOnly, name) {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env, creds, nil
}

type hostPort struct{ host, port string }

func urlHostPort(url string) (hostPort, error) {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		rest = url
	}
	h, p, err := net.SplitHostPort(rest)
	if err != nil {
		return hostPort{}, fmt.Errorf("NATS URL %q: %w", url, err)
	}
	if _, err := strconv.Atoi(p); err != nil {
		return hostPort{}, fmt.Errorf("NATS URL %q: bad port", url)
	}
	return hostPort{h, p}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Restart re-arms a failed (crash-looping) child: target "host", or
// "provider" with p naming it. A child in backoff restarts at once.
func (s *Supervisor) Restart(_ context.Context, target string, p *lattice.StopProviderCommand) error {
	switch target {
	case roleHost:
		select {
		case s.hostProc.rearm <- struct{}{}:
		default:
		}
		return nil
	case roleProvider:
		if p == nil {
			return errors.New("restart provider: missing \"provider\"")
		}
		inst, err := s.findProvider(*p)
		if err != nil {
			return err
		}
		return inst.restart()
	}
	return fmt.Errorf("restart: unknown target %q (host or provider)", target)
}
