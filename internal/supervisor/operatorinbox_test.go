package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/lattice"
)

// TestOperatorInboxIsPrivateWhenTheUserMaySubscribeThere: the operator's
// requesters (supervisor, latticed ctl, --apply) take the private inbox
// whenever their user may subscribe there, and keep nats' default _INBOX
// for a user that may not (an external control user granted _INBOX.>), so
// that they never lose their replies to a permission violation.
func TestOperatorInboxIsPrivateWhenTheUserMaySubscribeThere(t *testing.T) {
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	userJWT := func(allow, deny []string) (token, seed string) {
		t.Helper()
		u, _ := nkeys.CreateUser()
		pub, _ := u.PublicKey()
		s, _ := u.Seed()
		uc := jwt.NewUserClaims(pub)
		uc.Sub.Allow, uc.Sub.Deny = allow, deny
		token, err := uc.Encode(account)
		if err != nil {
			t.Fatal(err)
		}
		return token, string(s)
	}
	credsFile := func(allow []string) string {
		t.Helper()
		token, seed := userJWT(allow, nil)
		b, err := jwt.FormatUserConfig(token, []byte(seed))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "user.creds")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jwtConn := func(allow, deny []string) config.NATSConn {
		token, seed := userJWT(allow, deny)
		return config.NATSConn{JWT: token, Seed: seed}
	}
	// Users signed by a signing key, as an account's users usually are.
	signingKey, _ := nkeys.CreateAccount()
	accountPub, _ := account.PublicKey()
	bySigningKey := func(allow []string) config.NATSConn {
		t.Helper()
		u, _ := nkeys.CreateUser()
		pub, _ := u.PublicKey()
		seed, _ := u.Seed()
		uc := jwt.NewUserClaims(pub)
		uc.IssuerAccount = accountPub
		uc.Sub.Allow = allow
		token, err := uc.Encode(signingKey)
		if err != nil {
			t.Fatal(err)
		}
		return config.NATSConn{JWT: token, Seed: string(seed)}
	}
	// And admin.creds as the supervisor mints them.
	_, authority, _ := operatorServer(t)
	admin, err := authority.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	adminCreds, err := admin.CredsFile()
	if err != nil {
		t.Fatal(err)
	}
	adminPath := filepath.Join(t.TempDir(), "admin.creds")
	if err := os.WriteFile(adminPath, adminCreds, 0o600); err != nil {
		t.Fatal(err)
	}
	userSeed, _ := nkeys.CreateUser()
	seedOnly, _ := userSeed.Seed()
	private := lattice.OperatorInbox("default")
	for _, tc := range []struct {
		name string
		auth config.NATSConn
		want string // "" = nats' default
	}{
		{"admin.creds minted by the supervisor", config.NATSConn{CredsFile: adminPath}, private},
		{"creds file without limits, signed by the account", config.NATSConn{CredsFile: credsFile(nil)}, private},
		{"JWT without permissions from a signing key (maybe scoped)", bySigningKey(nil), ""},
		{"JWT from a signing key allowing the private root", bySigningKey([]string{"_INBOX_LATTICED.>"}), private},
		{"creds file allowing only _INBOX.>", config.NATSConn{CredsFile: credsFile([]string{"wasmbus.ctl.default.>", "_INBOX.>"})}, ""},
		{"creds file allowing the private root", config.NATSConn{CredsFile: credsFile([]string{"_INBOX_LATTICED.>"})}, private},
		{"JWT allowing this lattice's private inboxes", jwtConn([]string{"_INBOX_LATTICED.default.*.>"}, nil), private},
		{"JWT allowing another lattice's", jwtConn([]string{"_INBOX_LATTICED.other.>"}, nil), ""},
		{"JWT allowing a narrower subject only", jwtConn([]string{"_INBOX_LATTICED.default.admin.x"}, nil), ""},
		{"JWT allowing everything but denying part of it", jwtConn(nil, []string{"_INBOX_LATTICED.default.admin.*.x"}), ""},
		{"JWT denying something else", jwtConn(nil, []string{"wasmbus.rpc.>"}), private},
		{"nkey seed: permissions unknown", config.NATSConn{Seed: string(seedOnly)}, ""},
		{"unreadable creds file", config.NATSConn{CredsFile: filepath.Join(t.TempDir(), "missing.creds")}, ""},
		{"no credentials", config.NATSConn{}, private},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o nats.Options
			for _, opt := range natsalive.OperatorInbox(tc.auth, "default") {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			if o.InboxPrefix != tc.want {
				t.Errorf("inbox prefix %q, want %q", o.InboxPrefix, tc.want)
			}
		})
	}
}
