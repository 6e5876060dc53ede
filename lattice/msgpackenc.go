package lattice

import (
	"sort"

	"github.com/latticed/latticed/wire"
)

// Invocations and their responses are encoded on every call, so they are
// written by hand rather than through msgpack's reflection: one allocation of
// the exact size instead of a growing buffer and a walk over struct tags.
// The bytes are those Marshal produces for the same value (field order,
// omitempty, compact integers, nil msg as nil); TestEncodersMatchMarshal
// checks that, so peers see no difference.

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

// Encode is the response's msgpack wire form.
func (r *InvocationResponse) Encode() ([]byte, error) {
	fields := responseFields
	size := wire.StrSize(len(kMsg)) + wire.BinSize(r.Msg) + wire.StrSize(len(kInvocationID)) + wire.StrSize(len(r.InvocationID))
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
	w.Bin(r.Msg)
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
