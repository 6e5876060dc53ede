package supervisor

import (
	"context"
	"errors"
	"sort"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/console"
	"github.com/latticed/latticed/lattice"
)

// startConsole serves the web console (LATTICED_CONSOLE_ADDR) until the
// returned stop is called. Its actions go through the control interface as
// `latticed ctl` does; a revocation reaches Revoke through the host, like
// `ctl revoke provider`. A console that cannot listen is logged and left
// out: the node runs on without it. One that would listen off loopback
// without a login, or whose TLS files cannot be loaded, is refused, and so
// is the node (an error): it never falls back to a weaker console.
func (s *Supervisor) startConsole(ctx context.Context, set config.SupervisorSettings) (stop func(), err error) {
	if set.Console.Addr == "" {
		return func() {}, nil
	}
	srv, err := console.New(console.Options{
		Addr: set.Console.Addr, DataDir: set.Paths.DataDir, Token: set.Console.Token,
		CertFile: set.Console.CertFile, KeyFile: set.Console.KeyFile, ClientCAFile: set.Console.ClientCAFile,
		Control: s.control, Events: s.nc, EventSubject: lattice.Events(s.prefix),
		ProviderUsers: s.providerUsers, Logger: s.log.With("part", "console"),
	})
	if err != nil {
		if errors.Is(err, console.ErrNeedsLogin) || errors.Is(err, console.ErrTLSFiles) {
			return nil, err
		}
		s.log.Error("web console not started; the node runs on without it", "err", err)
		return func() {}, nil
	}
	s.consoleURL = srv.URL()
	switch p := srv.TokenPath(); {
	case p != "":
		s.log.Info("web console", "url", srv.URL(), "token_file", p, "client_certificates", srv.ClientCerts())
	case srv.ClientCerts():
		s.log.Info("web console (login by client certificate)", "url", srv.URL(), "client_certificates", true)
	default:
		s.log.Info("web console (no login: loopback only)", "url", srv.URL())
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(cctx); err != nil {
			s.log.Error("web console stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// ConsoleURL is where the web console answers, "" when it does not run.
func (s *Supervisor) ConsoleURL() string { return s.consoleURL }

// providerUsers is what the console shows of each provider instance's NATS
// user: its public key and when it expires, never the seed or JWT.
func (s *Supervisor) providerUsers() []console.ProviderUser {
	list := s.instances()
	out := make([]console.ProviderUser, 0, len(list))
	for _, p := range list {
		p.mu.Lock()
		u := console.ProviderUser{ProviderID: p.key, LinkName: p.link, User: p.creds.UserKey, Expires: p.creds.Expires}
		p.mu.Unlock()
		if u.User != "" {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProviderID != out[j].ProviderID {
			return out[i].ProviderID < out[j].ProviderID
		}
		return out[i].LinkName < out[j].LinkName
	})
	return out
}
