package main

import (
	"context"
	"fmt"
	"time"

	"github.com/latticed/latticed/lattice"
)

// tinyEcho is the smallest wasmbus actor: a hand-assembled module of one
// 64 KiB page that answers every operation with its payload (no language
// runtime). It imports wasmbus.__guest_request and __guest_response and
// exports memory and __guest_call(op_len, msg_len) -> 1.
func tinyEcho() []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body ...[]byte) []byte {
		var b []byte
		for _, p := range body {
			b = append(b, p...)
		}
		return append([]byte{id, byte(len(b))}, b...)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	code := []byte{
		0x00,                               // no locals
		0x41, 0x00, 0x20, 0x00, 0x10, 0x00, // __guest_request(0, op_len): op at 0, payload after it
		0x20, 0x00, 0x20, 0x01, 0x10, 0x01, // __guest_response(op_len, msg_len)
		0x41, 0x01, 0x0b, // return 1 (success)
	}
	return cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		section(1, []byte{0x02, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}),
		section(2, []byte{0x02}, str("wasmbus"), str("__guest_request"), []byte{0x00, 0x00},
			str("wasmbus"), str("__guest_response"), []byte{0x00, 0x00}),
		section(3, []byte{0x01, 0x01}),
		section(5, []byte{0x01, 0x00, 0x01}),
		section(7, []byte{0x02}, str("__guest_call"), []byte{0x00, 0x02}, str("memory"), []byte{0x02, 0x00}),
		section(10, []byte{0x01, byte(len(code))}, code),
	)
}

// benchMemory measures the host child of a real node (VmRSS of the `latticed
// host` process the supervisor runs, by the pid in Supervisor.Status): idle,
// then for each actor the RSS the first instance adds (its compiled code
// included) and the extra RSS per instance when scaled 1 → 10 and 1 → 100.
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
	for _, a := range actors {
		base, err := settle()
		if err != nil {
			return err
		}
		started, err := n.ctl.StartActor(ctx, host, lattice.StartActorCommand{ActorRef: "file://" + a.path, Count: 1})
		if err != nil {
			return fmt.Errorf("start %s: %w", a.name, err)
		}
		rss := map[int]int64{}
		for _, count := range []int{1, 10, 100} {
			if count > 1 {
				if err := n.ctl.ScaleActor(ctx, host, lattice.ScaleActorCommand{ActorID: started.ActorID, ActorRef: "file://" + a.path, Count: count}); err != nil {
					return fmt.Errorf("scale %s to %d: %w", a.name, count, err)
				}
			}
			if err := n.waitInstances(ctx, started.ActorID, count); err != nil {
				return err
			}
			if rss[count], err = settle(); err != nil {
				return err
			}
		}
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
