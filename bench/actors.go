package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// echoActors are the actors most sections call: the Go echo example and a
// tiny hand-assembled echo, signed by one account.
type echoActors struct {
	echoPath, tinyPath string
	signed, unsigned   []byte // the Go echo module, with and without claims
	acct, mod, tinyKey *trust.KeyPair
}

func buildEchoActors(tmp string) (*echoActors, error) {
	progress("building the echo actor")
	a := &echoActors{echoPath: filepath.Join(tmp, "echo.wasm"), tinyPath: filepath.Join(tmp, "tiny.wasm")}
	if err := buildActor(echoPkg, a.echoPath); err != nil {
		return nil, err
	}
	var err error
	if a.unsigned, err = os.ReadFile(a.echoPath); err != nil {
		return nil, err
	}
	a.acct, _ = trust.CreateKeyPair(lattice.KindAccount)
	a.mod, _ = trust.CreateKeyPair(lattice.KindModule)
	// The HTTP capability lets the httpserver provider (and the provider-origin
	// rows) reach it.
	echoOpts := trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}}
	if a.signed, _, err = trust.SignActor(a.unsigned, echoOpts, a.acct, a.mod); err != nil {
		return nil, err
	}
	if err := os.WriteFile(a.echoPath, a.signed, 0o644); err != nil {
		return nil, err
	}
	a.tinyKey, _ = trust.CreateKeyPair(lattice.KindModule)
	tiny, _, err := trust.SignActor(wasmbuild.TinyEcho(), trust.SignActorOptions{Name: "tiny"}, a.acct, a.tinyKey)
	if err != nil {
		return nil, err
	}
	return a, os.WriteFile(a.tinyPath, tiny, 0o644)
}

// onlySection runs one -only section in a fresh temp dir and prints its rows.
func onlySection(o options, section func(tmp string, rep *Report) error) error {
	tmp, err := os.MkdirTemp("", "lbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rep := &Report{Time: time.Now().UTC(), Machine: machine()}
	if err := section(tmp, rep); err != nil {
		return err
	}
	return finishOnly(rep, o)
}

// runPaths is -only paths: the floors and the latticed path alone, the
// section to profile with -cpuprofile.
func runPaths(o options) error {
	return onlySection(o, func(tmp string, rep *Report) error {
		a, err := buildEchoActors(tmp)
		if err != nil {
			return err
		}
		f, err := newFloors(tmp, o.dur, rep, false)
		if err != nil {
			return err
		}
		defer f.close()
		o.pathsOnly = true
		return benchInProcess(context.Background(), o, tmp, a, f, rep)
	})
}

// onlyNodeSection is onlySection for the sections that run a real node:
// it builds the demo actors and the latticed binary first.
func onlyNodeSection(o options, section func(tmp, bin string, a *echoActors, rep *Report) error) error {
	return onlySection(o, func(tmp string, rep *Report) error {
		a, err := buildEchoActors(tmp)
		if err != nil {
			return err
		}
		bin, err := buildLatticed(tmp)
		if err != nil {
			return err
		}
		return section(tmp, bin, a, rep)
	})
}

// runColdStart is -only coldstart: latticed up to the first echo reply.
func runColdStart(o options) error {
	return onlyNodeSection(o, func(tmp, bin string, a *echoActors, rep *Report) error {
		return benchColdStart(bin, tmp, a.echoPath, rep)
	})
}

// runMemory is -only memory: the host child's RSS rows on a real node.
func runMemory(o options) error {
	return onlyNodeSection(o, func(tmp, bin string, a *echoActors, rep *Report) error {
		n, err := startNode(bin, filepath.Join(tmp, "node"))
		if err != nil {
			return err
		}
		defer n.stop()
		return benchMemory(context.Background(), n, []struct{ name, path string }{{"tiny wat echo", a.tinyPath}, {"Go echo", a.echoPath}}, rep)
	})
}

// sections are what -only runs.
var sections = map[string]func(options) error{
	"paths": runPaths, "node": runNodePaths, "http": runHTTPPath, "crossnode": runCrossNode, "coldstart": runColdStart,
	"memory": runMemory, "revocations": runRevocationCurve, "links": runLinks, "bytes": runBytes,
}

// sectionNames lists what -only accepts, for its help and its error.
func sectionNames() string {
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// runOnly runs one section (-only) and prints its rows.
func runOnly(section string, o options) error {
	run, ok := sections[section]
	if !ok {
		return fmt.Errorf("-only %q: the sections that run alone are: %s", section, sectionNames())
	}
	return run(o)
}

// compiledCount is how many actor modules a node has finished compiling
// (or loaded from its compilation cache), from its /metrics: the
// latticed_actor_start_duration_seconds observations of phase compile or
// cached. An actor started interpreted counts once the compiler is done.
func compiledCount(metricsAddr string) (int, error) {
	resp, err := probeClient.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "latticed_actor_start_duration_seconds_count{") ||
			!(strings.Contains(line, `phase="compile"`) || strings.Contains(line, `phase="cached"`)) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += int(v)
	}
	return total, nil
}

// waitCompiled waits until the node has compiled want actor modules, so that
// a measurement sees steady state: compiled code, no compile burning CPU.
func waitCompiled(metricsAddr string, want int) error {
	return waitFor(5*time.Minute, func() error {
		n, err := compiledCount(metricsAddr)
		if err != nil {
			return err
		}
		if n < want {
			return fmt.Errorf("%d of %d actor modules compiled", n, want)
		}
		return nil
	})
}
