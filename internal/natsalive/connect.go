package natsalive

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/lattice"
)

// Connect opens a NATS connection for one role with reconnects that never give
// up: a sidecar must ride out a NATS restart. url may list several servers,
// comma-separated (config.NATSConn.URL); any one answering will do. The
// connection has the default keepalive (config.DefaultKeepalive), so a
// frozen server is given up in seconds. extra options come last and win
// (e.g. Options with the configured keepalive,
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
	}, Options(config.DefaultKeepalive)...)
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

// AddReconnectHandler makes nc call f, after the handlers it has (Connect's
// logging among them), each time it is restored: nats.Conn's
// SetReconnectHandler alone would replace them.
func AddReconnectHandler(nc *nats.Conn, f func(*nats.Conn)) {
	prev := nc.ReconnectHandler()
	nc.SetReconnectHandler(func(c *nats.Conn) {
		if prev != nil {
			prev(c)
		}
		f(c)
	})
}

// AddErrorHandler makes nc call f, after the handler it has (Connect's
// logging), with each asynchronous error: a slow consumer's dropped
// messages, a permission violation.
func AddErrorHandler(nc *nats.Conn, f func(*nats.Conn, *nats.Subscription, error)) {
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if prev != nil {
			prev(c, sub, err)
		}
		f(c, sub, err)
	})
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

// nkeyOption authenticates with a bare user nkey seed.
func nkeyOption(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("NATS nkey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, kp.Sign), nil
}
