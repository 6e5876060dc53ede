package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/cpuprofile"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

type provKey struct{ key, link string }

// providerStates are the states of the provider gauge.
var providerStates = []string{child.StateStarting, child.StateRunning, child.StateBackoff, child.StateStopping, child.StateFailed, child.StateRevoked}

// providerInstance is one provider (key, link name): its child (process,
// restarts), its NATS user (fresh on every start), health checks.
type providerInstance struct {
	sup                 *Supervisor
	child               *child.Child
	key, link, ref      string
	contract, name      string
	revision            int32 // the archive claims' revision (trust.ProviderRevision), 0 for others
	path                string
	args                []string
	configJSON          string
	compat              bool // hand out the cluster seed (wasmCloud's way)
	annotations         map[string]string
	recheck             chan struct{} // a link was sent to the provider: check its health (and link outcomes) soon
	everStarted, listed bool

	mu          sync.Mutex
	instanceID  string
	creds       Credentials
	signing     signing           // how the running instance signs invocations
	metricsAddr string            // the running process's private metrics endpoint, "" when none announced
	buckets     map[string]string // key-value providers: each linked actor's bucket
	startLinks  map[string]bool   // ids of the links the running process got in HostData
	granted     []string          // the buckets creds grants (sorted)
	grantErr    string            // why the last grant sync failed ("" when it did not): logged once per cause
	linkChanges uint64            // key-value providers: link changes applied to buckets (rebuildBucketsIfMissed's guard)
	rebuild     bool              // key-value providers: buckets to be read again from the lattice (link changes missed)
	// reportsLinks, linkOutcomes: what the running process last reported
	// of its links in a health reply (lattice.HealthCheckResponse).
	reportsLinks bool
	linkOutcomes []lattice.LinkOutcome
	reconnects   uint64 // the running process's lattice.HealthCheckResponse.Reconnects, last seen

	credMu sync.Mutex // serialises re-issuing creds and sending them (renewal, re-mint)
}

// providerProgram is a resolved provider reference: what to run, as whom.
type providerProgram struct {
	key, contract, name, path string
	args                      []string
	issuer                    string                // the claims' issuer (archives only)
	claims                    *trust.ProviderClaims // archives only
	fromOCI                   bool
}

// resolveProvider maps a reference to a program: builtin:<name> runs
// `latticed provider <name>`; an OCI reference or a .par.gz file runs the
// verified binary for this machine from the provider archive (artifacts.go);
// another file path (file:// or absolute, with WASMCLOUD_ALLOW_FILE_LOAD)
// runs that executable, its key derived from the file's SHA-256
// (trust.FileProviderKey).
func (s *Supervisor) resolveProvider(ctx context.Context, ref string) (providerProgram, error) {
	if strings.HasPrefix(ref, builtin.RefPrefix) {
		b, ok := builtin.Lookup(ref)
		if !ok {
			return providerProgram{}, fmt.Errorf("unknown built-in provider %q (have %s)", ref, builtin.Refs())
		}
		return providerProgram{key: b.Key(), contract: b.Contract, name: b.Name, path: s.opts.Executable, args: []string{"provider", b.Name}}, nil
	}
	if oci.IsReference(ref) {
		return s.providerFromOCI(ctx, ref)
	}
	path, isFile := strings.CutPrefix(ref, "file://")
	if !isFile && !filepath.IsAbs(ref) {
		return providerProgram{}, fmt.Errorf("provider reference %q: want builtin:<name>, an OCI reference (registry/repo:tag) to a provider archive, or a file path (file:///… or absolute: a .par.gz or an executable) with WASMCLOUD_ALLOW_FILE_LOAD", ref)
	}
	if !s.settings().Artifacts.AllowFileLoad {
		return providerProgram{}, fmt.Errorf("provider reference %q is a file: set WASMCLOUD_ALLOW_FILE_LOAD=true to allow it", ref)
	}
	if isArchivePath(path) {
		return s.providerFromArchiveFile(ref, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider %s: %w", ref, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return providerProgram{}, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return providerProgram{}, fmt.Errorf("provider %s is not an executable file", ref)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return providerProgram{}, fmt.Errorf("provider %s: %w", ref, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return providerProgram{key: trust.FileProviderKey(sum), name: filepath.Base(path), path: path}, nil
}

// LaunchProvider starts a provider and returns once its process runs (its
// health is then checked in the background). Launching a failed
// (crash-looping) provider again re-arms it; a revoked one is replaced by a
// new instance with a new user.
func (s *Supervisor) LaunchProvider(ctx context.Context, cmd lattice.LaunchProviderCommand) error {
	if s.stopping.Load() {
		return errors.New("the node is stopping")
	}
	link := cmd.LinkName
	if link == "" {
		link = "default"
	}
	if err := lattice.ValidateLinkName(link); err != nil {
		return err
	}
	prog, err := s.resolveProvider(ctx, cmd.ProviderRef)
	if err == nil {
		err = s.checkStartProvider(ctx, prog, link)
	}
	if err != nil {
		s.publishEvent(lattice.EventProviderStartFailed, map[string]any{"provider_ref": cmd.ProviderRef, "link_name": link, "error": err.Error()})
		return err
	}
	k := provKey{prog.key, link}
	s.provMu.Lock()
	if old, ok := s.provs[k]; ok {
		switch old.child.State() {
		case child.StateFailed:
			s.provMu.Unlock()
			old.child.Rearm()
			return nil
		case child.StateRevoked:
			delete(s.provs, k)
		default:
			s.provMu.Unlock()
			return fmt.Errorf("provider %s with link name %s already runs here", prog.key, link)
		}
	}
	p := &providerInstance{
		sup: s, key: prog.key, link: link, ref: cmd.ProviderRef, contract: prog.contract, name: prog.name,
		path: prog.path, args: prog.args, configJSON: cmd.Configuration, annotations: cmd.Annotations, compat: cmd.CompatClusterSeed,
		recheck: make(chan struct{}, 1), listed: true, revision: trust.ProviderRevision(prog.claims),
	}
	p.child = s.newChild(child.Spec{Name: p.label(), Noun: "provider", Role: roleProvider,
		RearmHint: "launch it again, or admin restart"}, child.Hooks{
		Start: p.start,
		Watch: p.watch,
		Exit: func(child.Exit) {
			p.mu.Lock()
			p.creds, p.metricsAddr = Credentials{}, ""
			p.mu.Unlock()
		},
		Failed: func(exit child.Exit) {
			s.publishEvent(lattice.EventProviderFailed, p.eventData(map[string]any{"reason": string(child.ExitCrashLoop), "last_exit": exit.String()}))
		},
		Ended: func(reason child.ExitReason) {
			if reason == child.ExitCleanStop {
				p.remove()
				s.publishEvent(lattice.EventProviderStopped, p.eventData(map[string]any{"reason": string(reason)}))
			}
		},
		State: func(string) { s.updateProviderGauge() },
	})
	s.provs[k] = p
	s.provMu.Unlock()
	s.updateProviderGauge()

	// The first start is the caller's: its error is the launch's.
	proc, err := p.child.Start(context.Background())
	if err != nil {
		s.provMu.Lock()
		delete(s.provs, k)
		s.provMu.Unlock()
		s.updateProviderGauge()
		s.publishEvent(lattice.EventProviderStartFailed, map[string]any{"provider_ref": cmd.ProviderRef, "link_name": link, "error": err.Error()})
		return err
	}
	s.provWG.Add(1)
	go func() {
		defer s.provWG.Done()
		p.child.Run(context.Background(), proc)
	}()
	s.recordProvider(cmd.ProviderRef, prog)
	return nil
}

// findProvider finds a provider by key or reference and link name.
func (s *Supervisor) findProvider(cmd lattice.StopProviderCommand) (*providerInstance, error) {
	link := cmd.LinkName
	if link == "" {
		link = "default"
	}
	s.provMu.Lock()
	defer s.provMu.Unlock()
	if p, ok := s.provs[provKey{cmd.ProviderRef, link}]; ok {
		return p, nil
	}
	for k, p := range s.provs {
		if k.link == link && p.ref == cmd.ProviderRef {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no provider %s with link name %s runs here", cmd.ProviderRef, link)
}

// StopProvider sends the provider its shutdown message, waits up to the
// grace period for it to exit, then kills it. It is not restarted.
func (s *Supervisor) StopProvider(_ context.Context, cmd lattice.StopProviderCommand) error {
	p, err := s.findProvider(cmd)
	if err != nil {
		return err
	}
	p.stop(s.settings().Children.StopGrace)
	return nil
}

// Providers lists the providers with their state, sorted by key and link.
func (s *Supervisor) Providers() []lattice.ProviderDescription {
	list := s.instances()
	out := make([]lattice.ProviderDescription, 0, len(list))
	revocation := ""
	if st := s.revocationStatus(); st != "available" {
		revocation = st
	}
	for _, p := range list {
		out = append(out, p.describe(revocation))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].LinkName < out[j].LinkName
	})
	return out
}

// instances are the provider instances now known, in no order.
func (s *Supervisor) instances() []*providerInstance {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	return slices.Collect(maps.Values(s.provs))
}

func (s *Supervisor) updateProviderGauge() {
	counts := map[string]int{}
	s.provMu.Lock()
	for _, p := range s.provs {
		counts[p.child.State()]++
	}
	s.provMu.Unlock()
	for _, st := range providerStates {
		s.m.Providers.WithLabelValues(st).Set(float64(counts[st]))
	}
}

// pid is the running process's id, 0 between runs.
func (p *providerInstance) pid() int { return p.child.Status().PID }

func (p *providerInstance) describe(revocation string) lattice.ProviderDescription {
	st := p.child.Status()
	p.mu.Lock()
	defer p.mu.Unlock()
	d := lattice.ProviderDescription{
		ID: p.key, ImageRef: p.ref, ContractID: p.contract, LinkName: p.link, Name: p.name,
		InstanceID: p.instanceID, Annotations: p.annotations, Revision: p.revision, State: st.State,
		ExitReason: st.LastExit.String(), Restarts: st.Restarts, Revocation: revocation,
		Signing: lattice.SigningDelegated, ReportsLinks: p.reportsLinks, Links: slices.Clone(p.linkOutcomes),
	}
	if p.compat {
		d.Signing = lattice.SigningClusterSeed
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	if st.State == child.StateFailed {
		d.ExitReason = string(child.ExitCrashLoop) + " after " + st.LastExit.String()
	}
	return d
}

func (p *providerInstance) label() string { return "provider " + p.key + "/" + p.link }

// start mints a fresh user, builds HostData and starts the process. It
// returns the user to revoke when the run ends: none with shared
// credentials.
func (p *providerInstance) start(ctx context.Context) (*child.Process, []string, error) {
	s := p.sup
	set := s.settings()
	links, err := p.fetchLinks(ctx)
	if err != nil {
		return nil, nil, err
	}
	buckets := p.bucketsOf(links)
	if len(buckets) > 0 && s.auth != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.ensureBuckets(ctx, buckets)
		cancel()
		if err != nil {
			return nil, nil, err
		}
	}
	creds, err := s.providerCredentials(p, buckets)
	if err != nil {
		return nil, nil, err
	}
	var users []string
	if creds.UserKey != "" && creds.Role == RoleProvider {
		users = []string{creds.UserKey}
	}
	rpcServers := config.HostPorts(s.natsURL)
	instanceID := uuid.NewString()
	sg, err := p.newSigning(instanceID)
	if err != nil {
		return nil, users, err
	}
	var jsDomain *string
	if set.Lattice.JSDomain != "" {
		d := set.Lattice.JSDomain
		jsDomain = &d
	}
	hd := lattice.HostData{
		HostID: s.hostID, LatticeRPCPrefix: s.prefix, LinkName: p.link,
		LatticeRPCUserJWT: creds.JWT, LatticeRPCUserSeed: creds.Seed,
		// host:port as wasmCloud hosts send it: the first server in the
		// field wasmCloud's SDK reads as one address, all of them in ours.
		LatticeRPCURL: rpcServers[0], LatticeRPCURLs: rpcServers, LatticeRPCTLS: lattice.FlexBool(set.NATS.Endpoints.ProvRPC.TLS),
		InstanceID: instanceID, ProviderKey: p.key, LinkDefinitions: links,
		ConfigJSON: p.configJSON, DefaultRPCTimeoutMS: uint64(set.Lattice.RPCTimeout.Milliseconds()),
		ClusterIssuers: clusterIssuers(set.Lattice.ClusterIssuers, s.opts.ClusterKey.PublicKey()),
		InvocationSeed: sg.key.Seed(), InvocationDelegation: sg.token, JSDomain: jsDomain,
		StructuredLogging: true, LogLevel: set.Log.Level, InboxPrefix: creds.InboxPrefix,
		NATSPingIntervalMS: uint64(set.NATS.Keepalive.Interval.Milliseconds()), NATSPingMisses: set.NATS.Keepalive.Misses,
	}
	line, err := lattice.EncodeHostData(&hd)
	if err != nil {
		return nil, users, err
	}
	// The announcement may come before startProcess returns.
	p.mu.Lock()
	p.instanceID, p.metricsAddr = instanceID, ""
	p.reportsLinks, p.linkOutcomes, p.reconnects = false, nil, 0 // the new process reports afresh
	p.mu.Unlock()
	onAddr := func(addr string) {
		p.mu.Lock()
		if p.instanceID == instanceID && p.metricsAddr == "" { // the first announcement of this run only
			p.metricsAddr = addr
		}
		p.mu.Unlock()
	}
	proc, err := child.Start(child.Command{Name: p.label(), Path: p.path, Args: p.args, Env: providerEnv(s.opts.Environ), Stdin: line,
		Secrets: hostDataSecrets(line, creds.Seed, sg.key.Seed()), OnMetricsAddr: onAddr}, s.log)
	if err != nil {
		return nil, users, err
	}
	s.recordSpawn(proc)
	p.mu.Lock()
	p.creds, p.granted, p.signing, p.instanceID = creds, buckets, sg, instanceID
	p.startLinks = linkIDs(links)
	p.mu.Unlock()
	s.log.Info("provider process started", "child", p.label(), "pid", proc.PID(), "ref", p.ref, "instance_id", instanceID, "user", creds.UserKey)
	return proc, users, nil
}

// hostDataSecrets lists what a provider's output must not carry back: the
// HostData line as sent (base64 of JSON), its JSON (which holds link values
// and configuration too), and the seeds inside it. The user JWT and the
// delegation token are not listed: neither is usable without its seed.
func hostDataSecrets(line []byte, seeds ...string) []string {
	secrets := append([]string{string(bytes.TrimSpace(line))}, seeds...)
	if js, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(line))); err == nil {
		secrets = append(secrets, string(js))
	}
	return secrets
}

func clusterIssuers(list []string, own string) []string {
	if contains(list, own) {
		return list
	}
	return append([]string{own}, list...)
}

// providerEnv is the little a provider inherits: no lattice settings and no
// credentials (everything it needs arrives in HostData), but the
// OpenTelemetry settings, so its spans reach the node's collector.
func providerEnv(environ []string) []string {
	// GOCOVERDIR: a coverage-built node's providers write their counters
	// beside the host's and the supervisor's (docs/architecture.md measures
	// the invocation path that way); LATTICED_CPUPROFILE_DIR: their CPU
	// profiles too (internal/cpuprofile).
	keep := map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "TZ": true, "LANG": true, "USER": true, "RUST_BACKTRACE": true, "RUST_LOG": true, "GODEBUG": true, "GOTRACEBACK": true, "GOCOVERDIR": true, cpuprofile.Env: true}
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if keep[name] || strings.HasPrefix(name, "LC_") || config.IsTelemetryEnv(name) { // OTEL_*: as wasmCloud's host forwards them
			env = append(env, kv)
		}
	}
	return env
}

// remove takes the instance off the node's list.
func (p *providerInstance) remove() {
	s := p.sup
	s.provMu.Lock()
	if s.provs[provKey{p.key, p.link}] == p {
		delete(s.provs, provKey{p.key, p.link})
	}
	s.provMu.Unlock()
	s.updateProviderGauge()
}

func (p *providerInstance) eventData(extra map[string]any) map[string]any {
	p.mu.Lock()
	d := map[string]any{
		"host_id": p.sup.hostID, "public_key": p.key, "link_name": p.link, "contract_id": p.contract,
		"instance_id": p.instanceID, "image_ref": p.ref, "annotations": lattice.NonNil(p.annotations),
	}
	p.mu.Unlock()
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// watch runs health checks until the process ends: the first success makes
// the instance running; healthFailures in a row (or no success within
// providerStartup) kill it as unhealthy. It returns why it ended this run:
// ExitHealthCheck, or "" when the process ended otherwise. It ends with the
// process: stop and Revoke end that.
func (p *providerInstance) watch(ctx context.Context, proc *child.Process) child.ExitReason {
	s := p.sup
	set := s.settings()
	subject := lattice.RPCHealth(s.prefix, p.key, p.link)
	body, _ := lattice.Marshal(lattice.HealthCheckRequest{})
	healthy, failures := false, 0
	startBy := time.Now().Add(s.providerStartup)
	interval := 50 * time.Millisecond // until the first success
	// For a while after the first success and after each link sent to
	// the provider, checks come every linkCheckInterval, so what the
	// provider made of its links (the ones in HostData are applied after
	// it first answers) shows in the inventory within a moment.
	var fastUntil time.Time
	steady := set.Children.HealthInterval
	renewing := s.auth != nil && s.auth.lifetime > 0
	if renewing {
		steady = min(steady, s.auth.lifetime/4)
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-proc.Done():
			return ""
		case <-ctx.Done():
			// A stop or a revocation: whoever quit ends the process. No
			// more checks, whose failures would count against it.
			<-proc.Done()
			return ""
		case <-t.C:
		case <-p.recheck:
			fastUntil = time.Now().Add(linkCheckWindow)
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			if !healthy {
				t.Reset(interval)
				continue
			}
		}
		natsBefore := s.nc.Stats().Reconnects
		ok, msg := p.checkHealth(ctx, subject, body, set.Lattice.RPCTimeout)
		if ctx.Err() != nil {
			continue // stopping: a check cut short says nothing of the provider
		}
		switch {
		case !ok && s.natsInterrupted(natsBefore):
			// The supervisor's own connection was down: the check could
			// not reach the provider, which says nothing of its health. A
			// NATS outage must not restart every provider of the node.
			s.log.Debug("provider health unknown while the supervisor's NATS connection is down; not counted", "child", p.label(), "err", msg)
			if !healthy {
				startBy = time.Now().Add(s.providerStartup) // its start is timed from NATS being back
			}
		case ok && !healthy:
			healthy, failures, interval = true, 0, steady
			fastUntil = time.Now().Add(linkCheckWindow)
			p.child.Ready()
			if !p.everStarted {
				p.everStarted = true
				s.publishEvent(lattice.EventProviderStarted, p.eventData(nil))
			}
			s.publishEvent(lattice.EventHealthCheckPassed, p.eventData(nil))
			s.log.Info("provider healthy", "child", p.label())
			p.catchUpLinks(ctx)
		case ok:
			failures = 0
		case healthy:
			failures++
			s.log.Warn("provider health check failed", "child", p.label(), "failures", failures, "err", msg)
			if failures >= healthFailures {
				s.publishEvent(lattice.EventHealthCheckFailed, p.eventData(map[string]any{"message": msg}))
				proc.Kill()
				return child.ExitHealthCheck
			}
		case time.Now().After(startBy):
			s.log.Warn("provider did not answer health checks in time", "child", p.label(), "limit", s.providerStartup.String(), "err", msg)
			s.publishEvent(lattice.EventHealthCheckFailed, p.eventData(map[string]any{"message": msg}))
			proc.Kill()
			return child.ExitHealthCheck
		}
		if ok && renewing {
			p.renewCredentials()
		}
		if ok {
			p.renewDelegation()
			p.rebuildBucketsIfMissed(ctx)
			p.syncGrants(ctx) // after a link change (linkChanged asks for this check), and retries one that failed
		}
		if healthy && time.Now().Before(fastUntil) {
			t.Reset(min(interval, linkCheckInterval))
			continue
		}
		t.Reset(interval)
	}
}

// renewCredentials re-issues a healthy provider's short-lived JWT once half
// its lifetime has passed and sends it to the provider. A revoked, stopped
// or unhealthy provider is not renewed, so its credentials run out. Until
// then the current JWT is sent again with each health check: a renewal or
// re-mint sent while the provider was between connections is lost (core
// NATS), and without the repeat the provider would find out at its old
// JWT's expiry; the SDK ignores a repeat of the JWT it has.
func (p *providerInstance) renewCredentials() {
	s := p.sup
	p.credMu.Lock()
	defer p.credMu.Unlock()
	p.mu.Lock()
	c := p.creds
	live := c.Role == RoleProvider && p.child.StopReason() == ""
	due := live && time.Since(c.Issued) >= s.auth.lifetime/2
	p.mu.Unlock()
	if !due {
		if live {
			_ = p.sendCredentials(c.JWT)
		}
		return
	}
	next, err := s.auth.Renew(c)
	if err != nil {
		s.log.Error("could not renew provider credentials", "child", p.label(), "err", err)
		return
	}
	p.mu.Lock()
	if p.child.StopReason() != "" || p.creds.JWT != c.JWT {
		p.mu.Unlock()
		return
	}
	p.creds = next
	p.mu.Unlock()
	if err := p.sendCredentials(next.JWT); err != nil {
		s.log.Warn("could not send renewed credentials", "child", p.label(), "err", err)
		return
	}
	s.log.Debug("provider credentials renewed", "child", p.label(), "user", c.UserKey, "expires", next.Expires)
}

// sendCredentials sends the running provider a user JWT
// (lattice.RPCCredentials): a renewal, a re-mint or a repeat.
func (p *providerInstance) sendCredentials(jwt string) error {
	return p.sup.nc.Publish(lattice.RPCCredentials(p.sup.prefix, p.key, p.link), []byte(jwt))
}

func (p *providerInstance) checkHealth(ctx context.Context, subject string, body []byte, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := p.sup.nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return false, err.Error()
	}
	var r lattice.HealthCheckResponse
	if err := lattice.Unmarshal(msg.Data, &r); err != nil {
		return false, "undecodable health reply: " + err.Error()
	}
	p.noteLinkOutcomes(ctx, r.ReportsLinks, r.Links)
	p.mu.Lock()
	reconnected := r.Reconnects > p.reconnects
	p.reconnects = max(p.reconnects, r.Reconnects)
	p.mu.Unlock()
	if reconnected {
		p.resyncLinks(ctx)
	}
	if !r.Healthy {
		return false, "unhealthy: " + r.Message
	}
	return true, ""
}

// stop asks the provider to shut down, waits up to grace, then kills it;
// the instance is then removed. It returns once the loop has ended.
func (p *providerInstance) stop(grace time.Duration) {
	s := p.sup
	deadline := time.Now().Add(max(grace, 0))
	proc, _ := p.child.Stop(child.ExitCleanStop) // not a revocation: no error
	s.updateProviderGauge()
	p.child.Quit()
	if proc != nil {
		body := mustJSON(lattice.ShutdownRequest{HostID: s.hostID})
		// The provider acknowledges, drains and exits.
		_, err := s.nc.Request(lattice.RPCShutdown(s.prefix, p.key, p.link), body, min(max(grace, 0), 2*time.Second))
		if err != nil {
			s.log.Warn("provider did not acknowledge shutdown", "child", p.label(), "err", err)
		}
		if !proc.WaitDone(context.Background(), time.Until(deadline)) {
			s.log.Warn("provider still running after the grace period; killing it", "child", p.label(), "grace", grace.String())
			proc.Kill()
		}
	}
	<-p.child.Done()
	if p.child.State() == child.StateRevoked {
		p.remove() // stopping a revoked instance takes it off the list
	}
}

// How soon link outcomes are checked after a link is sent to a provider
// (or it first answers): every linkCheckInterval for linkCheckWindow.
const (
	linkCheckInterval = 200 * time.Millisecond
	linkCheckWindow   = 10 * time.Second
)

// pokeHealth asks the supervision loop for health checks soon: a link was
// sent to the provider, and its outcome is wanted (`up --apply`).
func (p *providerInstance) pokeHealth() {
	select {
	case p.recheck <- struct{}{}:
	default:
	}
}

// noteLinkOutcomes keeps what a health reply said of the provider's links
// and, for each link newly refused, logs it and publishes linkdef_set_failed
// (wasmCloud 1.x's event for a link that could not be set). A key-value
// provider that refused a link whose bucket is granted by now (the grant
// came as it gave up waiting) is sent the link again.
func (p *providerInstance) noteLinkOutcomes(ctx context.Context, reports bool, outcomes []lattice.LinkOutcome) {
	p.mu.Lock()
	prev := p.linkOutcomes
	p.reportsLinks, p.linkOutcomes = reports, outcomes
	p.mu.Unlock()
	newlyRefused := false
	for _, o := range outcomes {
		if o.Error == "" || slices.Contains(prev, o) {
			continue
		}
		newlyRefused = true
		p.sup.log.Error("provider refused a link", "child", p.label(), "actor", o.ActorID, "contract_id", o.ContractID, "err", o.Error)
		p.sup.publishEvent(lattice.EventLinkdefSetFailed, map[string]any{
			"actor_id": o.ActorID, "provider_id": p.key, "contract_id": o.ContractID, "link_name": o.LinkName,
			"host_id": p.sup.hostID, "error": o.Error,
		})
	}
	if newlyRefused && p.contract == wire.ContractKeyValue {
		p.resendRefusedLinks(ctx)
	}
}
