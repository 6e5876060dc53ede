// Package ctlclient is a Go client for a lattice's control interface
// (docs/protocol.md §6: JSON request/reply on wasmbus.ctl.{prefix}.…) and for
// signed calls to actors. `latticed ctl` is a thin command line around it.
//
// A Client never owns its NATS connection. Single-reply requests are bounded
// by Client.Timeout (and the context); queries every host answers (ping,
// auctions) collect replies for an explicit window.
package ctlclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/cacheread"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// DefaultTimeout bounds a single request when Client.Timeout is not set.
const DefaultTimeout = 5 * time.Second

// DefaultQuiet is the Quiet that `latticed ctl` sets: on a loopback or LAN
// lattice every host answers a ping within a few milliseconds of the others.
const DefaultQuiet = 250 * time.Millisecond

// WriteWait is the least a link put or delete waits for its reply, whatever
// Client.Timeout says: the host's lattice cache write waits out a JetStream
// leader election for up to jswrite.WriteTimeout and then answers, so the
// answer (success or the write's error) comes before the client gives up.
const WriteWait = jswrite.WriteTimeout + 5*time.Second

// LaunchWait is the least a provider launch waits for its reply, whatever
// Client.Timeout says: the host answers once the provider's process runs,
// and its start first reads the provider's link definitions from the lattice
// cache, retrying a slow or electing JetStream for up to
// cacheread.ProviderLinksWait; the answer (success or that read's error)
// comes before the client gives up.
const LaunchWait = cacheread.ProviderLinksWait + 5*time.Second

// DefaultStartWait bounds StartActor when its context has no deadline: the
// host fetches, verifies and compiles the module before it answers.
const DefaultStartWait = 60 * time.Second

var (
	// ErrNoHost means no host answered a ping or an auction.
	ErrNoHost = errors.New("no host")
	// ErrNoResponders means nothing serves the subject a request went to.
	ErrNoResponders = errors.New("no responders")
)

// RejectedError is a host's `{"accepted": false, "error": …}` answer.
type RejectedError struct {
	Reason string
}

func (e *RejectedError) Error() string {
	if e.Reason == "" {
		return "refused without a reason"
	}
	return e.Reason
}

// Client talks to one lattice's control interface over a NATS connection.
type Client struct {
	nc     *nats.Conn
	ctl    lattice.Ctl
	prefix string
	// Timeout bounds each single-reply request (DefaultTimeout when zero),
	// and the wait for each next entry when Links and Claims read the
	// lattice cache.
	Timeout time.Duration
	// JSDomain is the JetStream domain of the lattice cache
	// (WASMCLOUD_JS_DOMAIN; "" for none).
	JSDomain string
	// OnSkipped, when set, hears about lattice cache entries that Links or
	// Claims skipped because they do not decode.
	OnSkipped func(cacheread.Skipped)
	// Quiet, when positive, lets Hosts and SoleHost return before their
	// window is over: once the first host has answered, they stop when no
	// new answer has arrived for Quiet, or for four times the first answer's
	// round trip when that is longer (a loaded lattice answers slowly and
	// its answers spread). Zero waits out the window, the only way to be
	// sure that a host which answers late is counted. The lookups that
	// decide what to start (ActorHosts, ProviderHosts) always wait it out.
	Quiet time.Duration
}

// New returns a client for the lattice prefix; topicPrefix is the control
// subject prefix ("" = wasmbus.ctl).
//
// Replies arrive on nc's inbox prefix. Connect nc with
// nats.CustomInboxPrefix(lattice.OperatorInbox(latticePrefix)), as
// `latticed ctl` does: the replies carry link values and claims, and
// providers of other wasmCloud SDKs may subscribe to nats' default _INBOX.>
// (docs/security.md, "Roles").
func New(nc *nats.Conn, topicPrefix, latticePrefix string) *Client {
	if latticePrefix == "" {
		latticePrefix = lattice.DefaultLatticePrefix
	}
	return &Client{nc: nc, ctl: lattice.NewCtl(topicPrefix, latticePrefix), prefix: latticePrefix, Timeout: DefaultTimeout}
}

// Prefix is the lattice prefix the client talks to.
func (c *Client) Prefix() string { return c.prefix }

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func marshalBody(body any) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	return json.Marshal(body)
}

// request sends body as JSON to subject and decodes the one reply into out,
// waiting at most timeout.
func (c *Client) request(ctx context.Context, timeout time.Duration, subject string, body, out any) error {
	data, err := marshalBody(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w on %s", ErrNoResponders, subject)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("no reply on %s within %s", subject, timeout)
	case err != nil:
		return fmt.Errorf("request on %s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("reply on %s is not the expected JSON: %v", subject, err)
	}
	return nil
}

// command sends a control command and turns a refusal into a *RejectedError.
func (c *Client) command(ctx context.Context, timeout time.Duration, subject string, body any) error {
	var ack lattice.Ack
	if err := c.request(ctx, timeout, subject, body, &ack); err != nil {
		return err
	}
	if !ack.Accepted {
		return &RejectedError{Reason: ack.Error}
	}
	return nil
}

// hostCommand is command for a per-host subject, with errors naming the host.
func (c *Client) hostCommand(ctx context.Context, timeout time.Duration, hostID, cmd string, body any) error {
	err := c.command(ctx, timeout, c.ctl.Cmd(hostID, cmd), body)
	if errors.Is(err, ErrNoResponders) {
		return c.unknownHost(hostID)
	}
	return err
}

// gather publishes body to subject with a private reply inbox and passes
// every reply arriving within window to each, until each returns false.
// Many hosts answer these subjects, so a plain request would see only one.
func (c *Client) gather(ctx context.Context, subject string, body any, window time.Duration, each func(data []byte) (more bool)) error {
	return c.gatherQuiet(ctx, subject, body, window, 0, each)
}

// gatherQuiet is gather that, when quiet is positive, also ends once no
// reply has arrived for max(quiet, 4 × the first reply's round trip) after
// the first one.
func (c *Client) gatherQuiet(ctx context.Context, subject string, body any, window, quiet time.Duration, each func(data []byte) (more bool)) error {
	data, err := marshalBody(body)
	if err != nil {
		return err
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.PublishRequest(subject, inbox, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	sent := time.Now()
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	rctx, quietOver := context.WithCancel(wctx)
	defer quietOver()
	var quietTimer *time.Timer
	for {
		msg, err := sub.NextMsgWithContext(rctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case rctx.Err() != nil:
			return nil // the window, or the quiet period, is over
		case errors.Is(err, nats.ErrNoResponders):
			return nil // the server says nobody listens: no need to wait
		case err != nil:
			return fmt.Errorf("replies on %s: %w", subject, err)
		}
		if !each(msg.Data) {
			return nil
		}
		switch {
		case quiet <= 0:
		case quietTimer == nil: // the first reply sets the quiet period
			quiet = max(quiet, 4*time.Since(sent))
			quietTimer = time.AfterFunc(quiet, quietOver)
			defer quietTimer.Stop()
		default:
			quietTimer.Reset(quiet)
		}
	}
}

// Hosts pings every host of the lattice and returns those that answer
// within window (or before the Quiet period ends), sorted by ID.
func (c *Client) Hosts(ctx context.Context, window time.Duration) ([]lattice.HostInfo, error) {
	return c.hosts(ctx, window, c.Quiet)
}

func (c *Client) hosts(ctx context.Context, window, quiet time.Duration) ([]lattice.HostInfo, error) {
	hosts := []lattice.HostInfo{}
	err := c.gatherQuiet(ctx, c.ctl.PingHosts(), nil, window, quiet, func(data []byte) bool {
		var h lattice.HostInfo
		if json.Unmarshal(data, &h) == nil && h.ID != "" && !slices.ContainsFunc(hosts, func(o lattice.HostInfo) bool { return o.ID == h.ID }) {
			hosts = append(hosts, h)
		}
		return true
	})
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	return hosts, err
}

// SoleHost returns the ID of the only host in the lattice; it fails when
// none or several answer a ping within window.
func (c *Client) SoleHost(ctx context.Context, window time.Duration) (string, error) {
	hosts, err := c.Hosts(ctx, window)
	if err != nil {
		return "", err
	}
	switch len(hosts) {
	case 0:
		return "", fmt.Errorf("%w answered a ping in lattice %s within %s", ErrNoHost, c.prefix, window)
	case 1:
		return hosts[0].ID, nil
	}
	ids := make([]string, len(hosts))
	for i, h := range hosts {
		ids[i] = h.ID
	}
	return "", fmt.Errorf("%d hosts answered in lattice %s (%s): name one", len(hosts), c.prefix, strings.Join(ids, ", "))
}

// Inventory asks one host for its actors and providers.
func (c *Client) Inventory(ctx context.Context, hostID string) (*lattice.HostInventory, error) {
	var inv lattice.HostInventory
	if err := c.request(ctx, c.timeout(), c.ctl.GetInventory(hostID), nil, &inv); err != nil {
		if errors.Is(err, ErrNoResponders) {
			return nil, c.unknownHost(hostID)
		}
		return nil, err
	}
	return &inv, nil
}

// Claims returns the claims of every actor and provider the lattice knows,
// read from the lattice cache (any number of them); only when the cache
// cannot be read at all does it ask a host, whose reply must fit one NATS
// message.
func (c *Client) Claims(ctx context.Context) ([]lattice.CachedClaims, error) {
	r, err := c.cacheReader()
	if err == nil {
		var claims []lattice.CachedClaims
		if claims, err = r.Claims(ctx); err == nil {
			return claims, nil
		}
	}
	if !errors.Is(err, cacheread.ErrUnavailable) {
		return nil, err
	}
	cacheErr := err
	var l struct {
		lattice.ClaimsList
		lattice.Ack
	}
	if err := c.request(ctx, c.timeout(), c.ctl.GetClaims(), nil, &l); err != nil {
		return nil, fmt.Errorf("%w (and the lattice cache: %v)", c.latticeErr(err), cacheErr)
	}
	if l.Claims == nil && l.Error != "" {
		return nil, fmt.Errorf("the host could not list the claims: %s", l.Error)
	}
	if l.Claims == nil {
		l.Claims = []lattice.CachedClaims{}
	}
	return l.Claims, nil
}

// Links returns the lattice's link definitions, read from the lattice
// cache as wash reads wasmCloud's; only when the cache cannot be read at
// all does it ask a host, whose reply must fit one NATS message (a host
// that cannot fit it answers with an error, returned here).
func (c *Client) Links(ctx context.Context) ([]lattice.LinkDefinition, error) {
	r, err := c.cacheReader()
	if err == nil {
		var links []lattice.LinkDefinition
		if links, err = r.Links(ctx); err == nil {
			return links, nil
		}
	}
	if !errors.Is(err, cacheread.ErrUnavailable) {
		return nil, err
	}
	cacheErr := err
	var l struct {
		lattice.LinksList
		lattice.Ack
	}
	if err := c.request(ctx, c.timeout(), c.ctl.GetLinks(), nil, &l); err != nil {
		return nil, fmt.Errorf("%w (and the lattice cache: %v)", c.latticeErr(err), cacheErr)
	}
	if l.Links == nil && l.Error != "" {
		return nil, fmt.Errorf("the host could not list the links: %s", l.Error)
	}
	if l.Links == nil {
		l.Links = []lattice.LinkDefinition{}
	}
	return l.Links, nil
}

func (c *Client) cacheReader() (*cacheread.Reader, error) {
	r, err := cacheread.New(c.nc, c.JSDomain, c.prefix)
	if err != nil {
		return nil, err
	}
	r.Idle, r.OnSkipped = c.timeout(), c.OnSkipped
	return r, nil
}

// unknownHost is the error for a host-specific subject nobody serves.
func (c *Client) unknownHost(hostID string) error {
	return fmt.Errorf("%w %s answers in lattice %s (see `latticed ctl get hosts`)", ErrNoHost, hostID, c.prefix)
}

// latticeErr explains a lattice-wide query nobody answered.
func (c *Client) latticeErr(err error) error {
	if errors.Is(err, ErrNoResponders) {
		return fmt.Errorf("%w in lattice %s answers the control interface (%v)", ErrNoHost, c.prefix, err)
	}
	return err
}

// AuctionActor asks hosts whose labels match constraints to offer to run
// ref and returns the first host that answers within window.
func (c *Client) AuctionActor(ctx context.Context, ref string, constraints map[string]string, window time.Duration) (string, error) {
	req := lattice.ActorAuctionRequest{ActorRef: ref, Constraints: lattice.NonNil(constraints)}
	host := ""
	err := c.gather(ctx, c.ctl.AuctionActor(), req, window, func(data []byte) bool {
		var a lattice.ActorAuctionAck
		if json.Unmarshal(data, &a) == nil && a.HostID != "" {
			host = a.HostID
			return false
		}
		return true
	})
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", fmt.Errorf("%w matches constraints %s for actor %s in lattice %s (no auction offer within %s)", ErrNoHost, FormatLabels(constraints), ref, c.prefix, window)
	}
	return host, nil
}

// AuctionProvider asks hosts that match constraints and do not run ref on
// linkName yet to offer to run it; it returns the first offer within window.
func (c *Client) AuctionProvider(ctx context.Context, ref, linkName string, constraints map[string]string, window time.Duration) (string, error) {
	req := lattice.ProviderAuctionRequest{ProviderRef: ref, LinkName: linkName, Constraints: lattice.NonNil(constraints)}
	host := ""
	err := c.gather(ctx, c.ctl.AuctionProvider(), req, window, func(data []byte) bool {
		var a lattice.ProviderAuctionAck
		if json.Unmarshal(data, &a) == nil && a.HostID != "" {
			host = a.HostID
			return false
		}
		return true
	})
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", fmt.Errorf("%w matches constraints %s for provider %s (link name %s) in lattice %s: no auction offer within %s (hosts that already run it, or run without a supervisor, do not offer)",
			ErrNoHost, FormatLabels(constraints), ref, linkName, c.prefix, window)
	}
	return host, nil
}

// StartedActor reports a successful StartActor.
type StartedActor struct {
	ActorID  string `json:"actor_id"`
	HostID   string `json:"host_id"`
	ImageRef string `json:"image_ref"`
	Count    int    `json:"count"`
}

// actorEvent is the data of actors_started / actor_started / actors_start_failed.
type actorEvent struct {
	PublicKey string `json:"public_key"`
	ImageRef  string `json:"image_ref"`
	HostID    string `json:"host_id"`
	Error     string `json:"error"`
}

// StartActor asks hostID to launch req.Count instances of req.ActorRef and
// waits for the host's actors_started or actors_start_failed event for that
// reference. ctx bounds the whole operation (DefaultStartWait without a
// deadline): the launch acknowledgement itself may take long, since a host
// fetches, verifies and compiles the module first. A refusal in the ack is a
// *RejectedError.
func (c *Client) StartActor(ctx context.Context, hostID string, req lattice.StartActorCommand) (*StartedActor, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartWait)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	if err := lattice.ValidateCount(req.Count); err != nil {
		return nil, err
	}
	if req.Count == 0 {
		req.Count = 1
	}
	req.HostID = hostID

	// Subscribe before sending: the event may be published before the ack.
	sub, err := c.nc.SubscribeSync(lattice.Events(c.prefix))
	if err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	if err := c.hostCommand(ctx, time.Until(deadline), hostID, lattice.CmdLaunchActor, req); err != nil {
		return nil, err
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("host %s accepted actor %s but sent neither actors_started nor actors_start_failed before the wait ran out", hostID, req.ActorRef)
			}
			return nil, fmt.Errorf("events: %w", err)
		}
		var ev lattice.CloudEvent
		var d actorEvent
		if json.Unmarshal(msg.Data, &ev) != nil || json.Unmarshal(ev.Data, &d) != nil || d.ImageRef != req.ActorRef {
			continue
		}
		if from := d.HostID; from != hostID && (from != "" || ev.Source != hostID) {
			continue
		}
		switch strings.TrimPrefix(ev.Type, lattice.EventTypePrefix) {
		case lattice.EventActorsStartFailed:
			return nil, &RejectedError{Reason: d.Error}
		case lattice.EventActorsStarted, lattice.EventActorStarted:
			return &StartedActor{ActorID: d.PublicKey, HostID: hostID, ImageRef: req.ActorRef, Count: req.Count}, nil
		}
	}
}

// StopActor stops count instances (0 = all) of an actor on a host.
func (c *Client) StopActor(ctx context.Context, hostID, actorKey string, count int) error {
	return c.StopActorWith(ctx, hostID, lattice.StopActorCommand{ActorRef: actorKey, Count: count})
}

// StopActorWith sends a stop as req says: with req.Annotations, a latticed
// host stops only instances started with every one of those pairs.
func (c *Client) StopActorWith(ctx context.Context, hostID string, req lattice.StopActorCommand) error {
	if err := lattice.ValidateCount(req.Count); err != nil {
		return err
	}
	return c.hostCommand(ctx, c.timeout(), hostID, lattice.CmdStopActor, req)
}

// ScaleActor sets an actor's instance count on a host; with req.ActorRef the
// host starts the actor when it does not run it yet.
func (c *Client) ScaleActor(ctx context.Context, hostID string, req lattice.ScaleActorCommand) error {
	if err := lattice.ValidateCount(req.Count); err != nil {
		return err
	}
	return c.hostCommand(ctx, c.timeout(), hostID, lattice.CmdScaleActor, req)
}

// UpdateActor asks a host to live-update the actor actorKey to the module at
// newRef, a higher revision of it (a module that claims another key is
// refused; an empty actorKey takes the key the module claims). The host compiles
// the module before it answers, so the wait is a start's (DefaultStartWait
// when ctx has no deadline). A refusal (not a higher revision, the actor not
// running there) is a *RejectedError.
func (c *Client) UpdateActor(ctx context.Context, hostID, actorKey, newRef string) error {
	if newRef == "" {
		return errors.New("a live update needs the new module's reference")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartWait)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	return c.hostCommand(ctx, time.Until(deadline), hostID, lattice.CmdUpdateActor,
		lattice.UpdateActorCommand{ActorID: actorKey, HostID: hostID, NewActorRef: newRef})
}

// StartProvider asks a host to launch a provider, waiting for its answer
// for the longer of Client.Timeout and LaunchWait.
func (c *Client) StartProvider(ctx context.Context, hostID string, req lattice.LaunchProviderCommand) error {
	if err := validLinkName(req.LinkName); err != nil {
		return err
	}
	return c.hostCommand(ctx, max(c.timeout(), LaunchWait), hostID, lattice.CmdLaunchProvider, req)
}

// StopProvider asks a host to stop a provider instance.
func (c *Client) StopProvider(ctx context.Context, hostID string, req lattice.StopProviderCommand) error {
	if err := validLinkName(req.LinkName); err != nil {
		return err
	}
	return c.hostCommand(ctx, c.timeout(), hostID, lattice.CmdStopProvider, req)
}

// RevokeProvider asks a host to revoke a provider instance's NATS user (a
// latticed extension).
func (c *Client) RevokeProvider(ctx context.Context, hostID string, req lattice.StopProviderCommand) error {
	if err := validLinkName(req.LinkName); err != nil {
		return err
	}
	return c.hostCommand(ctx, c.timeout(), hostID, lattice.CmdRevoke, req)
}

// StopHost asks a host to shut down; timeout is passed on as the host's grace period (0 = its default).
func (c *Client) StopHost(ctx context.Context, hostID string, timeout time.Duration) error {
	return c.hostCommand(ctx, c.timeout(), hostID, lattice.CmdStopHost, lattice.StopHostCommand{Timeout: timeout.Milliseconds()})
}

// PutLink adds or replaces a link definition lattice-wide. It waits for the
// host's answer for the longer of Client.Timeout and WriteWait.
func (c *Client) PutLink(ctx context.Context, ld lattice.LinkDefinition) error {
	if err := validLinkName(ld.LinkName); err != nil {
		return err
	}
	if err := lattice.ValidateValues(ld.Values); err != nil {
		return err
	}
	return c.latticeErr(c.command(ctx, max(c.timeout(), WriteWait), c.ctl.LinkdefsPut(), ld))
}

// DelLink removes the link definition of (actor, contract, link name),
// waiting as long as PutLink.
func (c *Client) DelLink(ctx context.Context, actorID, contractID, linkName string) error {
	if err := validLinkName(linkName); err != nil {
		return err
	}
	return c.latticeErr(c.command(ctx, max(c.timeout(), WriteWait), c.ctl.LinkdefsDel(), lattice.LinkDefinition{ActorID: actorID, ContractID: contractID, LinkName: linkName}))
}

// PutLabel sets a label on a host.
func (c *Client) PutLabel(ctx context.Context, hostID, key, value string) error {
	if err := lattice.ValidateLabelKey(key); err != nil {
		return err
	}
	return c.labelCommand(ctx, c.ctl.LabelPut(hostID), hostID, lattice.LabelCommand{Key: key, Value: value})
}

// DelLabel removes a label from a host.
func (c *Client) DelLabel(ctx context.Context, hostID, key string) error {
	return c.labelCommand(ctx, c.ctl.LabelDel(hostID), hostID, lattice.LabelCommand{Key: key})
}

// validLinkName checks a link name early, as the host will; empty means the
// host's default.
func validLinkName(name string) error {
	if name == "" {
		return nil
	}
	return lattice.ValidateLinkName(name)
}

func (c *Client) labelCommand(ctx context.Context, subject, hostID string, body lattice.LabelCommand) error {
	err := c.command(ctx, c.timeout(), subject, body)
	if errors.Is(err, ErrNoResponders) {
		return c.unknownHost(hostID)
	}
	return err
}

// ActorHosts returns the hosts (answering a ping within window) whose
// inventory lists the actor, by public key or image reference.
func (c *Client) ActorHosts(ctx context.Context, actor string, window time.Duration) ([]string, error) {
	return c.hostsWhere(ctx, window, func(inv *lattice.HostInventory) bool {
		return slices.ContainsFunc(inv.Actors, func(a lattice.ActorDescription) bool { return a.ID == actor || a.ImageRef == actor })
	})
}

// ProviderHosts returns the hosts whose inventory lists the provider (by
// public key or image reference) on linkName.
func (c *Client) ProviderHosts(ctx context.Context, provider, linkName string, window time.Duration) ([]string, error) {
	return c.hostsWhere(ctx, window, func(inv *lattice.HostInventory) bool {
		return slices.ContainsFunc(inv.Providers, func(p lattice.ProviderDescription) bool {
			return (p.ID == provider || p.ImageRef == provider) && p.LinkName == linkName
		})
	})
}

// FindActorHost returns the first host (answering a ping within window)
// whose inventory lists the actor, by public key or image reference. The
// first match ends the wait; "" means none was found within window.
func (c *Client) FindActorHost(ctx context.Context, actor string, window time.Duration) (string, error) {
	return c.firstHostWhere(ctx, window, func(inv *lattice.HostInventory) bool {
		return slices.ContainsFunc(inv.Actors, func(a lattice.ActorDescription) bool { return a.ID == actor || a.ImageRef == actor })
	})
}

// FindProviderHost returns the first host (answering a ping within window)
// whose inventory lists the provider, by public key or image reference, on
// linkName. The first match ends the wait, so finding a provider takes one
// ping and one inventory round trip, not the whole window; "" means none
// was found within window.
func (c *Client) FindProviderHost(ctx context.Context, provider, linkName string, window time.Duration) (string, error) {
	return c.firstHostWhere(ctx, window, func(inv *lattice.HostInventory) bool {
		return slices.ContainsFunc(inv.Providers, func(p lattice.ProviderDescription) bool {
			return (p.ID == provider || p.ImageRef == provider) && p.LinkName == linkName
		})
	})
}

// firstHostWhere pings the hosts and asks each that answers for its
// inventory as soon as it answers; the first inventory that matches ends
// the wait. It returns "" when no host matched within window. Every
// inventory request it starts has ended when it returns.
func (c *Client) firstHostWhere(ctx context.Context, window time.Duration, match func(*lattice.HostInventory) bool) (string, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan string, 1)
	var asked sync.WaitGroup
	seen := map[string]bool{}
	err := c.gather(wctx, c.ctl.PingHosts(), nil, window, func(data []byte) bool {
		var h lattice.HostInfo
		if json.Unmarshal(data, &h) != nil || h.ID == "" || seen[h.ID] {
			return true
		}
		seen[h.ID] = true
		asked.Add(1)
		go func() {
			defer asked.Done()
			inv, err := c.Inventory(wctx, h.ID)
			if err != nil || !match(inv) {
				return // a host gone since its ping answer, or not this one
			}
			select {
			case found <- h.ID:
				cancel() // ends the gather: one match is enough
			default:
			}
		}()
		return true
	})
	// Inventories asked for before the window closed still count; after a
	// match (or the caller's cancellation) they end at once.
	asked.Wait()
	select {
	case id := <-found:
		return id, nil // the gather's error, if any, is the match's cancellation
	default:
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "", err
}

func (c *Client) hostsWhere(ctx context.Context, window time.Duration, match func(*lattice.HostInventory) bool) ([]string, error) {
	invs, err := c.Inventories(ctx, window)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, inv := range invs {
		if match(inv) {
			out = append(out, inv.HostID)
		}
	}
	return out, nil
}

// Inventories returns the inventory of every host that answered a ping
// within window, in host ID order. It waits the whole window, with no quiet
// period: a caller deciding whether something already runs somewhere would
// start a second copy on a host it missed. A host gone between its ping
// answer and its inventory request is left out.
func (c *Client) Inventories(ctx context.Context, window time.Duration) ([]*lattice.HostInventory, error) {
	hosts, err := c.hosts(ctx, window, 0)
	if err != nil {
		return nil, err
	}
	out := make([]*lattice.HostInventory, 0, len(hosts))
	for _, h := range hosts {
		inv, err := c.Inventory(ctx, h.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // the host went away since it answered the ping
		}
		inv.HostID = h.ID // the host asked, whatever its answer names
		out = append(out, inv)
	}
	return out, nil
}

// ResolveActor returns keyOrAlias when it is an actor key (M…), else the
// key of the actor whose claims carry that call alias.
func (c *Client) ResolveActor(ctx context.Context, keyOrAlias string) (string, error) {
	keyErr := lattice.CheckPublicKey(keyOrAlias, lattice.KindModule)
	if keyErr == nil {
		return keyOrAlias, nil
	}
	if len(keyOrAlias) == 56 && keyOrAlias[0] == lattice.KindModule.Letter() {
		// No alias looks like this: it is a mistyped key, and saying so
		// beats "no such alias".
		return "", fmt.Errorf("actor key %q: %w", lattice.Abbreviate(keyOrAlias), keyErr)
	}
	claims, err := c.Claims(ctx)
	if err != nil {
		return "", fmt.Errorf("resolve call alias %q: %w", keyOrAlias, err)
	}
	aliases := map[string]string{} // alias → actor key
	for _, want := range []string{keyOrAlias, trust.NormalizeCallAlias(keyOrAlias)} {
		for _, cl := range claims {
			if cl.CallAlias != "" && lattice.IsPublicKey(cl.Subject, lattice.KindModule) {
				if cl.CallAlias == want {
					return cl.Subject, nil
				}
				aliases[cl.CallAlias] = cl.Subject
			}
		}
	}
	return "", fmt.Errorf("%q is neither an actor key (56 characters starting with M) nor the call alias of a running actor in lattice %s (%s)",
		keyOrAlias, c.prefix, c.runningAliases(ctx, aliases))
}

// runningAliases lists, for an error message, the aliases of actors some
// host runs now: the lattice cache keeps the claims of every actor that
// ever ran, and an alias nobody serves would only mislead.
func (c *Client) runningAliases(ctx context.Context, aliases map[string]string) string {
	running := map[string]bool{}
	hosts, err := c.Hosts(ctx, c.timeout())
	if err != nil {
		return "running actors unknown: " + err.Error()
	}
	for _, h := range hosts {
		if inv, err := c.Inventory(ctx, h.ID); err == nil {
			for _, a := range inv.Actors {
				running[a.ID] = true
			}
		}
	}
	var names []string
	for alias, key := range aliases {
		if running[key] {
			names = append(names, alias)
		}
	}
	if len(names) == 0 {
		return "no running actor has a call alias"
	}
	slices.Sort(names)
	return "known aliases: " + strings.Join(names, ", ")
}

// Call sends a signed invocation of operation with payload to the actor and
// returns the reply body; an error the actor (or its host) returns is the
// error. signer is a cluster key the actor's host trusts.
//
// The origin is an actor entity with a freshly generated module key: an
// invocation must name an origin, and a client is neither an actor nor a
// provider instance. An actor origin carries no contract id, so the host's
// "origin capability must be claimed" check for provider origins does not
// apply and any operation of the actor can be called; a fresh key
// impersonates no real actor. The invocation's host_id is likewise a fresh
// server key. This is what wasmCloud's `wash call` does.
func (c *Client) Call(ctx context.Context, signer *trust.KeyPair, actorKey, operation string, payload []byte) ([]byte, error) {
	origin, err := trust.CreateKeyPair(lattice.KindModule)
	if err != nil {
		return nil, err
	}
	node, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	return rpc.Invoke(ctx, c.nc, signer, node.PublicKey(), lattice.ActorEntity(origin.PublicKey()), lattice.ActorEntity(actorKey),
		lattice.RPCActor(c.prefix, actorKey), operation, payload)
}

// FormatLabels renders labels as k=v,k2=v2 sorted by key, "(none)" when empty.
func FormatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "(none)"
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// ErrHostsRunning means hosts of the lattice answered, so purging its cache
// now would leave them with state the stream no longer has.
var ErrHostsRunning = errors.New("hosts of this lattice are running")

// PurgeCache empties LATTICECACHE_{prefix}, refusing while any host of the
// lattice answers a ping within window unless force is set. It returns how
// many entries were removed.
func (c *Client) PurgeCache(ctx context.Context, window time.Duration, force bool) (uint64, error) {
	if !force {
		hosts, err := c.Hosts(ctx, window)
		if err != nil {
			return 0, err
		}
		if len(hosts) > 0 {
			ids := make([]string, len(hosts))
			for i, h := range hosts {
				ids[i] = h.ID
			}
			return 0, fmt.Errorf("%w (%s): stop them first, or pass --force", ErrHostsRunning, strings.Join(ids, ", "))
		}
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, lattice.CacheStream(c.prefix))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lattice cache %s: %w", lattice.CacheStream(c.prefix), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.Purge(ctx); err != nil {
		return 0, fmt.Errorf("purge %s: %w", lattice.CacheStream(c.prefix), err)
	}
	return info.State.Msgs, nil
}
