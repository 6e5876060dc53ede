package lattice

import (
	"encoding/base64"
	"strings"
)

// This file is the one source of truth for NATS subjects and cache names,
// but for the subjects invocations travel on (RPCRoot, RPCActor,
// RPCProvider), which invocation.go defines beside the Invocation.

// DefaultCtlTopicPrefix is the control interface prefix (WASMCLOUD_CTL_TOPIC_PREFIX).
const DefaultCtlTopicPrefix = "wasmbus.ctl"

// DefaultLatticePrefix is the lattice prefix when none is configured.
const DefaultLatticePrefix = "default"

// Control command tokens: wasmbus.ctl.{prefix}.cmd.{host}.{cmd}.
const (
	CmdLaunchActor    = "la"
	CmdStopActor      = "sa"
	CmdScaleActor     = "scale"
	CmdUpdateActor    = "upd"
	CmdLaunchProvider = "lp"
	CmdStopProvider   = "sp"
	CmdStopHost       = "stop"
	CmdRevoke         = "revoke" // latticed extension
)

// Last tokens of a provider's link definition subjects.
const (
	linkdefPutSuffix = ".linkdefs.put"
	linkdefDelSuffix = ".linkdefs.del"
)

// RPCLinkdefPut carries a link definition to a provider (msgpack).
func RPCLinkdefPut(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + linkdefPutSuffix
}

// RPCLinkdefDel carries a removed link definition to a provider (msgpack).
func RPCLinkdefDel(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + linkdefDelSuffix
}

// RPCLinkdefPutOrDel matches both RPCLinkdefPut and RPCLinkdefDel. A
// follower of link changes subscribes to it once: nats.go delivers each
// subscription's messages on its own goroutine, so a put and a del taken
// from two subscriptions can be handled out of the order they were sent in.
func RPCLinkdefPutOrDel(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + ".linkdefs.*"
}

// IsLinkdefPut tells RPCLinkdefPut's subjects (true) from RPCLinkdefDel's
// (false); ok is false for any other subject.
func IsLinkdefPut(subject string) (put, ok bool) {
	switch {
	case strings.HasSuffix(subject, linkdefPutSuffix):
		return true, true
	case strings.HasSuffix(subject, linkdefDelSuffix):
		return false, true
	}
	return false, false
}

// RPCHealth is a provider's health-check subject.
func RPCHealth(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + ".health"
}

// RPCShutdown asks a provider to shut down.
func RPCShutdown(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + ".shutdown"
}

// RPCCredentials carries a renewed NATS user JWT to a provider (latticed
// extension; JWT bytes, no seed): the same user key with a later expiry,
// for the provider's next (re)connection. Sent only when the provider's
// credentials are short-lived (an external NATS with an account signing key).
func RPCCredentials(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + ".credentials"
}

// RPCDelegation carries a provider instance's renewed delegation token
// (latticed extension).
func RPCDelegation(prefix, providerKey, linkName string) string {
	return RPCProvider(prefix, providerKey, linkName) + ".delegation"
}

// Events is the CloudEvents subject of a lattice.
func Events(prefix string) string { return "wasmbus.evt." + prefix }

// RPCEvents carries invocation_succeeded / invocation_failed events.
func RPCEvents(prefix string) string { return "wasmbus.rpcevt." + prefix }

// Ctl builds control-interface subjects for one lattice.
type Ctl struct {
	base string // {ctl topic prefix}.{lattice prefix}
}

// NewCtl returns the control subjects for topicPrefix (default "wasmbus.ctl") and lattice prefix.
func NewCtl(topicPrefix, prefix string) Ctl {
	if topicPrefix == "" {
		topicPrefix = DefaultCtlTopicPrefix
	}
	return Ctl{base: topicPrefix + "." + prefix}
}

// Base is "{ctl}.{prefix}", also the queue group for lattice-wide queries.
func (c Ctl) Base() string { return c.base }

// PingHosts: every host replies with its HostInfo.
func (c Ctl) PingHosts() string { return c.base + ".ping.hosts" }

// GetClaims: one host replies with {claims: […]}.
func (c Ctl) GetClaims() string { return c.base + ".get.claims" }

// GetLinks: one host replies with {links: […]}.
func (c Ctl) GetLinks() string { return c.base + ".get.links" }

// GetInventory asks one host for its inventory.
func (c Ctl) GetInventory(host string) string { return c.base + ".get." + host + ".inv" }

// LinkdefsPut / LinkdefsDel change link definitions lattice-wide.
func (c Ctl) LinkdefsPut() string { return c.base + ".linkdefs.put" }

// LinkdefsDel removes a link definition.
func (c Ctl) LinkdefsDel() string { return c.base + ".linkdefs.del" }

// RegistriesPut carries registry credentials to every host.
func (c Ctl) RegistriesPut() string { return c.base + ".registries.put" }

// AuctionActor asks hosts matching constraints to offer to run an actor.
func (c Ctl) AuctionActor() string { return c.base + ".auction.actor" }

// AuctionProvider asks hosts to offer to run a provider.
func (c Ctl) AuctionProvider() string { return c.base + ".auction.provider" }

// Cmd is a command to one host, e.g. Cmd(host, CmdLaunchActor).
func (c Ctl) Cmd(host, cmd string) string { return c.base + ".cmd." + host + "." + cmd }

// CmdWildcard matches every command to host.
func (c Ctl) CmdWildcard(host string) string { return c.base + ".cmd." + host + ".*" }

// LabelPut / LabelDel change one host's labels. The 0.x OTP host has no such
// subjects; these follow wasmCloud's later control interface.
func (c Ctl) LabelPut(host string) string { return c.base + ".labels." + host + ".put" }

// LabelDel deletes a host label.
func (c Ctl) LabelDel(host string) string { return c.base + ".labels." + host + ".del" }

// CacheStream is the JetStream stream holding the lattice cache.
func CacheStream(prefix string) string { return "LATTICECACHE_" + prefix }

// CacheSubjects is the stream's subject filter.
func CacheSubjects(prefix string) string { return "lc." + prefix + ".>" }

// CacheClaims is where an actor's (or provider's) flattened claims live.
func CacheClaims(prefix, key string) string { return "lc." + prefix + ".claims." + key }

// CacheLinkdef is where a link definition lives (tombstoned with deleted: true).
func CacheLinkdef(prefix, id string) string { return "lc." + prefix + ".linkdefs." + id }

// CacheLinkdefsFilter matches every link definition entry of the cache.
func CacheLinkdefsFilter(prefix string) string { return "lc." + prefix + ".linkdefs.>" }

// CacheClaimsFilter matches every claims entry of the cache.
func CacheClaimsFilter(prefix string) string { return "lc." + prefix + ".claims.>" }

// DataBucket is the key-value bucket wasmCloud 0.60 and later keep the
// lattice cache in (docs/protocol.md §11.2), in place of CacheStream.
func DataBucket(prefix string) string { return "LATTICEDATA_" + prefix }

// DataStream is the JetStream stream behind DataBucket.
func DataStream(prefix string) string { return "KV_" + DataBucket(prefix) }

// DataSubjects is DataStream's subject filter.
func DataSubjects(prefix string) string { return "$KV." + DataBucket(prefix) + ".>" }

// The key prefixes of DataBucket: wasmCloud hosts know these three and no
// other (a key without a '.', the rest of the key after the prefix).
const (
	DataLinkdefPrefix = "LINKDEF_" // + LinkID
	DataClaimsPrefix  = "CLAIMS_"  // + the public key
	DataRefmapPrefix  = "REFMAP_"  // + unpadded base64url of the reference
)

// Key-value message headers, as nats-server's key-value convention has them
// and wasmCloud reads them: a message whose KVOperationHeader is
// KVOperationPurge or KVOperationDel deletes its key.
const (
	KVOperationHeader = "KV-Operation"
	KVOperationPurge  = "PURGE"
	KVOperationDel    = "DEL"
)

// DataLinkdef is where a link definition lives in DataBucket (deleted by
// a purge, not a tombstone).
func DataLinkdef(prefix, id string) string {
	return "$KV." + DataBucket(prefix) + "." + DataLinkdefPrefix + id
}

// DataClaims is where an actor's (or provider's) flattened claims live in DataBucket.
func DataClaims(prefix, key string) string {
	return "$KV." + DataBucket(prefix) + "." + DataClaimsPrefix + key
}

// DataRefmap is where an artifact reference's public key lives in DataBucket.
func DataRefmap(prefix, ref string) string {
	return "$KV." + DataBucket(prefix) + "." + DataRefmapPrefix + base64.RawURLEncoding.EncodeToString([]byte(ref))
}

// LegacyCacheRevocationsFilter matches the signing-key revocations latticed
// once wrote into the lattice cache stream (lc.{prefix}.revocations.*), a key
// type wasmCloud 0.60-0.63 cannot migrate (docs/protocol.md §11). It is read
// only to move such entries into RevocationsBucket at start.
func LegacyCacheRevocationsFilter(prefix string) string {
	return "lc." + prefix + ".revocations.>"
}

// RevocationsBucket is latticed's own key-value bucket of delegated
// signing-key revocations (a latticed extension, docs/protocol.md §11.3):
// one key per revoked signing key. wasmCloud hosts never read it, so
// nothing in it can reach their LATTICECACHE or LATTICEDATA migration.
func RevocationsBucket(prefix string) string { return "LATTICED_REVOCATIONS_" + prefix }

// RevocationsStream is the JetStream stream behind RevocationsBucket.
func RevocationsStream(prefix string) string { return "KV_" + RevocationsBucket(prefix) }

// RevocationsSubjects is RevocationsStream's subject filter.
func RevocationsSubjects(prefix string) string { return "$KV." + RevocationsBucket(prefix) + ".>" }

// Revocation is the entry revoking one signing key (a public nkey, which is
// a valid key-value key).
func Revocation(prefix, signingKey string) string {
	return "$KV." + RevocationsBucket(prefix) + "." + signingKey
}

// CacheRefmapsFilter matches every reference map entry of the cache.
func CacheRefmapsFilter(prefix string) string { return "lc." + prefix + ".refmap.*" }

// CacheRefmap maps an artifact reference to a public key.
func CacheRefmap(prefix, ref string) string {
	return "lc." + prefix + ".refmap." + base64.RawURLEncoding.EncodeToString([]byte(ref))
}

// PrivateInboxRoot is the root of latticed's private reply inboxes. nats.go
// puts every reply inbox of a connection under one prefix (default
// "_INBOX", changed with nats.CustomInboxPrefix); wasmCloud's providers keep
// "_INBOX", so a user allowed to subscribe to "_INBOX.>" reads the replies
// to every request made with the default. latticed's requesters use a
// prefix under this root instead, and each minted user may subscribe to its
// own prefix only (docs/security.md, "Roles").
const PrivateInboxRoot = "_INBOX_LATTICED"

// PrivateInbox is the reply-inbox prefix of one owner in a lattice, e.g.
// "_INBOX_LATTICED.default.host-rpc". owner may span several tokens
// ("provider.U…"). Pass it to nats.CustomInboxPrefix.
func PrivateInbox(latticePrefix, owner string) string {
	return PrivateInboxRoot + "." + latticePrefix + "." + owner
}

// Owners of private inboxes (PrivateInbox) with a fixed name: the host's
// RPC and control connections, and the operator's requesters. The
// supervisor names the users it mints for these roles the same.
const (
	InboxHostRPC  = "host-rpc"
	InboxHostCtl  = "host-ctl"
	InboxOperator = "admin"
)

// OperatorInbox is the reply-inbox prefix of the operator's requesters in a
// lattice: the supervisor, `latticed ctl`, `up --apply` and any other
// ctlclient user holding admin credentials. Control replies (link values,
// claims, inventories) travel there, where no provider may subscribe.
func OperatorInbox(latticePrefix string) string { return PrivateInbox(latticePrefix, InboxOperator) }

// ChunkBucket is the JetStream object store that carries invocation and
// response payloads too large for one NATS message (docs/protocol.md §3,
// "Large payloads"): the lattice prefix itself, as wasmCloud names it.
func ChunkBucket(prefix string) string { return prefix }

// ChunkStream is the stream behind ChunkBucket (the NATS object store's
// naming: OBJ_<bucket>).
func ChunkStream(prefix string) string { return "OBJ_" + ChunkBucket(prefix) }

// ChunkSubjects are the subjects of ChunkStream: object metadata
// ($O.<bucket>.M.…) and chunks ($O.<bucket>.C.…).
func ChunkSubjects(prefix string) string { return "$O." + ChunkBucket(prefix) + ".>" }

// ChunkResponseObject is the object a chunked response to invocation id is
// stored as; a chunked invocation is stored under its id unchanged.
func ChunkResponseObject(invocationID string) string { return invocationID + "-r" }

// RPCPrefixOf is the lattice prefix of an RPC subject (RPCActor,
// RPCProvider), false when subject is not one.
func RPCPrefixOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, RPCRoot(""))
	if !ok {
		return "", false
	}
	prefix, _, ok := strings.Cut(rest, ".")
	return prefix, ok && prefix != ""
}
