// Package datadir owns the layout of a node's data dir (LATTICED_DATA_DIR)
// and the way files are written there: the name of every file and
// directory a latticed process keeps under it, the one key store (a seed
// per file, 0600, created atomically and never overwritten), and an atomic
// file write that readers never see half done. The supervisor, the host
// child and the command line all use it, so the layout that
// docs/operations.md ("What runs, and where") describes is written once.
package datadir

import "path/filepath"

// Paths under the data dir, relative and slash-separated (see Path).
const (
	// Keys: each a seed in its own 0600 file of the 0700 keys dir.
	ClusterSeedFile        = "keys/cluster.nk"         // the ad hoc cluster key of a lattice of one
	OperatorSeedFile       = "keys/operator.nk"        // the embedded server's operator
	SystemAccountSeedFile  = "keys/system-account.nk"  // the embedded server's system account
	LatticeAccountSeedFile = "keys/lattice-account.nk" // the account everything of the lattice runs in

	// AdminCredsFile gives full access to the lattice account of the
	// embedded server, for `latticed ctl` and `nats --creds`.
	AdminCredsFile = "creds/admin.creds"
	// ConsoleTokenFile is the web console's login token (LATTICED_CONSOLE_TOKEN), mode 0600.
	ConsoleTokenFile = "console.token"

	JetStreamDir    = "jetstream"     // the embedded server's JetStream store
	CompileCacheDir = "compile-cache" // wazero's compiled modules
	OCICacheDir     = "oci-cache"     // pulled blobs by digest (host and supervisor share it)
	ProviderBinDir  = "providers"     // 0700: executables extracted from provider archives, {V key}/{hash}

	// OCICredentialsFile (0600) keeps the registry credentials that
	// registries.put sent, across restarts: the host writes it; host and
	// supervisor read it when they start.
	OCICredentialsFile = "oci-credentials.json"

	// RevocationsFile records, in external mode, which of the account's
	// NATS user revocations this node made and when each may go
	// (docs/security.md, "Revocations are bounded").
	RevocationsFile = "nats-revocations.json"

	// RuntimeDir (0700) holds what lives only while `latticed up` runs:
	// the children's credentials, the admin socket and the supervisor's lock.
	RuntimeDir = "run"
)

// Files in RuntimeDir.
const (
	AdminSocketFile = "admin.sock"      // unless LATTICED_ADMIN_SOCKET says otherwise
	HostRPCCreds    = "host-rpc.creds"  // the host child's RPC user
	HostCtlCreds    = "host-ctl.creds"  // the host child's control user
	SupervisorLock  = "supervisor.lock" // held by the one supervisor of the data dir
)

// Path joins a relative, slash-separated path (one of the constants above)
// to the data dir.
func Path(dataDir, rel string) string { return filepath.Join(dataDir, filepath.FromSlash(rel)) }

// AdminSocket is where `latticed up` listens and `latticed ctl` looks by
// default: configured (LATTICED_ADMIN_SOCKET) when set, else
// {data dir}/run/admin.sock.
func AdminSocket(dataDir, configured string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(Path(dataDir, RuntimeDir), AdminSocketFile)
}
