package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/lattice"
)

// nkey is a key pair with its public key at hand.
type nkey struct {
	kp  nkeys.KeyPair
	pub string
}

// OperatorKeys are the embedded server's trust chain: the operator, the
// system account and the lattice account everything of the lattice runs in.
// They persist in the data dir so the JetStream store (kept per account)
// survives restarts.
type OperatorKeys struct {
	Operator, System, Lattice nkey
}

// LoadOperatorKeys reads the three seeds from the data dir, creating any
// that is missing.
func LoadOperatorKeys(dataDir string) (*OperatorKeys, error) {
	var k OperatorKeys
	for _, f := range []struct {
		rel  string
		dst  *nkey
		kind lattice.KeyKind
	}{
		{datadir.OperatorSeedFile, &k.Operator, lattice.KindOperator},
		{datadir.SystemAccountSeedFile, &k.System, lattice.KindAccount},
		{datadir.LatticeAccountSeedFile, &k.Lattice, lattice.KindAccount},
	} {
		stored, _, err := datadir.LoadOrCreateKey(datadir.Path(dataDir, f.rel), f.kind)
		if err != nil {
			return nil, err
		}
		// The same key as nkeys sees it, which signs the server's JWTs.
		kp, err := nkeys.FromSeed([]byte(stored.Seed()))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", f.rel, err)
		}
		*f.dst = nkey{kp: kp, pub: stored.PublicKey()}
	}
	return &k, nil
}

// embeddedPruneMargin is how long after a revoked user's last JWT expired
// its entry stays: exp is truncated to whole seconds, and the embedded
// server reads the same clock as the supervisor.
const embeddedPruneMargin = 2 * time.Second

type operatorJWTs struct {
	operator *jwt.OperatorClaims
}

// StartOperatorNATS starts the embedded server in operator/JWT mode: the
// operator and both accounts are signed with keys, the account JWTs sit in a
// memory resolver, and the returned Authority mints users in the lattice
// account (signed by a signing key made for this run) and revokes them by
// applying updated account claims to this server.
func StartOperatorNATS(e EmbeddedNATS, keys *OperatorKeys, scope Scope) (*server.Server, *Authority, error) {
	signer, err := nkeys.CreateAccount()
	if err != nil {
		return nil, nil, err
	}
	signerPub, _ := signer.PublicKey()

	oc := jwt.NewOperatorClaims(keys.Operator.pub)
	oc.Name = "latticed"
	oc.SystemAccount = keys.System.pub
	opJWT, err := oc.Encode(keys.Operator.kp)
	if err != nil {
		return nil, nil, fmt.Errorf("sign operator JWT: %w", err)
	}
	if oc, err = jwt.DecodeOperatorClaims(opJWT); err != nil {
		return nil, nil, err
	}

	sys := jwt.NewAccountClaims(keys.System.pub)
	sys.Name = "SYS"
	sysJWT, err := sys.Encode(keys.Operator.kp)
	if err != nil {
		return nil, nil, fmt.Errorf("sign system account JWT: %w", err)
	}

	acct := jwt.NewAccountClaims(keys.Lattice.pub)
	acct.Name = "lattice"
	acct.SigningKeys.Add(signerPub)
	acct.Limits.JetStreamLimits = jwt.JetStreamLimits{
		MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit,
		MaxAckPending: jwt.NoLimit, MemoryMaxStreamBytes: jwt.NoLimit, DiskMaxStreamBytes: jwt.NoLimit,
	}
	encode := func(ac *jwt.AccountClaims) (string, error) { return ac.Encode(keys.Operator.kp) }
	acctJWT, err := encode(acct)
	if err != nil {
		return nil, nil, fmt.Errorf("sign lattice account JWT: %w", err)
	}

	res := &server.MemAccResolver{}
	if err := res.Store(keys.System.pub, sysJWT); err != nil {
		return nil, nil, err
	}
	if err := res.Store(keys.Lattice.pub, acctJWT); err != nil {
		return nil, nil, err
	}
	e.Operator, e.resolver, e.jwts = keys, res, operatorJWTs{operator: oc}
	s, err := StartNATS(e)
	if err != nil {
		return nil, nil, err
	}
	// The account starts with no revocations each run: users of earlier
	// runs were signed by an earlier run's signing key, which this account
	// no longer trusts, so nothing needs pruning at start.
	a := &Authority{
		scope: scope, account: keys.Lattice.pub, signer: signer, issuerAccount: keys.Lattice.pub,
		lifetime: e.ProviderCredsLifetime, margin: embeddedPruneMargin,
		claims: acct, encode: encode,
		apply: func(_ context.Context, token string, ac *jwt.AccountClaims) error {
			acc, err := s.LookupAccount(ac.Subject)
			if err != nil {
				return err
			}
			if err := res.Store(ac.Subject, token); err != nil {
				return err
			}
			// Synchronous: connections of revoked users are closed when it returns.
			s.UpdateAccountClaims(acc, ac)
			return nil
		},
	}
	return s, a, nil
}
