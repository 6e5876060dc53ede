package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/latticed/latticed/internal/config"
)

// EmbeddedNATS describes the server a lattice of one runs for itself.
type EmbeddedNATS struct {
	Listen     string // host:port; must be loopback unless the operator says otherwise
	StoreDir   string // JetStream store
	MaxPayload int32
	// ProviderCredsLifetime is how long the provider users the returned
	// Authority mints are valid (renewed while healthy); 0: they never
	// expire, and their revocations are never pruned.
	ProviderCredsLifetime time.Duration
	// Operator, when set, runs the server in operator/JWT mode with these
	// keys as its trust chain; StartOperatorNATS sets it.
	Operator *OperatorKeys
	resolver *server.MemAccResolver
	jwts     operatorJWTs
}

// ProfileLabel is the CPU profiler label every goroutine of an embedded
// server carries (StartNATS): "operator" for the node's operator-mode
// server, "embedded" for a plain one.
const ProfileLabel = "nats-server"

// errAddrInUse is returned (wrapped) by checkListen when another process
// holds the address.
var errAddrInUse = errors.New("address already in use")

// checkListen reports whether this process can listen on addr (host:port)
// right now, by binding it and letting it go. `latticed up` calls it for
// the embedded NATS and metrics addresses before it creates any key, so a
// taken port fails in milliseconds and leaves the data dir untouched,
// instead of after nats-server's start timeout. what names the setting in
// the error, e.g. config.EnvNATSListen.
func checkListen(addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s %s: %w by another process (stop it or set %s to a free address)", what, addr, errAddrInUse, what)
		}
		return fmt.Errorf("%s %s: %w", what, addr, err)
	}
	return ln.Close()
}

// StartNATS starts an embedded nats-server with JetStream and waits until it
// accepts connections. Callers Shutdown it.
func StartNATS(e EmbeddedNATS) (*server.Server, error) {
	// nats-server reports a failed listen only in its log and then never
	// becomes ready: check first, so a taken port fails at once.
	if err := checkListen(e.Listen, config.EnvNATSListen); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	host, portStr, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", e.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("JetStream store %s: %w", e.StoreDir, err)
	}
	opts := &server.Options{
		ServerName: "latticed-embedded",
		Host:       host, Port: port,
		JetStream: true, StoreDir: e.StoreDir,
		NoSigs: true, NoLog: true,
		MaxPayload: e.MaxPayload,
	}
	if e.Operator != nil {
		opts.TrustedOperators = []*jwt.OperatorClaims{e.jwts.operator}
		opts.SystemAccount = e.Operator.System.pub
		opts.AccountResolver = e.resolver
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	// Start returns once the server listens (it does not block:
	// nats-server's Server.Start documentation); started in a goroutine,
	// ReadyForConnections would find it not ready yet and poll in 25 ms
	// sleeps, adding up to 25 ms to every start. The check stays for a
	// listener that failed.
	//
	// Started under a profiler label, which every goroutine of the server
	// inherits (its accept loop and each connection's read and write
	// loops): a CPU profile of the supervisor (LATTICED_CPUPROFILE_DIR) then
	// tells the embedded server's CPU from the rest with `go tool pprof
	// -tagfocus nats-server=operator` (or -tagignore). Labels cost nothing
	// per message: they are copied once, when a goroutine starts.
	mode := "embedded"
	if e.Operator != nil {
		mode = "operator"
	}
	pprof.Do(context.Background(), pprof.Labels(ProfileLabel, mode), func(context.Context) { s.Start() })
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s within 15s (is the port in use? set LATTICED_NATS_LISTEN)", e.Listen)
	}
	return s, nil
}

// CheckAddrs checks that the addresses `latticed up` will listen on with
// set are free: the embedded NATS server's (when no NATS is configured)
// and the metrics endpoint's. Run it before creating keys or files.
func CheckAddrs(set config.SupervisorSettings) error {
	if set.NATS.Endpoints.Embedded {
		if err := checkListen(set.NATS.Listen, config.EnvNATSListen); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
	}
	if err := checkListen(set.Health.MetricsAddr, config.EnvMetricsAddr); err != nil {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	return nil
}
