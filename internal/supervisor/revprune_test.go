package supervisor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// shortLivedServer starts the embedded operator-mode server whose provider
// users live lifetime.
func shortLivedServer(t *testing.T, lifetime time.Duration) (*server.Server, *Authority) {
	t.Helper()
	dir := t.TempDir()
	keys, err := LoadOperatorKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, a, err := StartOperatorNATS(EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), MaxPayload: 1 << 20,
		ProviderCredsLifetime: lifetime}, keys, Scope{LatticePrefix: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s, a
}

// mintProviders mints n provider users.
func mintProviders(t *testing.T, a *Authority, n int, tag string) []Credentials {
	t.Helper()
	out := make([]Credentials, n)
	for i := range out {
		c, err := a.Mint(RoleProvider, tag, Scope{ProviderKey: trust.FileProviderKey([32]byte{byte(i + 1)}), LinkName: "default"})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// refusedWhileValid checks that the server refuses c although its JWT has
// not expired: the refusal is the revocation's, not the expiry's.
func refusedWhileValid(t *testing.T, url string, c Credentials) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserJWTAndSeed(c.JWT, c.Seed), nats.NoReconnect())
	checked := time.Now()
	if err == nil {
		nc.Close()
		t.Fatalf("revoked user %s connected", c.UserKey)
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("revoked user %s: %v, want an authorization error", c.UserKey, err)
	}
	if !checked.Before(c.Expires) {
		t.Fatalf("user %s's JWT expired (%s) before it was tried (%s): the check proves nothing; the machine is far slower than the lifetime allows",
			c.UserKey, c.Expires.Format(time.RFC3339Nano), checked.Format(time.RFC3339Nano))
	}
}

func TestMintedUsersExpireByRole(t *testing.T) {
	_, a := shortLivedServer(t, time.Minute)
	for _, tt := range []struct {
		role    Role
		expires bool // only providers are ever revoked, so only they need to expire
	}{
		{RoleProvider, true}, {RoleAdmin, false}, {RoleHostRPC, false}, {RoleHostCtl, false},
	} {
		t.Run(string(tt.role), func(t *testing.T) {
			c, err := a.Mint(tt.role, "u", Scope{ProviderKey: trust.FileProviderKey([32]byte{9}), LinkName: "default"})
			if err != nil {
				t.Fatal(err)
			}
			uc, err := jwt.DecodeUserClaims(c.JWT)
			if err != nil {
				t.Fatal(err)
			}
			if got := uc.Expires != 0; got != tt.expires || got == c.Expires.IsZero() {
				t.Fatalf("exp %d, Credentials.Expires %v; want expiring: %v", uc.Expires, c.Expires, tt.expires)
			}
			if tt.expires && (uc.Expires < time.Now().Add(50*time.Second).Unix() || uc.Expires > time.Now().Add(61*time.Second).Unix()) {
				t.Fatalf("exp %s, want a minute from now", time.Unix(uc.Expires, 0))
			}
			if !tt.expires {
				return
			}
			r, err := a.Renew(c)
			if err != nil {
				t.Fatal(err)
			}
			if r.Expires.IsZero() || r.Expires.Before(c.Expires) {
				t.Fatalf("renewal expires %v, first %v", r.Expires, c.Expires)
			}
		})
	}
}

// TestRevocationsStayBoundedWithShortLivedUsers revokes waves of users
// whose JWTs live 3 s: each wave's revocations prune the expired ones of
// the waves before, so the account JWT stops growing, while every user
// revoked with a JWT still valid stays refused by the real server.
func TestRevocationsStayBoundedWithShortLivedUsers(t *testing.T) {
	const lifetime, wave = 3 * time.Second, 40
	s, a := shortLivedServer(t, lifetime)
	url := s.ClientURL()
	ctx := context.Background()
	// A user never revoked, which never expires either (admin).
	bystander, err := a.Mint(RoleAdmin, "bystander", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	bystanderNC, _ := connectAs(t, url, bystander)

	var firstLen, firstBytes int
	var lastRevoked Credentials
	for w := 0; w < 3; w++ {
		users := mintProviders(t, a, wave, "wave")
		// The first revocation of a wave prunes the waves before it; the
		// user it revokes is refused right after, with a JWT still valid.
		closed := make(chan struct{})
		connectAs(t, url, users[0], nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		if err := a.Revoke(ctx, users[0].UserKey); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("revoked user's connection still open")
		}
		n, _, err := a.RevocationCount()
		if err != nil {
			t.Fatal(err)
		}
		if w > 0 && n != 1 {
			t.Fatalf("wave %d: %d entries after its first revocation; the %d expired ones of wave %d should have gone", w, n, wave, w-1)
		}
		refusedWhileValid(t, url, users[0])
		for _, u := range users[1:] {
			if err := a.Revoke(ctx, u.UserKey); err != nil {
				t.Fatal(err)
			}
		}
		waveDone := time.Now() // every entry of the wave was made before this
		lastRevoked = users[wave-1]
		refusedWhileValid(t, url, lastRevoked)
		refusedWhileValid(t, url, users[0]) // still, after the wave
		n, size, err := a.RevocationCount()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wave %d: %d revocation entries, account JWT %d bytes", w, n, size)
		if w == 0 {
			firstLen, firstBytes = n, size
		}
		if n != wave || n > firstLen || size > firstBytes+64 {
			t.Fatalf("wave %d: %d entries, %d bytes; want %d entries and at most %d bytes as after the first wave", w, n, size, wave, firstBytes+64)
		}
		if w < 2 {
			// Past the wave's expiry (and the pruning margin), its entries may go.
			time.Sleep(time.Until(waveDone.Add(lifetime + embeddedPruneMargin + 200*time.Millisecond)))
		}
	}
	if !bystanderNC.IsConnected() {
		t.Fatal("a user never revoked was disconnected")
	}
	// Prune with nothing expired applies nothing and keeps the entries.
	if err := a.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := a.RevocationCount(); n != wave {
		t.Fatalf("prune removed unexpired entries: %d left, want %d", n, wave)
	}
	refusedWhileValid(t, url, lastRevoked)
}

// TestRevocationsOfUsersThatNeverExpireStay: without a lifetime nothing is
// pruned, however old.
func TestRevocationsOfUsersThatNeverExpireStay(t *testing.T) {
	s, a := shortLivedServer(t, 0)
	users := mintProviders(t, a, 3, "forever")
	for _, u := range users {
		if !u.Expires.IsZero() {
			t.Fatalf("user expires %v without a lifetime", u.Expires)
		}
		if err := a.Revoke(context.Background(), u.UserKey); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(embeddedPruneMargin + 500*time.Millisecond)
	if err := a.Revoke(context.Background(), mintProviders(t, a, 1, "late")[0].UserKey); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := a.RevocationCount(); n != 4 {
		t.Fatalf("%d entries, want 4: entries of users that never expire must stay", n)
	}
	_, err := nats.Connect(s.ClientURL(), nats.UserJWTAndSeed(users[0].JWT, users[0].Seed), nats.NoReconnect())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("first revoked user: %v, want an authorization error", err)
	}
}

// externalAuthority sets up revocation through the system account of a
// real external nats-server, as `latticed up` does in external mode (b).
func externalAuthority(t *testing.T, o *operatorCluster, dataDir string, lifetime time.Duration) *Supervisor {
	t.Helper()
	set := config.SupervisorSettings{Paths: config.PathSettings{DataDir: dataDir}, Authority: config.AuthoritySettings{
		AccountSigningSeed: o.accountSigningSeed, OperatorSigningSeed: o.operatorSigningSeed, SystemCredsFile: o.sysCreds}}
	ctl := config.NATSConn{Host: "127.0.0.1", Port: o.port, CredsFile: o.hostCreds}
	s := &Supervisor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), credsLifetime: lifetime}
	if err := s.startExternalAuthority(set, Scope{LatticePrefix: "default"}, config.Endpoints{RPC: ctl, Ctl: ctl, ProvRPC: ctl}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.sys.Close)
	return s
}

// serverRevocations reads the lattice account's revocations as the server has them.
func serverRevocations(t *testing.T, s *Supervisor) jwt.RevocationList {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ac, err := (&externalAccount{sys: s.sys, account: s.auth.Account()}).lookup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ac.Revocations
}

// TestExternalRevocationsArePrunedAtStartAndKeepOthers: a node on an
// external NATS records the revocations it makes; restarted after they
// expired, it removes them through $SYS.REQ.CLAIMS.UPDATE, and leaves an
// entry someone else made alone.
func TestExternalRevocationsArePrunedAtStartAndKeepOthers(t *testing.T) {
	const lifetime = 2 * time.Second
	o := startOperatorServer(t)
	dataDir := t.TempDir()
	url := "nats://127.0.0.1:" + strconv.Itoa(o.port)
	ctx := context.Background()

	first := externalAuthority(t, o, dataDir, lifetime)
	users := mintProviders(t, first.auth, 5, "ext")
	for _, u := range users {
		if err := first.auth.Revoke(ctx, u.UserKey); err != nil {
			t.Fatal(err)
		}
	}
	revoked := time.Now()
	refusedWhileValid(t, url, users[4])
	// Someone else revokes a user of theirs (no expiry known to us).
	foreign, _ := nkeys.CreateUser()
	foreignKey, _ := foreign.PublicKey()
	op, _ := nkeys.FromSeed([]byte(o.operatorSigningSeed))
	ext := &externalAccount{sys: first.sys, account: first.auth.Account()}
	ac, err := ext.lookup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ac.RevokeAt(foreignKey, time.Now().Add(-time.Hour))
	token, err := ac.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.update(ctx, token); err != nil {
		t.Fatal(err)
	}
	if got := len(serverRevocations(t, first)); got != 6 {
		t.Fatalf("%d entries on the server, want 6", got)
	}
	fi, err := os.Stat(datadir.Path(dataDir, datadir.RevocationsFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %o, want 600", datadir.RevocationsFile, fi.Mode().Perm())
	}
	first.sys.Close()

	// The node is down while the users expire; it starts again.
	time.Sleep(time.Until(revoked.Add(lifetime + embeddedPruneMargin + 200*time.Millisecond)))
	second := externalAuthority(t, o, dataDir, lifetime)
	got := serverRevocations(t, second)
	if len(got) != 1 || got[foreignKey] == 0 {
		t.Fatalf("after the restart the server lists %v; want only the foreign entry %s", got, foreignKey)
	}
	// Revocation keeps working, and the next one prunes nothing it must keep.
	late := mintProviders(t, second.auth, 2, "late")
	for _, u := range late {
		if err := second.auth.Revoke(ctx, u.UserKey); err != nil {
			t.Fatal(err)
		}
	}
	refusedWhileValid(t, url, late[0])
	refusedWhileValid(t, url, late[1])
	if got := serverRevocations(t, second); len(got) != 3 || got[foreignKey] == 0 {
		t.Fatalf("server lists %v; want the foreign entry and the 2 late ones", got)
	}
}

func TestPrunableRecordBadInputIsSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, datadir.RevocationsFile)
	for _, tt := range []struct {
		name, content string
		wantErr       string
		wantLen       int
	}{
		{"missing", "", "", 0},
		{"garbage", "{not json", "not a revocation record", 0},
		{"other account", `{"account":"AOTHER","prunable":{"UX":"2030-01-01T00:00:00Z"}}`, "not AMINE", 0},
		{"ours", `{"account":"AMINE","prunable":{"UX":"2030-01-01T00:00:00Z"}}`, "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(path)
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, err := loadPrunable(path, "AMINE")
			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if len(m) != tt.wantLen {
				t.Fatalf("%d entries, want %d", len(m), tt.wantLen)
			}
			if tt.name == "garbage" {
				if b, err := os.ReadFile(path + ".bad"); err != nil || string(b) != tt.content {
					t.Fatalf("bad record not kept aside: %q, %v", b, err)
				}
			}
		})
	}
}

// TestSigningRevocationsMoveOutOfTheCacheAndArePrunedWhenExpired: the
// revocations an older latticed wrote into the lattice cache move into the
// revocations bucket at start (the cache keeps only key types wasmCloud can
// migrate); the bucket's entries go once their Until passed, at start and
// on each new one; unexpired ones stay.
func TestSigningRevocationsMoveOutOfTheCacheAndArePrunedWhenExpired(t *testing.T) {
	srv, a, _ := operatorServer(t)
	admin, err := a.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := connectAs(t, srv.ClientURL(), admin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: lattice.CacheStream("default"), Subjects: []string{lattice.CacheSubjects("default")},
		MaxMsgsPerSubject: 1, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	rev := func(key string, until time.Time) []byte {
		b, _ := json.Marshal(lattice.DelegationRevocation{SigningKey: key, RevokedAt: time.Now(), Until: until})
		return b
	}
	// As an older latticed wrote them: into the cache stream.
	legacy := strings.TrimSuffix(lattice.LegacyCacheRevocationsFilter("default"), ">")
	for key, until := range map[string]time.Time{"SKEXPIRED1": time.Now().Add(-time.Minute), "SKEXPIRED2": time.Now().Add(-time.Second), "SKLIVE": time.Now().Add(time.Hour)} {
		if _, err := js.Publish(ctx, legacy+key, rev(key, until)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, lattice.CacheClaims("default", "MACTOR"), []byte(`{"sub":"MACTOR"}`)); err != nil {
		t.Fatal(err)
	}
	subjects := func(s jetstream.Stream, filter string) map[string]uint64 {
		t.Helper()
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects
	}
	s := &Supervisor{nc: nc, prefix: "default", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.moveRevocations(ctx); err != nil { // the node's start, before the host
		t.Fatal(err)
	}
	if got := subjects(cache, lattice.CacheSubjects("default")); len(got) != 1 || got[lattice.CacheClaims("default", "MACTOR")] == 0 {
		t.Fatalf("cache after the move: %v; want only the claims", got)
	}
	bucket, err := js.Stream(ctx, lattice.RevocationsStream("default"))
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(bucket, lattice.RevocationsSubjects("default")); len(got) != 3 {
		t.Fatalf("revocations bucket after the move: %v; want the three moved entries", got)
	}
	if err := s.pruneSigningRevocations(ctx); err != nil { // the host is ready
		t.Fatal(err)
	}
	got := subjects(bucket, lattice.RevocationsSubjects("default"))
	if len(got) != 1 || got[lattice.Revocation("default", "SKLIVE")] == 0 {
		t.Fatalf("bucket after pruning at start: %v; want the live revocation only", got)
	}
	put := func(key string, until time.Time) string {
		t.Helper()
		subj := lattice.Revocation("default", key)
		if _, err := js.Publish(ctx, subj, rev(key, until)); err != nil {
			t.Fatal(err)
		}
		return subj
	}
	// A revocation that expires soon goes with the next one written after it.
	soon := time.Now().Add(500 * time.Millisecond)
	s.recordSigningRevocation(ctx, put("SKSOON", soon), soon)
	time.Sleep(time.Until(soon.Add(100 * time.Millisecond)))
	later := time.Now().Add(time.Hour)
	s.recordSigningRevocation(ctx, put("SKLATER", later), later)
	got = subjects(bucket, lattice.RevocationsSubjects("default"))
	if _, ok := got[lattice.Revocation("default", "SKSOON")]; ok || len(got) != 2 {
		t.Fatalf("bucket after the next revocation: %v; want SKLIVE and SKLATER", got)
	}
	// A second start moves nothing and loses nothing.
	if err := s.moveRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if got := subjects(bucket, lattice.RevocationsSubjects("default")); len(got) != 2 {
		t.Fatalf("bucket after a second start: %v", got)
	}
}

// TestEmbeddedProviderCredentialsExpireAndAreRenewed: in embedded mode too a
// provider's user expires (so its revocation can be pruned), and a healthy
// provider built on the SDK outlives its first JWT on renewals; revoking it
// cuts it off at once and its entry is in the account.
func TestEmbeddedProviderCredentialsExpireAndAreRenewed(t *testing.T) {
	const lifetime = 3 * time.Second // below the configurable minimum, to keep the test short
	n := startNodeWith(t, nil, func(s *Supervisor) { s.credsLifetime = lifetime })
	ref := "builtin:httpserver"
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	first, pid := p.creds, p.pid()
	p.mu.Unlock()
	if first.Expires.IsZero() || first.Expires.After(time.Now().Add(lifetime+time.Second)) {
		t.Fatalf("embedded provider credentials expire at %v, want within %s", first.Expires, lifetime)
	}
	time.Sleep(time.Until(first.Expires.Add(time.Second)))
	// Past the first JWT's expiry it still answers, in the same process.
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := n.nc.Request(lattice.RPCHealth("default", p.key, "default"), nil, time.Second)
		return err
	})
	p.mu.Lock()
	last, samePID := p.creds, p.pid() == pid
	p.mu.Unlock()
	if !samePID || !last.Expires.After(first.Expires) || last.UserKey != first.UserKey {
		t.Fatalf("not renewed in place: same process %v, first expires %v, last %v", samePID, first.Expires, last.Expires)
	}
	if _, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	n.s.auth.mu.Lock()
	_, listed := n.s.auth.claims.Revocations[last.UserKey]
	_, prunable := n.s.auth.prunable[last.UserKey]
	n.s.auth.mu.Unlock()
	if !listed || !prunable {
		t.Fatalf("revoked user listed %v, prunable %v; want both", listed, prunable)
	}
}
