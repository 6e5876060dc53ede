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
	if text, ok := antiforgeryTexts[e.Reason]; ok {
		return fmt.Sprintf("Anti-forgery check failed: %s (%s: %s)", text, e.Reason, e.Detail)
	}
	return fmt.Sprintf("Anti-forgery check failed (%s): %s", e.Reason, e.Detail)
}

// antiforgeryTexts are wasmCloud's texts for the anti-forgery refusals that
// have exactly one cause in both hosts (the OTP host's
// Invocation::validate_antiforgery): a reply refused for one of these
// reasons starts with "Anti-forgery check failed: " and the text, as
// wasmCloud's does, and names latticed's reason and detail after it.
var antiforgeryTexts = map[RejectReason]string{
	ReasonUnknownIssuer: "Issuer of this invocation is not among the list of valid issuers",
	ReasonBadSignature:  "Invocation claims signature invalid",
	ReasonHashMismatch:  "Invocation hash does not match signed claims hash",
}

// NotRunning is wasmCloud's text for an invocation of an actor that has no
// instance to serve it on the host that received it; a host that is
// stopping the actor, or stopping altogether, answers with it.
func NotRunning(actorKey string) string {
	return "Invocation received for actor " + actorKey + " that is not running"
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
