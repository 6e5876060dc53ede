package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/latticed/latticed/lattice"
)

// The admin socket: a 0600 unix socket in the supervisor's 0700 runtime
// dir. Each request is one JSON object on one line and gets one JSON line
// back; a connection may carry several requests in turn. Only the user
// running the supervisor can reach it (file mode, and the peer's uid is
// checked on Linux).

// AdminProtocolVersion is the "v" of every admin request and response.
// A supervisor refuses requests of any other version.
const AdminProtocolVersion = 1

// Admin operations.
const (
	AdminStatus    = "status"     // → Status
	AdminProviders = "providers"  // → Providers
	AdminLaunch    = "launch"     // Launch → ok
	AdminStop      = "stop"       // Provider → ok
	AdminRevoke    = "revoke"     // Provider → Revocation
	AdminRestart   = "restart"    // Target ("host" or a provider with Provider) → ok
	AdminHostHello = "host_hello" // the host child, before connecting → HostSettings
	AdminHostReady = "host_ready" // Host → ok
)

// AdminRequest is one request on the admin socket.
type AdminRequest struct {
	V        int                            `json:"v"`
	Op       string                         `json:"op"`
	Launch   *lattice.LaunchProviderCommand `json:"launch,omitempty"`
	Provider *lattice.StopProviderCommand   `json:"provider,omitempty"`
	Host     *HostReport                    `json:"host,omitempty"`
	Target   string                         `json:"target,omitempty"`
}

// AdminResponse answers one AdminRequest.
type AdminResponse struct {
	V            int                           `json:"v"`
	OK           bool                          `json:"ok"`
	Error        string                        `json:"error,omitempty"`
	Status       *Status                       `json:"status,omitempty"`
	Providers    []lattice.ProviderDescription `json:"providers,omitempty"`
	Revocation   *RevocationReport             `json:"revocation,omitempty"`
	HostSettings *HostSettings                 `json:"host_settings,omitempty"`
}

// Status is the supervisor's view of its node.
type Status struct {
	HostID        string                        `json:"host_id"`
	LatticePrefix string                        `json:"lattice_prefix"`
	NATSURL       string                        `json:"nats_url"`
	Mode          string                        `json:"mode"` // embedded, external
	Revocation    string                        `json:"revocation"`
	Ready         bool                          `json:"ready"`
	UptimeSeconds int64                         `json:"uptime_seconds"`
	Host          ChildStatus                   `json:"host"`
	Providers     []lattice.ProviderDescription `json:"providers"`
}

// ChildStatus describes one supervised process.
type ChildStatus struct {
	State      string `json:"state"`
	PID        int    `json:"pid,omitempty"`
	Restarts   int    `json:"restarts"`
	ExitReason string `json:"exit_reason,omitempty"`
}

// RevocationReport says when a revoked provider's connection was seen closed.
type RevocationReport struct {
	ProviderID string    `json:"provider_id"`
	LinkName   string    `json:"link_name"`
	InstanceID string    `json:"instance_id"`
	User       string    `json:"user"` // the revoked NATS user's public key
	Requested  time.Time `json:"requested"`
	Closed     time.Time `json:"closed"`
	// Seconds is from the request to the connection observed closed.
	Seconds float64 `json:"seconds"`
	// CredentialsExpire is set when the server could not be told (an
	// external NATS with only an account signing key): the process was
	// stopped, and its credentials, no longer renewed, expire then.
	CredentialsExpire *time.Time `json:"credentials_expire,omitempty"`
}

// HostSettings tell a host child how to use the credentials it was given.
type HostSettings struct {
	RPCInboxPrefix string `json:"rpc_inbox_prefix,omitempty"`
	CtlInboxPrefix string `json:"ctl_inbox_prefix,omitempty"`
}

// HostReport is what a host child tells its supervisor once it is ready.
type HostReport struct {
	HostID      string `json:"host_id"`
	MetricsAddr string `json:"metrics_addr,omitempty"` // host:port of its /metrics
	PID         int    `json:"pid"`
}

// adminServer serves the admin socket for a Supervisor.
type adminServer struct {
	path string
	ln   *net.UnixListener
	sup  *Supervisor
	log  *slog.Logger
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// listenAdmin creates the socket (replacing a stale one) with mode 0600.
func listenAdmin(path string, sup *Supervisor, log *slog.Logger) (*adminServer, error) {
	if len(path) > 100 {
		return nil, fmt.Errorf("admin socket path %s is too long for a unix socket (%d bytes, max ~100): use a shorter data dir or set LATTICED_ADMIN_SOCKET", path, len(path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("admin socket %s is in use: another latticed up runs with this data dir", path)
	}
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return &adminServer{path: path, ln: ln, sup: sup, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// serve accepts until close.
func (a *adminServer) serve() {
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			return
		}
		if err := checkPeer(c); err != nil {
			a.log.Warn("admin socket: refused a connection", "err", err)
			_ = c.Close()
			continue
		}
		a.mu.Lock()
		a.conns[c] = struct{}{}
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.handle(c)
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
		}()
	}
}

func (a *adminServer) close() {
	_ = a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		_ = c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	_ = os.Remove(a.path)
}

func (a *adminServer) handle(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req AdminRequest
		resp := AdminResponse{V: AdminProtocolVersion}
		switch err := json.Unmarshal(sc.Bytes(), &req); {
		case err != nil:
			resp.Error = "invalid request: " + err.Error()
		case req.V != AdminProtocolVersion:
			resp.Error = fmt.Sprintf("unsupported admin protocol version %d (this supervisor speaks %d)", req.V, AdminProtocolVersion)
		default:
			a.sup.answerAdmin(context.Background(), &req, &resp)
		}
		resp.OK = resp.Error == ""
		if err := enc.Encode(&resp); err != nil {
			return
		}
	}
}

// answerAdmin runs one admin request; every operation is a Supervisor method.
func (s *Supervisor) answerAdmin(ctx context.Context, req *AdminRequest, resp *AdminResponse) {
	var err error
	switch req.Op {
	case AdminStatus:
		st := s.Status()
		resp.Status = &st
	case AdminProviders:
		resp.Providers = s.Providers()
	case AdminLaunch:
		if req.Launch == nil {
			err = errors.New("launch: missing \"launch\"")
			break
		}
		err = s.LaunchProvider(ctx, *req.Launch)
	case AdminStop, AdminRevoke:
		if req.Provider == nil {
			err = fmt.Errorf("%s: missing \"provider\"", req.Op)
			break
		}
		if req.Op == AdminStop {
			err = s.StopProvider(ctx, *req.Provider)
			break
		}
		var rep RevocationReport
		if rep, err = s.Revoke(ctx, *req.Provider); err == nil {
			resp.Revocation = &rep
		}
	case AdminRestart:
		err = s.Restart(ctx, req.Target, req.Provider)
	case AdminHostHello:
		hs := s.hostSettings()
		resp.HostSettings = &hs
	case AdminHostReady:
		if req.Host == nil {
			err = errors.New("host_ready: missing \"host\"")
			break
		}
		err = s.hostReady(*req.Host)
	default:
		err = fmt.Errorf("unknown admin operation %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
}

// AdminClient talks to a supervisor's admin socket. It implements the host's
// ProviderLauncher (agent.ProviderLauncher), so a host child carries out
// ctl lp/sp/revoke through its supervisor; `latticed ctl --admin-socket`
// uses it too.
type AdminClient struct {
	path string
	// Timeout bounds requests whose context has no deadline.
	Timeout time.Duration
	log     *slog.Logger
}

// NewAdminClient returns a client for the socket at path.
func NewAdminClient(path string, log *slog.Logger) *AdminClient {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AdminClient{path: path, Timeout: 2 * time.Minute, log: log}
}

// Path is the socket's path.
func (c *AdminClient) Path() string { return c.path }

// Do sends one request and returns the response; a response with an error
// is returned as that error.
func (c *AdminClient) Do(ctx context.Context, req AdminRequest) (*AdminResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("supervisor admin socket %s: %w", c.path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req.V = AdminProtocolVersion
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return nil, fmt.Errorf("supervisor admin socket: send %s: %w", req.Op, err)
	}
	var resp AdminResponse
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("supervisor admin socket: %s: %w", req.Op, ctx.Err())
		}
		return nil, fmt.Errorf("supervisor admin socket: read %s reply: %w", req.Op, err)
	}
	if resp.Error != "" {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// LaunchProvider asks the supervisor to start a provider.
func (c *AdminClient) LaunchProvider(ctx context.Context, cmd lattice.LaunchProviderCommand) error {
	_, err := c.Do(ctx, AdminRequest{Op: AdminLaunch, Launch: &cmd})
	return err
}

// StopProvider asks the supervisor to stop a provider gracefully.
func (c *AdminClient) StopProvider(ctx context.Context, cmd lattice.StopProviderCommand) error {
	_, err := c.Do(ctx, AdminRequest{Op: AdminStop, Provider: &cmd})
	return err
}

// RevokeProvider revokes a provider instance's NATS user and stops it.
func (c *AdminClient) RevokeProvider(ctx context.Context, cmd lattice.StopProviderCommand) error {
	_, err := c.Revoke(ctx, cmd)
	return err
}

// Revoke is RevokeProvider with the report of when the connection closed.
func (c *AdminClient) Revoke(ctx context.Context, cmd lattice.StopProviderCommand) (*RevocationReport, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: AdminRevoke, Provider: &cmd})
	if err != nil {
		return nil, err
	}
	return resp.Revocation, nil
}

// Providers lists the supervisor's providers; on error it logs and returns
// none (the interface has no error: inventories must still answer).
func (c *AdminClient) Providers() []lattice.ProviderDescription {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, AdminRequest{Op: AdminProviders})
	if err != nil {
		c.log.Warn("cannot list providers from the supervisor", "err", err)
		return nil
	}
	return resp.Providers
}

// Status returns the supervisor's status.
func (c *AdminClient) Status(ctx context.Context) (*Status, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: AdminStatus})
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}

// Restart re-arms a failed child: target "host", or "provider" with p.
func (c *AdminClient) Restart(ctx context.Context, target string, p *lattice.StopProviderCommand) error {
	_, err := c.Do(ctx, AdminRequest{Op: AdminRestart, Target: target, Provider: p})
	return err
}

// HostHello is the host child's first call: how to use its credentials.
func (c *AdminClient) HostHello(ctx context.Context) (*HostSettings, error) {
	resp, err := c.Do(ctx, AdminRequest{Op: AdminHostHello})
	if err != nil {
		return nil, err
	}
	if resp.HostSettings == nil {
		return &HostSettings{}, nil
	}
	return resp.HostSettings, nil
}

// HostReady tells the supervisor the host child serves the lattice.
func (c *AdminClient) HostReady(ctx context.Context, r HostReport) error {
	_, err := c.Do(ctx, AdminRequest{Op: AdminHostReady, Host: &r})
	return err
}
