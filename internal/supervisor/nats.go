package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/lattice"
)

// EmbeddedNATS describes the server a lattice of one runs for itself.
type EmbeddedNATS struct {
	Listen     string // host:port; must be loopback unless the operator says otherwise
	StoreDir   string // JetStream store
	MaxPayload int32
	// ProviderCredsLifetime is how long the provider users the returned
	// Authority mints are valid (renewed while healthy); 0: they never
	// expire, and their revocations are never pruned.
	ProviderCredsLifetime time.Duration
	// Operator, when set, runs the server in operator/JWT mode with these
	// keys as its trust chain; StartOperatorNATS sets it.
	Operator *OperatorKeys
	resolver *server.MemAccResolver
	jwts     operatorJWTs
}

// ErrAddrInUse is returned (wrapped) by CheckListen when another process
// holds the address.
var ErrAddrInUse = errors.New("address already in use")

// CheckListen reports whether this process can listen on addr (host:port)
// right now, by binding it and letting it go. `latticed up` calls it for
// the embedded NATS and metrics addresses before it creates any key, so a
// taken port fails in milliseconds and leaves the data dir untouched,
// instead of after nats-server's start timeout. what names the setting in
// the error, e.g. config.EnvNATSListen.
func CheckListen(addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s %s: %w by another process (stop it or set %s to a free address)", what, addr, ErrAddrInUse, what)
		}
		return fmt.Errorf("%s %s: %w", what, addr, err)
	}
	return ln.Close()
}

// StartNATS starts an embedded nats-server with JetStream and waits until it
// accepts connections. Callers Shutdown it.
func StartNATS(e EmbeddedNATS) (*server.Server, error) {
	// nats-server reports a failed listen only in its log and then never
	// becomes ready: check first, so a taken port fails at once.
	if err := CheckListen(e.Listen, config.EnvNATSListen); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	host, portStr, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", e.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("JetStream store %s: %w", e.StoreDir, err)
	}
	opts := &server.Options{
		ServerName: "latticed-embedded",
		Host:       host, Port: port,
		JetStream: true, StoreDir: e.StoreDir,
		NoSigs: true, NoLog: true,
		MaxPayload: e.MaxPayload,
	}
	if e.Operator != nil {
		opts.TrustedOperators = []*jwt.OperatorClaims{e.jwts.operator}
		opts.SystemAccount = e.Operator.System.pub
		opts.AccountResolver = e.resolver
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s within 15s (is the port in use? set LATTICED_NATS_LISTEN)", e.Listen)
	}
	return s, nil
}

// Connect opens a NATS connection for one role with reconnects that never give
// up: a sidecar must ride out a NATS restart. url may list several servers,
// comma-separated (config.NATSConn.URL); any one answering will do. The
// connection has the default keepalive (config.DefaultKeepalive), so a
// frozen server is given up in seconds. extra options come last and win
// (e.g. natsalive.Options with the configured keepalive,
// nats.RetryOnFailedConnect(true) to keep trying when no server answers
// yet, nats.CustomInboxPrefix for a user minted with a private inbox).
func Connect(url string, auth config.NATSConn, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				log.Debug("NATS connection closed", "conn", name)
				return
			}
			log.Warn("NATS disconnected", "conn", name, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "conn", name, "url", nc.ConnectedUrlRedacted()) }),
		// Called instead of the reconnect handler when the first connection
		// succeeds late (nats.RetryOnFailedConnect).
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("NATS connected", "conn", name, "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Warn("NATS async error", "conn", name, "subject", subj, "err", err)
		}),
	}, natsalive.Options(config.DefaultKeepalive)...)
	switch {
	case auth.CredsFile != "":
		opts = append(opts, nats.UserCredentials(auth.CredsFile))
	case auth.JWT != "" && auth.Seed != "":
		opts = append(opts, nats.UserJWTAndSeed(auth.JWT, auth.Seed))
	case auth.Seed != "":
		opt, err := nkeyOption(auth.Seed)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s to NATS at %s: %w", name, url, err)
	}
	return nc, nil
}

// OperatorInbox returns the nats.CustomInboxPrefix option for one of the
// operator's requesters (the supervisor, latticed ctl, up --apply)
// connecting with auth: lattice.OperatorInbox, where no provider may
// subscribe, whenever auth's user may subscribe there (see PrivateInbox).
func OperatorInbox(auth config.NATSConn, latticePrefix string) []nats.Option {
	return PrivateInbox(auth, lattice.OperatorInbox(latticePrefix))
}

// PrivateInbox returns the option that makes a connection with auth take
// its reply inboxes under prefix, when auth's user may subscribe to
// prefix.>: a user JWT whose permissions allow it (admin.creds allow
// everything), or no credentials at all. It returns no option, leaving
// nats' default "_INBOX", for a user whose permissions are unknown (an nkey
// seed: the server's configuration holds them; a JWT without permissions
// signed by a signing key, which may be scoped) or allow only other
// inboxes, as an external deployment's users granted "_INBOX.>"
// (docs/operations.md): their replies can be read by foreign providers,
// which keep "_INBOX.>" (docs/security.md, "Roles").
func PrivateInbox(auth config.NATSConn, prefix string) []nats.Option {
	token := auth.JWT
	switch {
	case auth.CredsFile != "":
		b, err := os.ReadFile(auth.CredsFile)
		if err != nil {
			return nil // the connection reports the unreadable file
		}
		if token, err = jwt.ParseDecoratedJWT(b); err != nil {
			return nil
		}
	case token == "" && auth.Seed != "":
		return nil
	case token == "":
		return []nats.Option{nats.CustomInboxPrefix(prefix)}
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil || !maySubscribe(uc.Sub, prefix+".>") {
		return nil
	}
	if uc.IssuerAccount != "" && uc.Permissions.Resp == nil &&
		len(uc.Pub.Allow)+len(uc.Pub.Deny)+len(uc.Sub.Allow)+len(uc.Sub.Deny) == 0 {
		return nil // signed by a signing key, whose scope may hold the permissions
	}
	return []nats.Option{nats.CustomInboxPrefix(prefix)}
}

// maySubscribe reports whether p allows subscribing to every subject that
// subject (which may end in ">") matches, as nats-server decides: allowed
// by the allow list (empty: everything), and no deny entry overlapping it.
func maySubscribe(p jwt.Permission, subject string) bool {
	allowed := len(p.Allow) == 0
	for _, a := range p.Allow {
		allowed = allowed || subjectCovers(a, subject)
	}
	for _, d := range p.Deny {
		if subjectsOverlap(d, subject) {
			return false
		}
	}
	return allowed
}

// subjectCovers reports whether pattern matches every subject that subject
// matches.
func subjectCovers(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return i < len(st)
		}
		if i >= len(st) || st[i] == ">" || p != "*" && (p != st[i] || st[i] == "*") {
			return false
		}
	}
	return len(pt) == len(st)
}

// subjectsOverlap reports whether some subject matches both a and b.
func subjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == ">" || bt[i] == ">" {
			return true
		}
		if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] {
			return false
		}
	}
	return len(at) == len(bt)
}

// ConnURL picks the URL for a configured connection, or the embedded server's.
func ConnURL(c config.NATSConn, embedded *server.Server) (string, error) {
	if c.Configured() {
		return c.URL(), nil
	}
	if embedded != nil {
		return embedded.ClientURL(), nil
	}
	return "", errors.New("no NATS server configured")
}

// WriteSecret writes data to path with mode 0600 inside a 0700 directory.
func WriteSecret(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CheckAddrs checks that the addresses `latticed up` will listen on with
// cfg are free: the embedded NATS server's (when no NATS is configured) and
// the metrics endpoint's. Run it before creating keys or files.
func CheckAddrs(cfg *config.Config) error {
	if cfg.EmbeddedNATS() {
		if err := CheckListen(cfg.NATSListen, config.EnvNATSListen); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
	}
	if err := CheckListen(cfg.MetricsAddr, config.EnvMetricsAddr); err != nil {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	return nil
}
