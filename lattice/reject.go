package lattice

import (
	"errors"
	"fmt"
)

// RejectReason names why an invocation was refused. The same value is the
// metric label, the event field and the start of the error reply.
type RejectReason string

// Rejection reasons, in the order a receiver checks them: size and shape, the
// issuer check (package trust), capability claims, the policy service.
const (
	ReasonMalformed            RejectReason = "malformed"
	ReasonTooLarge             RejectReason = "too_large"
	ReasonBadSignature         RejectReason = "bad_signature"
	ReasonExpired              RejectReason = "expired"
	ReasonHashMismatch         RejectReason = "hash_mismatch"
	ReasonBadHostID            RejectReason = "bad_host_id"
	ReasonUnknownIssuer        RejectReason = "unknown_issuer"
	ReasonWrongTarget          RejectReason = "wrong_target"
	ReasonReplayed             RejectReason = "replayed"
	ReasonCapabilityNotClaimed RejectReason = "capability_not_claimed"
	ReasonChunkFetch           RejectReason = "chunk_fetch_failed"
	ReasonBadDelegation        RejectReason = "bad_delegation" // latticed extension
	ReasonRevoked              RejectReason = "revoked"        // latticed extension
	ReasonPolicyDenied         RejectReason = "policy_denied"
)

// RejectReasons lists every reason (metrics pre-create their label values from it).
var RejectReasons = []RejectReason{
	ReasonMalformed, ReasonTooLarge, ReasonBadSignature, ReasonExpired, ReasonHashMismatch,
	ReasonBadHostID, ReasonUnknownIssuer, ReasonWrongTarget, ReasonReplayed,
	ReasonCapabilityNotClaimed, ReasonChunkFetch, ReasonBadDelegation, ReasonRevoked, ReasonPolicyDenied,
}

// RejectError is a refused invocation. Its message is what the caller sees in the
// InvocationResponse error; wasmCloud prefixes antiforgery failures with
// "Anti-forgery check failed: ", and so do we.
type RejectError struct {
	Reason RejectReason
	Detail string
}

func (e *RejectError) Error() string {
	switch e.Reason {
	case ReasonCapabilityNotClaimed:
		return "Invocation source does not have the required capability claim " + e.Detail
	case ReasonPolicyDenied:
		return "Policy evaluation rejected invocation attempt: " + e.Detail
	case ReasonMalformed, ReasonTooLarge, ReasonChunkFetch:
		return fmt.Sprintf("invocation rejected (%s): %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("Anti-forgery check failed (%s): %s", e.Reason, e.Detail)
}

// Reject builds a RejectError.
func Reject(reason RejectReason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf extracts the reason from an error chain ("" if it is not a rejection).
func ReasonOf(err error) RejectReason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
