// Package policy asks an external policy service whether an actor may start,
// a provider may start, or an invocation may pass (docs/protocol.md §14,
// wasmCloud-compatible), caching decisions and failing closed. Two processes
// ask it: the host about actors and invocations, the supervisor about
// provider starts.
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/natsalive"
)

// Policy service actions (docs/protocol.md §14).
const (
	ActionStartActor        = "start_actor"
	ActionStartProvider     = "start_provider"
	ActionPerformInvocation = "perform_invocation"
)

// Source is who asks, in a policy request.
type Source struct {
	PublicKey    string   `json:"publicKey"`
	ContractID   string   `json:"contractId"`
	LinkName     string   `json:"linkName"`
	Capabilities []string `json:"capabilities"`
	Issuer       string   `json:"issuer"`
	IssuedOn     *int64   `json:"issuedOn"`
	ExpiresAt    *int64   `json:"expiresAt"`
	Expired      bool     `json:"expired"`
}

// Target is what is asked for.
type Target struct {
	PublicKey  string `json:"publicKey"`
	Issuer     string `json:"issuer"`
	ContractID string `json:"contractId"`
	LinkName   string `json:"linkName"`
}

// Host describes the asking host. Build it with NewHost.
type Host struct {
	PublicKey      string            `json:"publicKey"`
	Issuer         string            `json:"issuer"`
	LatticeID      string            `json:"latticeId"`
	Labels         map[string]string `json:"labels"`
	ClusterIssuers []string          `json:"clusterIssuers"`
}

// NewHost describes host hostID, whose cluster key is issuer, in lattice
// latticeID, trusting clusterIssuers. labels are the host's labels as the
// host itself holds them now (its configured labels plus those set or
// removed through the control interface since it started), whichever
// process asks on its behalf, so that the service sees one host the same
// way in every request; the Host keeps the map, so pass a copy.
func NewHost(hostID, issuer, latticeID string, labels map[string]string, clusterIssuers []string) Host {
	if labels == nil {
		labels = map[string]string{}
	}
	return Host{PublicKey: hostID, Issuer: issuer, LatticeID: latticeID, Labels: labels, ClusterIssuers: clusterIssuers}
}

// Request is sent on WASMCLOUD_POLICY_TOPIC.
type Request struct {
	RequestID string `json:"requestId"`
	Source    Source `json:"source"`
	Target    Target `json:"target"`
	Action    string `json:"action"`
	Host      Host   `json:"host"`
}

// Decision is the service's answer, and the body of a change notice.
type Decision struct {
	RequestID string `json:"requestId"`
	Permitted bool   `json:"permitted"`
	Message   string `json:"message"`
}

// UnmarshalJSON also takes the snake_case request_id wasmCloud's change
// notices carry.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var raw struct {
		RequestID  string `json:"requestId"`
		RequestID2 string `json:"request_id"`
		Permitted  *bool  `json:"permitted"`
		Message    string `json:"message"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Permitted == nil {
		return errors.New("policy decision lacks \"permitted\"")
	}
	d.RequestID, d.Permitted, d.Message = raw.RequestID, *raw.Permitted, raw.Message
	if d.RequestID == "" {
		d.RequestID = raw.RequestID2
	}
	return nil
}

// ErrDenied marks a refusal by the policy service (or its absence,
// since the host fails closed).
var ErrDenied = errors.New("Policy evaluation rejected")

// Service asks the external policy service and caches its answers per
// (source, target, action). No reply, a timeout or an undecodable reply is a
// denial that is not cached: the next request asks again.
type Service struct {
	nc      *nats.Conn
	topic   string
	timeout time.Duration
	host    func() Host
	observe Observer // nil: decisions are not observed

	mu      sync.RWMutex
	cache   map[string]Decision // cache key -> decision
	byReqID map[string]string   // request id -> cache key, for change notices
}

// New asks on topic over nc, waiting at most timeout (default 1s) per request;
// host describes the asking host in each request.
func New(nc *nats.Conn, topic string, timeout time.Duration, host func() Host) *Service {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Service{nc: nc, topic: topic, timeout: timeout, host: host,
		cache: map[string]Decision{}, byReqID: map[string]string{}}
}

func policyKey(action string, s Source, t Target) string {
	return strings.Join([]string{action, s.PublicKey, s.ContractID, s.LinkName, t.PublicKey, t.ContractID, t.LinkName}, "\x00")
}

// Decide returns nil when permitted, else an error wrapping ErrDenied that
// says why; cached reports whether the answer came from the cache.
func (p *Service) Decide(ctx context.Context, action string, src Source, tgt Target) (cached bool, err error) {
	key := policyKey(action, src, tgt)
	p.mu.RLock()
	d, ok := p.cache[key]
	p.mu.RUnlock()
	if !ok {
		if d, err = p.ask(ctx, action, src, tgt); err != nil {
			p.record(action, ResultError, false)
			return false, fmt.Errorf("%w: %s denied because the policy service gave no decision: %v", ErrDenied, action, err)
		}
		p.mu.Lock()
		p.cache[key] = d
		p.byReqID[d.RequestID] = key
		p.mu.Unlock()
	}
	if !d.Permitted {
		msg := d.Message
		if msg == "" {
			msg = "no reason given"
		}
		p.record(action, ResultDenied, ok)
		return ok, fmt.Errorf("%w: %s: %s", ErrDenied, action, msg)
	}
	p.record(action, ResultPermitted, ok)
	return ok, nil
}

func (p *Service) ask(ctx context.Context, action string, src Source, tgt Target) (Decision, error) {
	if src.Capabilities == nil {
		src.Capabilities = []string{}
	}
	req := Request{RequestID: uuid.NewString(), Source: src, Target: tgt, Action: action, Host: p.host()}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msg, err := p.nc.RequestWithContext(ctx, p.topic, mustJSON(req))
	if err != nil {
		return Decision{}, err
	}
	var d Decision
	if err := json.Unmarshal(msg.Data, &d); err != nil {
		return Decision{}, fmt.Errorf("undecodable reply: %w", err)
	}
	d.RequestID = req.RequestID
	return d, nil
}

// change applies a change notice: a later decision for a request already
// answered replaces the cached one. It reports whether it knew the request.
func (p *Service) change(d Decision) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, ok := p.byReqID[d.RequestID]
	if ok {
		p.cache[key] = d
	}
	return ok
}

// SubscribeChanges follows WASMCLOUD_POLICY_CHANGES_TOPIC. A notice sent
// while the connection is down, or dropped because the subscription fell
// behind, is lost (core NATS keeps nothing for a subscriber that is gone),
// and the cached decision it changed would stand for good: a permission the
// service withdrew would still be granted. So whenever notices may have
// been lost every cached decision is forgotten, and the next request of
// each kind asks the service again.
func (p *Service) SubscribeChanges(topic string, log func(msg string, args ...any)) (*nats.Subscription, error) {
	sub, err := p.nc.Subscribe(topic, func(m *nats.Msg) {
		var d Decision
		ok := json.Unmarshal(m.Data, &d) == nil && p.change(d)
		if !ok {
			log("policy change for an unknown request or undecodable; ignored", "subject", m.Subject)
		}
		if m.Reply != "" {
			_ = m.Respond(mustJSON(map[string]bool{"success": ok}))
		}
	})
	if err != nil {
		return nil, err
	}
	natsalive.AddReconnectHandler(p.nc, func(*nats.Conn) {
		p.forget(log, "the NATS connection was restored")
	})
	natsalive.AddErrorHandler(p.nc, func(_ *nats.Conn, s *nats.Subscription, err error) {
		if s == sub && errors.Is(err, nats.ErrSlowConsumer) {
			p.forget(log, "NATS dropped change notices (slow consumer)")
		}
	})
	return sub, nil
}

// forget drops every cached decision: change notices were lost (why).
func (p *Service) forget(log func(msg string, args ...any), why string) {
	p.mu.Lock()
	n := len(p.cache)
	p.cache, p.byReqID = map[string]Decision{}, map[string]string{}
	p.mu.Unlock()
	log("cached policy decisions forgotten: change notices may have been lost; the service is asked again", "why", why, "decisions", n)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only values of this package's own types
	}
	return b
}
