package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/lattice"
)

func newCacheCmd() *cobra.Command {
	cmd := newGroupCmd("cache", "Manage the lattice cache stream (LATTICECACHE_{prefix})",
		`The lattice cache is the JetStream stream LATTICECACHE_{prefix}: actor claims,
link definitions and reference maps that every host replays at start.
Connection flags are those of latticed ctl.`, newCachePurgeCmd())
	addCtlFlags(cmd)
	return cmd
}

func newCachePurgeCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Empty the lattice cache (with every host of the lattice stopped)",
		Long: `Remove every entry of LATTICECACHE_{prefix}. Hosts keep what they replayed in
memory, so purge with all hosts of the lattice stopped: the command pings the
lattice for --timeout and refuses if any host answers, unless --force.
Equivalent to: nats stream purge LATTICECACHE_{prefix}`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				n, err := s.client.PurgeCache(ctx, s.timeout, force)
				if err != nil {
					return err
				}
				stream := lattice.CacheStream(s.cfg.LatticePrefix)
				res := purgeResult{Result: fmt.Sprintf("Purged %d entries from %s.", n, stream), Stream: stream, Purged: n}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "purge even though hosts of the lattice are running")
	return cmd
}

// purgeResult is what cache purge prints under --output json: an action's
// envelope as wash prints one ("result" and what was done).
type purgeResult struct {
	Result string `json:"result"`
	Stream string `json:"stream"`
	Purged uint64 `json:"purged"`
}
