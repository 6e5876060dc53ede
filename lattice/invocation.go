package lattice

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Entity identifies an invocation's origin or target: an actor (public key
// only) or a provider instance (public key, contract id, link name).
type Entity struct {
	PublicKey  string `msgpack:"public_key" json:"public_key"`
	ContractID string `msgpack:"contract_id" json:"contract_id"`
	LinkName   string `msgpack:"link_name" json:"link_name"`
}

// ActorEntity is the entity of an actor.
func ActorEntity(key string) Entity { return Entity{PublicKey: key} }

// IsActor follows wasmCloud: a public key starting with M (either case) is an actor.
func (e Entity) IsActor() bool {
	return len(e.PublicKey) > 0 && (e.PublicKey[0] == 'M' || e.PublicKey[0] == 'm')
}

// URL is the entity URL the antiforgery claims sign.
func (e Entity) URL() string {
	if e.IsActor() {
		return "wasmbus://" + e.PublicKey
	}
	contract := strings.ToLower(contractURLReplacer.Replace(e.ContractID))
	link := strings.ToLower(strings.ReplaceAll(e.LinkName, " ", "_"))
	return "wasmbus://" + contract + "/" + link + "/" + e.PublicKey
}

// contractURLReplacer turns a contract id into its URL path form.
var contractURLReplacer = strings.NewReplacer(":", "/", " ", "_")

// Invocation is an RPC call on the lattice.
type Invocation struct {
	Origin        Entity `msgpack:"origin"`
	Target        Entity `msgpack:"target"`
	Operation     string `msgpack:"operation"`
	Msg           []byte `msgpack:"msg"`
	ID            string `msgpack:"id"`
	EncodedClaims string `msgpack:"encoded_claims"`
	HostID        string `msgpack:"host_id"`
	ContentLength uint64 `msgpack:"content_length,omitempty"`
	// Delegation vouches for a non-cluster signer (latticed extension; peers
	// that do not know the key ignore it).
	Delegation string `msgpack:"delegation,omitempty"`
	// TraceContext carries the caller's W3C trace context (`traceparent`,
	// `tracestate`) as wasmCloud's provider SDK does (key `traceContext`, a
	// map of strings). Not covered by the antiforgery hash.
	TraceContext map[string]string `msgpack:"traceContext,omitempty"`
}

// InvocationClaims is the `wascap` metadata of an antiforgery token.
type InvocationClaims struct {
	TargetURL string `json:"target_url"`
	OriginURL string `json:"origin_url"`
	Hash      string `json:"hash"`
}

// TargetURL is the signed target URL: target entity URL + "/" + operation.
func (inv *Invocation) TargetURL() string { return inv.Target.URL() + "/" + inv.Operation }

// InvocationHash is uppercase hex SHA-256 of origin_url ‖ target_url ‖ operation ‖ msg.
func InvocationHash(originURL, targetURL, operation string, msg []byte) string {
	h := sha256.New()
	_, _ = io.WriteString(h, originURL)
	_, _ = io.WriteString(h, targetURL)
	_, _ = io.WriteString(h, operation)
	h.Write(msg)
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	for i, b := range h.Sum(sum[:0]) {
		out[2*i], out[2*i+1] = upperHex[b>>4], upperHex[b&0x0f]
	}
	return string(out[:])
}

const upperHex = "0123456789ABCDEF"

// NewInvocation builds and signs an invocation with the cluster key signer.
// hostID is the sending node's key (latticed sends its N… key).
func NewInvocation(signer *KeyPair, hostID string, origin, target Entity, operation string, msg []byte) (*Invocation, error) {
	return Signer{Key: signer}.NewInvocation(hostID, origin, target, operation, msg)
}

// NewInvocation builds and signs an invocation, attaching the delegation
// token when the signer has one.
func (s Signer) NewInvocation(hostID string, origin, target Entity, operation string, msg []byte) (*Invocation, error) {
	signer := s.Key
	inv := &Invocation{
		Origin: origin, Target: target, Operation: operation, Msg: msg,
		ID: uuid.NewString(), HostID: hostID, ContentLength: uint64(len(msg)), Delegation: s.Delegation,
	}
	targetURL, originURL := inv.TargetURL(), origin.URL()
	c := &Claims[InvocationClaims]{
		Subject: inv.ID,
		Wascap: &InvocationClaims{
			TargetURL: targetURL, OriginURL: originURL,
			Hash: InvocationHash(originURL, targetURL, operation, msg),
		},
	}
	token, err := c.Sign(signer)
	if err != nil {
		return nil, fmt.Errorf("sign invocation: %w", err)
	}
	inv.EncodedClaims = token
	return inv, nil
}

// DecodeInvocation parses an invocation from untrusted bytes. It accepts keys
// in any order, `msg` as bin or str, and ignores unknown keys.
func DecodeInvocation(data []byte) (*Invocation, error) {
	inv := new(Invocation)
	r := newMapReader(data)
	defer r.release()
	err := r.fields(func(key string) error {
		var err error
		switch key {
		case "origin":
			inv.Origin, err = r.entity()
		case "target":
			inv.Target, err = r.entity()
		case "operation":
			inv.Operation, err = r.str()
		case "msg":
			inv.Msg, err = r.bytesLoose()
		case "id":
			inv.ID, err = r.str()
		case "encoded_claims":
			inv.EncodedClaims, err = r.str()
		case "host_id":
			inv.HostID, err = r.str()
		case "content_length":
			inv.ContentLength, err = r.uint()
		case "delegation":
			inv.Delegation, err = r.str()
		case "traceContext":
			inv.TraceContext, err = r.strMap()
		default:
			err = r.skip(1)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: invocation: %v", ErrMalformed, err)
	}
	return inv, nil
}

func (r mapReader) entity() (Entity, error) {
	var e Entity
	err := r.fields(func(key string) error {
		var err error
		switch key {
		case "public_key":
			e.PublicKey, err = r.str()
		case "contract_id":
			e.ContractID, err = r.str()
		case "link_name":
			e.LinkName, err = r.str()
		default:
			err = r.skip(2)
		}
		return err
	})
	return e, err
}

// InvocationResponse is the reply to an Invocation. A non-empty Error means the call failed.
type InvocationResponse struct {
	Msg           []byte `msgpack:"msg"`
	InvocationID  string `msgpack:"invocation_id"`
	Error         string `msgpack:"error,omitempty"`
	ContentLength uint64 `msgpack:"content_length,omitempty"`
	InstanceID    string `msgpack:"instance_id,omitempty"`
	// ErrorCode classifies Error for callers that branch on it (latticed
	// extension, ErrorCodeUnavailable). It travels in the reply's
	// HeaderErrorCode NATS header, not in the msgpack body, so wasmCloud
	// hosts and providers, which read only the body, see the same reply.
	ErrorCode string `msgpack:"-"`
}

// HeaderErrorCode is the NATS header of an invocation reply that carries
// InvocationResponse.ErrorCode (docs/protocol.md §3).
const HeaderErrorCode = "Latticed-Error-Code"

// Error codes (HeaderErrorCode values) besides the rejection reasons: a
// refused invocation's code is its RejectReason.
const (
	// ErrorCodeUnavailable marks a failure that retrying later can cure:
	// the callee, or a capability provider it called, is not running yet
	// (a node starting) or is stopping. The HTTP server provider answers it
	// with 503 and Retry-After.
	ErrorCodeUnavailable = "unavailable"
	// ErrorCodeBusy marks a call the callee had no room for: every instance
	// in use and its wait queue full. Retrying later can succeed; the HTTP
	// server provider answers it with 503 and Retry-After.
	ErrorCodeBusy = "busy"
)

// DecodeInvocationResponse parses a reply from untrusted bytes, accepting
// `msg` as bin, str or an empty array as wasmCloud's hosts produce them.
func DecodeInvocationResponse(data []byte) (*InvocationResponse, error) {
	resp := new(InvocationResponse)
	r := newMapReader(data)
	defer r.release()
	err := r.fields(func(key string) error {
		var err error
		switch key {
		case "msg":
			resp.Msg, err = r.bytesLoose()
		case "invocation_id":
			resp.InvocationID, err = r.str()
		case "error":
			resp.Error, err = r.str()
		case "content_length":
			resp.ContentLength, err = r.uint()
		case "instance_id":
			resp.InstanceID, err = r.str()
		default:
			err = r.skip(1)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: invocation response: %v", ErrMalformed, err)
	}
	return resp, nil
}

// issuedAt is a helper for policies: the token's iat as a time.
func issuedAt(c *Claims[InvocationClaims]) time.Time { return time.Unix(c.IssuedAt, 0) }
