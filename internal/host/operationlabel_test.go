package host

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/trust"
)

const anyopPkg = "./internal/testing/actors/anyop"

// Invokers choose operation names, so the operation label must not follow
// them: 10,000 distinct made-up operations, sent to an actor that answers
// every one (the worst case) and to one that refuses them all, leave at most
// metrics.MaxOperations values per actor plus "other" on the host's real
// registry, and every call is still counted.
func TestMadeUpOperationsLeaveSeriesBounded(t *testing.T) {
	const calls = 10_000
	f := newFixture(t)
	anyop := f.startActor(t, anyopPkg, 4, trust.SignActorOptions{Name: "anyop"})
	echo := f.startActor(t, echoPkg, 4, trust.SignActorOptions{Name: "echo"})

	var failedAny, answeredEcho atomic.Int64
	var wg sync.WaitGroup
	ops := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ops {
				op := fmt.Sprintf("MadeUp.Op%05d", i)
				if out, err := f.call(t, anyop.Key, op, nil); err != nil || string(out) != op {
					failedAny.Add(1)
				}
				if _, err := f.call(t, echo.Key, op, nil); err == nil {
					answeredEcho.Add(1)
				}
			}
		})
	}
	for i := range calls {
		ops <- i
	}
	close(ops)
	wg.Wait()
	if n := failedAny.Load(); n != 0 {
		t.Fatalf("anyop failed %d of %d calls", n, calls)
	}
	if n := answeredEcho.Load(); n != 0 {
		t.Fatalf("echo answered %d made-up operations", n)
	}

	fams, err := f.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		actor      string
		wantLabels int     // distinct operation values
		wantOther  float64 // calls counted as "other" (result ok for anyop, error for echo)
	}{
		{anyop.Key, metrics.MaxOperations + 1, calls - metrics.MaxOperations},
		{echo.Key, 1, calls},
	} {
		labels := map[string]bool{}
		var total, other float64
		for _, fam := range fams {
			if fam.GetName() != "latticed_invocations_total" && fam.GetName() != "latticed_invocation_duration_seconds" {
				continue
			}
			for _, m := range fam.GetMetric() {
				l := labelMap(m)
				if l["actor"] != tc.actor {
					continue
				}
				labels[l["operation"]] = true
				if fam.GetName() == "latticed_invocations_total" {
					total += m.GetCounter().GetValue()
					if l["operation"] == metrics.OperationOther {
						other += m.GetCounter().GetValue()
					}
				}
			}
		}
		if len(labels) != tc.wantLabels {
			t.Errorf("actor %s: %d operation label values after %d made-up operations, want %d", tc.actor, len(labels), calls, tc.wantLabels)
		}
		if total != calls || other != tc.wantOther {
			t.Errorf("actor %s: counted %v calls (%v as other), want %d (%v)", tc.actor, total, other, calls, tc.wantOther)
		}
		t.Logf("actor %s: %d calls, %d operation label values, %v counted as %q", tc.actor, int(total), len(labels), other, metrics.OperationOther)
	}
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}
