package main

import (
	"context"
	"fmt"
	"time"

	"github.com/latticed/latticed/lattice"
)

// benchMemory measures the host child of a real node (VmRSS of the `latticed
// host` process the supervisor runs, by the pid in Supervisor.Status): idle,
// then for each actor the RSS the first instance adds (its compiled code
// included), the extra RSS per instance when scaled 1 → 10 and 1 → 100, and
// the RSS at 64 instances and 30 s after scaling back to 1.
// The supervisor itself runs inside the bench process, whose RSS would
// include the bench, so it is not reported.
func benchMemory(ctx context.Context, n *node, actors []struct{ name, path string }, rep *Report) error {
	settle := func() (int64, error) {
		time.Sleep(time.Second) // let the child's allocator settle
		return n.hostRSS()
	}
	idle, err := settle()
	if err != nil {
		return err
	}
	rep.Rows = append(rep.Rows, Row{Name: "memory: host child RSS, idle (no actors)", Value: float64(idle) / 1024, Unit: "MiB"})
	host := n.sup.HostID()
	for i, a := range actors {
		base, err := settle()
		if err != nil {
			return err
		}
		started, err := n.ctl.StartActor(ctx, host, lattice.StartActorCommand{ActorRef: "file://" + a.path, Count: 1})
		if err != nil {
			return fmt.Errorf("start %s: %w", a.name, err)
		}
		if err := waitCompiled(n.cfg.MetricsAddr, i+1); err != nil {
			return fmt.Errorf("start %s: %w", a.name, err)
		}
		rss := map[int]int64{}
		// Scaling up goes in steps of at most scaleStep instances: the host
		// replies once the instances run, and on a loaded machine 50 Go
		// instances take longer than the control request's 5 s.
		current := 1
		scale := func(count int) error {
			for current != count {
				next := count
				if count > current+scaleStep {
					next = current + scaleStep
				}
				if err := n.ctl.ScaleActor(ctx, host, lattice.ScaleActorCommand{ActorID: started.ActorID, ActorRef: "file://" + a.path, Count: next}); err != nil {
					return fmt.Errorf("scale %s to %d: %w", a.name, next, err)
				}
				if err := n.waitInstances(ctx, started.ActorID, next); err != nil {
					return err
				}
				current = next
			}
			return nil
		}
		// 1 -> 10 -> 64, back to 1 for 30 s (issue 24.3: the memory of
		// instances scaled away must come back), then 100.
		var after int64
		for _, count := range []int{1, 10, 64, 1, 100} {
			if err := scale(count); err != nil {
				return err
			}
			if count == 1 && rss[64] > 0 {
				time.Sleep(memoryReturnWait)
				if after, err = n.hostRSS(); err != nil {
					return err
				}
				continue
			}
			if rss[count], err = settle(); err != nil {
				return err
			}
		}
		extra := rss[64] - rss[1]
		rep.Rows = append(rep.Rows,
			Row{Name: fmt.Sprintf("memory: host child RSS with %s x64", a.name), Value: float64(rss[64]) / 1024, Unit: "MiB"},
			Row{Name: fmt.Sprintf("memory: host child RSS %s after %s x64 -> 1", memoryReturnWait, a.name), Value: float64(after) / 1024, Unit: "MiB"},
			Row{Name: fmt.Sprintf("memory: %s, share of the x64 extra RSS returned %s after -> 1 (goal >= 75%%)", a.name, memoryReturnWait), Value: 100 * float64(rss[64]-after) / float64(max(extra, 1)), Unit: "%"})
		rep.Rows = append(rep.Rows,
			Row{Name: fmt.Sprintf("memory: %s, 1st instance incl. compiled code (host RSS delta)", a.name), Value: float64(rss[1]-base) / 1024, Unit: "MiB"},
			Row{Name: fmt.Sprintf("memory: %s, extra RSS per instance 1 -> 10", a.name), Value: float64(rss[10]-rss[1]) / 9, Unit: "KiB"},
			Row{Name: fmt.Sprintf("memory: %s, extra RSS per instance 1 -> 100", a.name), Value: float64(rss[100]-rss[1]) / 99, Unit: "KiB"},
			Row{Name: fmt.Sprintf("memory: host child RSS with %s x100", a.name), Value: float64(rss[100]) / 1024, Unit: "MiB"})
		if err := n.ctl.StopActor(ctx, host, started.ActorID, 0); err != nil {
			return err
		}
		if err := n.waitInstances(ctx, started.ActorID, 0); err != nil {
			return err
		}
	}
	return nil
}

// scaleStep is the most instances one scale request adds in the memory rows.
const scaleStep = 16

// memoryReturnWait is how long after scaling 64 -> 1 the host's RSS is read
// (issue 24.3's goal: >= 75% of the extra returned by then).
const memoryReturnWait = 30 * time.Second

// waitInstances polls the host's inventory until actor runs count instances.
func (n *node) waitInstances(ctx context.Context, actor string, count int) error {
	deadline := time.Now().Add(2 * time.Minute)
	got := -1
	for time.Now().Before(deadline) {
		inv, err := n.ctl.Inventory(ctx, n.sup.HostID())
		if err == nil {
			got = 0
			for _, a := range inv.Actors {
				if a.ID == actor {
					got = len(a.Instances)
				}
			}
			if got == count {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the host's inventory
	}
	return fmt.Errorf("actor %s: %d instances, want %d", actor, got, count)
}
