package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/internal/manifest"
)

func newApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply <manifest.yaml>",
		Short: "Make the lattice match a manifest of actors, providers and links",
		Long: `Apply a declarative manifest through the control interface: every actor runs
with its count (started on a host that wins the auction for its constraints, or
scaled where it runs), every link definition exists, every provider runs.
Applying the same manifest again changes nothing. An actor file rebuilt with a
higher revision (claims sign --rev) is live-updated where the actor runs.
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
				steps, err := manifest.Apply(ctx, s.client, m, s.timeout)
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
