package supervisor

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// nodeState is what a refused control request must leave as it was.
type nodeState struct {
	Labels    map[string]string
	Actors    map[string]int // key -> instances
	Providers []string       // ref/link
	Links     []string       // "id link-name values"
}

func (n *node) state(ctl lattice.Ctl) nodeState {
	n.t.Helper()
	var inv lattice.HostInventory
	n.ctlRequest(ctl.GetInventory(n.s.HostID()), nil, &inv)
	var links lattice.LinksList
	n.ctlRequest(ctl.GetLinks(), nil, &links)
	st := nodeState{Labels: inv.Labels, Actors: map[string]int{}}
	for _, a := range inv.Actors {
		st.Actors[a.ID] = len(a.Instances)
	}
	for _, p := range inv.Providers {
		st.Providers = append(st.Providers, p.ImageRef+"/"+p.LinkName)
	}
	for _, l := range links.Links {
		st.Links = append(st.Links, fmt.Sprintf("%s %s %v", l.ID, l.LinkName, l.Values))
	}
	return st
}

// Each request below was accepted before, and left a link, a label or an
// actor behind that could not work (or matched NATS wildcards). The host now
// refuses each with an error naming the rule, and nothing changes.
func TestCtlRefusesInvalidInputAndChangesNothing(t *testing.T) {
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	n := startNode(t, nil, "file://"+echo.Path)
	n.launch("builtin:httpserver", "default", "")
	n.waitProviderState("builtin:httpserver", "default", child.StateRunning)
	ctl := lattice.NewCtl("", n.cfg.LatticePrefix)
	host := n.s.HostID()
	httpKey := n.instance("builtin:httpserver", "default").key
	link := func(name string, values map[string]string) lattice.LinkDefinition {
		return lattice.LinkDefinition{ActorID: echo.Key, ProviderID: httpKey, ContractID: wire.ContractHTTPServer, LinkName: name, Values: values}
	}
	var ack lattice.Ack
	n.ctlRequest(ctl.LabelPut(host), lattice.LabelCommand{Key: "zone", Value: "eu"}, &ack)
	if !ack.Accepted {
		t.Fatalf("label zone: %s", ack.Error)
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := n.state(ctl).Actors[echo.Key]; n != 1 {
			return fmt.Errorf("echo has %d instances", n)
		}
		return nil
	})
	before := n.state(ctl)

	cases := []struct {
		name, subject string
		body          any
		want          string
	}{
		{"link name x.>", ctl.LinkdefsPut(), link("x.>", nil), `link name "x.>"`},
		{"link name a.b*>", ctl.LinkdefsPut(), link("a.b*>", nil), `link name "a.b*>"`},
		{"link name with a space", ctl.LinkdefsPut(), link("my link", nil), `link name "my link"`},
		{"link values differing in case", ctl.LinkdefsPut(), link("default", map[string]string{"PORT": "8080", "port": "9090"}), "differ only in case"},
		{"link delete x.>", ctl.LinkdefsDel(), link("x.>", nil), `link name "x.>"`},
		{"label key x.>", ctl.LabelPut(host), lattice.LabelCommand{Key: "x.>", Value: "v"}, `label key "x.>"`},
		{"label key a.b*>", ctl.LabelPut(host), lattice.LabelCommand{Key: "a.b*>", Value: "v"}, `label key "a.b*>"`},
		{"label key a..b", ctl.LabelPut(host), lattice.LabelCommand{Key: "a..b", Value: "v"}, "empty part"},
		{"label key differing in case", ctl.LabelPut(host), lattice.LabelCommand{Key: "Zone", Value: "us"}, `existing label "zone"`},
		{"start count -5", ctl.Cmd(host, lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + echo.Path, Count: -5}, "count -5"},
		{"stop count -5", ctl.Cmd(host, lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: echo.Key, Count: -5}, "count -5"},
		{"launch provider link name x.>", ctl.Cmd(host, lattice.CmdLaunchProvider), lattice.LaunchProviderCommand{ProviderRef: "builtin:keyvalue", LinkName: "x.>"}, `link name "x.>"`},
		{"stop provider link name a.b*>", ctl.Cmd(host, lattice.CmdStopProvider), lattice.StopProviderCommand{ProviderRef: "builtin:httpserver", LinkName: "a.b*>"}, `link name "a.b*>"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ack lattice.Ack
			n.ctlRequest(tc.subject, tc.body, &ack)
			if ack.Accepted || !strings.Contains(ack.Error, lattice.ErrInvalidRequest.Error()) || !strings.Contains(ack.Error, tc.want) {
				t.Fatalf("accepted=%v error %q, want a refusal naming %q", ack.Accepted, ack.Error, tc.want)
			}
			if after := n.state(ctl); !reflect.DeepEqual(after, before) {
				t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// A link change whose values cannot work (a port that is no number, a port
// another process holds) used to close the working listener first. The
// provider now keeps serving on the current link and says why it refused.
func TestHTTPServerKeepsItsListenerWhenALinkChangeCannotWork(t *testing.T) {
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	n := startNode(t, nil, "file://"+echo.Path)
	n.launch("builtin:httpserver", "default", "")
	n.waitProviderState("builtin:httpserver", "default", child.StateRunning)
	ctl := lattice.NewCtl("", n.cfg.LatticePrefix)
	httpKey := n.instance("builtin:httpserver", "default").key
	put := func(values map[string]string) {
		t.Helper()
		var ack lattice.Ack
		n.ctlRequest(ctl.LinkdefsPut(), lattice.LinkDefinition{ActorID: echo.Key, ProviderID: httpKey,
			ContractID: wire.ContractHTTPServer, LinkName: "default", Values: values}, &ack)
		if !ack.Accepted {
			t.Fatalf("link put %v: %s", values, ack.Error)
		}
	}
	port := strconv.Itoa(testenv.FreePort(t))
	url := "http://127.0.0.1:" + port + "/"
	get := func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	put(map[string]string{"port": port})
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, get)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	_, takenPort, _ := net.SplitHostPort(taken.Addr().String())

	cases := []struct {
		name   string
		values map[string]string
		log    string
	}{
		{"port is no number", map[string]string{"port": "abc"}, "link refused: its values cannot work"},
		{"port is taken", map[string]string{"port": takenPort}, "link refused; kept the current link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := strings.Count(n.logs.String(), tc.log)
			put(tc.values)
			testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
				if strings.Count(n.logs.String(), tc.log) == seen {
					return fmt.Errorf("the provider has not reported %q", tc.log)
				}
				return nil
			})
			if err := get(); err != nil {
				t.Fatalf("the working listener is gone after a bad change: %v", err)
			}
		})
	}
}
