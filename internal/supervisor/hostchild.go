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
	"github.com/latticed/latticed/internal/child"
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

// hostChild supervises the `latticed host` process. Providers run beside
// it, not under it: a host crash restarts the host alone, with the same
// host ID, and the supervisor starts its actors again.
type hostChild struct {
	sup   *Supervisor
	child *child.Child

	everReady bool // whether a run was ready before; only the loop uses it

	mu          sync.Mutex
	readyCh     chan admin.HostReport // the current run's readiness report
	metricsAddr string
}

func newHostChild(s *Supervisor) *hostChild {
	h := &hostChild{sup: s}
	h.child = s.newChild(child.Spec{Name: roleHost, Noun: "the host", Role: roleHost,
		RearmHint: "latticed ctl restart host, or restart latticed up"}, child.Hooks{
		Start: h.start,
		Watch: h.supervise,
		Exit: func(child.Exit) {
			h.mu.Lock()
			h.metricsAddr = ""
			h.mu.Unlock()
		},
		Crashed: func(exit child.Exit) {
			s.actors.hostCrashed()
			s.publishEvent(lattice.EventHostCrashed, map[string]any{"host_id": s.hostID, "reason": string(exit.Reason), "exit": exit.String()})
		},
	})
	return h
}

// newChild is a child of this supervisor, as spec names it, with hooks:
// the configured restart policy, this log and these metrics, and its
// users revoked as each run ends when users can be revoked.
func (s *Supervisor) newChild(spec child.Spec, hooks child.Hooks) *child.Child {
	spec.Policy = s.settings().Children.Restart
	spec.Log, spec.Metrics, spec.Hooks = s.log, s.m, hooks
	if s.auth != nil && s.auth.CanRevoke() {
		spec.Revoke = s.auth.Revoke
	}
	return child.New(spec)
}

func (h *hostChild) status() admin.ChildStatus {
	st := h.child.Status()
	return admin.ChildStatus{State: st.State, PID: st.PID, Restarts: st.Restarts, ExitReason: st.LastExit.String()}
}

func (h *hostChild) signal(sig syscall.Signal) {
	if p := h.child.Process(); p != nil {
		p.SignalGroup(sig)
	}
}

// run keeps the host running until ctx ends (then it stops it gracefully
// and returns nil) or the host stops itself on a control command
// (errHostStopped).
func (h *hostChild) run(ctx context.Context) error {
	h.child.Run(ctx, nil)
	if ctx.Err() == nil {
		// A ctl stop command: the host exited cleanly on its own.
		return errHostStopped
	}
	return nil
}

// supervise waits for the host's readiness report, then for its end. When
// ctx ends it stops the host gracefully (ExitCleanStop); a host that was
// ready and exits 0 stopped itself on a control command (ExitCleanStop).
func (h *hostChild) supervise(ctx context.Context, proc *child.Process) child.ExitReason {
	s := h.sup
	h.mu.Lock()
	readyCh := h.readyCh
	h.mu.Unlock()
	limit := time.NewTimer(hostStartLimit)
	defer limit.Stop()
	ready := false
	for !ready {
		select {
		case r := <-readyCh:
			ready = true
			h.mu.Lock()
			h.metricsAddr = r.MetricsAddr
			h.mu.Unlock()
			h.child.Ready()
			go s.onHostReady(!h.everReady)
			h.everReady = true
		case <-proc.Done():
			return ""
		case <-limit.C:
			s.log.Error("the host did not become ready in time; killing it", "limit", hostStartLimit.String())
			proc.Kill()
			return ""
		case <-ctx.Done():
			return h.stopGracefully(proc)
		}
	}
	select {
	case <-proc.Done():
		if e := proc.Exit(""); e.Code == 0 && e.Signal == "" {
			return child.ExitCleanStop
		}
		return ""
	case <-ctx.Done():
		return h.stopGracefully(proc)
	}
}

// stopGracefully sends SIGTERM (the host stops taking invocations, drains
// those in flight and exits) and kills it after the grace period.
func (h *hostChild) stopGracefully(proc *child.Process) child.ExitReason {
	_, _ = h.child.Stop(child.ExitCleanStop) // not a revocation: no error
	proc.Terminate(h.sup.settings().Children.StopGrace)
	return child.ExitCleanStop
}

// start mints the host's users, writes their creds files and starts
// `latticed host`.
func (h *hostChild) start(context.Context) (*child.Process, []string, error) {
	s := h.sup
	env, creds, err := h.environment()
	if err != nil {
		return nil, nil, err
	}
	users := make([]string, len(creds))
	for i, c := range creds {
		users[i] = c.UserKey
	}
	readyCh := make(chan admin.HostReport, 1)
	h.mu.Lock()
	h.readyCh = readyCh
	h.mu.Unlock()
	secrets := []string{s.opts.HostKey.Seed()}
	for _, c := range creds {
		secrets = append(secrets, c.Seed)
	}
	if pw := s.settings().Artifacts.OCIRegistryPassword; pw != "" {
		secrets = append(secrets, pw) // the host has it from the environment
	}
	proc, err := child.Start(child.Command{Name: roleHost, Path: s.opts.Executable, Args: []string{"host"}, Env: env, Secrets: secrets}, s.log)
	if err != nil {
		return nil, users, err
	}
	s.recordSpawn(proc)
	s.log.Info("host process started", "child", roleHost, "pid", proc.PID(), "host_id", s.hostID)
	return proc, users, nil
}

// hostReady is the host child's readiness report over the admin socket.
func (s *Supervisor) hostReady(r admin.HostReport) error {
	if r.HostID != s.hostID {
		return fmt.Errorf("host %s is not the host this supervisor runs (%s)", r.HostID, s.hostID)
	}
	h := s.hostProc
	h.mu.Lock()
	ch := h.readyCh
	h.mu.Unlock()
	pid := h.child.Status().PID
	if ch == nil || (r.PID != 0 && r.PID != pid) {
		return fmt.Errorf("no host start is pending for pid %d", r.PID)
	}
	select {
	case ch <- r:
	default:
	}
	return nil
}

// hostSettings tells the host child how to use the users minted for it,
// and which actors it will be asked to start first.
func (s *Supervisor) hostSettings() admin.HostSettings {
	hs := admin.HostSettings{Preload: s.opts.StartActors}
	if s.mode == modeEmbedded {
		hs.RPCInboxPrefix, hs.CtlInboxPrefix = inboxPrefix(s.prefix, RoleHostRPC), inboxPrefix(s.prefix, RoleHostCtl)
	}
	return hs
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
			if err := datadir.WriteRunSecret(path, b); err != nil { // this run's users
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
		s.hostProc.child.Rearm()
		return nil
	case roleProvider:
		if p == nil {
			return errors.New("restart provider: missing \"provider\"")
		}
		inst, err := s.findProvider(*p)
		if err != nil {
			return err
		}
		inst.child.Rearm()
		return nil
	}
	return fmt.Errorf("restart: unknown target %q (host or provider)", target)
}
