package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/trust"
)

func newApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply <manifest.yaml>",
		Short: "Make the lattice match a manifest of actors, providers and links",
		Long: `Apply a declarative manifest through the control interface: every actor runs
with its count (started on a host that wins the auction for its constraints, or
scaled where it runs), every link definition exists, every provider runs.
Applying the same manifest again changes nothing. An actor whose module claims
a higher revision than the running one (a file rebuilt with claims sign --rev,
a new tag of its image) is live-updated where it runs: apply reads the claims
of a file, and pulls an image to read them when another tag or digest of its
repository runs (with WASMCLOUD_OCI_ALLOWED_INSECURE, WASMCLOUD_OCI_ALLOW_LATEST
and the WASMCLOUD_OCI_REGISTRY login).
Relative file paths in refs are resolved against the manifest's directory.
Connection flags are those of latticed ctl.

  actors:
    - ref: ./echo_s.wasm          # or file:///abs/path.wasm
      count: 2
      constraints: {region: eu}   # optional
  providers:
    - ref: builtin:httpserver     # builtin:keyvalue, or an executable path
      link_name: default
      config: '{}'                # optional, handed to the provider
  links:
    - actor: ./echo_s.wasm        # a ref above, an actor key or a call alias
      provider: builtin:httpserver
      contract: wasmcloud:httpserver
      values: {port: "8080"}`,
		Args: exactArgs("manifest.yaml"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manifest.Load(args[0])
			if err != nil {
				return usageError{err}
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				steps, err := manifest.Apply(ctx, s.client, m, s.timeout, manifestClaims(s.cfg))
				if steps == nil {
					steps = []manifest.Step{}
				}
				if err != nil && outputOf(cmd) == outputJSON {
					// One envelope: the error, with the steps taken before it.
					return withPartial(err, "steps", steps)
				}
				if perr := printKeyed(cmd, "steps", steps, func(w io.Writer) error { return writeSteps(w, steps) }); perr != nil {
					return perr
				}
				return err
			})
		},
	}
	addCtlFlags(cmd)
	return cmd
}

func writeSteps(w io.Writer, steps []manifest.Step) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tREF\tKEY\tHOST\tACTION\tREASON")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Kind, s.Ref, s.Key, s.HostID, s.Action, s.Reason)
	}
	return tw.Flush()
}

// manifestPullTimeout bounds apply's pull of an actor image to read its
// claims.
const manifestPullTimeout = time.Minute

// manifestClaims reads an actor's claims for apply: from a file, or from
// its image, pulled with the OCI settings of cfg (registries allowed over
// plain HTTP, :latest, the WASMCLOUD_OCI_REGISTRY login). It neither reads
// nor writes the node's pull cache or saved credentials: apply may run as
// another user, or on another machine. What it cannot read is nil, and
// apply then finds the actor by its reference only.
func manifestClaims(cfg *config.Config) manifest.ActorClaims {
	var client *oci.Client // made on first use
	return func(ctx context.Context, ref string) *trust.ActorClaims {
		if !oci.IsReference(ref) {
			return manifest.FileClaims(ctx, ref)
		}
		if client == nil {
			st := oci.NodeSettings(cfg, nil)
			st.CacheDir, st.CredentialsFile = "", ""
			client = oci.New(st)
		}
		ctx, cancel := context.WithTimeout(ctx, manifestPullTimeout)
		defer cancel()
		a, err := client.Pull(ctx, ref, oci.Actor)
		if err != nil {
			return nil
		}
		c, err := trust.VerifyActor(a.Data, time.Now())
		if err != nil {
			return nil
		}
		return c
	}
}
