package config

// Endpoints says which NATS servers serve which role, with the credentials
// and TLS setting each role connects with. It is the one rule every process
// follows (Config.Endpoints resolves it), so that the supervisor, the host
// and `latticed ctl` never disagree about where the lattice is.
type Endpoints struct {
	// RPC is the host's RPC connection: WASMCLOUD_RPC_*, else the control
	// interface's server and credentials when only WASMCLOUD_CTL_HOST is set.
	RPC NATSConn
	// Ctl is the control interface's connection (the host's, the
	// supervisor's own, latticed ctl's): WASMCLOUD_CTL_*, else the RPC
	// server and credentials when only WASMCLOUD_RPC_HOST is set.
	Ctl NATSConn
	// ProvRPC is what providers connect to: WASMCLOUD_PROV_RPC_*, else the
	// RPC server (with the WASMCLOUD_PROV_RPC_* credentials, if any).
	ProvRPC NATSConn
	// Embedded is set when neither WASMCLOUD_RPC_HOST nor WASMCLOUD_CTL_HOST
	// names a server: the node runs its own, and every role above is that
	// server on loopback at LATTICED_NATS_LISTEN (ListenConn), without
	// credentials, which the supervisor mints.
	Embedded bool
}

// Endpoints resolves which NATS servers serve which role (see Endpoints).
func (c *Config) Endpoints() Endpoints {
	if c.EmbeddedNATS() {
		local := ListenConn(c.NATSListen, false)
		return Endpoints{RPC: local, Ctl: local, ProvRPC: local, Embedded: true}
	}
	rpc, ctl := c.RPC, c.CTL
	switch {
	case !ctl.Configured():
		ctl = rpc
	case !rpc.Configured():
		rpc = ctl
	}
	prov := c.ProvRPC
	if !prov.Configured() {
		prov.Host, prov.Port, prov.TLS = rpc.Host, rpc.Port, rpc.TLS
	}
	return Endpoints{RPC: rpc, Ctl: ctl, ProvRPC: prov}
}
