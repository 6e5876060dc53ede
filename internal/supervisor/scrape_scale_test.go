package supervisor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/trust"
)

// envScrapeScale opts in to TestScrapeScale: it compiles 50 actor modules,
// minutes of CPU, so `make test` leaves it out.
const envScrapeScale = "LATTICED_TEST_SCRAPE_SCALE"

// Issue 8's figure: how long a scrape of the node's one /metrics takes, and
// how big it is, with 50 distinct actors (each invoked, so each has its
// series) and 5 provider processes merged in.
//
//	LATTICED_TEST_SCRAPE_SCALE=1 go test ./internal/supervisor -run TestScrapeScale -v -timeout 30m
func TestScrapeScale(t *testing.T) {
	if os.Getenv(envScrapeScale) == "" {
		t.Skipf("set %s=1 to run (builds a node with 50 actors and 5 providers)", envScrapeScale)
	}
	const nActors, nScrapes = 50, 20
	n := startNode(t, nil)
	dir := t.TempDir()
	actors := make([]testenv.SignedActor, nActors)
	for i := range actors {
		actors[i] = testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: fmt.Sprintf("echo%02d", i)})
	}
	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(4)
	for _, a := range actors {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(ctx, ctlStartTimeout)
			defer cancel()
			if err := n.s.startActor(ctx, "file://"+a.Path, 1); err != nil {
				return fmt.Errorf("start %s: %w", a.Key, err)
			}
			_, err := n.invokeEcho(ctx, a.Key, []byte("x"))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d actors started and invoked in %v", nActors, time.Since(start).Round(time.Millisecond))

	providers := []struct{ ref, link string }{
		{"builtin:httpserver", "default"}, {"builtin:httpserver", "h1"}, {"builtin:httpserver", "h2"},
		{"builtin:keyvalue", "default"}, {"builtin:keyvalue", "k1"},
	}
	for _, p := range providers {
		n.launch(p.ref, p.link, "")
	}
	var components []string
	for _, p := range providers {
		n.waitProviderState(p.ref, p.link, child.StateRunning)
		b, _ := builtin.Lookup(p.ref)
		components = append(components, providerComponent(b.Key(), p.link))
	}
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		s, _ := n.scrape()
		for _, c := range append(components, componentHost, componentSupervisor) {
			if v, _ := s.value("latticed_component_up", map[string]string{"component": c}); v != 1 {
				return fmt.Errorf("component %s not up in /metrics", c)
			}
		}
		if v, _ := s.value("latticed_actors_running", map[string]string{"component": componentHost}); v < nActors {
			return fmt.Errorf("latticed_actors_running = %v", v)
		}
		return nil
	})

	var took []time.Duration
	var last scrape
	for range nScrapes {
		s, d := n.scrape()
		took, last = append(took, d), s
	}
	slices.Sort(took)
	series := 0
	for _, f := range last.fams {
		series += len(f.Metric)
	}
	t.Logf("/metrics with %d actors and %d providers: %d bytes, %d families, %d series; %d scrapes: p50 %v, p90 %v, min %v, max %v",
		nActors, len(providers), len(last.text), len(last.fams), series, nScrapes,
		took[len(took)/2].Round(time.Microsecond), took[len(took)*9/10].Round(time.Microsecond),
		took[0].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
}
