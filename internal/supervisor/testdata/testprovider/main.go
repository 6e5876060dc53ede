// Command testprovider is a minimal wasmCloud-style provider for the
// supervisor's tests. It reads HostData from stdin, connects with the
// credentials in it, serves its invocation, health and shutdown subjects,
// and logs JSON lines on stderr. config_json steers it:
//
//	{"mode": "crash", "exit_code": 3}   exit at once
//	{"mode": "hang_shutdown"}            acknowledge shutdown but keep running
//	{"mode": "unhealthy"}                answer health checks with healthy=false
//	{"delay_ms": 300}                    answer invocations after this delay
//	{"probe": ["wasmbus.ctl.>"]}         try to subscribe, log what the server says
package main

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

type settings struct {
	Mode     string   `json:"mode"`
	ExitCode int      `json:"exit_code"`
	DelayMS  int      `json:"delay_ms"`
	Probe    []string `json:"probe"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err != nil {
		log.Error("no host data", "err", err)
		os.Exit(2)
	}
	hd, err := lattice.DecodeHostData(line)
	if err != nil {
		log.Error("bad host data", "err", err)
		os.Exit(2)
	}
	var cfg settings
	if hd.ConfigJSON != "" {
		_ = json.Unmarshal([]byte(hd.ConfigJSON), &cfg)
	}
	if cfg.Mode == "crash" {
		log.Error("crashing as configured", "exit_code", cfg.ExitCode)
		os.Exit(cfg.ExitCode)
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "WASMCLOUD_") || strings.HasPrefix(name, "LATTICED_") {
			env = append(env, name)
		}
	}
	log.Info("provider starting", "instance_id", hd.InstanceID, "links", len(hd.LinkDefinitions), "lattice_env", env,
		"rpc_timeout_ms", hd.DefaultRPCTimeoutMS, "cluster_issuers", strings.Join(hd.ClusterIssuers, ","), "log_level", hd.LogLevel)

	shutdown := make(chan struct{}, 1)
	url := "nats://" + hd.LatticeRPCURL
	// No credential renewal here: that is the provider SDK's (package
	// provider), tested on the built-in providers. With short-lived
	// credentials this fixture is cut off when its JWT expires.
	auth := func(*nats.Options) error { return nil } // no credentials: an open server
	if hd.LatticeRPCUserSeed != "" {
		auth = nats.UserJWTAndSeed(hd.LatticeRPCUserJWT, hd.LatticeRPCUserSeed)
	}
	var nc *nats.Conn
	nc, err = nats.Connect(url, auth,
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reconnected") }),
		nats.Name("testprovider "+hd.ProviderKey+"/"+hd.LinkName),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats error", "err", err.Error()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("disconnected", "err", errString(err)) }),
		nats.ClosedHandler(func(*nats.Conn) { log.Warn("connection closed") }))
	if err != nil {
		log.Error("connect failed", "err", err)
		os.Exit(1)
	}
	base := lattice.RPCProvider(hd.LatticeRPCPrefix, hd.ProviderKey, hd.LinkName)
	must := func(_ *nats.Subscription, err error) {
		if err != nil {
			log.Error("subscribe failed", "err", err)
			os.Exit(1)
		}
	}
	must(nc.Subscribe(base, func(m *nats.Msg) {
		go func() {
			inv, err := lattice.DecodeInvocation(m.Data)
			if err != nil {
				return
			}
			log.Info("invocation received", "operation", inv.Operation)
			time.Sleep(time.Duration(cfg.DelayMS) * time.Millisecond)
			b, _ := (&lattice.InvocationResponse{InvocationID: inv.ID, Msg: inv.Msg}).Encode()
			_ = m.Respond(b)
		}()
	}))
	must(nc.Subscribe(lattice.RPCHealth(hd.LatticeRPCPrefix, hd.ProviderKey, hd.LinkName), func(m *nats.Msg) {
		b, _ := lattice.Marshal(lattice.HealthCheckResponse{Healthy: cfg.Mode != "unhealthy", Message: cfg.Mode})
		_ = m.Respond(b)
	}))
	must(nc.Subscribe(lattice.RPCShutdown(hd.LatticeRPCPrefix, hd.ProviderKey, hd.LinkName), func(m *nats.Msg) {
		log.Info("shutdown received", "body", string(m.Data))
		_ = m.Respond([]byte("{}"))
		_ = nc.Flush()
		if cfg.Mode != "hang_shutdown" {
			shutdown <- struct{}{}
		}
	}))
	must(nc.Subscribe(lattice.RPCLinkdefPut(hd.LatticeRPCPrefix, hd.ProviderKey, hd.LinkName), func(m *nats.Msg) {
		log.Info("link definition received")
	}))
	if err := nc.Flush(); err != nil {
		log.Error("flush failed", "err", err)
		os.Exit(1)
	}
	for _, subj := range cfg.Probe {
		_, _ = nc.SubscribeSync(subj)
		_ = nc.Flush()
		if err := nc.LastError(); err != nil {
			log.Info("probe", "subject", subj, "err", err.Error())
		}
	}
	log.Info("provider ready", "user_connected", nc.IsConnected())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-shutdown:
		_ = nc.Drain()
		log.Info("provider stopped after shutdown")
	case s := <-sig:
		log.Info("provider stopped by signal", "signal", s.String())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
