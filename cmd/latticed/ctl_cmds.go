package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

const defaultLinkName = "default"

// minArgs requires at least one positional argument per name.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usageErrorf("missing argument %s", names[len(args)])
		}
		return nil
	}
}

// rangeArgs requires the names in required and allows those in optional.
func rangeArgs(required []string, optional ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		all := append(append([]string(nil), required...), optional...)
		switch {
		case len(args) < len(required):
			return usageErrorf("missing argument %s", required[len(args)])
		case len(args) > len(all):
			return usageErrorf("too many arguments: want at most %d (%s), got %d", len(all), strings.Join(all, " "), len(args))
		}
		return nil
	}
}

// ---- get ----

func newCtlGetCmd() *cobra.Command {
	return newGroupCmd("get", "List hosts, a host's inventory, claims or link definitions", "",
		newCtlGetHostsCmd(), newCtlGetInventoryCmd(), newCtlGetClaimsCmd(), newCtlGetLinksCmd("links"))
}

func newCtlGetHostsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hosts",
		Short: "List the hosts that answer a ping",
		Long: `Ping every host of the lattice and list those that answer. Collecting ends
once no new host has answered for --quiet after the first (four times the
first answer's round trip when that is longer), or at --timeout; --quiet 0
waits out --timeout, to be sure a slow host is counted.
JSON output: {"hosts": [host info as each host sends it], "success": true}.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				hosts, err := s.client.Hosts(ctx, s.timeout)
				if err != nil {
					return err
				}
				if len(hosts) == 0 && outputOf(cmd) == outputText {
					fmt.Fprintf(cmd.ErrOrStderr(), "No host answered in lattice %s within %s.\n", s.cfg.LatticePrefix, s.timeout)
					return nil
				}
				if hosts == nil {
					hosts = []lattice.HostInfo{} // "hosts": [], as wash prints no hosts
				}
				return printKeyed(cmd, "hosts", hosts, func(w io.Writer) error { return writeHosts(w, hosts) })
			})
		},
	}
}

func newCtlGetInventoryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inventory [host-id]",
		Short: "Show the actors and providers a host runs",
		Long: `Show a host's labels, actors (with their instances) and providers. The host
ID may be left out when exactly one host answers a ping within --timeout.`,
		Args: rangeArgs(nil, "[host-id]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := ""
			if len(args) == 1 {
				host = args[0]
			}
			if err := checkHostID(host, "host"); err != nil {
				return err
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if host == "" {
					var err error
					if host, err = s.client.SoleHost(ctx, s.timeout); err != nil {
						return err
					}
				}
				inv, err := s.client.Inventory(ctx, host)
				if err != nil {
					return err
				}
				return printKeyed(cmd, "inventory", inv, func(w io.Writer) error { return writeInventory(w, inv) })
			})
		},
	}
}

func newCtlGetClaimsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "claims",
		Short: "List the claims of the actors and providers the lattice knows",
		Long: `List the claims of every actor and provider the lattice knows, read from
the lattice cache (JetStream stream LATTICECACHE_{prefix}), however many there
are. Only when the cache cannot be read (no JetStream, no stream) does it ask
a host on get.claims, whose reply must fit one NATS message; a host that
cannot fit it answers with an error, printed here.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				claims, err := s.client.Claims(ctx)
				if err != nil {
					return err
				}
				if claims == nil {
					claims = []lattice.CachedClaims{}
				}
				return printKeyed(cmd, "claims", claims, func(w io.Writer) error { return writeClaims(w, claims) })
			})
		},
	}
}

func newCtlGetLinksCmd(use string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "List the lattice's link definitions",
		Long: `List every link definition of the lattice, read from the lattice cache
(JetStream stream LATTICECACHE_{prefix}), however many there are. Only when
the cache cannot be read (no JetStream, no stream) does it ask a host on
get.links, whose reply must fit one NATS message; a host that cannot fit it
answers with an error, printed here.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				links, err := s.client.Links(ctx)
				if err != nil {
					return err
				}
				if links == nil {
					links = []lattice.LinkDefinition{}
				}
				return printKeyed(cmd, "links", links, func(w io.Writer) error { return writeLinks(w, links) })
			})
		},
	}
}

// ---- start ----

func newCtlStartCmd() *cobra.Command {
	return newGroupCmd("start", "Start an actor or a provider", "", newCtlStartActorCmd(), newCtlStartProviderCmd())
}

func newCtlStartActorCmd() *cobra.Command {
	var (
		hostID                   string
		count                    int
		annotations, constraints []string
		wait                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "actor <ref>",
		Short: "Start an actor from an OCI reference or file:// path",
		Long: `Start count instances of an actor. Without --host-id, hosts whose labels match
every --constraint are asked (an auction, for --timeout) and the first to offer
runs it. The command then waits up to --wait for the host's actors_started or
actors_start_failed event, and prints the actor's public key.

An OCI reference (registry/repo:tag, published with latticed push) is pulled
by the host through its digest cache; :latest or no tag needs
WASMCLOUD_OCI_ALLOW_LATEST, a plain-HTTP registry WASMCLOUD_OCI_ALLOWED_INSECURE
and a private one a login (WASMCLOUD_OCI_REGISTRY with _USER and _PASSWORD,
or registries.put) on the host. A file:// reference is read by the host, which must allow it
(WASMCLOUD_ALLOW_FILE_LOAD).`,
		Example: `  latticed ctl start actor file:///srv/actors/echo_s.wasm
  latticed ctl start actor registry.example.com/echo:0.1.0 --constraint zone=eu --count 4`,
		Args: exactArgs("<ref>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if count < 1 {
				return usageErrorf("--count must be at least 1, got %d", count)
			}
			if wait <= 0 {
				return usageErrorf("--wait must be positive, got %s", wait)
			}
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			ann, err := parseKVs("--annotation", annotations)
			if err != nil {
				return err
			}
			cons, err := parseKVs("--constraint", constraints)
			if err != nil {
				return err
			}
			if hostID != "" && len(cons) > 0 {
				return usageErrorf("--constraint picks a host by auction; it cannot be combined with --host-id")
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host := hostID
				if host == "" {
					if host, err = s.client.AuctionActor(ctx, ref, cons, s.timeout); err != nil {
						return err
					}
				}
				wctx, cancel := context.WithTimeout(ctx, wait)
				defer cancel()
				req := lattice.StartActorCommand{ActorRef: ref, Count: count}
				if len(ann) > 0 {
					req.Annotations = ann
				}
				stop := terminalStep(ctx, cmd.ErrOrStderr(), "starting "+ref+" (fetch, verify, compile)")
				started, err := s.client.StartActor(wctx, host, req)
				stop()
				var rej *ctlclient.RejectedError
				if errors.As(err, &rej) {
					return fmt.Errorf("host %s could not start actor %s: %s", host, ref, rej.Reason)
				}
				if err != nil {
					return err
				}
				res := actorResult{
					Result: fmt.Sprintf("Actor %s (ref: %s) started on host %s", started.ActorID, ref, started.HostID),
					HostID: started.HostID, ActorID: started.ActorID, ActorRef: ref, Count: started.Count,
				}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, started.ActorID)
					return err
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&hostID, "host-id", "", "`host` to start the actor on (default: the first host to offer in an auction)")
	fl.IntVar(&count, "count", 1, "number of instances")
	fl.StringArrayVar(&annotations, "annotation", nil, "annotation `key=value` for the instances (repeatable)")
	fl.StringArrayVar(&constraints, "constraint", nil, "host label `key=value` the host must have (repeatable)")
	fl.DurationVar(&wait, "wait", ctlclient.DefaultStartWait, "how long to wait for the host to fetch, verify and start the actor")
	return cmd
}

func newCtlStartProviderCmd() *cobra.Command {
	var (
		hostID, linkName, configJSON string
		constraints                  []string
		compat                       bool
	)
	cmd := &cobra.Command{
		Use:   "provider <ref>",
		Short: "Start a capability provider",
		Long: `Ask a host to launch a provider. Without --host-id, hosts whose labels match
every --constraint and that do not run the provider on the link name yet are
asked (an auction, for --timeout) and the first to offer launches it.

<ref> is builtin:<name> (httpserver, keyvalue), an OCI reference to a
provider archive (registry/repo:tag, published with latticed push; :latest
needs WASMCLOUD_OCI_ALLOW_LATEST on the host, plain-HTTP registries
WASMCLOUD_OCI_ALLOWED_INSECURE, private ones a login as for actors), or, when the host allows
WASMCLOUD_ALLOW_FILE_LOAD, a file on the host: file:///path/provider.par.gz
or an executable. An archive's claims and binary hash are verified first;
the reply comes once the provider's process runs, after it has read its link
definitions from the lattice cache, so this command waits at least ` + ctlclient.LaunchWait.String() + `
whatever --timeout says; give a large archive on a slow registry a longer
--timeout.`,
		Example: `  latticed ctl start provider builtin:httpserver
  latticed ctl start provider registry.example.com/team/httpserver:0.1.0 --link-name web`,
		Args: exactArgs("<ref>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if err := builtin.CheckRef(ref); err != nil {
				return usageError{err}
			}
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			if linkName == "" {
				return usageErrorf("--link-name must not be empty")
			}
			if err := lattice.ValidateLinkName(linkName); err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("config") && !json.Valid([]byte(configJSON)) {
				return usageErrorf("--config must be JSON")
			}
			cons, err := parseKVs("--constraint", constraints)
			if err != nil {
				return err
			}
			if hostID != "" && len(cons) > 0 {
				return usageErrorf("--constraint picks a host by auction; it cannot be combined with --host-id")
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host := hostID
				if host == "" {
					if host, err = s.client.AuctionProvider(ctx, ref, linkName, cons, s.timeout); err != nil {
						return err
					}
				}
				req := lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: linkName, Configuration: configJSON, CompatClusterSeed: compat}
				stop := terminalStep(ctx, cmd.ErrOrStderr(), "starting "+ref)
				err := s.client.StartProvider(ctx, host, req)
				stop()
				if err != nil {
					return fmt.Errorf("host %s could not start provider %s (link name %s): %w", host, ref, linkName, err)
				}
				// The key is what links name; a ref this machine cannot read
				// (a path on the host's machine) is reported without it.
				key, _ := manifest.ProviderKey(ref)
				res := providerResult{
					Result: fmt.Sprintf("Provider %s (link name %s) started on host %s", ref, linkName, host),
					HostID: host, ProviderRef: ref, LinkName: linkName, ProviderID: key,
				}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					if err == nil && key != "" {
						_, err = fmt.Fprintln(w, key)
					}
					return err
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&hostID, "host-id", "", "`host` to start the provider on (default: the first host to offer in an auction)")
	fl.StringVar(&linkName, "link-name", defaultLinkName, "link `name` of this provider instance")
	fl.StringVar(&configJSON, "config", "", "provider configuration, a `json` value passed on as it is")
	fl.StringArrayVar(&constraints, "constraint", nil, "host label `key=value` the host must have (repeatable)")
	fl.BoolVar(&compat, "compat-cluster-seed", false, "hand the provider the lattice's cluster seed, as wasmCloud does, instead of a delegated signing key; only for third-party providers that sign with the seed themselves (any holder of the seed can sign as anyone: see docs/security.md)")
	return cmd
}

// providerResult is what start, stop and revoke provider print under
// --output json: wash's keys for these commands (result, provider_ref,
// provider_id, link_name, host_id), each set when known.
type providerResult struct {
	Result      string `json:"result"`
	HostID      string `json:"host_id,omitempty"`
	ProviderRef string `json:"provider_ref,omitempty"`
	ProviderID  string `json:"provider_id,omitempty"`
	LinkName    string `json:"link_name"`
}

// ---- stop, scale, revoke ----

func newCtlStopCmd() *cobra.Command {
	return newGroupCmd("stop", "Stop an actor, a provider or a host", "",
		newCtlStopActorCmd(), newCtlProviderCmd("stop", "Stop a provider instance", ""), newCtlStopHostCmd())
}

func newCtlRevokeCmd() *cobra.Command {
	return newGroupCmd("revoke", "Revoke a provider instance's NATS user", "",
		newCtlProviderCmd("revoke", "Revoke a provider instance's NATS user (latticed extension)",
			`The host asks its supervisor to revoke the provider instance's NATS user:
the server drops its connection at once and the provider is not restarted.`))
}

func newCtlScaleCmd() *cobra.Command {
	return newGroupCmd("scale", "Set the number of instances of an actor", "", newCtlScaleActorCmd())
}

func newCtlUpdateCmd() *cobra.Command {
	return newGroupCmd("update", "Live-update an actor to a new revision of its module", "", newCtlUpdateActorCmd())
}

func newCtlUpdateActorCmd() *cobra.Command {
	var hostID string
	cmd := &cobra.Command{
		Use:   "actor <actor-key> <new-ref>",
		Short: "Move a running actor to a new revision of its module",
		Long: `Live-update an actor: the host loads the module at <new-ref>, which must
claim the same actor key and a higher revision, compiles it, and moves every
instance to it under the same instance id (a busy one when its call ends),
with no instance stopped. It answers once the module is compiled. Without
--host-id the host is the first that answers a ping within --timeout and
lists the actor in its inventory.`,
		Example: `  latticed ctl update actor MB2Z… file:///srv/actors/echo_rev3.wasm`,
		Args:    exactArgs("<actor-key>", "<new-ref>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, ref := args[0], args[1]
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host, err := actorHost(ctx, s, hostID, actor)
				if err != nil {
					return err
				}
				if err := s.client.UpdateActor(ctx, host, actor, ref); err != nil {
					return fmt.Errorf("host %s could not update actor %s: %w", host, actor, err)
				}
				res := updateResult{Result: fmt.Sprintf("Actor %s updated to %s on host %s", actor, ref, host), HostID: host, ActorID: actor, ActorRef: ref}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&hostID, "host-id", "", "`host` running the actor (default: found from inventories)")
	return cmd
}

// updateResult is what update actor prints under --output json.
type updateResult struct {
	Result   string `json:"result"`
	HostID   string `json:"host_id"`
	ActorID  string `json:"actor_id"`
	ActorRef string `json:"actor_ref"`
}

func newCtlStopActorCmd() *cobra.Command {
	var (
		hostID      string
		count       int
		annotations []string
	)
	cmd := &cobra.Command{
		Use:   "actor <actor-key>",
		Short: "Stop instances of an actor",
		Long: `Stop count instances of an actor (0, the default, stops all). With
--annotation, only instances started with every one of those annotations stop
(count of them, or all of them). Without --host-id the host is the first that
answers a ping within --timeout and lists the actor in its inventory; that
first match ends the wait.`,
		Example: `  latticed ctl stop actor MB2Z… --count 2 --annotation app=shop`,
		Args:    exactArgs("<actor-key>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor := args[0]
			if count < 0 {
				return usageErrorf("--count must not be negative, got %d", count)
			}
			ann, err := parseKVs("--annotation", annotations)
			if err != nil {
				return err
			}
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host, err := actorHost(ctx, s, hostID, actor)
				if err != nil {
					return err
				}
				if err := s.client.StopActorWith(ctx, host, lattice.StopActorCommand{ActorRef: actor, Count: count, Annotations: ann}); err != nil {
					return fmt.Errorf("host %s could not stop actor %s: %w", host, actor, err)
				}
				res := actorResult{Result: fmt.Sprintf("Actor %s stopped on host %s", actor, host), HostID: host, ActorID: actor, Count: count}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&hostID, "host-id", "", "`host` running the actor (default: found from inventories)")
	cmd.Flags().IntVar(&count, "count", 0, "number of instances to stop; 0 stops all")
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "stop only instances started with annotation `key=value` (repeatable)")
	return cmd
}

// actorResult is what start, stop and scale actor print under --output
// json: wash's keys for these commands (result, actor_id, actor_ref,
// host_id) and the instance count asked for (0: all, for stop).
type actorResult struct {
	Result   string `json:"result"`
	HostID   string `json:"host_id"`
	ActorID  string `json:"actor_id"`
	ActorRef string `json:"actor_ref,omitempty"`
	Count    int    `json:"count"`
}

func newCtlScaleActorCmd() *cobra.Command {
	var hostID, actorRef string
	cmd := &cobra.Command{
		Use:   "actor <actor-key> <count>",
		Short: "Set the number of instances of an actor",
		Long: `Set how many instances of an actor a host runs; 0 stops it. Without
--host-id the host is the first that answers a ping within --timeout and
lists the actor in its inventory. When the actor runs nowhere, --actor-ref lets a host
start it: the given one, or else the first to offer in an auction.`,
		Args: exactArgs("<actor-key>", "<count>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor := args[0]
			count, err := strconv.Atoi(args[1])
			if err != nil || count < 0 {
				return usageErrorf("<count> must be a number 0 or more, got %q", args[1])
			}
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host := hostID
				if host == "" {
					var err error
					if host, err = s.client.FindActorHost(ctx, actor, s.timeout); err != nil {
						return err
					}
					if host == "" && actorRef != "" {
						if host, err = s.client.AuctionActor(ctx, actorRef, nil, s.timeout); err != nil {
							return err
						}
					}
					if host == "" {
						return fmt.Errorf("%w; give --actor-ref to start it", notRunning("actor "+actor, s))
					}
				}
				req := lattice.ScaleActorCommand{ActorID: actor, ActorRef: actorRef, Count: count}
				if err := s.client.ScaleActor(ctx, host, req); err != nil {
					return fmt.Errorf("host %s could not scale actor %s: %w", host, actor, err)
				}
				res := actorResult{
					Result: fmt.Sprintf("Actor %s scaled to %d instances on host %s", actor, count, host),
					HostID: host, ActorID: actor, ActorRef: actorRef, Count: count,
				}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&hostID, "host-id", "", "`host` to scale the actor on (default: the host running it)")
	cmd.Flags().StringVar(&actorRef, "actor-ref", "", "`ref` to start the actor from when the host does not run it")
	return cmd
}

// actorHost is hostID, or else the first host that lists actor in its
// inventory within --timeout.
func actorHost(ctx context.Context, s *ctlSession, hostID, actor string) (string, error) {
	if hostID != "" {
		return hostID, nil
	}
	host, err := s.client.FindActorHost(ctx, actor, s.timeout)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", notRunning("actor "+actor, s)
	}
	return host, nil
}

// notRunning is the error for an actor or provider no host lists within
// --timeout.
func notRunning(what string, s *ctlSession) error {
	return fmt.Errorf("%s is not running on any host in lattice %s (none listed it within --timeout %s)", what, s.cfg.LatticePrefix, s.timeout)
}

// newCtlProviderCmd is `stop provider` or `revoke provider`.
func newCtlProviderCmd(verb, short, long string) *cobra.Command {
	var hostID, linkName, adminSocket string
	cmd := &cobra.Command{
		Use:   "provider <provider-key>",
		Short: short,
		Long: strings.TrimSpace(long + `

Without --host-id the host is the first that answers a ping within --timeout
and lists the provider in its inventory; that first match ends the wait.`),
		Args: exactArgs("<provider-key>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			provider := args[0]
			if err := checkHostID(hostID, "--host-id"); err != nil {
				return err
			}
			if linkName == "" {
				return usageErrorf("--link-name must not be empty")
			}
			if err := lattice.ValidateLinkName(linkName); err != nil {
				return usageError{err}
			}
			req := lattice.StopProviderCommand{ProviderRef: provider, LinkName: linkName}
			if adminSocket != "" {
				return providerViaAdmin(cmd, adminSocket, verb, req)
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				host := hostID
				if host == "" {
					var err error
					if host, err = s.client.FindProviderHost(ctx, provider, linkName, s.timeout); err != nil {
						return err
					}
					if host == "" {
						return notRunning(fmt.Sprintf("provider %s (link name %s)", provider, linkName), s)
					}
				}
				do, done := s.client.StopProvider, "stopped"
				if verb == "revoke" {
					do, done = s.client.RevokeProvider, "revoked"
				}
				if err := do(ctx, host, req); err != nil {
					return fmt.Errorf("host %s could not %s provider %s (link name %s): %w", host, verb, provider, linkName, err)
				}
				res := providerResult{
					Result: fmt.Sprintf("Provider %s (link name %s) %s on host %s", provider, linkName, done, host),
					HostID: host, ProviderID: provider, LinkName: linkName,
				}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&hostID, "host-id", "", "`host` running the provider (default: found from inventories)")
	cmd.Flags().StringVar(&linkName, "link-name", defaultLinkName, "link `name` of the provider instance")
	cmd.Flags().StringVar(&adminSocket, "admin-socket", "", "talk to the local supervisor through its admin socket (`path`, e.g. {data dir}/run/admin.sock) instead of NATS; a revocation then reports when the provider's connection was seen closed")
	return cmd
}

// providerViaAdmin stops or revokes a provider through the local supervisor's
// admin socket, which needs no NATS credentials (only access to the socket).
func providerViaAdmin(cmd *cobra.Command, path, verb string, req lattice.StopProviderCommand) error {
	client := admin.NewClient(path, nil)
	ctx := cmd.Context()
	if verb != "revoke" {
		if err := client.StopProvider(ctx, req); err != nil {
			return fmt.Errorf("stop provider %s (link name %s) via %s: %w", req.ProviderRef, req.LinkName, path, err)
		}
		res := providerResult{
			Result:     fmt.Sprintf("Provider %s (link name %s) stopped", req.ProviderRef, req.LinkName),
			ProviderID: req.ProviderRef, LinkName: req.LinkName,
		}
		return printResult(cmd, res, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, res.Result)
			return err
		})
	}
	rep, err := client.Revoke(ctx, req)
	if err != nil {
		return fmt.Errorf("revoke provider %s (link name %s) via %s: %w", req.ProviderRef, req.LinkName, path, err)
	}
	res := revokeResult{
		Result: fmt.Sprintf("Provider %s (link name %s) revoked: its connection was closed %s after the request",
			rep.ProviderID, rep.LinkName, time.Duration(rep.Seconds*float64(time.Second)).Round(10*time.Microsecond)),
		RevocationReport: rep,
	}
	return printResult(cmd, res, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, res.Result)
		return err
	})
}

// revokeResult is a revocation through the admin socket under --output
// json: stop provider's "result" and the supervisor's report, flat.
type revokeResult struct {
	Result string `json:"result"`
	*admin.RevocationReport
}

func newCtlStopHostCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "host <host-id>",
		Short: "Stop a host",
		Args:  exactArgs("<host-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := checkHostID(host, "<host-id>"); err != nil {
				return err
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if err := s.client.StopHost(ctx, host, 0); err != nil {
					return fmt.Errorf("stop host: %w", err)
				}
				res := hostResult{Result: fmt.Sprintf("Host %s is stopping", host), HostID: host}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
}

// ---- link ----

func newCtlLinkCmd() *cobra.Command {
	return newGroupCmd("link", "Put, list and delete link definitions", "",
		newCtlLinkPutCmd(), newCtlGetLinksCmd("get", "query"), newCtlLinkDelCmd()) // wash: ctl link query
}

// writeWaitText is ctlclient.WriteWait for --help texts.
var writeWaitText = ctlclient.WriteWait.String()

func newCtlLinkPutCmd() *cobra.Command {
	var linkName string
	cmd := &cobra.Command{
		Use:   "put <actor-key> <provider-key> <contract-id> [KEY=VALUE ...]",
		Short: "Link an actor to a provider for a contract",
		Long: `Define a link: the actor may call the provider for the contract under the
link name; the KEY=VALUE pairs are the link's values, passed to the provider.
A link with the same actor, contract and link name is replaced.

The host stores the link in the lattice cache and waits out a JetStream
leader election to do so, so this command waits at least ` + writeWaitText + `
for the answer, whatever --timeout says.`,
		Example: "  latticed ctl link put MB… VA… wasmcloud:httpserver PORT=8080",
		Args:    minArgs("<actor-key>", "<provider-key>", "<contract-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := parseKVs("link value", args[3:])
			if err != nil {
				return err
			}
			ld := lattice.LinkDefinition{ActorID: args[0], ProviderID: args[1], ContractID: args[2], LinkName: linkName, Values: values}
			if linkName == "" {
				return usageErrorf("--link-name must not be empty")
			}
			if err := lattice.ValidateLinkName(linkName); err != nil {
				return usageError{err}
			}
			if err := ld.Normalize(); err != nil {
				return usageError{err}
			}
			if err := ld.Validate(); err != nil {
				return usageError{err}
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if err := s.client.PutLink(ctx, ld); err != nil {
					return fmt.Errorf("put link: %w", err)
				}
				return printResult(cmd, ld, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "Linked actor %s to provider %s for %s (link name %s)\n", ld.ActorID, ld.ProviderID, ld.ContractID, ld.LinkName)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&linkName, "link-name", defaultLinkName, "link `name`")
	return cmd
}

func newCtlLinkDelCmd() *cobra.Command {
	var linkName string
	cmd := &cobra.Command{
		Use:   "del <actor-key> <contract-id>",
		Short: "Delete a link definition",
		Long: `Delete a link definition. Like link put, this waits at least ` + writeWaitText + `
for the host's answer, whatever --timeout says: the host's lattice cache write
waits out a JetStream leader election.`,
		Args: exactArgs("<actor-key>", "<contract-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			actor, contract := args[0], args[1]
			if err := lattice.CheckPublicKey(actor, lattice.KindModule); err != nil {
				return usageErrorf("<actor-key> %q is not an actor key: %w", lattice.Abbreviate(actor), err)
			}
			if linkName == "" {
				return usageErrorf("--link-name must not be empty")
			}
			if err := lattice.ValidateLinkName(linkName); err != nil {
				return usageError{err}
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if err := s.client.DelLink(ctx, actor, contract, linkName); err != nil {
					return fmt.Errorf("delete link: %w", err)
				}
				out := linkDelResult{ID: lattice.LinkID(actor, contract, linkName), ActorID: actor, ContractID: contract, LinkName: linkName}
				return printResult(cmd, out, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "Deleted the link of actor %s for %s (link name %s)\n", actor, contract, linkName)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&linkName, "link-name", defaultLinkName, "link `name`")
	return cmd
}

// linkDelResult is what link del prints under --output json: wash's keys
// (actor_id, contract_id, link_name) and the link's ID.
type linkDelResult struct {
	ID         string `json:"id"`
	ActorID    string `json:"actor_id"`
	ContractID string `json:"contract_id"`
	LinkName   string `json:"link_name"`
}

// ---- label ----

func newCtlLabelCmd() *cobra.Command {
	return newGroupCmd("label", "Set and remove host labels", "", newCtlLabelPutCmd(), newCtlLabelDelCmd())
}

// labelResult is what label put and del print under --output json: wash's
// "result" and the label.
type labelResult struct {
	Result string `json:"result"`
	HostID string `json:"host_id"`
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
}

func newCtlLabelPutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "put <host-id> <key=value>",
		Short: "Set a label on a host",
		Args:  exactArgs("<host-id>", "<key=value>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := checkHostID(host, "<host-id>"); err != nil {
				return err
			}
			kv, err := parseKVs("label", args[1:])
			if err != nil {
				return err
			}
			key, _, _ := strings.Cut(args[1], "=")
			value := kv[key]
			if err := lattice.ValidateLabelKey(key); err != nil {
				return usageError{err}
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if err := s.client.PutLabel(ctx, host, key, value); err != nil {
					return fmt.Errorf("host %s: put label %s: %w", host, key, err)
				}
				res := labelResult{Result: fmt.Sprintf("Label %s=%s set on host %s", key, value, host), HostID: host, Key: key, Value: value}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
}

func newCtlLabelDelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "del <host-id> <key>",
		Short: "Remove a label from a host",
		Args:  exactArgs("<host-id>", "<key>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, key := args[0], args[1]
			if err := checkHostID(host, "<host-id>"); err != nil {
				return err
			}
			if key == "" {
				return usageErrorf("<key> must not be empty")
			}
			return withCtl(cmd, func(ctx context.Context, s *ctlSession) error {
				if err := s.client.DelLabel(ctx, host, key); err != nil {
					return fmt.Errorf("host %s: delete label %s: %w", host, key, err)
				}
				res := labelResult{Result: fmt.Sprintf("Label %s removed from host %s", key, host), HostID: host, Key: key}
				return printResult(cmd, res, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, res.Result)
					return err
				})
			})
		},
	}
}

// ---- call ----

func newCtlCallCmd() *cobra.Command {
	var (
		data, dataFile string
		raw            bool
	)
	cmd := &cobra.Command{
		Use:   "call <actor-key|call-alias> <operation>",
		Short: "Call an actor with a signed invocation and print its reply",
		Long: `Send a signed invocation of an operation to an actor and print the reply.

--data is a JSON value, converted to msgpack (the payload encoding of
wasmbus): objects become maps with string keys, integers msgpack integers,
other numbers float64, strings str, null nil. --data-file reads the JSON
value from a file ("-": standard input) instead, for payloads too long for
a command line. Without either the payload is empty. Payloads and replies
over 900 KiB travel through the lattice's JetStream object store, as
wasmCloud chunks them, up to the host's LATTICED_MAX_PAYLOAD_BYTES. The reply is decoded from msgpack and printed as JSON, byte strings as
text when they are UTF-8 and as base64 otherwise (with --output json under
"response", as wash prints it); --raw writes the reply bytes as they are.

The target is an actor key (M…) or a call alias from the actors' claims.
The invocation is signed with the cluster seed from --cluster-seed or
WASMCLOUD_CLUSTER_SEED, else {data dir}/` + datadir.ClusterSeedFile + ` (the seed of a
lattice of one); the actor's host must trust its public key. Its origin is
an actor with a freshly generated key.

An error returned by the actor is printed and the exit status is 1.`,
		Example: `  latticed ctl call MB… HttpServer.HandleRequest --data '{"method":"GET","path":"/","queryString":"","header":{},"body":""}'
  latticed ctl call echo Echo.Echo --data '"hello"' --raw`,
		Args: exactArgs("<actor-key|call-alias>", "<operation>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, op := args[0], args[1]
			var payload []byte
			if cmd.Flags().Changed("data") && cmd.Flags().Changed("data-file") {
				return usageErrorf("--data and --data-file both give the payload; use one")
			}
			if cmd.Flags().Changed("data-file") {
				b, err := readDataFile(cmd, dataFile)
				if err != nil {
					return err
				}
				data = string(b)
			}
			if cmd.Flags().Changed("data") || cmd.Flags().Changed("data-file") {
				p, err := ctlclient.JSONToMsgpack([]byte(data))
				if err != nil {
					return usageErrorf("--data: %v", err)
				}
				payload = p
			}
			if raw && outputOf(cmd) == outputJSON {
				return usageErrorf("--raw writes the reply as it is; it cannot be combined with --output json")
			}
			timeout, err := ctlTimeout(cmd)
			if err != nil {
				return err
			}
			cfg, err := loadCtlConfig(cmd)
			if err != nil {
				return err
			}
			signer, err := ctlClusterKey(cfg)
			if err != nil {
				return err
			}
			nc, err := ctlConnect(cmd, cfg)
			if err != nil {
				return err
			}
			defer nc.Close()
			client := ctlclient.New(nc, cfg.CtlTopicPrefix, cfg.LatticePrefix)
			client.Timeout = timeout
			ctx := cmd.Context()
			key, err := client.ResolveActor(ctx, target)
			if err != nil {
				return err
			}
			reply, err := client.Call(ctx, signer, key, op, payload)
			if err != nil {
				return fmt.Errorf("call %s %s: %w", key, op, err)
			}
			if raw {
				_, err := cmd.OutOrStdout().Write(reply)
				return err
			}
			js, err := ctlclient.MsgpackToJSON(reply)
			if err != nil {
				return fmt.Errorf("the reply (%d bytes) cannot be shown as JSON: %w; use --raw to get it as it is", len(reply), err)
			}
			// The reply as JSON in either format; --output json wraps it
			// as wash does, under "response".
			return printKeyed(cmd, "response", json.RawMessage(js), func(w io.Writer) error { return writeIndentedJSON(w, js) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&data, "data", "", "payload as a `json` value, sent as msgpack (default: an empty payload)")
	fl.StringVar(&dataFile, "data-file", "", "read the payload's `json` value from this file (\"-\": standard input)")
	fl.BoolVar(&raw, "raw", false, "write the reply bytes as they are instead of decoding them")
	seed := configFlags(flagClusterSeed)[0]
	// config's text says a host generates an ad hoc seed; a client does not.
	seed.Usage = fmt.Sprintf("cluster seed (SC...) that signs the invocation (default the seed in {data dir}/%s); visible in ps, prefer the environment [%s]",
		datadir.ClusterSeedFile, config.EnvClusterSeed)
	fl.AddFlag(seed)
	return cmd
}

// readDataFile is the content of `ctl call --data-file`: the file, or
// standard input for "-".
func readDataFile(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("--data-file -: read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--data-file: %v", err)
	}
	return b, nil
}

// ctlClusterKey is the key that signs `ctl call` invocations: the configured
// cluster seed, else the lattice of one's seed file.
func ctlClusterKey(cfg *config.Config) (*trust.KeyPair, error) {
	if cfg.ClusterSeed != "" {
		kp, err := trust.ParseSeedOfKind(cfg.ClusterSeed, lattice.KindCluster)
		if err != nil {
			return nil, usageErrorf("%s: %v", config.EnvClusterSeed, err)
		}
		return kp, nil
	}
	p := datadir.Path(cfg.DataDir, datadir.ClusterSeedFile)
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, usageErrorf("no cluster seed to sign the invocation: set %s or --cluster-seed to a cluster seed (SC…) the actor's host trusts (looked for a lattice of one's seed in %s: no such file)",
			config.EnvClusterSeed, p)
	case err != nil:
		return nil, usageErrorf("cluster seed: %v", err)
	}
	kp, err := trust.ParseSeedOfKind(strings.TrimSpace(string(b)), lattice.KindCluster)
	if err != nil {
		return nil, usageErrorf("cluster seed file %s: %v", p, err)
	}
	return kp, nil
}
