// Package console is the node's web console: an admin page served by
// `latticed up` (LATTICED_CONSOLE_ADDR) that shows the lattice, its actors,
// providers and link definitions, follows the lattice's events live, and
// starts, scales and stops actors, puts and deletes links and revokes
// providers through the control interface, as `latticed ctl` does.
//
// It is an admin surface (docs/security.md, "The web console"): on a
// loopback address it may run without login; anywhere else it refuses to
// start unless it asks for the login token it generates into the data dir.
// Every state-changing request carries the page's CSRF token. The page never
// sees a seed or credentials: only public keys and expiry times.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
)

//go:embed static
var static embed.FS

// ErrNeedsLogin is returned by New for an address off loopback without a
// login token: the console would let anyone who reaches it run the lattice.
var ErrNeedsLogin = errors.New("the web console listens off loopback without a login: set " +
	config.EnvConsoleToken + "=true (or " + config.EnvConsoleAddr + " to a loopback address, or empty to turn it off)")

// ProviderUser is the NATS user a provider instance runs as: public facts
// only, never its seed or JWT.
type ProviderUser struct {
	ProviderID string    `json:"provider_id"`
	LinkName   string    `json:"link_name"`
	User       string    `json:"user"`             // U… public key, what a revocation names
	Expires    time.Time `json:"expires,omitzero"` // zero: never
}

// Options configure a console.
type Options struct {
	// Addr is host:port to listen on.
	Addr string
	// DataDir holds the login token file (datadir.ConsoleTokenFile).
	DataDir string
	// Token makes the console ask for the login token; required off loopback.
	Token bool
	// Control is the control interface, as `latticed ctl` uses it.
	Control *ctlclient.Client
	// Events is the connection the live feed subscribes to the lattice's
	// events on; EventSubject is that subject.
	Events       *nats.Conn
	EventSubject string
	// ProviderUsers lists the NATS users of this node's provider instances.
	ProviderUsers func() []ProviderUser
	// HostWindow is the longest a refresh waits for hosts to answer a ping;
	// it stops earlier, once no new host has answered for
	// ctlclient.DefaultQuiet (as `latticed ctl get hosts` does).
	HostWindow time.Duration
	Logger     *slog.Logger
}

// Server is a running console.
type Server struct {
	opts      Options
	log       *slog.Logger
	ln        net.Listener
	srv       *http.Server
	csrf      string // one per server: a page of another origin cannot read it
	token     string // "" when no login is asked for
	tokenPath string
}

// New checks the security rules, writes the login token when one is asked
// for and listens on opts.Addr; Run serves.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HostWindow <= 0 {
		opts.HostWindow = 2 * time.Second
	}
	if opts.Control == nil || opts.Events == nil || opts.EventSubject == "" {
		return nil, errors.New("console: Control, Events and EventSubject are required")
	}
	// A copy: the caller's client keeps its own Quiet.
	quiet := *opts.Control
	quiet.Quiet = ctlclient.DefaultQuiet
	opts.Control = &quiet
	if !config.IsLoopbackAddr(opts.Addr) && !opts.Token {
		return nil, fmt.Errorf("console on %s: %w", opts.Addr, ErrNeedsLogin)
	}
	s := &Server{opts: opts, log: opts.Logger, csrf: randomToken()}
	var err error
	if opts.Token {
		s.tokenPath = datadir.Path(opts.DataDir, datadir.ConsoleTokenFile)
		if s.token, err = loadOrCreateToken(s.tokenPath); err != nil {
			return nil, err
		}
	}
	s.ln, err = net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("console listener on %s: %w (set %s, or empty to turn the console off)", opts.Addr, err, config.EnvConsoleAddr)
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr is the address the console listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is where a browser opens the console.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// TokenPath is the login token's file, "" when no login is asked for.
func (s *Server) TokenPath() string { return s.tokenPath }

// Run serves until ctx ends, then closes every connection (the live feeds
// included) and returns.
func (s *Server) Run(ctx context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx) // live feeds end with ctx, so Shutdown does not wait on them
	_ = s.srv.Close()
	<-errc
	return nil
}

// randomToken is 32 random bytes, URL-safe base64.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loadOrCreateToken keeps one token across restarts (a bookmarked login
// stays valid) and writes a new one, mode 0600, when there is none.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("console token %s has mode %o: others may read it; chmod 600 it or delete it for a new one", path, fi.Mode().Perm())
		}
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			return t, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the console token %s: %w", path, err)
	}
	t := randomToken()
	if err := datadir.WriteSecret(path, []byte(t+"\n")); err != nil {
		return "", fmt.Errorf("write the console token %s: %w", path, err)
	}
	return t, nil
}

// sameSecret compares in constant time.
func sameSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
