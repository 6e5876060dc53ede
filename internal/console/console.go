// Package console is the node's web console: an admin page served by
// `latticed up` (LATTICED_CONSOLE_ADDR) that shows the lattice, its actors,
// providers and link definitions, follows the lattice's events live, and
// starts, scales and stops actors, puts and deletes links and revokes
// providers through the control interface, as `latticed ctl` does.
//
// It is an admin surface (docs/security.md, "The web console"): on a
// loopback address it may run without login; anywhere else it refuses to
// start unless it asks for the login token it generates into the data dir,
// or serves HTTPS and requires a client certificate from the CAs it is given
// (with both, a client needs both).
// Every state-changing request carries the page's CSRF token. The page never
// sees a seed or credentials: only public keys and expiry times.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
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
// login (token or client certificates): the console would let anyone who
// reaches it run the lattice.
var ErrNeedsLogin = errors.New("the web console listens off loopback without a login: set " +
	config.EnvConsoleToken + "=true, or " + config.EnvConsoleTLSClientCA + " (with " + config.EnvConsoleTLSCert + " and " +
	config.EnvConsoleTLSKey + ") to require client certificates (or " + config.EnvConsoleAddr + " to a loopback address, or empty to turn it off)")

// ErrTLSFiles is returned by New when the console's certificate, key or
// client CAs cannot be loaded: it does not fall back to plain HTTP.
var ErrTLSFiles = errors.New("console TLS files")

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
	// Token makes the console ask for the login token; off loopback it
	// needs this or ClientCAFile.
	Token bool
	// CertFile and KeyFile (PEM) make the console serve HTTPS (TLS ≥ 1.2).
	// ClientCAFile (PEM, needs CertFile) makes it require a client
	// certificate issued by one of its CAs in every handshake.
	CertFile, KeyFile, ClientCAFile string
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
	tls       *tls.Config // nil: plain HTTP
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
	if !config.IsLoopbackAddr(opts.Addr) && !opts.Token && opts.ClientCAFile == "" {
		return nil, fmt.Errorf("console on %s: %w", opts.Addr, ErrNeedsLogin)
	}
	s := &Server{opts: opts, log: opts.Logger, csrf: randomToken()}
	var err error
	if s.tls, err = loadTLS(opts.CertFile, opts.KeyFile, opts.ClientCAFile); err != nil {
		return nil, err
	}
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
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: s.tls,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)} // refused handshakes: one line each, at debug
	return s, nil
}

// loadTLS is the console's TLS configuration: nil without a certificate;
// with clientCAFile, every handshake must present a client certificate
// one of those CAs issued, or it fails (before any HTTP is read).
func loadTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && clientCAFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: HTTPS needs both %s and %s", ErrTLSFiles, config.EnvConsoleTLSCert, config.EnvConsoleTLSKey)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: load the certificate %s and key %s: %v", ErrTLSFiles, certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read the client CAs: %v", ErrTLSFiles, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate (%s wants the CAs that issue client certificates)", ErrTLSFiles, clientCAFile, config.EnvConsoleTLSClientCA)
		}
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return cfg, nil
}

// Addr is the address the console listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is where a browser opens the console.
func (s *Server) URL() string {
	if s.tls != nil {
		return "https://" + s.Addr() + "/"
	}
	return "http://" + s.Addr() + "/"
}

// ClientCerts says whether the console requires client certificates.
func (s *Server) ClientCerts() bool { return s.tls != nil && s.tls.ClientCAs != nil }

// TokenPath is the login token's file, "" when no login is asked for.
func (s *Server) TokenPath() string { return s.tokenPath }

// Run serves until ctx ends, then closes every connection (the live feeds
// included) and returns.
func (s *Server) Run(ctx context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- s.srv.ServeTLS(s.ln, "", "") // the certificate is in srv.TLSConfig
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
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
