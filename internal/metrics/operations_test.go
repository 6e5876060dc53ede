package metrics

import (
	"fmt"
	"sync"
	"testing"
)

func TestOperationsLabel(t *testing.T) {
	o := NewOperations(2)
	for _, tc := range []struct {
		op   string
		ok   bool
		want string
	}{
		{"A.Fail", false, OperationOther}, // never answered: other
		{"A.Do", true, "A.Do"},            // answered: its own value
		{"A.Do", false, "A.Do"},           // and its failures too
		{OperationOther, true, OperationOther},
		{"B.Do", true, "B.Do"},
		{"C.Do", true, OperationOther}, // over the cap
		{"A.Fail", true, OperationOther},
		{"B.Do", false, "B.Do"},
	} {
		if got := o.Label(tc.op, tc.ok); got != tc.want {
			t.Errorf("Label(%q, %v) = %q, want %q", tc.op, tc.ok, got, tc.want)
		}
	}
}

// Concurrent first calls never admit more than the cap.
func TestOperationsLabelHammer(t *testing.T) {
	const max, goroutines, ops = 8, 16, 500
	o := NewOperations(max)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range ops {
				l := o.Label(fmt.Sprintf("Op%d", (i*goroutines+g)%(ops/2)), true)
				mu.Lock()
				seen[l] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != max+1 {
		t.Errorf("%d label values, want %d and %q", len(seen), max, OperationOther)
	}
}
