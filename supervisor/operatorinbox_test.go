package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/config"
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
	userSeed, _ := nkeys.CreateUser()
	seedOnly, _ := userSeed.Seed()
	private := lattice.OperatorInbox("default")
	for _, tc := range []struct {
		name string
		auth config.NATSConn
		want string // "" = nats' default
	}{
		{"creds file without limits (admin.creds)", config.NATSConn{CredsFile: credsFile(nil)}, private},
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
			for _, opt := range OperatorInbox(tc.auth, "default") {
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
