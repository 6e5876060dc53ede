package supervisor

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// roleAction is one line of docs/security.md's role table: what a user of
// a role tries, and whether the server lets it.
type roleAction struct {
	kind    string // actPub, actSub, actCreate, actRespond
	subject string // a literal subject to publish or subscribe to; the stream or consumer API subject for actCreate
	allowed bool
}

const (
	actPub     = "publish"
	actSub     = "subscribe"
	actCreate  = "create"  // a JetStream stream or consumer through the API
	actRespond = "respond" // answer a request the user received, on its reply subject
)

// TestRolePermissions proves docs/security.md's role table: for every role
// the supervisor mints, a user minted for it connects to a real operator-mode
// server and tries each action; allowed ones succeed end to end, refused
// ones end in the server's permission violation.
func TestRolePermissions(t *testing.T) {
	waitBound(t)
	s, a, _ := operatorServer(t)
	url := s.ClientURL()
	const lp = "default"
	keyA := trust.FileProviderKey([32]byte{1})
	keyB := trust.FileProviderKey([32]byte{2})
	actor := "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"
	ctl := lattice.NewCtl("", lp)
	cache := lattice.CacheStream(lp)
	revs := lattice.RevocationsStream(lp)
	own := lattice.RPCProvider(lp, keyA, "default")
	other := lattice.RPCProvider(lp, keyB, "default")
	otherUser := "UAIE4Z3TECZZVSFD7U22MSZG5EYOSYFYQ6Z5T4QGPBM2JDIDUAHT4X2U" // another provider instance's user

	admin, err := a.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	adminNC, _ := connectAs(t, url, admin, nats.CustomInboxPrefix(admin.InboxPrefix))
	// The cache stream exists, as the host creates it, so that consumers on
	// it can be created.
	if _, err := jsCreate(adminNC, "$JS.API.STREAM.CREATE."+cache); err != nil {
		t.Fatal(err)
	}
	if _, err := jsCreate(adminNC, "$JS.API.STREAM.CREATE."+revs); err != nil {
		t.Fatal(err)
	}

	// What no role but admin may do, whatever else it may.
	noneOf := []roleAction{
		{actCreate, "$JS.API.STREAM.CREATE.ATTACK", false},
		{actPub, ctl.Cmd("NHOST", lattice.CmdStopActor), false},
		{actSub, "_INBOX.>", false},
		{actSub, lattice.OperatorInbox(lp) + ".>", false},
		{actPub, "_INBOX.reply", false}, // a reply nobody asked it for
	}
	providerCommon := append([]roleAction{
		{actPub, lattice.RPCActor(lp, actor), true},
		{actSub, own, true},
		{actSub, own + ".>", true},
		{actRespond, lattice.RPCHealth(lp, keyA, "default"), true},
		{actSub, other, false},
		{actPub, other, false},
		{actPub, lattice.RPCShutdown(lp, keyB, "default"), false},
		{actPub, lattice.RPCLinkdefPut(lp, keyB, "default"), false},
		{actSub, ctl.Base() + ".>", false},
		{actPub, ctl.GetLinks(), false},
		{actPub, lattice.CacheLinkdef(lp, "forged"), false},
		{actSub, lattice.CacheSubjects(lp), false},
		{actSub, inboxPrefix(lp, RoleHostRPC) + ".>", false},
		{actSub, inboxPrefix(lp, RoleHostCtl) + ".>", false},
		{actSub, lattice.PrivateInboxRoot + ".>", false},
		{actSub, providerInbox(lp, otherUser) + ".>", false},
		{actCreate, "$JS.API.CONSUMER.CREATE." + cache, false},
	}, noneOf...)
	roles := []struct {
		name    string
		role    Role
		scope   Scope
		actions []roleAction
	}{
		{"host-rpc", RoleHostRPC, Scope{}, append([]roleAction{
			{actPub, lattice.RPCActor(lp, actor), true},
			{actPub, lattice.RPCLinkdefPut(lp, keyA, "default"), true},
			{actPub, lattice.RPCEvents(lp), true},
			{actSub, lattice.RPCActor(lp, actor), true},
			{actSub, "{inbox}.>", true},
			{actRespond, lattice.RPCActor(lp, actor), true},
			{actSub, own, false},
			{actSub, ctl.Base() + ".>", false},
			{actPub, ctl.PingHosts(), false},
			{actPub, lattice.Events(lp), false},
			{actPub, lattice.CacheLinkdef(lp, "forged"), false},
			{actSub, inboxPrefix(lp, RoleHostCtl) + ".>", false},
			{actCreate, "$JS.API.STREAM.CREATE." + cache, false},
		}, noneOf...)},
		{"host-ctl", RoleHostCtl, Scope{}, append([]roleAction{
			{actCreate, "$JS.API.STREAM.CREATE." + cache, true},
			{actCreate, "$JS.API.CONSUMER.CREATE." + cache, true},
			{actCreate, "$JS.API.CONSUMER.CREATE." + revs, true},
			{actPub, lattice.Events(lp), true},
			{actPub, lattice.CacheLinkdef(lp, "x"), true},
			{actPub, lattice.CacheClaims(lp, actor), true},
			{actPub, lattice.CacheRefmap(lp, "registry/actor:1"), true},
			// Only the key types wasmCloud 0.60+ can migrate, one token each;
			// revocations are the supervisor's to write.
			{actPub, strings.TrimSuffix(lattice.LegacyCacheRevocationsFilter(lp), ">") + "SKEY", false},
			{actPub, lattice.CacheLinkdef(lp, "x.y"), false},
			{actPub, lattice.Revocation(lp, "SKEY"), false},
			{actCreate, "$JS.API.STREAM.DELETE." + cache, false},
			{actCreate, "$JS.API.STREAM.PURGE." + revs, false},
			{actCreate, "$JS.API.STREAM.CREATE." + lattice.DataStream(lp), true},
			{actPub, lattice.DataLinkdef(lp, "X"), true},
			{actPub, lattice.DataLinkdef(lp, "X.Y"), false},
			{actCreate, "$JS.API.STREAM.DELETE." + lattice.DataStream(lp), false},
			{actSub, ctl.Base() + ".>", true},
			{actSub, "{inbox}.>", true},
			{actRespond, ctl.GetLinks(), true},
			{actPub, lattice.RPCActor(lp, actor), false},
			{actSub, lattice.RPCActor(lp, actor), false},
			{actSub, inboxPrefix(lp, RoleHostRPC) + ".>", false},
			{actCreate, "$JS.API.CONSUMER.CREATE.KV_other", false},
			{actPub, "policy.decide", false}, // only with a policy service
		}, noneOf...)},
		{"host-ctl with a policy service", RoleHostCtl, Scope{PolicyTopic: "policy.decide", PolicyChangesTopic: "policy.changes"}, []roleAction{
			{actPub, "policy.decide", true},
			{actSub, "policy.changes", true},
			{actSub, "policy.decide", false},
			{actPub, "policy.changes", false},
		}},
		{"provider (built-in)", RoleProvider, Scope{ProviderKey: keyA, LinkName: "default"}, append([]roleAction{
			{actSub, "{inbox}.>", true},
		}, providerCommon...)},
		{"provider (other executable)", RoleProvider, Scope{ProviderKey: keyA, LinkName: "default", WasmCloudInbox: true}, append([]roleAction{
			{actSub, "{inbox}.>", true},
			{actSub, "_INBOX.>", true},
		}, withoutAction(providerCommon, actSub, "_INBOX.>")...)},
		{"admin", RoleAdmin, Scope{}, []roleAction{
			{actCreate, "$JS.API.STREAM.CREATE.ADMIN_MADE", true},
			{actPub, ctl.Cmd("NHOST", lattice.CmdStopActor), true},
			{actSub, ">", true},
			{actSub, "{inbox}.>", true},
		}},
	}
	for _, r := range roles {
		// Mint takes the lattice-wide policy topics from the authority.
		saved := a.scope
		a.scope.PolicyTopic, a.scope.PolicyChangesTopic = r.scope.PolicyTopic, r.scope.PolicyChangesTopic
		c, err := a.Mint(r.role, r.name, r.scope)
		a.scope = saved
		if err != nil {
			t.Fatal(err)
		}
		nc, errs := connectAs(t, url, c, nats.CustomInboxPrefix(c.InboxPrefix))
		for _, act := range r.actions {
			subject := strings.ReplaceAll(act.subject, "{inbox}", c.InboxPrefix)
			t.Run(r.name+"/"+act.kind+" "+subject, func(t *testing.T) {
				got := tryAction(t, adminNC, nc, errs, act.kind, subject)
				if got != act.allowed {
					t.Errorf("%s %s: allowed=%v, docs/security.md says %v", act.kind, subject, got, act.allowed)
				}
			})
		}
	}
}

// withoutAction drops one action from a list.
func withoutAction(in []roleAction, kind, subject string) []roleAction {
	var out []roleAction
	for _, a := range in {
		if a.kind != kind || a.subject != subject {
			out = append(out, a)
		}
	}
	return out
}

// tryAction does kind on subject as nc and reports whether the server let
// it: an allowed action shows its effect (the admin receives the message,
// nc receives the admin's, the JetStream API answers), a refused one a
// permission violation.
func tryAction(t *testing.T, admin, nc *nats.Conn, errs *permErrs, kind, subject string) bool {
	t.Helper()
	var allowed atomic.Bool
	var try func()
	violation := `Publish to "` + subject + `"`
	switch kind {
	case actPub:
		sub, err := admin.Subscribe(subject, func(*nats.Msg) { allowed.Store(true) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := admin.Flush(); err != nil {
			t.Fatal(err)
		}
		try = func() { _ = nc.Publish(subject, []byte("probe")) }
	case actSub:
		violation = `Subscription to "` + subject + `"`
		sub, err := nc.Subscribe(subject, func(*nats.Msg) { allowed.Store(true) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		// A wildcard subscription is proven by a message on a subject it matches.
		concrete := strings.ReplaceAll(strings.ReplaceAll(subject, ">", "probe.x"), "*", "probe")
		try = func() { _ = admin.Publish(concrete, []byte("probe")) }
	case actCreate:
		try = func() {
			if _, err := jsCreate(nc, subject); err == nil {
				allowed.Store(true)
			}
		}
	case actRespond:
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond([]byte("answer")) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		violation = `Publish to "` + lattice.OperatorInbox("default")
		try = func() {
			if m, err := admin.Request(subject, []byte("question"), 500*time.Millisecond); err == nil && string(m.Data) == "answer" {
				allowed.Store(true)
			}
		}
	default:
		t.Fatalf("unknown action %q", kind)
	}
	var refused bool
	testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		try()
		_ = nc.Flush()
		_ = admin.Flush()
		if errs.has(violation) == nil {
			refused = true
			return nil
		}
		if allowed.Load() {
			return nil
		}
		return fmt.Errorf("%s %s: neither done nor refused yet", kind, subject)
	})
	if refused && allowed.Load() {
		t.Fatalf("%s %s: both done and refused", kind, subject)
	}
	return !refused
}

// jsCreate creates a stream (…STREAM.CREATE.<name>) or an ephemeral consumer
// on a stream (…CONSUMER.CREATE.<stream>) through the JetStream API.
func jsCreate(nc *nats.Conn, apiSubject string) (json.RawMessage, error) {
	name := apiSubject[strings.LastIndex(apiSubject, ".")+1:]
	var body any
	if strings.Contains(apiSubject, ".STREAM.CREATE.") {
		subjects := []string{"attack.>"}
		if name == lattice.CacheStream("default") {
			subjects = []string{lattice.CacheSubjects("default")}
		} else if name == lattice.RevocationsStream("default") {
			subjects = []string{lattice.RevocationsSubjects("default")}
		} else if name == lattice.DataStream("default") {
			subjects = []string{lattice.DataSubjects("default")}
		} else if name == "ADMIN_MADE" {
			subjects = []string{"admin.made.>"}
		}
		body = map[string]any{"name": name, "subjects": subjects, "storage": "memory"}
	} else {
		body = map[string]any{"stream_name": name, "config": map[string]any{"ack_policy": "none", "inactive_threshold": int64(5 * time.Second)}}
	}
	b, _ := json.Marshal(body)
	m, err := nc.Request(apiSubject, b, time.Second)
	if err != nil {
		return nil, err
	}
	var r struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%s: %s", apiSubject, r.Error.Description)
	}
	return m.Data, nil
}
