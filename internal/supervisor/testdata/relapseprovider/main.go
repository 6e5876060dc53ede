// Command relapseprovider is a provider written with the real provider SDK
// for the supervisor's health-check tests. Its first run answers one health
// check as healthy and every later one as unhealthy, so the supervisor
// kills it; every later run is healthy throughout. The runs are told apart
// by a marker file named in config_json:
//
//	{"marker": "/tmp/…/ran"}
//
// Each health check is logged ("health check answered", with run and
// healthy), so a test can count the checks a run passed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

type settings struct {
	Marker string `json:"marker"`
}

// relapse is the capability: it serves nothing but its health.
type relapse struct {
	first  bool // this is the first run: relapse after one healthy answer
	checks atomic.Int64
	p      atomic.Pointer[provider.Provider]
}

func (r *relapse) Contract() string { return "latticed:test-relapse" }

func (r *relapse) Start(_ context.Context, p *provider.Provider) error {
	r.p.Store(p)
	return nil
}

func (r *relapse) PutLink(context.Context, lattice.LinkDefinition) error    { return nil }
func (r *relapse) DeleteLink(context.Context, lattice.LinkDefinition) error { return nil }
func (r *relapse) Close(context.Context) error                              { return nil }

func (r *relapse) Handle(_ context.Context, call provider.Call) ([]byte, error) {
	return nil, provider.UnknownOperation(r.Contract(), call.Operation)
}

// Health is healthy except on the first run after its first answer.
func (r *relapse) Health(context.Context) error {
	n := r.checks.Add(1)
	var err error
	if r.first && n > 1 {
		err = errors.New("relapsed (first run)")
	}
	if p := r.p.Load(); p != nil {
		run := "later"
		if r.first {
			run = "first"
		}
		p.Logger().Info("health check answered", "run", run, "check", n, "healthy", err == nil)
	}
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	hd, err := provider.ReadHostData(os.Stdin)
	if err != nil {
		return err
	}
	var cfg settings
	if err := json.Unmarshal([]byte(hd.ConfigJSON), &cfg); err != nil || cfg.Marker == "" {
		return fmt.Errorf("config_json must name a marker file: %q (%v)", hd.ConfigJSON, err)
	}
	// O_EXCL: exactly one run, the first, creates the marker.
	f, err := os.OpenFile(cfg.Marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	first := err == nil
	if first {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	p, err := provider.New(provider.Config{HostData: *hd}, &relapse{first: first})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return p.Run(ctx)
}
