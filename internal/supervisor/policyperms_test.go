package supervisor

import (
	"slices"
	"strings"
	"testing"
)

// The host's control user may request decisions on the configured policy
// topic and follow its change notices; nothing else gains anything, and a
// topic with wildcards would widen the grant, so it is refused.
func TestHostCtlPermissionsIncludeThePolicySubjects(t *testing.T) {
	base := Scope{LatticePrefix: "default", PolicyTopic: "acme.policy", PolicyChangesTopic: "acme.policy.changes"}
	p, err := base.Permissions(RoleHostCtl)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.Pub.Allow, "acme.policy") || !slices.Contains(p.Sub.Allow, "acme.policy.changes") {
		t.Fatalf("host-ctl pub %v sub %v", p.Pub.Allow, p.Sub.Allow)
	}
	if slices.Contains(p.Sub.Allow, "acme.policy") || slices.Contains(p.Pub.Allow, "acme.policy.changes") {
		t.Fatalf("more than needed: pub %v sub %v", p.Pub.Allow, p.Sub.Allow)
	}
	rpc, err := base.Permissions(RoleHostRPC)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(rpc.Pub.Allow, rpc.Sub.Allow...) {
		if strings.HasPrefix(s, "acme.") {
			t.Fatalf("host-rpc got %s", s)
		}
	}
	none, _ := Scope{LatticePrefix: "default"}.Permissions(RoleHostCtl)
	if len(none.Pub.Allow) != len(p.Pub.Allow)-1 || len(none.Sub.Allow) != len(p.Sub.Allow)-1 {
		t.Fatalf("without a policy service: pub %v sub %v", none.Pub.Allow, none.Sub.Allow)
	}
	for _, bad := range []string{"acme.*", "acme.>", ">", "acme policy", "acme..policy"} {
		s := base
		s.PolicyTopic = bad
		if _, err := s.Permissions(RoleHostCtl); err == nil {
			t.Errorf("policy topic %q accepted", bad)
		}
	}
}
