package lattice

import (
	"encoding/binary"
	"sort"
)

// Invocations and their responses are encoded on every call, so they are
// written by hand rather than through msgpack's reflection: one allocation of
// the exact size instead of a growing buffer and a walk over struct tags.
// The bytes are those Marshal produces for the same value (field order,
// omitempty, compact integers, nil msg as nil); TestEncodersMatchMarshal
// checks that, so peers see no difference.

// mpWriter appends msgpack values; size first computes the length.
type mpWriter struct{ b []byte }

func mpStrLen(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	}
	return 5 + n
}

func mpBinLen(b []byte) int {
	switch n := len(b); {
	case b == nil:
		return 1
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	default:
		return 5 + n
	}
}

func mpUintLen(v uint64) int {
	switch {
	case v <= 0x7f:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

// mpContainerLen is the size of a map or array header of n entries: the
// two kinds share their layout (fix form, 16-bit, 32-bit length).
func mpContainerLen(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

// mapHeader writes a map header: fixmap, map 16 or map 32.
func (w *mpWriter) mapHeader(n int) { w.containerHeader(n, 0x80, 0xde) }

// containerHeader writes a map or array header: fix is the fix form's tag,
// tag16 the 16-bit form's (the 32-bit form's is the next byte).
func (w *mpWriter) containerHeader(n int, fix, tag16 byte) {
	switch {
	case n < 16:
		w.b = append(w.b, fix|byte(n))
	case n <= 0xffff:
		w.b = append(w.b, tag16, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, tag16+1), uint32(n))
	}
}

func (w *mpWriter) str(s string) {
	switch n := len(s); {
	case n < 32:
		w.b = append(w.b, 0xa0|byte(n))
	case n <= 0xff:
		w.b = append(w.b, 0xd9, byte(n))
	case n <= 0xffff:
		w.b = append(w.b, 0xda, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xdb), uint32(n))
	}
	w.b = append(w.b, s...)
}

func (w *mpWriter) bin(b []byte) {
	switch n := len(b); {
	case b == nil:
		w.b = append(w.b, 0xc0)
		return
	case n <= 0xff:
		w.b = append(w.b, 0xc4, byte(n))
	case n <= 0xffff:
		w.b = append(w.b, 0xc5, byte(n>>8), byte(n))
	default:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xc6), uint32(n))
	}
	w.b = append(w.b, b...)
}

func (w *mpWriter) uint(v uint64) {
	switch {
	case v <= 0x7f:
		w.b = append(w.b, byte(v))
	case v <= 0xff:
		w.b = append(w.b, 0xcc, byte(v))
	case v <= 0xffff:
		w.b = append(w.b, 0xcd, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		w.b = binary.BigEndian.AppendUint32(append(w.b, 0xce), uint32(v))
	default:
		w.b = binary.BigEndian.AppendUint64(append(w.b, 0xcf), v)
	}
}

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
	return mpContainerLen(entityFields) + mpStrLen(len(kPublicKey)) + mpStrLen(len(e.PublicKey)) +
		mpStrLen(len(kContractID)) + mpStrLen(len(e.ContractID)) + mpStrLen(len(kLinkName)) + mpStrLen(len(e.LinkName))
}

func (w *mpWriter) entity(e *Entity) {
	w.mapHeader(entityFields)
	w.str(kPublicKey)
	w.str(e.PublicKey)
	w.str(kContractID)
	w.str(e.ContractID)
	w.str(kLinkName)
	w.str(e.LinkName)
}

// Encode is the invocation's msgpack wire form.
func (inv *Invocation) Encode() ([]byte, error) {
	fields, size := invocationFields, 0
	keys := sortedKeys(inv.TraceContext)
	if inv.ContentLength != 0 {
		fields++
		size += mpStrLen(len(kContentLength)) + mpUintLen(inv.ContentLength)
	}
	if inv.Delegation != "" {
		fields++
		size += mpStrLen(len(kDelegation)) + mpStrLen(len(inv.Delegation))
	}
	if len(inv.TraceContext) > 0 {
		fields++
		size += mpStrLen(len(kTraceContext)) + mpContainerLen(len(keys))
		for _, k := range keys {
			size += mpStrLen(len(k)) + mpStrLen(len(inv.TraceContext[k]))
		}
	}
	size += mpContainerLen(fields) +
		mpStrLen(len(kOrigin)) + entitySize(&inv.Origin) + mpStrLen(len(kTarget)) + entitySize(&inv.Target) +
		mpStrLen(len(kOperation)) + mpStrLen(len(inv.Operation)) + mpStrLen(len(kMsg)) + mpBinLen(inv.Msg) +
		mpStrLen(len(kID)) + mpStrLen(len(inv.ID)) + mpStrLen(len(kEncodedClaims)) + mpStrLen(len(inv.EncodedClaims)) +
		mpStrLen(len(kHostID)) + mpStrLen(len(inv.HostID))

	w := mpWriter{b: make([]byte, 0, size)}
	w.mapHeader(fields)
	w.str(kOrigin)
	w.entity(&inv.Origin)
	w.str(kTarget)
	w.entity(&inv.Target)
	w.str(kOperation)
	w.str(inv.Operation)
	w.str(kMsg)
	w.bin(inv.Msg)
	w.str(kID)
	w.str(inv.ID)
	w.str(kEncodedClaims)
	w.str(inv.EncodedClaims)
	w.str(kHostID)
	w.str(inv.HostID)
	if inv.ContentLength != 0 {
		w.str(kContentLength)
		w.uint(inv.ContentLength)
	}
	if inv.Delegation != "" {
		w.str(kDelegation)
		w.str(inv.Delegation)
	}
	if len(inv.TraceContext) > 0 {
		w.str(kTraceContext)
		w.mapHeader(len(keys))
		for _, k := range keys {
			w.str(k)
			w.str(inv.TraceContext[k])
		}
	}
	return w.b, nil
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
	size := mpStrLen(len(kMsg)) + mpBinLen(r.Msg) + mpStrLen(len(kInvocationID)) + mpStrLen(len(r.InvocationID))
	if r.Error != "" {
		fields++
		size += mpStrLen(len(kError)) + mpStrLen(len(r.Error))
	}
	if r.ContentLength != 0 {
		fields++
		size += mpStrLen(len(kContentLength)) + mpUintLen(r.ContentLength)
	}
	if r.InstanceID != "" {
		fields++
		size += mpStrLen(len(kInstanceID)) + mpStrLen(len(r.InstanceID))
	}
	w := mpWriter{b: make([]byte, 0, size+mpContainerLen(fields))}
	w.mapHeader(fields)
	w.str(kMsg)
	w.bin(r.Msg)
	w.str(kInvocationID)
	w.str(r.InvocationID)
	if r.Error != "" {
		w.str(kError)
		w.str(r.Error)
	}
	if r.ContentLength != 0 {
		w.str(kContentLength)
		w.uint(r.ContentLength)
	}
	if r.InstanceID != "" {
		w.str(kInstanceID)
		w.str(r.InstanceID)
	}
	return w.b, nil
}
