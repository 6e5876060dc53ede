package lattice

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync"

	"github.com/latticed/latticed/wire"
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

// urlScheme begins every entity URL.
const urlScheme = "wasmbus://"

// URL is the entity URL the antiforgery claims sign.
func (e Entity) URL() string {
	if e.IsActor() {
		return urlScheme + e.PublicKey
	}
	return providerURL(e)
}

// URLIs reports whether s == e.URL(). A receiver compares the URLs an
// invocation's claims sign with its entities on every call; for an actor
// this compares in place instead of building the URL.
func (e Entity) URLIs(s string) bool {
	if e.IsActor() {
		return len(s) == len(urlScheme)+len(e.PublicKey) && s[:len(urlScheme)] == urlScheme && s[len(urlScheme):] == e.PublicKey
	}
	return s == providerURL(e)
}

// providerURL is a provider entity's URL for any contract id and link name:
// ':' becomes '/', ' ' becomes '_', then Unicode lower case.
func providerURL(e Entity) string {
	contract := strings.ToLower(contractURLReplacer.Replace(e.ContractID))
	link := strings.ToLower(strings.ReplaceAll(e.LinkName, " ", "_"))
	return urlScheme + contract + "/" + link + "/" + e.PublicKey
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

// TargetURL is the signed target URL: target entity URL + "/" + operation.
func (inv *Invocation) TargetURL() string {
	if inv.Target.IsActor() {
		return urlScheme + inv.Target.PublicKey + "/" + inv.Operation // one allocation
	}
	return providerURL(inv.Target) + "/" + inv.Operation
}

// TargetURLIs reports whether s == inv.TargetURL(), comparing in place for
// an actor target (see Entity.URLIs).
func (inv *Invocation) TargetURLIs(s string) bool {
	e := inv.Target
	if !e.IsActor() {
		return s == inv.TargetURL()
	}
	key := len(urlScheme) + len(e.PublicKey) // where the key ends
	return len(s) == key+1+len(inv.Operation) && s[:len(urlScheme)] == urlScheme &&
		s[len(urlScheme):key] == e.PublicKey && s[key] == '/' && s[key+1:] == inv.Operation
}

// InvocationHash is uppercase hex SHA-256 of origin_url ‖ target_url ‖ operation ‖ msg.
func InvocationHash(originURL, targetURL, operation string, msg []byte) string {
	var out [2 * sha256.Size]byte
	invocationHash(&out, originURL, targetURL, operation, msg)
	return string(out[:])
}

// InvocationHashIs reports whether hash == InvocationHash(originURL,
// targetURL, operation, msg), without making the hash a string: a receiver
// checks one on every call.
func InvocationHashIs(hash, originURL, targetURL, operation string, msg []byte) bool {
	var out [2 * sha256.Size]byte
	invocationHash(&out, originURL, targetURL, operation, msg)
	return string(out[:]) == hash // compared in place, not converted
}

func invocationHash(out *[2 * sha256.Size]byte, originURL, targetURL, operation string, msg []byte) {
	// Every invocation is hashed twice (caller and callee); a pooled hasher
	// with its scratch buffers leaves the result the only allocation, or
	// none (a fresh digest and the string-to-bytes copies io.WriteString
	// makes would be five).
	h := invocationHashers.Get().(*invocationHasher)
	defer invocationHashers.Put(h)
	h.d.Reset()
	h.buf = append(append(append(h.buf[:0], originURL...), targetURL...), operation...)
	h.d.Write(h.buf)
	h.d.Write(msg)
	for i, b := range h.d.Sum(h.sum[:0]) {
		out[2*i], out[2*i+1] = upperHex[b>>4], upperHex[b&0x0f]
	}
	if cap(h.buf) > maxPooledURLBytes {
		h.buf = nil // an outsized operation name must not stay pinned
	}
}

// invocationHasher is InvocationHash's reusable state.
type invocationHasher struct {
	d   hash.Hash
	buf []byte // the URLs and operation, written in one call
	sum [sha256.Size]byte
}

var invocationHashers = sync.Pool{New: func() any { return &invocationHasher{d: sha256.New()} }}

// maxPooledURLBytes bounds the scratch buffer a pooled hasher keeps.
const maxPooledURLBytes = 4 << 10

const upperHex = "0123456789ABCDEF"

// DecodeInvocation parses an invocation from untrusted bytes. It accepts keys
// in any order, `msg` as bin, str or an empty array, and ignores unknown
// keys. The returned Msg aliases data (a slice of it, not a copy), so data
// must not be modified while the invocation is in use; a NATS message's
// data is its own. The string fields share one allocation (invocationStrings),
// so a string kept past the call keeps the invocation's other strings (a few
// hundred bytes, never the payload) alive with it.
func DecodeInvocation(data []byte) (*Invocation, error) {
	inv := new(Invocation)
	var raw invocationStrings
	r := wire.NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kOrigin:
			err = readEntityBytes(r, raw[sOriginKey:sOriginLink+1])
		case kTarget:
			err = readEntityBytes(r, raw[sTargetKey:sTargetLink+1])
		case kOperation:
			raw[sOperation], err = r.Bytes()
		case kMsg:
			inv.Msg, err = readMsg(r)
		case kID:
			raw[sID], err = r.Bytes()
		case kEncodedClaims:
			raw[sClaims], err = r.Bytes()
		case kHostID:
			raw[sHostID], err = r.Bytes()
		case kContentLength:
			inv.ContentLength, err = r.Uint()
		case kDelegation:
			raw[sDelegation], err = r.Bytes()
		case kTraceContext:
			inv.TraceContext, err = readTraceContext(r)
		default:
			err = r.Skip()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: invocation: %v", wire.ErrMalformed, err)
	}
	raw.into(inv)
	return inv, nil
}

// invocationStrings are an invocation's string fields while it is decoded,
// as slices of the wire bytes (wire.Reader.Bytes reads what Str reads: str,
// bin or nil). Each field of its own would be one allocation per field and
// invocation, on the hot path of every receiver; into makes all of them in
// one.
type invocationStrings [sFields][]byte

// The string fields of an invocation, in invocationStrings; an entity's
// three are in Entity's order (readEntityBytes).
const (
	sOriginKey = iota
	sOriginContract
	sOriginLink
	sTargetKey
	sTargetContract
	sTargetLink
	sOperation
	sID
	sClaims
	sHostID
	sDelegation
	sFields
)

// into sets inv's string fields from the slices, copied into one string.
func (s *invocationStrings) into(inv *Invocation) {
	dst := [sFields]*string{
		&inv.Origin.PublicKey, &inv.Origin.ContractID, &inv.Origin.LinkName,
		&inv.Target.PublicKey, &inv.Target.ContractID, &inv.Target.LinkName,
		&inv.Operation, &inv.ID, &inv.EncodedClaims, &inv.HostID, &inv.Delegation,
	}
	n := 0
	for _, b := range s {
		n += len(b)
	}
	var all strings.Builder // String() hands over its buffer: one allocation
	all.Grow(n)
	for _, b := range s {
		all.Write(b)
	}
	str, off := all.String(), 0
	for i, b := range s {
		if len(b) > 0 {
			*dst[i] = str[off : off+len(b)]
			off += len(b)
		}
	}
}

// readEntityBytes reads an entity's public key, contract id and link name
// into dst[0:3] as slices of the input.
func readEntityBytes(r *wire.Reader, dst [][]byte) error {
	return r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kPublicKey:
			dst[0], err = r.Bytes()
		case kContractID:
			dst[1], err = r.Bytes()
		case kLinkName:
			dst[2], err = r.Bytes()
		default:
			err = r.Skip()
		}
		return err
	})
}

// readMsg reads an invocation's or a response's msg in every form peers
// write it (wire.Reader.ByteArray): bin, str (the OTP host's replies), an
// array of bytes (the OTP host's "actor not running" reply is an empty one),
// or nil.
func readMsg(r *wire.Reader) ([]byte, error) { return r.ByteArray() }

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
// `msg` as bin, str or an empty array as wasmCloud's hosts produce them. The
// returned Msg aliases data, as in DecodeInvocation.
func DecodeInvocationResponse(data []byte) (*InvocationResponse, error) {
	resp := new(InvocationResponse)
	r := wire.NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case kMsg:
			resp.Msg, err = readMsg(r)
		case kInvocationID:
			resp.InvocationID, err = r.Str()
		case kError:
			resp.Error, err = r.Str()
		case kContentLength:
			resp.ContentLength, err = r.Uint()
		case kInstanceID:
			resp.InstanceID, err = r.Str()
		default:
			err = r.Skip()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: invocation response: %v", wire.ErrMalformed, err)
	}
	return resp, nil
}

// Invocations and their responses are encoded on every call, so they are
// written by hand rather than through msgpack's reflection: one allocation of
// the exact size instead of a growing buffer and a walk over struct tags.
// The bytes are those Marshal produces for the same value (field order,
// omitempty, compact integers, an invocation's nil msg as nil), except that
// a response's msg is written as Marshal writes a string (str, "" for
// none); TestEncodersMatchMarshal checks that, so peers see no difference.

// field names, written once here so that size and write agree.
const (
	kOrigin, kTarget, kOperation, kMsg, kID        = "origin", "target", "operation", "msg", "id"
	kEncodedClaims, kHostID, kContentLength        = "encoded_claims", "host_id", "content_length"
	kDelegation, kTraceContext                     = "delegation", "traceContext"
	kPublicKey, kContractID, kLinkName             = "public_key", "contract_id", "link_name"
	kInvocationID, kError, kInstanceID             = "invocation_id", "error", "instance_id"
	entityFields, invocationFields, responseFields = 3, 7, 2 // without the omitempty ones
)

func entitySize(e *Entity) int {
	return wire.ContainerSize(entityFields) + wire.StrSize(len(kPublicKey)) + wire.StrSize(len(e.PublicKey)) +
		wire.StrSize(len(kContractID)) + wire.StrSize(len(e.ContractID)) + wire.StrSize(len(kLinkName)) + wire.StrSize(len(e.LinkName))
}

func writeEntity(w *wire.Writer, e *Entity) {
	w.MapHeader(entityFields)
	w.Str(kPublicKey)
	w.Str(e.PublicKey)
	w.Str(kContractID)
	w.Str(e.ContractID)
	w.Str(kLinkName)
	w.Str(e.LinkName)
}

// Encode is the invocation's msgpack wire form.
func (inv *Invocation) Encode() ([]byte, error) {
	fields, size := invocationFields, 0
	keys := sortedKeys(inv.TraceContext)
	if inv.ContentLength != 0 {
		fields++
		size += wire.StrSize(len(kContentLength)) + wire.UintSize(inv.ContentLength)
	}
	if inv.Delegation != "" {
		fields++
		size += wire.StrSize(len(kDelegation)) + wire.StrSize(len(inv.Delegation))
	}
	if len(inv.TraceContext) > 0 {
		fields++
		size += wire.StrSize(len(kTraceContext)) + wire.ContainerSize(len(keys))
		for _, k := range keys {
			size += wire.StrSize(len(k)) + wire.StrSize(len(inv.TraceContext[k]))
		}
	}
	size += wire.ContainerSize(fields) +
		wire.StrSize(len(kOrigin)) + entitySize(&inv.Origin) + wire.StrSize(len(kTarget)) + entitySize(&inv.Target) +
		wire.StrSize(len(kOperation)) + wire.StrSize(len(inv.Operation)) + wire.StrSize(len(kMsg)) + wire.BinSize(inv.Msg) +
		wire.StrSize(len(kID)) + wire.StrSize(len(inv.ID)) + wire.StrSize(len(kEncodedClaims)) + wire.StrSize(len(inv.EncodedClaims)) +
		wire.StrSize(len(kHostID)) + wire.StrSize(len(inv.HostID))

	w := wire.NewWriter(size)
	w.MapHeader(fields)
	w.Str(kOrigin)
	writeEntity(&w, &inv.Origin)
	w.Str(kTarget)
	writeEntity(&w, &inv.Target)
	w.Str(kOperation)
	w.Str(inv.Operation)
	w.Str(kMsg)
	w.Bin(inv.Msg)
	w.Str(kID)
	w.Str(inv.ID)
	w.Str(kEncodedClaims)
	w.Str(inv.EncodedClaims)
	w.Str(kHostID)
	w.Str(inv.HostID)
	if inv.ContentLength != 0 {
		w.Str(kContentLength)
		w.Uint(inv.ContentLength)
	}
	if inv.Delegation != "" {
		w.Str(kDelegation)
		w.Str(inv.Delegation)
	}
	if len(inv.TraceContext) > 0 {
		w.Str(kTraceContext)
		w.MapHeader(len(keys))
		for _, k := range keys {
			w.Str(k)
			w.Str(inv.TraceContext[k])
		}
	}
	return w.Bytes(), nil
}

// sortedKeys orders a trace context's keys so that an invocation always
// encodes to the same bytes.
func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Encode is the response's msgpack wire form. Its msg is a str, as the OTP
// host writes replies, and empty (never nil) when there is none: wasmCloud's
// Go provider SDK reads only str there, and wasmbus-rpc refuses nil
// (docs/protocol.md §3).
func (r *InvocationResponse) Encode() ([]byte, error) {
	fields := responseFields
	size := wire.StrSize(len(kMsg)) + wire.StrSize(len(r.Msg)) + wire.StrSize(len(kInvocationID)) + wire.StrSize(len(r.InvocationID))
	if r.Error != "" {
		fields++
		size += wire.StrSize(len(kError)) + wire.StrSize(len(r.Error))
	}
	if r.ContentLength != 0 {
		fields++
		size += wire.StrSize(len(kContentLength)) + wire.UintSize(r.ContentLength)
	}
	if r.InstanceID != "" {
		fields++
		size += wire.StrSize(len(kInstanceID)) + wire.StrSize(len(r.InstanceID))
	}
	w := wire.NewWriter(size + wire.ContainerSize(fields))
	w.MapHeader(fields)
	w.Str(kMsg)
	w.StrBytes(r.Msg) // str as the OTP host writes replies, never nil (docs/protocol.md §3)
	w.Str(kInvocationID)
	w.Str(r.InvocationID)
	if r.Error != "" {
		w.Str(kError)
		w.Str(r.Error)
	}
	if r.ContentLength != 0 {
		w.Str(kContentLength)
		w.Uint(r.ContentLength)
	}
	if r.InstanceID != "" {
		w.Str(kInstanceID)
		w.Str(r.InstanceID)
	}
	return w.Bytes(), nil
}

// The subjects invocations travel on (docs/protocol.md §4).

// rpcRoot begins every RPC subject.
const rpcRoot = "wasmbus.rpc."

// RPCRoot is the root of a lattice's RPC subjects ("wasmbus.rpc.{prefix}").
func RPCRoot(prefix string) string { return rpcRoot + prefix }

// RPCActor is the subject an actor's invocations arrive on (queue group =
// the subject). One concatenation: callers build it on every call.
func RPCActor(prefix, actorKey string) string { return rpcRoot + prefix + "." + actorKey }

// RPCProvider is the subject a provider instance's invocations arrive on.
func RPCProvider(prefix, providerKey, linkName string) string {
	return rpcRoot + prefix + "." + providerKey + "." + linkName
}
