package lattice

// Control-interface JSON bodies (docs/protocol.md §6).

// Ack is the generic reply to a control command.
type Ack struct {
	Accepted bool   `json:"accepted"`
	Error    string `json:"error"`
}

// HostInfo is a host's reply to ping.hosts.
type HostInfo struct {
	ID             string            `json:"id"`
	Issuer         string            `json:"issuer"`
	Labels         map[string]string `json:"labels"`
	FriendlyName   string            `json:"friendly_name"`
	UptimeSeconds  int64             `json:"uptime_seconds"`
	UptimeHuman    string            `json:"uptime_human"`
	Version        string            `json:"version"`
	ClusterIssuers string            `json:"cluster_issuers"`
	JSDomain       *string           `json:"js_domain"`
	CtlHost        string            `json:"ctl_host"`
	RPCHost        string            `json:"rpc_host"`
	ProvRPCHost    string            `json:"prov_rpc_host"`
	LatticePrefix  string            `json:"lattice_prefix"`
}

// ActorInstance is one running instance in an inventory.
type ActorInstance struct {
	Annotations map[string]string `json:"annotations"`
	InstanceID  string            `json:"instance_id"`
	Revision    int32             `json:"revision"`
}

// ActorDescription is an actor in an inventory.
type ActorDescription struct {
	ID        string          `json:"id"`
	ImageRef  string          `json:"image_ref"`
	Name      string          `json:"name"`
	Instances []ActorInstance `json:"instances"`
}

// ProviderDescription is a provider in an inventory.
type ProviderDescription struct {
	ID          string            `json:"id"`
	ImageRef    string            `json:"image_ref"`
	ContractID  string            `json:"contract_id"`
	LinkName    string            `json:"link_name"`
	Name        string            `json:"name"`
	InstanceID  string            `json:"instance_id"`
	Annotations map[string]string `json:"annotations"`
	Revision    int32             `json:"revision"`

	// latticed extensions, from the supervisor that runs the instance.
	State      string `json:"state,omitempty"`       // starting, running, backoff, failed, revoked, stopping
	ExitReason string `json:"exit_reason,omitempty"` // why it last ended, e.g. "crash: exit status 3"
	Restarts   int    `json:"restarts,omitempty"`
	// Revocation is empty when the instance's NATS user can be revoked, else why it cannot.
	Revocation string `json:"revocation,omitempty"`
	// Signing is how the instance signs invocations: SigningDelegated, or
	// SigningClusterSeed for a provider started in compatibility mode.
	Signing string `json:"signing,omitempty"`
	// ReportsLinks: the instance reports what it made of its links, in
	// Links (its last health reply's lattice.HealthCheckResponse fields).
	ReportsLinks bool          `json:"reports_links,omitempty"`
	Links        []LinkOutcome `json:"links,omitempty"`
}

// ProviderStateRevoked is the State of a provider instance whose NATS user
// was revoked: it no longer runs, and launching the same provider and link
// name again starts a new instance with a new user.
const ProviderStateRevoked = "revoked"

// How a provider instance signs its invocations (ProviderDescription.Signing).
const (
	SigningDelegated   = "delegated"
	SigningClusterSeed = "cluster-seed (compatibility mode: holds the lattice's cluster seed)"
)

// HostInventory is the reply to get.{host}.inv.
type HostInventory struct {
	HostID       string                `json:"host_id"`
	Issuer       string                `json:"issuer"`
	Labels       map[string]string     `json:"labels"`
	FriendlyName string                `json:"friendly_name"`
	Actors       []ActorDescription    `json:"actors"`
	Providers    []ProviderDescription `json:"providers"`
}

// StartActorCommand launches count instances of an actor (cmd.{host}.la).
type StartActorCommand struct {
	ActorRef    string            `json:"actor_ref"`
	HostID      string            `json:"host_id,omitempty"`
	Count       int               `json:"count"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// StopActorCommand stops count instances (0 = all) of an actor (cmd.{host}.sa).
type StopActorCommand struct {
	ActorRef    string            `json:"actor_ref"`
	Count       int               `json:"count"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ScaleActorCommand sets an actor's instance count (cmd.{host}.scale).
type ScaleActorCommand struct {
	ActorID  string `json:"actor_id"`
	ActorRef string `json:"actor_ref"`
	Count    int    `json:"count"`
}

// UpdateActorCommand live-updates an actor (cmd.{host}.upd). wash sends
// actor_id and host_id too; actor_id, when given, must be the key the new
// module claims.
type UpdateActorCommand struct {
	ActorID     string `json:"actor_id,omitempty"`
	HostID      string `json:"host_id,omitempty"`
	NewActorRef string `json:"new_actor_ref"`
}

// LaunchProviderCommand starts a provider (cmd.{host}.lp).
type LaunchProviderCommand struct {
	ProviderRef   string            `json:"provider_ref"`
	LinkName      string            `json:"link_name"`
	Configuration string            `json:"configuration,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	// CompatClusterSeed hands the provider the cluster seed, as wasmCloud
	// does, instead of a delegated signing key (latticed extension; for
	// third-party providers that sign with the seed themselves).
	CompatClusterSeed bool `json:"compat_cluster_seed,omitempty"`
}

// StopProviderCommand stops a provider (cmd.{host}.sp); also the body of the
// latticed revoke extension (cmd.{host}.revoke).
type StopProviderCommand struct {
	ProviderRef string `json:"provider_ref"`
	LinkName    string `json:"link_name"`
}

// StopHostCommand stops a host (cmd.{host}.stop); Timeout is in milliseconds.
type StopHostCommand struct {
	Timeout int64 `json:"timeout,omitempty"`
}

// LabelCommand puts or deletes a host label.
type LabelCommand struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// ActorAuctionRequest asks hosts that match Constraints to offer to run an actor.
type ActorAuctionRequest struct {
	ActorRef    string            `json:"actor_ref"`
	Constraints map[string]string `json:"constraints"`
}

// ActorAuctionAck is a host's offer.
type ActorAuctionAck struct {
	ActorRef    string            `json:"actor_ref"`
	Constraints map[string]string `json:"constraints"`
	HostID      string            `json:"host_id"`
}

// ProviderAuctionRequest asks hosts to offer to run a provider.
type ProviderAuctionRequest struct {
	ProviderRef string            `json:"provider_ref"`
	LinkName    string            `json:"link_name"`
	Constraints map[string]string `json:"constraints"`
}

// ProviderAuctionAck is a host's offer.
type ProviderAuctionAck struct {
	ProviderRef string            `json:"provider_ref"`
	LinkName    string            `json:"link_name"`
	Constraints map[string]string `json:"constraints"`
	HostID      string            `json:"host_id"`
}

// ClaimsList is the reply to get.claims.
type ClaimsList struct {
	Claims []CachedClaims `json:"claims"`
}

// LinksList is the reply to get.links.
type LinksList struct {
	Links []LinkDefinition `json:"links"`
}

// LabelsMatch reports whether labels satisfy every constraint.
func LabelsMatch(labels, constraints map[string]string) bool {
	for k, v := range constraints {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// NonNil returns m, or an empty map when m is nil: the control interface's
// maps (constraints, annotations) travel as JSON objects, "{}" when empty,
// never null.
func NonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
