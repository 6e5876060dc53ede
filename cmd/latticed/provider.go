package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/cpuprofile"
	"github.com/latticed/latticed/internal/providermain"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
)

const providerHelp = `A capability provider is started by a host (its supervisor), never by hand.
The host writes one line on the provider's stdin: HostData, the standard
base64 of a JSON object (wasmCloud's convention) holding the provider's
identity (provider_key, link_name, instance_id, host_id), its own NATS user
(lattice_rpc_url, lattice_rpc_user_jwt, lattice_rpc_user_seed), the lattice
prefix, the cluster issuers whose signatures it trusts, the seed it signs
its invocations to actors with, its current link definitions and logging
settings. The provider then serves the lattice until the host sends it a
shutdown message or it receives SIGTERM/SIGINT, and exits 0.

Its garbage collector lets a small heap grow by 16 MiB between collections
(GOGC=100 would collect after a few MiB, hundreds of times a second under
load); GOGC in its environment overrides that (docs/operations.md, "Memory").

Exit status: 0 after a graceful shutdown, 1 on failure, 2 when stdin holds
no valid HostData.`

func newProviderCmd() *cobra.Command {
	var runs []*cobra.Command
	for _, b := range builtin.All() {
		runs = append(runs, newProviderRunCmd(b))
	}
	return newGroupCmd("provider", "Run a built-in capability provider (started by a host, not by hand)",
		"provider runs one of the capability providers built into latticed.\n\n"+providerHelp, runs...)
}

func newProviderRunCmd(b builtin.Provider) *cobra.Command {
	return &cobra.Command{
		Use:   b.Name,
		Short: "Run the built-in " + b.Contract + " provider (reads HostData on stdin)",
		Long: "Run the built-in " + b.Contract + " provider, " + b.Ref() + ", key " + b.Key() + ".\n\n" +
			b.About + "\n\n" + providerHelp,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := cmd.InOrStdin()
			if f, ok := in.(*os.File); ok {
				if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					return usageErrorf("stdin is a terminal or device, not a pipe: %s providers are started by a host, which writes HostData on their stdin", b.Name)
				}
			}
			stopTracing, err := startTracing(cmd.Context(), telemetry.ServiceProviderPrefix+b.Name, nil)
			if err != nil {
				return usageError{err}
			}
			defer stopTracing()
			stopProfile, err := cpuprofile.Start(os.LookupEnv, "provider-"+b.Name)
			if err != nil {
				return usageError{err}
			}
			defer stopProfile()
			err = providermain.Serve(cmd.Context(), in, cmd.ErrOrStderr(), b.New)
			if errors.Is(err, lattice.ErrHostData) {
				return usageError{err}
			}
			return err
		},
	}
}
