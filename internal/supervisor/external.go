package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/lattice"
)

// startExternal connects to the configured NATS. The supervisor's own
// connection uses the control interface's credentials (WASMCLOUD_CTL_*,
// else WASMCLOUD_RPC_*). Providers get, in order of preference:
//
//	(a) LATTICED_ACCOUNT_SIGNING_SEED: a user minted per instance with a
//	    short expiry, renewed while it is healthy; revocation = no renewal
//	    and the process stopped;
//	(b) plus LATTICED_OPERATOR_SIGNING_SEED and LATTICED_SYSTEM_CREDSFILE:
//	    revocation also pushes the account JWT with the revocation through
//	    the server's claims-update subject, cutting the connection at once;
//	(c) neither: the shared WASMCLOUD_PROV_RPC_* credentials, and no
//	    per-provider revocation, which the log and inventories say.
func (s *Supervisor) startExternal(set config.SupervisorSettings, scope Scope) error {
	s.mode = modeExternal
	ep := set.NATS.Endpoints
	ctl, prov := ep.Ctl, ep.ProvRPC
	s.natsURL = prov.URL()
	var err error
	inbox := natsalive.OperatorInbox(ctl, set.Lattice.Prefix)
	if len(inbox) == 0 {
		s.log.Warn("the supervisor's requests (link definitions, health checks) get their replies on _INBOX, which providers of other "+
			"wasmCloud SDKs may subscribe to; allow the control user to subscribe to "+lattice.OperatorInbox(set.Lattice.Prefix)+".> to keep them private",
			"nats_url", ctl.URL())
	}
	// No server of the list answering yet is no reason to exit: the
	// connection keeps trying, and Run waits for it while /readyz says why.
	opts := append(natsalive.Options(set.NATS.Keepalive), nats.RetryOnFailedConnect(true))
	if s.nc, err = natsalive.Connect(ctl.URL(), ctl, "latticed-supervisor", s.log, append(opts, inbox...)...); err != nil {
		return err
	}
	if set.Authority.AccountSigningSeed != "" {
		return s.startExternalAuthority(set, scope, ep)
	}
	shared, err := sharedProviderCredentials(prov)
	if err != nil {
		return err
	}
	s.shared = shared
	s.log.Warn("per-provider NATS revocation is UNAVAILABLE: providers share the WASMCLOUD_PROV_RPC_* credentials; "+
		"revoking a provider only stops it (it is not restarted). Set "+config.EnvAccountSigningSeed+
		" (and "+config.EnvOperatorSigningSeed+" with "+config.EnvSystemCredsFile+") to mint a user per provider",
		"nats_url", ctl.URL())
	return nil
}

// sharedProviderCredentials reads WASMCLOUD_PROV_RPC_* credentials (nil: none).
func sharedProviderCredentials(c config.NATSConn) (*Credentials, error) {
	switch {
	case c.CredsFile != "":
		b, err := os.ReadFile(c.CredsFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvProvRPCCredsFile, err)
		}
		token, err := jwt.ParseDecoratedJWT(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvProvRPCCredsFile, err)
		}
		kp, err := jwt.ParseDecoratedUserNKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvProvRPCCredsFile, err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		return &Credentials{Role: "shared", Name: "shared provider credentials", UserKey: pub, JWT: token, Seed: string(seed)}, nil
	case c.JWT != "":
		return &Credentials{Role: "shared", Name: "shared provider credentials", JWT: c.JWT, Seed: c.Seed}, nil
	case c.Seed != "":
		return nil, errors.New(config.EnvProvRPCSeed + " without " + config.EnvProvRPCJWT + ": providers connect with a user JWT and seed")
	}
	return nil, nil
}

// scope is what p's user is minted for, granted buckets.
func (p *providerInstance) scope(buckets []string) Scope {
	// Built-ins take their inbox prefix from HostData; any other
	// executable may be a wasmCloud provider using nats' default _INBOX.
	return Scope{ProviderKey: p.key, LinkName: p.link, Contract: p.contract,
		Buckets: buckets, WasmCloudInbox: !strings.HasPrefix(p.ref, builtin.RefPrefix)}
}

// providerCredentials are what one provider instance connects with.
// A key-value provider is granted buckets (kvgrants.go).
func (s *Supervisor) providerCredentials(p *providerInstance, buckets []string) (Credentials, error) {
	if s.auth != nil {
		return s.auth.Mint(RoleProvider, p.label(), p.scope(buckets))
	}
	if s.shared != nil {
		return *s.shared, nil
	}
	return Credentials{Role: "shared"}, nil
}

// startExternalAuthority sets up modes (a) and (b).
func (s *Supervisor) startExternalAuthority(set config.SupervisorSettings, scope Scope, ep config.Endpoints) error {
	ctl := ep.Ctl
	signer, err := nkeys.FromSeed([]byte(set.Authority.AccountSigningSeed))
	if err != nil {
		return fmt.Errorf("%s: not a valid seed", config.EnvAccountSigningSeed)
	}
	signerPub, _ := signer.PublicKey()
	account, err := latticeAccount(ctl, ep.RPC)
	if err != nil {
		return err
	}
	if account == "" {
		account = signerPub // the seed is the account's own key
	}
	lifetime := s.providerCredsLifetime(set)
	// The server's clock may differ from this one by up to the lattice's
	// clock-skew tolerance.
	a := &Authority{scope: scope, account: account, signer: signer, lifetime: lifetime, margin: embeddedPruneMargin + set.Lattice.ClockSkew}
	if account != signerPub {
		a.issuerAccount = account
	}
	if set.Authority.OperatorSigningSeed == "" {
		s.auth, s.observer = a, nil
		s.log.Warn("provider users are minted with short-lived credentials; revoking one stops renewing them and stops the process, "+
			"but its connection lasts until they expire. Set "+config.EnvOperatorSigningSeed+" and "+config.EnvSystemCredsFile+" for an immediate cut",
			"account", account, "lifetime", lifetime.String())
		return nil
	}
	op, err := nkeys.FromSeed([]byte(set.Authority.OperatorSigningSeed))
	if err != nil {
		return fmt.Errorf("%s: not a valid seed", config.EnvOperatorSigningSeed)
	}
	sys, err := natsalive.Connect(ctl.URL(), config.NATSConn{CredsFile: set.Authority.SystemCredsFile, TLS: ctl.TLS}, "latticed-supervisor-system", s.log,
		natsalive.Options(set.NATS.Keepalive)...)
	if err != nil {
		return fmt.Errorf("system account (%s): %w", config.EnvSystemCredsFile, err)
	}
	s.sys = sys
	ext := &externalAccount{sys: sys, account: account}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	claims, err := ext.lookup(ctx)
	if err != nil {
		return err
	}
	a.claims = claims
	a.fetch = ext.lookup
	a.encode = func(ac *jwt.AccountClaims) (string, error) { return ac.Encode(op) }
	a.apply = ext.push
	// The account outlives this process: what this node revoked before is
	// in its record, and what of it expired meanwhile goes now.
	record := datadir.Path(set.Paths.DataDir, datadir.RevocationsFile)
	if a.prunable, err = loadPrunable(record, account); err != nil {
		s.log.Warn("revocations made before this start are not pruned", "err", err)
	}
	a.save = func(m map[string]time.Time) {
		if err := savePrunable(record, account, m); err != nil {
			s.log.Warn("could not save the record of revocations to prune; expired entries may stay in the account longer", "path", record, "err", err)
		}
	}
	if err := a.Prune(ctx); err != nil {
		s.log.Warn("could not prune expired revocations at start; the next revocation tries again", "account", account, "err", err)
	}
	s.auth, s.observer = a, ext
	s.log.Info("provider users are minted per instance; revocations are pushed to the NATS server's account resolver", "account", account)
	return nil
}

// providerCredsLifetime is the lifetime of minted provider users: the
// configured one, or the tests' override.
func (s *Supervisor) providerCredsLifetime(set config.SupervisorSettings) time.Duration {
	if s.credsLifetime > 0 {
		return s.credsLifetime
	}
	return set.Authority.ProviderCredsLifetime
}

// latticeAccount finds the lattice account from the host's credentials:
// the issuer account of its user JWT ("" when it has none).
func latticeAccount(conns ...config.NATSConn) (string, error) {
	for _, c := range conns {
		token := c.JWT
		if c.CredsFile != "" {
			b, err := os.ReadFile(c.CredsFile)
			if err != nil {
				return "", err
			}
			if token, err = jwt.ParseDecoratedJWT(b); err != nil {
				return "", fmt.Errorf("%s: %w", c.CredsFile, err)
			}
		}
		if token == "" {
			continue
		}
		uc, err := jwt.DecodeUserClaims(token)
		if err != nil {
			return "", fmt.Errorf("the host's user JWT: %w", err)
		}
		if uc.IssuerAccount != "" {
			return uc.IssuerAccount, nil
		}
		return uc.Issuer, nil
	}
	return "", nil
}

// externalAccount reaches an external server's account resolver and
// monitoring through the system account.
type externalAccount struct {
	sys     *nats.Conn
	account string
}

// lookup fetches the account's current JWT, so a revocation never drops
// changes someone else pushed.
func (e *externalAccount) lookup(ctx context.Context) (*jwt.AccountClaims, error) {
	msg, err := e.sys.RequestWithContext(ctx, fmt.Sprintf("$SYS.REQ.ACCOUNT.%s.CLAIMS.LOOKUP", e.account), nil)
	if err != nil {
		return nil, fmt.Errorf("look up account %s through the system account: %w", e.account, err)
	}
	ac, err := jwt.DecodeAccountClaims(string(msg.Data))
	if err != nil {
		return nil, fmt.Errorf("account %s: the server returned no account JWT (%q): %w", e.account, truncate(string(msg.Data), 200), err)
	}
	return ac, nil
}

// update pushes a signed account JWT through $SYS.REQ.CLAIMS.UPDATE.
func (e *externalAccount) update(ctx context.Context, token string) error {
	return e.push(ctx, token, nil)
}

// push is update as an Authority's apply: the server decodes the token itself.
func (e *externalAccount) push(ctx context.Context, token string, _ *jwt.AccountClaims) error {
	msg, err := e.sys.RequestWithContext(ctx, "$SYS.REQ.CLAIMS.UPDATE", []byte(token))
	if err != nil {
		return fmt.Errorf("push account JWT: %w", err)
	}
	var resp struct {
		Data *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("claims update reply: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("the server refused the account update: %s", resp.Error.Description)
	}
	return nil
}

// openConns asks the server how many connections the user has open.
func (e *externalAccount) openConns(ctx context.Context, userKey string) (int, error) {
	body, _ := json.Marshal(server.ConnzOptions{Username: true, User: userKey, State: server.ConnOpen, Account: e.account})
	msg, err := e.sys.RequestWithContext(ctx, fmt.Sprintf("$SYS.REQ.ACCOUNT.%s.CONNZ", e.account), body)
	if err != nil {
		return 0, err
	}
	var resp struct {
		Data  *server.Connz `json:"data"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, err
	}
	if resp.Error != nil || resp.Data == nil {
		return 0, fmt.Errorf("connz: %+v", resp.Error)
	}
	return resp.Data.NumConns, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
