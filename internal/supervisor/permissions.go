package supervisor

import (
	"fmt"
	"strings"

	"github.com/nats-io/jwt/v2"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// Role is what a minted NATS user is for. Every user the supervisor mints
// has exactly one role, and its permissions come from permissionTable below.
type Role string

// Roles of minted users.
const (
	RoleHostRPC  Role = lattice.InboxHostRPC // the host's RPC connection: actors' subjects
	RoleHostCtl  Role = lattice.InboxHostCtl // the host's control connection: ctl, events, lattice cache
	RoleProvider Role = "provider"           // one provider instance
	// RoleAdmin is admin.creds and the supervisor's own connection: the whole
	// lattice account, no restrictions.
	RoleAdmin Role = lattice.InboxOperator
)

// rule is the permission template of one role. Subjects may use these
// placeholders, filled in by Scope.expand:
//
//	{rpc}           the lattice's RPC root              wasmbus.rpc.default
//	{rpcevents}     invocation events                   wasmbus.rpcevt.default
//	{events}        lattice events                      wasmbus.evt.default
//	{cacheentries}  the lattice cache's entries of the three key types wasmCloud knows
//	                lc.default.claims.*, lc.default.linkdefs.*, lc.default.refmap.*
//	{revocations}   latticed's revocations bucket's stream  KV_LATTICED_REVOCATIONS_default
//	{data}          wasmCloud 0.60+'s lattice data bucket's stream  KV_LATTICEDATA_default
//	{datakeys}      its keys, one token each             $KV.LATTICEDATA_default.*
//	{ctl}      control topic prefix + lattice       wasmbus.ctl.default
//	{jsapi}    JetStream API prefix                 $JS.API, or $JS.{domain}.API
//	{cache}    lattice cache stream                 LATTICECACHE_default
//	{inbox}    the user's private reply inbox       _INBOX_LATTICED.default.host-rpc
//	                                                _INBOX_LATTICED.default.provider.U…
//	{provider}      the provider instance's subject     wasmbus.rpc.default.V….default
//	{chunkapi}      JetStream API of chunking           $JS.API (never a domain: wasmbus-rpc passes none)
//	{chunkstream}   the lattice object store's stream   OBJ_default
//	{chunksubjects} its object subjects                 $O.default.>
//
// Everything not allowed is denied; deny entries carve holes in wide allows.
// Respond grants allow_responses: the user may publish one reply to the
// reply subject of each request it received (for 2 minutes), and nothing
// else under _INBOX — so no role needs a publish permission on inboxes.
type rule struct {
	PubAllow, PubDeny []string
	SubAllow, SubDeny []string
	Respond           bool
}

// permissionTable is the one place that says what each role may do;
// docs/security.md ("Roles") lists it with the test proving each line.
//
// Request/reply: replies are covered by Respond. Each role also has to
// receive the replies to its own requests, and only those: every minted
// user may subscribe to its own private inbox prefix ({inbox}, see
// inboxPrefix and providerInbox) and no other, so nothing else can read the
// replies it gets (provider results, JetStream API answers). The operator's
// requesters (supervisor, latticed ctl, --apply) use lattice.OperatorInbox,
// where no minted role may subscribe. A provider of the latticed SDK is
// handed its prefix in HostData; a foreign wasmCloud provider executable
// (the Rust and Go SDKs use nats' default _INBOX) also keeps _INBOX.>
// (Scope.WasmCloudInbox). Nothing latticed requests with users minted here
// travels there, so the residual risk is that one foreign provider could
// read the replies to another foreign provider's requests (and to clients
// outside latticed's control that keep nats' default inbox).
var permissionTable = map[Role]rule{
	RoleHostRPC: merge(rule{
		// Invoke actors ({rpc}.{M…}) and providers ({rpc}.{V…}.{link},
		// ….linkdefs.put/del); publish invocation events.
		PubAllow: []string{"{rpc}.>", "{rpcevents}"},
		// Serve actors: one token after the prefix matches actor subjects
		// only; provider subjects have two or more.
		SubAllow: []string{"{rpc}.*", "{inbox}.>"},
		Respond:  true,
	}, chunkRule),
	RoleHostCtl: {
		// Events, and the lattice cache stream through the JetStream API:
		// only that stream, only what the host does with it (create, info,
		// an ordered consumer, publish entries), and only entries of the
		// key types a wasmCloud host can migrate, each one token after its
		// type (docs/protocol.md §11.3). The revocations bucket it may
		// create and follow, but not write: revoking is the supervisor's.
		PubAllow: []string{
			"{events}",
			"{jsapi}.INFO",
			"{jsapi}.STREAM.INFO.{cache}", "{jsapi}.STREAM.CREATE.{cache}",
			"{jsapi}.CONSUMER.CREATE.{cache}", "{jsapi}.CONSUMER.CREATE.{cache}.>",
			"{jsapi}.CONSUMER.DELETE.{cache}.*", "{jsapi}.CONSUMER.INFO.{cache}.*",
			"{jsapi}.CONSUMER.MSG.NEXT.{cache}.*",
			"{cacheclaims}", "{cachelinkdefs}", "{cacherefmaps}",
			"{jsapi}.STREAM.INFO.{revocations}", "{jsapi}.STREAM.CREATE.{revocations}",
			"{jsapi}.CONSUMER.CREATE.{revocations}", "{jsapi}.CONSUMER.CREATE.{revocations}.>",
			"{jsapi}.CONSUMER.DELETE.{revocations}.*", "{jsapi}.CONSUMER.INFO.{revocations}.*",
			"{jsapi}.CONSUMER.MSG.NEXT.{revocations}.*",
			// The bucket wasmCloud 0.60+ keep the cache in (LATTICED_CACHE=kv
			// or auto): create, follow and write keys of one token (wasmCloud's
			// watcher drops keys with a '.'); never delete or purge it.
			"{jsapi}.STREAM.INFO.{data}", "{jsapi}.STREAM.CREATE.{data}",
			"{jsapi}.CONSUMER.CREATE.{data}", "{jsapi}.CONSUMER.CREATE.{data}.>",
			"{jsapi}.CONSUMER.DELETE.{data}.*", "{jsapi}.CONSUMER.INFO.{data}.*",
			"{jsapi}.CONSUMER.MSG.NEXT.{data}.*",
			"{datakeys}",
		},
		// The whole control interface of this lattice.
		SubAllow: []string{"{ctl}.>", "{inbox}.>"},
		Respond:  true,
	},
	RoleProvider: merge(rule{
		// Invoke actors: one token after the prefix, so a provider cannot
		// publish into another provider's subjects (invocations, link
		// definitions, health, shutdown), nor anything on wasmbus.ctl.
		PubAllow: []string{"{rpc}.*"},
		// Its own invocations, link definitions, health and shutdown only,
		// and the replies to its own requests.
		SubAllow: []string{"{provider}", "{provider}.>", "{inbox}.>"},
		Respond:  true,
	}, chunkRule),
	// Everything in the account, said explicitly: a user JWT without
	// permissions, signed by a signing key, may get its permissions from
	// that key's scope, so PrivateInbox cannot tell that it may use its
	// private inbox (lattice.OperatorInbox).
	RoleAdmin: {PubAllow: []string{">"}, SubAllow: []string{">"}},
}

// chunkRule lets the roles that send and receive invocations (host RPC,
// provider) use the lattice's object store for large payloads, and only
// that one (docs/protocol.md §3): put (publish chunks and metadata), get
// (the stream's info, the metadata by direct or plain get, an ordered
// consumer over one object's chunks, whose flow control it answers) and
// delete (purge one object's chunks). The supervisor creates the bucket;
// no role may create, update or delete a stream.
var chunkRule = rule{PubAllow: []string{
	"{chunksubjects}",
	"{chunkapi}.STREAM.INFO.{chunkstream}",
	"{chunkapi}.DIRECT.GET.{chunkstream}", "{chunkapi}.DIRECT.GET.{chunkstream}.>",
	"{chunkapi}.STREAM.MSG.GET.{chunkstream}",
	"{chunkapi}.CONSUMER.CREATE.{chunkstream}", "{chunkapi}.CONSUMER.CREATE.{chunkstream}.>",
	"{chunkapi}.CONSUMER.DELETE.{chunkstream}.*",
	"{chunkapi}.STREAM.PURGE.{chunkstream}",
	"$JS.FC.{chunkstream}.>",
}}

// contractRules add to RoleProvider for providers of one contract. (Named
// functions, not literals: a literal here would renumber the package's init
// closures, which the tests' goroutine-leak filter names.)
var contractRules = map[string]func(Scope) rule{
	wire.ContractKeyValue: keyValueRule,
}

// keyValueRule: the key-value provider manages no stream and no consumer:
// any stream it could create (a mirror of the lattice cache, one capturing
// control subjects, one with a republish rule) would escape its
// permissions. The supervisor creates the buckets its links name and
// grants it, per bucket, only reading and writing entries: publish on
// $KV.<bucket>.> (put, create, update and delete are publishes with
// headers), direct get, and the stream's info (the bucket's
// configuration). {jsapi}.INFO is the account's JetStream info, its health
// check.
func keyValueRule(s Scope) rule {
	r := rule{PubAllow: []string{"{jsapi}.INFO"}}
	for _, b := range s.Buckets {
		stream := "KV_" + b
		r.PubAllow = append(r.PubAllow, "$KV."+b+".>",
			"{jsapi}.STREAM.INFO."+stream, "{jsapi}.DIRECT.GET."+stream, "{jsapi}.DIRECT.GET."+stream+".>")
	}
	return r
}

// inboxPrefix is the private reply-inbox prefix of a host role, which the
// host must pass to nats.CustomInboxPrefix when its user was minted here.
// inboxPrefix(p, RoleAdmin) is lattice.OperatorInbox(p).
func inboxPrefix(latticePrefix string, role Role) string {
	return lattice.PrivateInbox(latticePrefix, string(role))
}

// providerInbox is the private reply-inbox prefix of one provider user,
// named by its user key so that no two provider instances share one, even
// of the same provider on two hosts. The provider gets it in HostData
// (lattice.HostData.InboxPrefix).
func providerInbox(latticePrefix, userKey string) string {
	return inboxPrefix(latticePrefix, RoleProvider) + "." + userKey
}

// wasmCloudInbox is nats' default inbox prefix, which wasmCloud providers use.
const wasmCloudInbox = "_INBOX.>"

// Scope is what a role's permissions are expanded for.
type Scope struct {
	LatticePrefix  string
	CtlTopicPrefix string // default wasmbus.ctl
	JSDomain       string
	ProviderKey    string // RoleProvider only
	LinkName       string // RoleProvider only
	Contract       string // RoleProvider only; selects contractRules
	// UserKey is the provider user's public key (U…), which names its
	// private inbox (providerInbox). RoleProvider only; Authority.Mint sets it.
	UserKey string
	// WasmCloudInbox also lets a provider subscribe to nats' default
	// "_INBOX.>", for provider executables that are not known to take their
	// inbox prefix from HostData (anything but a built-in). RoleProvider only.
	WasmCloudInbox bool
	// Buckets are the key-value buckets a key-value provider may use (its
	// links'); each must be one subject token.
	Buckets []string
	// PolicyTopic and PolicyChangesTopic are the external policy service's
	// subjects (WASMCLOUD_POLICY_TOPIC, WASMCLOUD_POLICY_CHANGES_TOPIC):
	// RoleHostCtl requests decisions on the first and follows the second.
	PolicyTopic, PolicyChangesTopic string
}

// validSubject reports whether s is a literal subject (no wildcards).
func validSubject(s string) bool {
	for _, tok := range strings.Split(s, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

// validToken reports whether s can be one subject token.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}

// Permissions expands role's template for s.
func (s Scope) Permissions(role Role) (jwt.Permissions, error) {
	r, ok := permissionTable[role]
	if !ok {
		return jwt.Permissions{}, fmt.Errorf("no permissions defined for role %q", role)
	}
	if !validToken(s.LatticePrefix) {
		return jwt.Permissions{}, fmt.Errorf("lattice prefix %q is not one subject token", s.LatticePrefix)
	}
	ctl := s.CtlTopicPrefix
	if ctl == "" {
		ctl = lattice.DefaultCtlTopicPrefix
	}
	jsapi := "$JS.API"
	if s.JSDomain != "" {
		jsapi = "$JS." + s.JSDomain + ".API"
	}
	inbox := inboxPrefix(s.LatticePrefix, role)
	// Subject roots come from package lattice, the one place that spells them.
	vars := []string{
		"{rpc}", lattice.RPCRoot(s.LatticePrefix),
		"{rpcevents}", lattice.RPCEvents(s.LatticePrefix),
		"{events}", lattice.Events(s.LatticePrefix),
		"{cacheclaims}", lattice.CacheClaims(s.LatticePrefix, "*"),
		"{cachelinkdefs}", lattice.CacheLinkdef(s.LatticePrefix, "*"),
		"{cacherefmaps}", lattice.CacheRefmapsFilter(s.LatticePrefix),
		"{revocations}", lattice.RevocationsStream(s.LatticePrefix),
		"{data}", lattice.DataStream(s.LatticePrefix),
		"{datakeys}", strings.TrimSuffix(lattice.DataSubjects(s.LatticePrefix), ">") + "*",
		"{ctl}", lattice.NewCtl(ctl, s.LatticePrefix).Base(),
		"{jsapi}", jsapi,
		"{cache}", lattice.CacheStream(s.LatticePrefix),
		"{chunkapi}", "$JS.API",
		"{chunkstream}", lattice.ChunkStream(s.LatticePrefix),
		"{chunksubjects}", lattice.ChunkSubjects(s.LatticePrefix),
	}
	if role == RoleProvider {
		// Both come from control requests: a link name like "x.>" would
		// otherwise widen the grant.
		if !lattice.IsPublicKey(s.ProviderKey, lattice.KindService) {
			return jwt.Permissions{}, fmt.Errorf("provider key %q is not a service public key (V…)", s.ProviderKey)
		}
		if err := lattice.ValidateLinkName(s.LinkName); err != nil {
			return jwt.Permissions{}, err
		}
		if !lattice.IsPublicKey(s.UserKey, lattice.KindUser) {
			return jwt.Permissions{}, fmt.Errorf("provider user key %q is not a user public key (U…)", s.UserKey)
		}
		vars = append(vars, "{provider}", lattice.RPCProvider(s.LatticePrefix, s.ProviderKey, s.LinkName))
		inbox = providerInbox(s.LatticePrefix, s.UserKey)
		if s.WasmCloudInbox {
			r = merge(r, rule{SubAllow: []string{wasmCloudInbox}})
		}
		for _, b := range s.Buckets {
			if !validToken(b) {
				return jwt.Permissions{}, fmt.Errorf("bucket %q must be one subject token (no '.', '*', '>' or spaces)", b)
			}
		}
		if extra, ok := contractRules[s.Contract]; ok {
			r = merge(r, extra(s))
		}
	}
	if role == RoleHostCtl {
		for _, t := range []string{s.PolicyTopic, s.PolicyChangesTopic} {
			if t != "" && !validSubject(t) {
				return jwt.Permissions{}, fmt.Errorf("policy topic %q must be a subject without wildcards or spaces", t)
			}
		}
		if s.PolicyTopic != "" {
			r = merge(r, rule{PubAllow: []string{s.PolicyTopic}})
		}
		if s.PolicyChangesTopic != "" {
			r = merge(r, rule{SubAllow: []string{s.PolicyChangesTopic}})
		}
	}
	rep := strings.NewReplacer(append(vars, "{inbox}", inbox)...)
	expand := func(in []string) jwt.StringList {
		out := make(jwt.StringList, 0, len(in))
		for _, subj := range in {
			out = append(out, rep.Replace(subj))
		}
		return out
	}
	p := jwt.Permissions{
		Pub: jwt.Permission{Allow: expand(r.PubAllow), Deny: expand(r.PubDeny)},
		Sub: jwt.Permission{Allow: expand(r.SubAllow), Deny: expand(r.SubDeny)},
	}
	if r.Respond {
		p.Resp = &jwt.ResponsePermission{MaxMsgs: 1}
	}
	for _, l := range []jwt.StringList{p.Pub.Allow, p.Pub.Deny, p.Sub.Allow, p.Sub.Deny} {
		for _, subj := range l {
			if strings.Contains(subj, "{") {
				return jwt.Permissions{}, fmt.Errorf("role %s: placeholder left in %q", role, subj)
			}
		}
	}
	return p, nil
}

func merge(a, b rule) rule {
	cat := func(x, y []string) []string { return append(append([]string(nil), x...), y...) }
	return rule{
		PubAllow: cat(a.PubAllow, b.PubAllow), PubDeny: cat(a.PubDeny, b.PubDeny),
		SubAllow: cat(a.SubAllow, b.SubAllow), SubDeny: cat(a.SubDeny, b.SubDeny),
		Respond: a.Respond || b.Respond,
	}
}
