// Package supervisor is `latticed up`: it owns the node's processes and
// credentials.
//
//   - NATS: with no server configured, an embedded nats-server in operator/JWT
//     mode (operator, system and lattice account keys in {data dir}/keys,
//     account JWTs in a memory resolver); {data dir}/creds/admin.creds gives
//     full access to the lattice account for `latticed ctl` and `nats`.
//   - Credential authority (authority.go): a distinct NATS user per child —
//     the host's RPC and control connections, and every provider instance
//     (a fresh user on every start) — each with its role's least-privilege
//     permissions, all listed in one table (permissions.go). Revocation adds
//     the user's key to the account's revocations and applies the account to
//     the server, which drops the connection at once (revoke.go). With an
//     external NATS it mints short-lived users from an account signing key,
//     and pushes revocations through the system account when also given an
//     operator signing key (external.go).
//   - Processes: the host (`latticed host`, hostchild.go) and every
//     provider instance (provider.go) are each an internal/child.Child: a
//     process in its own process group with a parent-death signal, its
//     output re-emitted in this log with the child's identity, restarted
//     with exponential backoff and jitter until a crash loop marks it
//     failed, its users revoked as each run ends. Every ended run has a
//     typed child.ExitReason, shown in inventories, events and metrics.
//   - The admin socket (package admin; the operations in admin.go): a 0600
//     unix socket with a versioned JSON protocol for status, launch, stop,
//     revoke and restart. The host child uses it (admin.Client implements
//     the host's ProviderLauncher) to carry out ctl lp/sp/revoke;
//     `latticed ctl` can use it too.
//   - One /metrics, /healthz, /readyz endpoint for the node (package
//     health), merging the host child's metrics (metricsmerge.go).
//
// Its settings are one config.SupervisorSettings, resolved from the
// configuration once by the command (docs/architecture.md, "Settings");
// a reload replaces them whole after Diff (reload.go) found only changes
// that apply live.
//
// What the supervisor shares with the host child lives in packages of its
// own: the data dir's layout and key store (datadir), NATS connections
// (natsalive), which server serves which role (config.Endpoints).
//
// Credentials reach children as 0600 files in the 0700 runtime dir
// ({data dir}/run; the host gets their paths in its environment) or, for
// providers, inside HostData on stdin; never on a command line or in
// another child's environment.
//
// Lock order: Supervisor.cfgMu → Supervisor.provMu → providerInstance.mu,
// and providerInstance.credMu → providerInstance.mu (never under provMu);
// hostChild.mu, actorTracker.mu, hostLabels.mu, Authority.mu, spawnMu and
// each child.Child's own lock are leaves.
package supervisor
