// Package providermain is the main function of a standalone provider
// executable: HostData on stdin, SIGTERM/SIGINT stop it, exit status 0
// after a graceful shutdown, 1 on failure, 2 when stdin holds no HostData
// (as `latticed provider <name>`).
package providermain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// Run serves c until the host stops it and returns the exit status.
func Run(c provider.Capability) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Traces as `latticed provider <name>` does: service latticed-<name>.
	_, name, _ := strings.Cut(c.Contract(), ":")
	stopTracing, err := telemetry.Setup(ctx, os.LookupEnv, telemetry.ServiceProviderPrefix+name, "", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		return 2
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	err = provider.Run(ctx, os.Stdin, c, provider.WithLogOutput(os.Stderr))
	switch {
	case err == nil:
		return 0
	case errors.Is(err, lattice.ErrHostData):
		fmt.Fprintf(os.Stderr, "%s: %v (a host starts providers and writes HostData on their stdin)\n", os.Args[0], err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
	return 1
}
