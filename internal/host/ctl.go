package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/buildinfo"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ctlHandler answers one control request; the returned value is sent as JSON.
// A nil value sends nothing (auctions the host declines).
type ctlHandler func(ctx context.Context, m *nats.Msg) any

// subscribeCtl subscribes the control interface (docs/protocol.md §6).
func (h *Host) subscribeCtl() ([]*nats.Subscription, error) {
	c := h.ctl
	type route struct {
		subject, queue string
		handle         ctlHandler
	}
	routes := []route{
		{c.PingHosts(), "", h.ctlPing},
		{c.AuctionActor(), "", h.ctlAuctionActor},
		{c.AuctionProvider(), "", h.ctlAuctionProvider},
		{c.RegistriesPut(), "", h.ctlRegistriesPut},
		{c.GetClaims(), c.Base(), func(context.Context, *nats.Msg) any { return lattice.ClaimsList{Claims: h.state.allClaims()} }},
		{c.GetLinks(), c.Base(), func(context.Context, *nats.Msg) any { return lattice.LinksList{Links: h.state.allLinks()} }},
		{c.LinkdefsPut(), c.Base(), h.ctlLinkPut},
		{c.LinkdefsDel(), c.Base(), h.ctlLinkDel},
		{c.GetInventory(h.id), "", func(context.Context, *nats.Msg) any { return h.Inventory() }},
		{c.CmdWildcard(h.id), "", h.ctlCommand},
		{c.LabelPut(h.id), "", h.ctlLabelPut},
		{c.LabelDel(h.id), "", h.ctlLabelDel},
	}
	var subs []*nats.Subscription
	for _, r := range routes {
		r := r
		cb := func(m *nats.Msg) {
			if !h.ctlGate.enter() {
				return // stopping: another host, or the caller's timeout, answers
			}
			go func() {
				defer h.ctlGate.leave()
				h.answerCtl(m, r.handle)
			}()
		}
		var s *nats.Subscription
		var err error
		if r.queue != "" {
			s, err = h.opts.Ctl.QueueSubscribe(r.subject, r.queue, cb)
		} else {
			s, err = h.opts.Ctl.Subscribe(r.subject, cb)
		}
		if err != nil {
			return subs, fmt.Errorf("subscribe %s: %w", r.subject, err)
		}
		subs = append(subs, s)
	}
	return subs, nil
}

// ctlTimeout bounds the work one control request may do (actor compile included).
const ctlTimeout = 2 * time.Minute

func (h *Host) answerCtl(m *nats.Msg, handle ctlHandler) {
	ctx, cancel := context.WithTimeout(h.life, ctlTimeout)
	defer cancel()
	out := handle(ctx, m)
	if out == nil || m.Reply == "" {
		return
	}
	body := mustJSON(out)
	if limit := h.opts.Ctl.MaxPayload(); limit > 0 && int64(len(body)) > limit {
		// The reply cannot travel as one message; say so rather than let
		// the caller time out in silence (docs/protocol.md §6).
		h.log.Warn("control reply too large for one NATS message; answering with an error", "subject", m.Subject, "bytes", len(body), "max_payload", limit)
		body = mustJSON(tooLarge(m.Subject, len(body), limit, h.opts.LatticePrefix))
	}
	if err := m.Respond(body); err != nil {
		h.log.Warn("control reply failed", "subject", m.Subject, "err", err)
	}
}

// tooLarge is the error reply for a control reply of size bytes that does
// not fit the server's max payload.
func tooLarge(subject string, size int, limit int64, prefix string) lattice.Ack {
	return lattice.Ack{Error: fmt.Sprintf("the reply to %s is %d bytes, more than the NATS max payload of %d bytes: "+
		"read the lattice cache stream %s instead (latticed ctl get links and get claims do)", subject, size, limit, lattice.CacheStream(prefix))}
}

func ack(err error) lattice.Ack {
	if err != nil {
		return lattice.Ack{Accepted: false, Error: err.Error()}
	}
	return lattice.Ack{Accepted: true}
}

// decodeCtl parses a JSON control body with a clear error.
func decodeCtl(m *nats.Msg, v any) error {
	if len(m.Data) == 0 {
		return errors.New("empty request body: expected a JSON object")
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("invalid request body: %w", err)
	}
	return nil
}

// HostInfo describes this host as ping.hosts answers.
func (h *Host) HostInfo() lattice.HostInfo {
	secs, human := h.uptime()
	var js *string
	if h.opts.JSDomain != "" {
		js = &h.opts.JSDomain
	}
	return lattice.HostInfo{
		ID: h.id, Issuer: h.opts.ClusterKey.PublicKey(), Labels: h.labelsCopy(),
		FriendlyName: h.opts.FriendlyName, UptimeSeconds: secs, UptimeHuman: human, Version: buildinfo.Version,
		ClusterIssuers: strings.Join(h.opts.Issuers, ","), JSDomain: js,
		CtlHost: bareHost(h.opts.CtlHost), RPCHost: bareHost(h.opts.RPCHost), ProvRPCHost: bareHost(h.opts.ProvRPCHost),
		LatticePrefix: h.opts.LatticePrefix,
	}
}

// bareHost is the host part of a NATS address as wasmCloud reports it in
// ping replies (ctl_host, rpc_host, prov_rpc_host: the configured host, no
// scheme, no port): "nats://10.0.0.5:4222" gives "10.0.0.5". Of a list of
// servers it takes the first.
func bareHost(addr string) string {
	addr, _, _ = strings.Cut(addr, ",")
	addr = strings.TrimSpace(addr)
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

func (h *Host) ctlPing(context.Context, *nats.Msg) any {
	defer h.heartbeat()
	return h.HostInfo()
}

// Inventory lists this host's actors and providers. It takes the actors
// lock only to list them, so no actor starting or stopping delays it.
func (h *Host) Inventory() lattice.HostInventory {
	inv := lattice.HostInventory{HostID: h.id, Issuer: h.opts.ClusterKey.PublicKey(), Labels: h.labelsCopy(),
		FriendlyName: h.opts.FriendlyName, Actors: []lattice.ActorDescription{}, Providers: []lattice.ProviderDescription{}}
	for _, a := range h.actorList() {
		from := a.from.Load() // one module's reference and revision, whatever an update does meanwhile
		d := lattice.ActorDescription{ID: a.key, ImageRef: from.ref, Name: actorName(from.claims), Instances: []lattice.ActorInstance{}}
		rev := trust.ActorRevision(from.claims)
		ids := a.pool.ids()
		sort.Strings(ids)
		a.mu.Lock()
		for _, id := range ids {
			d.Instances = append(d.Instances, lattice.ActorInstance{InstanceID: id, Annotations: lattice.NonNil(a.annotations[id]), Revision: rev})
		}
		a.mu.Unlock()
		inv.Actors = append(inv.Actors, d)
	}
	sort.Slice(inv.Actors, func(i, j int) bool { return inv.Actors[i].ID < inv.Actors[j].ID })
	if h.opts.Providers != nil {
		inv.Providers = append(inv.Providers, h.opts.Providers.Providers()...)
	}
	return inv
}

func (h *Host) ctlAuctionActor(_ context.Context, m *nats.Msg) any {
	var req lattice.ActorAuctionRequest
	if decodeCtl(m, &req) != nil || req.ActorRef == "" || !lattice.LabelsMatch(h.labelsCopy(), req.Constraints) {
		return nil
	}
	return lattice.ActorAuctionAck{ActorRef: req.ActorRef, Constraints: lattice.NonNil(req.Constraints), HostID: h.id}
}

func (h *Host) ctlAuctionProvider(_ context.Context, m *nats.Msg) any {
	var req lattice.ProviderAuctionRequest
	if h.opts.Providers == nil || decodeCtl(m, &req) != nil || req.ProviderRef == "" || !lattice.LabelsMatch(h.labelsCopy(), req.Constraints) {
		return nil
	}
	if req.LinkName == "" {
		req.LinkName = "default"
	}
	for _, p := range h.opts.Providers.Providers() {
		// A revoked instance runs no more and a launch replaces it, so it
		// does not stop this host from offering.
		if (p.ID == req.ProviderRef || p.ImageRef == req.ProviderRef) && p.LinkName == req.LinkName && p.State != lattice.ProviderStateRevoked {
			return nil
		}
	}
	return lattice.ProviderAuctionAck{ProviderRef: req.ProviderRef, LinkName: req.LinkName, Constraints: lattice.NonNil(req.Constraints), HostID: h.id}
}

func (h *Host) ctlLinkPut(ctx context.Context, m *nats.Msg) any {
	var ld lattice.LinkDefinition
	if err := decodeCtl(m, &ld); err != nil {
		return ack(err)
	}
	if err := ld.Normalize(); err != nil {
		return ack(err)
	}
	if err := validateCtl(&ld); err != nil {
		return ack(err)
	}
	return ack(h.PutLink(ctx, ld))
}

// PutLink records a link definition in the lattice cache, tells the provider
// and emits linkdef_set.
func (h *Host) PutLink(ctx context.Context, ld lattice.LinkDefinition) error {
	c := h.awaitCache(ctx)
	if c == nil {
		return errNoCache
	}
	if err := c.putLink(ctx, ld); err != nil {
		return err
	}
	h.state.putLink(ld)
	h.events.publish(lattice.EventLinkdefSet, ld)
	if b, err := lattice.Marshal(&ld); err == nil {
		_ = h.opts.RPC.Publish(lattice.RPCLinkdefPut(h.opts.LatticePrefix, ld.ProviderID, ld.LinkName), b)
	}
	return nil
}

func (h *Host) ctlLinkDel(ctx context.Context, m *nats.Msg) any {
	var req lattice.LinkDefinition
	if err := decodeCtl(m, &req); err != nil {
		return ack(err)
	}
	if req.LinkName == "" {
		req.LinkName = "default"
	}
	if req.ActorID == "" || req.ContractID == "" {
		return ack(errors.New("actor_id and contract_id are required"))
	}
	if err := validateCtl(&req); err != nil {
		return ack(err)
	}
	ld, ok := h.state.delLink(lattice.LinkID(req.ActorID, req.ContractID, req.LinkName))
	if !ok {
		return ack(fmt.Errorf("no link definition for actor %s, contract %s, link name %s", req.ActorID, req.ContractID, req.LinkName))
	}
	c := h.awaitCache(ctx)
	if c == nil {
		h.state.putLink(ld)
		return ack(errNoCache)
	}
	if err := c.deleteLink(ctx, ld); err != nil {
		h.state.putLink(ld)
		return ack(err)
	}
	h.events.publish(lattice.EventLinkdefDeleted, ld)
	if b, err := lattice.Marshal(&ld); err == nil {
		_ = h.opts.RPC.Publish(lattice.RPCLinkdefDel(h.opts.LatticePrefix, ld.ProviderID, ld.LinkName), b)
	}
	return ack(nil)
}

func (h *Host) ctlLabelPut(_ context.Context, m *nats.Msg) any {
	var req lattice.LabelCommand
	if err := decodeCtl(m, &req); err != nil {
		return ack(err)
	}
	h.labelsMu.Lock()
	if err := lattice.ValidateLabelPut(h.labels, req.Key); err != nil {
		h.labelsMu.Unlock()
		return ack(err)
	}
	h.labels[req.Key] = req.Value
	h.labelsMu.Unlock()
	h.events.publish(lattice.EventLabelsChanged, map[string]any{"host_id": h.id, "labels": h.labelsCopy()})
	return ack(nil)
}

func (h *Host) ctlLabelDel(_ context.Context, m *nats.Msg) any {
	var req lattice.LabelCommand
	if err := decodeCtl(m, &req); err != nil {
		return ack(err)
	}
	if lattice.IsCoreLabel(req.Key) {
		return ack(fmt.Errorf("label %q is a core label the host sets from its platform; it cannot be removed", req.Key))
	}
	h.labelsMu.Lock()
	_, ok := h.labels[req.Key]
	delete(h.labels, req.Key)
	h.labelsMu.Unlock()
	if !ok {
		return ack(fmt.Errorf("label %q is not set on this host", req.Key))
	}
	h.events.publish(lattice.EventLabelsChanged, map[string]any{"host_id": h.id, "labels": h.labelsCopy()})
	return ack(nil)
}

// ctlCommand handles wasmbus.ctl.{prefix}.cmd.{host}.{cmd}.
func (h *Host) ctlCommand(ctx context.Context, m *nats.Msg) any {
	cmd := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	switch cmd {
	case lattice.CmdLaunchActor:
		var req lattice.StartActorCommand
		if err := decodeCtl(m, &req); err != nil {
			return ack(err)
		}
		if err := validateCtl(&req); err != nil {
			return ack(err)
		}
		return ack(h.ctlStartActor(ctx, req))
	case lattice.CmdStopActor:
		var req lattice.StopActorCommand
		if err := decodeCtl(m, &req); err != nil {
			return ack(err)
		}
		if err := validateCtl(&req); err != nil {
			return ack(err)
		}
		err := h.StopActor(ctx, h.resolveRunning(req.ActorRef), req.Count, req.Annotations)
		return ack(err)
	case lattice.CmdScaleActor:
		var req lattice.ScaleActorCommand
		if err := decodeCtl(m, &req); err != nil {
			return ack(err)
		}
		return ack(h.ScaleActor(ctx, req))
	case lattice.CmdStopHost:
		h.stopOnce.Do(func() { close(h.stop) })
		return ack(nil)
	case lattice.CmdLaunchProvider, lattice.CmdStopProvider, lattice.CmdRevoke:
		return ack(h.ctlProvider(ctx, cmd, m))
	case lattice.CmdUpdateActor:
		var req lattice.UpdateActorCommand
		if err := decodeCtl(m, &req); err != nil {
			return ack(err)
		}
		if err := h.UpdateActor(ctx, req.ActorID, req.NewActorRef); err != nil {
			return ack(fmt.Errorf("Unable to perform live update: %w", err))
		}
		return ack(nil)
	}
	return ack(fmt.Errorf("unknown host command %q", cmd))
}

// ctlStartActor verifies the actor before acknowledging, so a bad module's
// error reaches the caller, and reports the result as actors_started or
// actors_start_failed too (as wasmCloud hosts do).
func (h *Host) ctlStartActor(ctx context.Context, req lattice.StartActorCommand) error {
	if req.ActorRef == "" {
		return errors.New("actor_ref is required")
	}
	count := req.Count
	if count <= 0 {
		count = 1
	}
	claims, err := h.StartActor(ctx, req.ActorRef, count, req.Annotations)
	if err != nil {
		key := "N/A"
		if claims != nil {
			key = claims.Subject
		}
		h.events.publish(lattice.EventActorsStartFailed, map[string]any{"public_key": key, "image_ref": req.ActorRef,
			"annotations": lattice.NonNil(req.Annotations), "host_id": h.id, "error": err.Error()})
		h.log.Warn("actor start failed", "ref", req.ActorRef, "err", err)
		return err
	}
	h.actorsStarted(claims, req.ActorRef, req.Annotations, count)
	return nil
}

// ScaleActor sets the number of instances of a running actor, or starts it
// from actor_ref when it is not running.
func (h *Host) ScaleActor(ctx context.Context, req lattice.ScaleActorCommand) error {
	key := h.resolveRunning(req.ActorID)
	if req.Count < 0 {
		return fmt.Errorf("count %d must not be negative", req.Count)
	}
	unlock, err := h.lifecycle.lock(ctx, key)
	if err != nil {
		return err
	}
	if a := h.actor(key); a != nil {
		defer unlock()
		live, _ := a.pool.stats()
		if req.Count == 0 {
			h.remove(ctx, a)
		} else if err := h.scale(ctx, a, req.Count, nil); err != nil {
			return err
		}
		switch {
		case req.Count < live:
			h.actorsStopped(a, live-req.Count, req.Count, nil)
		case req.Count > live:
			from := a.from.Load()
			h.actorsStarted(from.claims, from.ref, nil, req.Count-live)
		}
		return nil
	}
	unlock() // a start takes it again, once it knows the module's key
	if req.Count == 0 {
		return nil
	}
	if req.ActorRef == "" {
		return fmt.Errorf("actor %s is not running here and no actor_ref was given to start it", req.ActorID)
	}
	return h.ctlStartActor(ctx, lattice.StartActorCommand{ActorRef: req.ActorRef, Count: req.Count})
}

// resolveRunning maps an actor reference or key to the key of a running actor.
func (h *Host) resolveRunning(refOrKey string) string {
	h.actorsMu.Lock()
	defer h.actorsMu.Unlock()
	if _, ok := h.actors[refOrKey]; ok {
		return refOrKey
	}
	for k, a := range h.actors {
		if a.ref() == refOrKey {
			return k
		}
	}
	return refOrKey
}

// errNoCache refuses a link change that would reach no other host.
var errNoCache = errors.New("the lattice cache (JetStream stream LATTICECACHE_{prefix}) is not available on this host yet, so a link change would reach no other host; retry shortly, and check that the NATS server has JetStream enabled")

var errNoProviders = errors.New("this host cannot manage providers (it runs without a supervisor)")

func (h *Host) ctlProvider(ctx context.Context, cmd string, m *nats.Msg) error {
	if h.opts.Providers == nil {
		return errNoProviders
	}
	if cmd == lattice.CmdLaunchProvider {
		var req lattice.LaunchProviderCommand
		if err := decodeCtl(m, &req); err != nil {
			return err
		}
		if req.LinkName == "" {
			req.LinkName = "default"
		}
		if err := validateCtl(&req); err != nil {
			return err
		}
		return h.opts.Providers.LaunchProvider(ctx, req)
	}
	var req lattice.StopProviderCommand
	if err := decodeCtl(m, &req); err != nil {
		return err
	}
	if req.LinkName == "" {
		req.LinkName = "default"
	}
	if err := validateCtl(&req); err != nil {
		return err
	}
	if cmd == lattice.CmdRevoke {
		return h.opts.Providers.RevokeProvider(ctx, req)
	}
	return h.opts.Providers.StopProvider(ctx, req)
}
