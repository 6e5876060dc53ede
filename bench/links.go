package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/cachefill"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// runLinks is -only links (issue 24.1): control data of any size. On a real
// node (supervisor + host child, embedded NATS, cache on file), with the
// lattice cache filled to each of o.links link definitions in wasmCloud's
// format: the floor (a bare nats.go ordered read of the linkdefs subjects,
// counting messages), `ctl get links` in process (ctlclient.Links) and as
// the CLI process, and a provider's (re)start, which reads its links first;
// then the node's start with the largest cache against its start with none.
func runLinks(o options) error {
	return onlySection(o, func(tmp string, rep *Report) error {
		bin, err := buildLatticed(tmp)
		if err != nil {
			return err
		}
		return benchLinks(o, bin, tmp, rep)
	})
}

func benchLinks(o options, bin, tmp string, rep *Report) error {
	dir := filepath.Join(tmp, "linksnode")
	progress("links: starting a node with an empty cache")
	start := time.Now()
	n, err := startNode(bin, dir)
	if err != nil {
		return err
	}
	emptyStart := time.Since(start)
	defer func() { n.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return err
	}
	prefix := n.cfg.LatticePrefix
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	other, _ := trust.CreateKeyPair(lattice.KindService)
	httpProv, _ := builtin.Lookup("builtin:httpserver")
	// The provider's own link: one among all the others.
	own := lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: httpProv.Key(), LinkName: "default",
		ContractID: wire.ContractHTTPServer, Values: map[string]string{"port": strconv.Itoa(freePort())}}
	if err := n.ctl.PutLink(ctx, own); err != nil {
		return err
	}
	launch := func() (time.Duration, time.Duration, error) {
		t0 := time.Now()
		if err := n.sup.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: "builtin:httpserver", LinkName: "default"}); err != nil {
			return 0, 0, err
		}
		started := time.Since(t0)
		if err := n.waitProvider("builtin:httpserver", "default", "running", time.Minute); err != nil {
			return 0, 0, err
		}
		healthy := time.Since(t0)
		if err := n.sup.StopProvider(ctx, lattice.StopProviderCommand{ProviderRef: "builtin:httpserver", LinkName: "default"}); err != nil {
			return 0, 0, err
		}
		// Stopped instances leave the list; wait so the next launch is a fresh start.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if !slices.ContainsFunc(n.sup.Providers(), func(d lattice.ProviderDescription) bool { return d.ImageRef == "builtin:httpserver" }) {
				return started, healthy, nil
			}
		}
		return 0, 0, errors.New("provider not stopped within 1m")
	}
	floorStart, floorHealthy, err := medianLaunch(launch)
	if err != nil {
		return err
	}
	rep.Rows = append(rep.Rows,
		Row{Name: "links: provider launch -> process started, 1 link in the cache (floor)", Value: ms(floorStart), Unit: "ms"},
		Row{Name: "links: provider launch -> healthy, 1 link in the cache (floor)", Value: ms(floorHealthy), Unit: "ms"})

	written := 0
	for _, count := range o.links {
		progress("links: filling the cache to %d links", count)
		all := cachefill.Links(actor.PublicKey(), other.PublicKey(), count)
		if count > written {
			if err := cachefill.Put(ctx, js, prefix, all[written:]); err != nil {
				return err
			}
			written = count
		}
		total := written + 1
		// The host follows the cache live: measure once it has taken in
		// what was just written, not while it still burns CPU on it.
		if err := waitHostLinks(n.cfg.MetricsAddr, total, 5*time.Minute); err != nil {
			return err
		}
		floor, err := median3(func() error {
			got, err := rawRead(ctx, js, prefix)
			if err == nil && got != total {
				err = fmt.Errorf("raw read saw %d links, want %d", got, total)
			}
			return err
		})
		if err != nil {
			return err
		}
		getLinks, err := median3(func() error {
			links, err := n.ctl.Links(ctx)
			if err == nil && len(links) != total {
				err = fmt.Errorf("get links listed %d, want %d", len(links), total)
			}
			return err
		})
		if err != nil {
			return err
		}
		cli, err := median3(func() error { return cliGetLinks(bin, n.cfg, dir) })
		if err != nil {
			return err
		}
		started, healthy, err := medianLaunch(launch)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("%d links", total)
		floorName := "links: floor, raw ordered read of the linkdefs (" + label + ")"
		rep.Rows = append(rep.Rows,
			Row{Name: floorName, Value: ms(floor), Unit: "ms"},
			Row{Name: "links: get links, ctlclient.Links from the cache (" + label + ")", Value: ms(getLinks), Unit: "ms", Ratio: ratio(getLinks, floor), RatioTo: "raw read"},
			Row{Name: "links: latticed ctl get links --output json, whole process (" + label + ")", Value: ms(cli), Unit: "ms", Ratio: ratio(cli, floor), RatioTo: "raw read"},
			Row{Name: "links: provider launch -> process started, reads its links (" + label + ")", Value: ms(started), Unit: "ms", Ratio: ratio(started, floorStart), RatioTo: "1 link"},
			Row{Name: "links: provider launch -> healthy (" + label + ")", Value: ms(healthy), Unit: "ms", Ratio: ratio(healthy, floorHealthy), RatioTo: "1 link"},
		)
	}

	progress("links: restarting the node with %d links in its cache", written+1)
	n.stop()
	start = time.Now()
	n, err = startNode(bin, dir)
	if err != nil {
		return err
	}
	fullStart := time.Since(start)
	rep.Rows = append(rep.Rows,
		Row{Name: "links: node start -> ready, empty cache (floor)", Value: ms(emptyStart), Unit: "ms"},
		Row{Name: fmt.Sprintf("links: node start -> ready, %d links in the cache", written+1), Value: ms(fullStart), Unit: "ms", Ratio: ratio(fullStart, emptyStart), RatioTo: "empty cache"})
	return nil
}

// rawRead is the floor: what reading every link entry costs with nats.go
// alone (ordered consumer, last per subject, until nothing is pending), no
// decoding.
func rawRead(ctx context.Context, js jetstream.JetStream, prefix string) (int, error) {
	cons, err := js.OrderedConsumer(ctx, lattice.CacheStream(prefix), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{lattice.CacheLinkdefsFilter(prefix)}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			_ = js.DeleteConsumer(ctx, lattice.CacheStream(prefix), info.Name)
		}
	}()
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for n := 1; ; n++ {
		m, err := it.Next()
		if err != nil {
			return n, err
		}
		if meta, err := m.Metadata(); err != nil || meta.NumPending == 0 {
			return n, err
		}
	}
}

// cliGetLinks runs `latticed ctl get links --output json` against the node as its
// operator would on the same machine (admin credentials from the data dir);
// the output is collected in memory, not printed.
func cliGetLinks(bin string, cfg *config.Config, dir string) error {
	cmd := exec.Command(bin, "ctl", "get", "links", "--output", "json", "--timeout", "30s")
	cmd.Env = append(os.Environ(), config.EnvDataDir+"="+dir, config.EnvNATSListen+"="+cfg.NATSListen, "WASMCLOUD_LATTICE_PREFIX="+cfg.LatticePrefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("latticed ctl get links: %v: %.500s", err, out)
	}
	return nil
}

func median3(fn func() error) (time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[1], nil
}

func medianLaunch(launch func() (time.Duration, time.Duration, error)) (time.Duration, time.Duration, error) {
	var a, b []time.Duration
	for i := 0; i < 3; i++ {
		x, y, err := launch()
		if err != nil {
			return 0, 0, err
		}
		a, b = append(a, x), append(b, y)
	}
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return a[1], b[1], nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// waitHostLinks waits until the node's host reports want links in its
// lattice cache gauge (latticed_lattice_cache_entries, kind="links", as the
// node's merged scrape labels it component="host").
func waitHostLinks(metricsAddr string, want int, timeout time.Duration) error {
	last := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := probeClient.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			last = err.Error()
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		for _, l := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(l, "latticed_lattice_cache_entries{") || !strings.Contains(l, `kind="links"`) {
				continue
			}
			last = l
			if f := strings.Fields(l); len(f) == 2 && f[1] == strconv.Itoa(want) {
				return nil
			}
		}
	}
	return fmt.Errorf("the host did not report %d links within %s (last: %s)", want, timeout, last)
}
