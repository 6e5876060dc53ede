package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/latticed/latticed/lattice"
)

func newCtlWatchCmd() *cobra.Command {
	var types []string
	var count int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print the lattice's events as they happen",
		Long: `Subscribe to the lattice's CloudEvents (wasmbus.evt.{prefix}) and print each
one until interrupted, or until --count events were printed. Text output is one
line per event: time, type, source, data; JSON output is one event per line
(JSON Lines), exactly as hosts publish them.`,
		Example: `  latticed ctl watch
  latticed ctl watch --type actor_started --type actor_stopped --output json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				want := map[string]bool{}
				for _, t := range types {
					want[lattice.EventTypePrefix+strings.TrimPrefix(t, lattice.EventTypePrefix)] = true
				}
				events := make(chan *nats.Msg, 256)
				sub, err := s.nc.ChanSubscribe(lattice.Events(s.cfg.LatticePrefix), events)
				if err != nil {
					return err
				}
				defer sub.Unsubscribe()
				if err := s.nc.Flush(); err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for printed := 0; count == 0 || printed < count; {
					select {
					case <-ctx.Done():
						return nil
					case m := <-events:
						var e lattice.CloudEvent
						if err := json.Unmarshal(m.Data, &e); err != nil || (len(want) > 0 && !want[e.Type]) {
							continue
						}
						if outputOf(cmd) == outputJSON {
							fmt.Fprintf(w, "%s\n", m.Data)
						} else {
							fmt.Fprintf(w, "%s  %-28s %s  %s\n", e.Time, strings.TrimPrefix(e.Type, lattice.EventTypePrefix), e.Source, e.Data)
						}
						printed++
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&types, "type", nil, "print only events of this type (e.g. actor_started); repeatable")
	cmd.Flags().IntVar(&count, "count", 0, "exit after printing this many events (0 = until interrupted)")
	return cmd
}
