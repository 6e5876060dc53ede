// Package admin is the admin socket of `latticed up`: the protocol (one
// JSON request per line, one JSON response per line, versioned), the
// server that listens on a 0600 unix socket only its user can reach, and
// the Client that the host child and `latticed ctl` use. What each
// operation does is the supervisor's business: the server hands every
// request to an AnswerFunc.
package admin

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

// The admin socket is a 0600 unix socket in the supervisor's 0700 runtime
// dir. Each request is one JSON object on one line and gets one JSON line
// back; a connection may carry several requests in turn. Only the user
// running the supervisor can reach it (file mode, and the peer's uid is
// checked on Linux).

// ProtocolVersion is the "v" of every admin request and response.
// A supervisor refuses requests of any other version.
const ProtocolVersion = 1

// Operations, the "op" of a Request.
const (
	OpStatus    = "status"     // → Status
	OpProviders = "providers"  // → Providers
	OpLaunch    = "launch"     // Launch → ok
	OpStop      = "stop"       // Provider → ok
	OpRevoke    = "revoke"     // Provider → Revocation
	OpRestart   = "restart"    // Target ("host" or a provider with Provider) → ok
	OpHostHello = "host_hello" // the host child, before connecting → HostSettings
	OpHostReady = "host_ready" // Host → ok
)

// Request is one request on the admin socket.
type Request struct {
	V        int                            `json:"v"`
	Op       string                         `json:"op"`
	Launch   *lattice.LaunchProviderCommand `json:"launch,omitempty"`
	Provider *lattice.StopProviderCommand   `json:"provider,omitempty"`
	Host     *HostReport                    `json:"host,omitempty"`
	Target   string                         `json:"target,omitempty"`
}

// Response answers one Request.
type Response struct {
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
	// Preload are the actor references the supervisor asks the host to
	// start first once it is ready (latticed up --start-actor): the host
	// loads their cached compiled code while it connects.
	Preload []string `json:"preload,omitempty"`
}

// HostReport is what a host child tells its supervisor once it is ready.
type HostReport struct {
	HostID      string `json:"host_id"`
	MetricsAddr string `json:"metrics_addr,omitempty"` // host:port of its /metrics
	PID         int    `json:"pid"`
}

// AnswerFunc carries out one request of a supported version: it fills in
// resp, or sets resp.Error to say why it could not.
type AnswerFunc func(ctx context.Context, req *Request, resp *Response)

// Server serves the admin socket; Serve accepts until Close.
type Server struct {
	path   string
	ln     *net.UnixListener
	answer AnswerFunc
	log    *slog.Logger
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Listen creates the socket at path (replacing a stale one) with mode 0600
// in a 0700 directory. It fails when another process serves path.
func Listen(path string, answer AnswerFunc, log *slog.Logger) (*Server, error) {
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
	return &Server{path: path, ln: ln, answer: answer, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// Serve accepts connections until Close, each served by its own goroutine
// that Close waits for.
func (a *Server) Serve() {
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

// Close stops accepting, closes every open connection, waits for their
// goroutines and removes the socket.
func (a *Server) Close() {
	_ = a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		_ = c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	_ = os.Remove(a.path)
}

func (a *Server) handle(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		resp := Response{V: ProtocolVersion}
		switch err := json.Unmarshal(sc.Bytes(), &req); {
		case err != nil:
			resp.Error = "invalid request: " + err.Error()
		case req.V != ProtocolVersion:
			resp.Error = fmt.Sprintf("unsupported admin protocol version %d (this supervisor speaks %d)", req.V, ProtocolVersion)
		default:
			a.answer(context.Background(), &req, &resp)
		}
		resp.OK = resp.Error == ""
		if err := enc.Encode(&resp); err != nil {
			return
		}
	}
}

// Client talks to a supervisor's admin socket. It implements the host's
// ProviderLauncher (host.ProviderLauncher), so a host child carries out
// ctl lp/sp/revoke through its supervisor; `latticed ctl --admin-socket`
// uses it too.
type Client struct {
	path string
	// Timeout bounds requests whose context has no deadline.
	Timeout time.Duration
	log     *slog.Logger
}

// NewClient returns a client for the socket at path.
func NewClient(path string, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{path: path, Timeout: 2 * time.Minute, log: log}
}

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// Do sends one request and returns the response; a response with an error
// is returned as that error.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
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
	req.V = ProtocolVersion
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return nil, fmt.Errorf("supervisor admin socket: send %s: %w", req.Op, err)
	}
	var resp Response
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
func (c *Client) LaunchProvider(ctx context.Context, cmd lattice.LaunchProviderCommand) error {
	_, err := c.Do(ctx, Request{Op: OpLaunch, Launch: &cmd})
	return err
}

// StopProvider asks the supervisor to stop a provider gracefully.
func (c *Client) StopProvider(ctx context.Context, cmd lattice.StopProviderCommand) error {
	_, err := c.Do(ctx, Request{Op: OpStop, Provider: &cmd})
	return err
}

// RevokeProvider revokes a provider instance's NATS user and stops it.
func (c *Client) RevokeProvider(ctx context.Context, cmd lattice.StopProviderCommand) error {
	_, err := c.Revoke(ctx, cmd)
	return err
}

// Revoke is RevokeProvider with the report of when the connection closed.
func (c *Client) Revoke(ctx context.Context, cmd lattice.StopProviderCommand) (*RevocationReport, error) {
	resp, err := c.Do(ctx, Request{Op: OpRevoke, Provider: &cmd})
	if err != nil {
		return nil, err
	}
	return resp.Revocation, nil
}

// Providers lists the supervisor's providers; on error it logs and returns
// none (the interface has no error: inventories must still answer).
func (c *Client) Providers() []lattice.ProviderDescription {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, Request{Op: OpProviders})
	if err != nil {
		c.log.Warn("cannot list providers from the supervisor", "err", err)
		return nil
	}
	return resp.Providers
}

// Status returns the supervisor's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.Do(ctx, Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}

// Restart re-arms a failed child: target "host", or "provider" with p.
func (c *Client) Restart(ctx context.Context, target string, p *lattice.StopProviderCommand) error {
	_, err := c.Do(ctx, Request{Op: OpRestart, Target: target, Provider: p})
	return err
}

// HostHello is the host child's first call: how to use its credentials.
func (c *Client) HostHello(ctx context.Context) (*HostSettings, error) {
	resp, err := c.Do(ctx, Request{Op: OpHostHello})
	if err != nil {
		return nil, err
	}
	if resp.HostSettings == nil {
		return &HostSettings{}, nil
	}
	return resp.HostSettings, nil
}

// HostReady tells the supervisor the host child serves the lattice.
func (c *Client) HostReady(ctx context.Context, r HostReport) error {
	_, err := c.Do(ctx, Request{Op: OpHostReady, Host: &r})
	return err
}
