package lattice

import "testing"

// Every reason's reply text: wasmCloud's where it has one for the same
// refusal (docs/protocol.md §3), with latticed's reason and detail after it;
// callers branch on the reason (the reply's code), never on this text.
func TestRejectReasonTexts(t *testing.T) {
	want := map[RejectReason]string{
		ReasonMalformed:            "invocation rejected (malformed): D",
		ReasonTooLarge:             "invocation rejected (too_large): D",
		ReasonBadSignature:         "Anti-forgery check failed: Invocation claims signature invalid (bad_signature: D)",
		ReasonExpired:              "Anti-forgery check failed (expired): D",
		ReasonHashMismatch:         "Anti-forgery check failed: Invocation hash does not match signed claims hash (hash_mismatch: D)",
		ReasonBadHostID:            "Anti-forgery check failed (bad_host_id): D",
		ReasonUnknownIssuer:        "Anti-forgery check failed: Issuer of this invocation is not among the list of valid issuers (unknown_issuer: D)",
		ReasonWrongTarget:          "Anti-forgery check failed (wrong_target): D",
		ReasonReplayed:             "Anti-forgery check failed (replayed): D",
		ReasonCapabilityNotClaimed: "Invocation source does not have the required capability claim D",
		ReasonChunkFetch:           "invocation rejected (chunk_fetch_failed): D",
		ReasonBadDelegation:        "Anti-forgery check failed (bad_delegation): D",
		ReasonRevoked:              "Anti-forgery check failed (revoked): D",
		ReasonPolicyDenied:         "Policy evaluation rejected invocation attempt: D",
	}
	if len(want) != len(RejectReasons) {
		t.Fatalf("the table has %d reasons, RejectReasons %d", len(want), len(RejectReasons))
	}
	for _, r := range RejectReasons {
		err := Reject(r, "%s", "D")
		if got := err.Error(); got != want[r] {
			t.Errorf("%s:\n got %q\nwant %q", r, got, want[r])
		}
		if ReasonOf(err) != r {
			t.Errorf("%s: ReasonOf gives %q", r, ReasonOf(err))
		}
	}
	if got := NotRunning("MXYZ"); got != "Invocation received for actor MXYZ that is not running" {
		t.Errorf("NotRunning: %q", got)
	}
}

// The core labels take Rust's names (std::env::consts), not Go's.
func TestCoreLabels(t *testing.T) {
	for _, tc := range []struct{ goarch, goos, arch, os, family string }{
		{"amd64", "linux", "x86_64", "linux", "unix"},
		{"arm64", "darwin", "aarch64", "macos", "unix"},
		{"386", "windows", "x86", "windows", "windows"},
		{"ppc64le", "linux", "powerpc64", "linux", "unix"},
	} {
		got := CoreLabels(tc.goarch, tc.goos)
		if got[LabelArch] != tc.arch || got[LabelOS] != tc.os || got[LabelOSFamily] != tc.family || len(got) != 3 {
			t.Errorf("%s/%s: %v", tc.goos, tc.goarch, got)
		}
	}
	if err := ValidateLabelPut(nil, LabelOS); err == nil {
		t.Error("a core label may be put")
	}
}
