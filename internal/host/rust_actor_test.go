package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// buildRustEcho compiles the Rust echo actor (wasmbuild.RustEcho) and
// returns the module exactly as rustc wrote it.
func buildRustEcho(t *testing.T) []byte {
	t.Helper()
	module, err := wasmbuild.RustEcho()
	if err != nil {
		t.Fatal(err)
	}
	return module
}

// checkRustABI asserts the module is a plain wasmbus actor: every import from
// module "wasmbus" (no WASI, nothing else), its own exported memory, and the
// two ABI exports with their signatures. It returns the imported names.
func checkRustABI(t *testing.T, module []byte) []string {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != abiModule {
			t.Errorf("import %s.%s is outside module %q", mod, name, abiModule)
		}
		if _, ok := abiFunctions[name]; !ok {
			t.Errorf("import %s.%s is not a wasmbus host function", mod, name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != len(abiFunctions) {
		t.Errorf("imports %v, want all %d wasmbus functions (the actor uses each)", names, len(abiFunctions))
	}
	if n := len(cm.ImportedMemories()); n != 0 {
		t.Errorf("module imports %d memories, want its own", n)
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		t.Error("module does not export memory")
	}
	i32s := func(n int) []api.ValueType { return bytes.Repeat([]api.ValueType{api.ValueTypeI32}, n) }
	for name, sig := range map[string][2][]api.ValueType{
		exportGuestCall:         {i32s(2), i32s(1)},
		"__wasmbus_rpc_version": {nil, i32s(1)},
	} {
		f, ok := cm.ExportedFunctions()[name]
		if !ok {
			t.Errorf("module does not export %s", name)
			continue
		}
		if !bytes.Equal(f.ParamTypes(), sig[0]) || !bytes.Equal(f.ResultTypes(), sig[1]) {
			t.Errorf("%s: params %v results %v, want %v %v", name, f.ParamTypes(), f.ResultTypes(), sig[0], sig[1])
		}
	}
	return names
}

// paddedSectionSizes counts top-level sections whose size LEB128 is longer
// than needed (some toolchains pad them to 5 bytes).
func paddedSectionSizes(t *testing.T, module []byte) (sections, padded int) {
	t.Helper()
	for rest := module[8:]; len(rest) > 0; sections++ {
		var size uint64
		i := 1
		for shift := 0; ; shift += 7 {
			if i >= len(rest) || i > 5 {
				t.Fatalf("bad section size at offset %d", len(module)-len(rest))
			}
			b := rest[i]
			i++
			size |= uint64(b&0x7f) << shift
			if b&0x80 == 0 {
				break
			}
		}
		minimal := 1
		for v := size >> 7; v > 0; v >>= 7 {
			minimal++
		}
		if i-1 > minimal {
			padded++
		}
		if uint64(len(rest)) < uint64(i)+size {
			t.Fatalf("section at offset %d runs past the end", len(module)-len(rest))
		}
		rest = rest[uint64(i)+size:]
	}
	return sections, padded
}

// padSectionSizes re-encodes every top-level section size as a five-byte
// LEB128, the way some toolchains (and wasm-ld for relocatable output) write them.
func padSectionSizes(t *testing.T, module []byte) []byte {
	t.Helper()
	out := append([]byte(nil), module[:8]...)
	for rest := module[8:]; len(rest) > 0; {
		var size uint32
		i := 1
		for shift := 0; ; shift += 7 {
			b := rest[i]
			i++
			size |= uint32(b&0x7f) << shift
			if b&0x80 == 0 {
				break
			}
		}
		out = append(out, rest[0],
			byte(size)|0x80, byte(size>>7)|0x80, byte(size>>14)|0x80, byte(size>>21)|0x80, byte(size>>28))
		out = append(out, rest[i:i+int(size)]...)
		rest = rest[i+int(size):]
	}
	return out
}

// TestRustActorRunsUnmodified proves that an actor built by the Rust toolchain
// for wasm32-unknown-unknown (no WASI), implementing the guest side of the
// wasmbus ABI the way wasmbus-rpc does, runs on this host as rustc wrote it.
func TestRustActorRunsUnmodified(t *testing.T) {
	module := buildRustEcho(t)
	imports := checkRustABI(t, module)
	sections, padded := paddedSectionSizes(t, module)
	t.Logf("rustecho.wasm: %d bytes, %d sections (%d with padded sizes), imports wasmbus.%s",
		len(module), sections, padded, strings.Join(imports, ", wasmbus."))

	// Claims: signed with a fresh account; the hash must verify.
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	modKey, _ := trust.CreateKeyPair(lattice.KindModule)
	caps := []string{wire.ContractHTTPServer, wire.ContractNumberGen}
	signed, _, err := trust.SignActor(module, trust.SignActorOptions{Name: "rustecho", Caps: caps, Ver: "0.1.0", Rev: 1}, acct, modKey)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := trust.VerifyActor(signed, time.Now())
	if err != nil {
		t.Fatalf("signed Rust module does not verify: %v", err)
	}
	hash, err := trust.ModuleHash(module)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != modKey.PublicKey() || claims.Issuer != acct.PublicKey() || claims.Wascap.Hash != hash ||
		strings.Join(claims.Wascap.Caps, ",") != strings.Join(caps, ",") {
		t.Fatalf("claims %+v %+v, want hash %s", claims, claims.Wascap, hash)
	}
	if padded == 0 && !bytes.HasPrefix(signed, module) {
		// Nothing to re-encode: the host must get rustc's bytes plus the jwt section.
		t.Fatal("signing changed the module's own bytes")
	}

	logs := &testenv.SyncBuffer{}
	t.Cleanup(func() { // runs after the host stopped
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	f := newFixture(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	path := filepath.Join(f.dir, "rustecho_s.wasm")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + path, Count: 1}, &ack)
	if !ack.Accepted {
		t.Fatalf("start Rust actor: %s", ack.Error)
	}
	key := modKey.PublicKey()

	t.Run("Echo.Echo", func(t *testing.T) {
		big := make([]byte, 100<<10)
		_, _ = rand.Read(big)
		for _, payload := range [][]byte{[]byte("hello from Go"), nil, big} {
			out, err := f.call(t, key, "Echo.Echo", payload)
			if err != nil || !bytes.Equal(out, payload) {
				t.Fatalf("echo of %d bytes: got %d bytes, err %v", len(payload), len(out), err)
			}
		}
	})

	t.Run("HttpServer.HandleRequest from an httpserver provider", func(t *testing.T) {
		provider, _ := trust.CreateKeyPair(lattice.KindService)
		origin := lattice.Entity{PublicKey: provider.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
		// Body sizes that make the actor's reply use bin8, bin16 and bin32.
		for _, n := range []int{0, 300, 70 << 10} {
			req, err := lattice.Marshal(wire.HTTPRequest{Method: "GET", Path: "/rust", Header: map[string][]string{}, Body: bytes.Repeat([]byte("r"), n)})
			if err != nil {
				t.Fatal(err)
			}
			data, _ := f.invocation(t, f.cluster, origin, key, wire.OpHTTPHandleRequest, req).Encode()
			resp := f.raw(t, lattice.RPCActor("test", key), data)
			if resp.Error != "" {
				t.Fatalf("body %d: %s", n, resp.Error)
			}
			var hr wire.HTTPResponse
			if err := lattice.Unmarshal(resp.Msg, &hr); err != nil {
				t.Fatalf("reply of body %d does not decode as HttpResponse: %v (% x)", n, err, resp.Msg[:min(len(resp.Msg), 32)])
			}
			if hr.StatusCode != 200 || len(hr.Header) != 0 || !bytes.Equal(hr.Body, req) {
				t.Fatalf("body %d: status %d header %v body %d bytes, want 200, {}, the %d request bytes", n, hr.StatusCode, hr.Header, len(hr.Body), len(req))
			}
		}
	})

	t.Run("HttpServer.HandleRequest of 5 MiB through the object store", func(t *testing.T) {
		// Above rpc.ChunkThreshold both ways: the request reaches the Rust
		// actor's linear memory from the object store, and its 5 MiB reply
		// goes back the same way (docs/protocol.md §3).
		provider, _ := trust.CreateKeyPair(lattice.KindService)
		origin := lattice.Entity{PublicKey: provider.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
		body := make([]byte, 5<<20)
		_, _ = rand.Read(body)
		req, err := lattice.Marshal(wire.HTTPRequest{Method: "POST", Path: "/large", Header: map[string][]string{}, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), origin, lattice.ActorEntity(key), lattice.RPCActor("test", key), wire.OpHTTPHandleRequest, req)
		if err != nil {
			t.Fatal(err)
		}
		var hr wire.HTTPResponse
		if err := lattice.Unmarshal(out, &hr); err != nil {
			t.Fatalf("5 MiB reply does not decode as HttpResponse: %v", err)
		}
		if hr.StatusCode != 200 || !bytes.Equal(hr.Body, req) {
			t.Fatalf("status %d, body of %d bytes, want 200 and the %d request bytes", hr.StatusCode, len(hr.Body), len(req))
		}
	})

	callHost := func(t *testing.T, namespace, operation string, body []byte) ([]byte, error) {
		t.Helper()
		return f.call(t, key, "Call.Host", append([]byte(namespace+"\n"+operation+"\n"), body...))
	}

	t.Run("Call.Host to a claimed builtin", func(t *testing.T) {
		out, err := callHost(t, wire.ContractNumberGen, wire.OpNumGenRandom32, nil)
		var n uint32
		if err != nil || lattice.Unmarshal(out, &n) != nil {
			t.Fatalf("Random32: % x %v", out, err)
		}
		arg, _ := lattice.Marshal(wire.RangeLimit{Min: 7, Max: 7})
		out, err = callHost(t, wire.ContractNumberGen, wire.OpNumGenRandomRange, arg)
		if err != nil || lattice.Unmarshal(out, &n) != nil || n != 7 {
			t.Fatalf("RandomInRange 7..7: % x (%d) %v", out, n, err)
		}
	})

	t.Run("Call.Host errors come back through __host_error", func(t *testing.T) {
		for _, ns := range []string{wire.ContractKeyValue, wire.ContractLogging} {
			_, err := callHost(t, ns, "X.Y", nil)
			want := "host call failed: Host call function failed: Invocation not authorized: missing capability claim for " + ns
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: got %v, want an error containing %q", ns, err, want)
			}
		}
		if _, err := callHost(t, "nobody", "X.Y", nil); err == nil || !strings.Contains(err.Error(), "host call failed: Host call function failed: Could not identify suitable target") {
			t.Fatalf("unknown target: %v", err)
		}
		// A failed host call leaves nothing behind for the next one.
		if out, err := callHost(t, wire.ContractNumberGen, wire.OpNumGenRandom32, nil); err != nil || len(out) == 0 {
			t.Fatalf("after a failed host call: % x %v", out, err)
		}
	})

	t.Run("Log.Console", func(t *testing.T) {
		line := fmt.Sprintf("console line %d from rustecho", time.Now().UnixNano())
		if out, err := f.call(t, key, "Log.Console", []byte(line)); err != nil || len(out) != 0 {
			t.Fatalf("%q %v", out, err)
		}
		testenv.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, line) && strings.Contains(l, "actor="+key) && strings.Contains(l, "source=console_log") {
					return nil
				}
			}
			return fmt.Errorf("no console_log line %q in the host log", line)
		})
	})

	t.Run("unsupported operation is a guest error", func(t *testing.T) {
		if _, err := f.call(t, key, "Nope.Nope", []byte("x")); err == nil || err.Error() != "unsupported operation" {
			t.Fatalf("got %v", err)
		}
		mustEcho(t, f, key) // the instance is still healthy
	})

	t.Run("padded section sizes", func(t *testing.T) {
		// rustc here writes minimal sizes; other builds pad them. The hash
		// must not depend on that, and a module that keeps its padding next
		// to the appended claims must verify and run.
		padded := padSectionSizes(t, module)
		if s, p := paddedSectionSizes(t, padded); p != s || bytes.Equal(padded, module) {
			t.Fatalf("padding failed: %d of %d sections padded", p, s)
		}
		if h, err := trust.ModuleHash(padded); err != nil || h != hash {
			t.Fatalf("hash of the padded module %s %v, want %s", h, err, hash)
		}
		key2, _ := trust.CreateKeyPair(lattice.KindModule)
		signed2, _, err := trust.SignActor(padded, trust.SignActorOptions{Name: "rustecho-padded"}, acct, key2)
		if err != nil {
			t.Fatal(err)
		}
		stripped, _ := trust.StripClaims(padded)
		kept := append(append([]byte(nil), padded...), signed2[len(stripped):]...) // padded module ‖ jwt section
		if _, err := trust.VerifyActor(kept, time.Now()); err != nil {
			t.Fatalf("padded module with claims appended: %v", err)
		}
		p := filepath.Join(f.dir, "rustecho_padded_s.wasm")
		if err := os.WriteFile(p, kept, 0o644); err != nil {
			t.Fatal(err)
		}
		var a lattice.Ack
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + p}, &a)
		if !a.Accepted {
			t.Fatalf("start padded module: %s", a.Error)
		}
		mustEcho(t, f, key2.PublicKey())
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: key2.PublicKey()}, &a)
		if !a.Accepted {
			t.Fatal(a.Error)
		}
	})

	t.Run("three instances", func(t *testing.T) {
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: key, Count: 3}, &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
		var inv lattice.HostInventory
		f.ctlRequest(t, f.ctl.GetInventory(f.h.ID()), nil, &inv)
		ids := map[string]bool{}
		for _, a := range inv.Actors {
			for _, in := range a.Instances {
				if a.ID == key {
					ids[in.InstanceID] = true
				}
			}
		}
		if len(ids) != 3 {
			t.Fatalf("inventory: %+v, want 3 instances of %s", inv.Actors, key)
		}

		// Concurrent calls: each gets its own answer from one of the three.
		const workers, each = 12, 10
		errs := make(chan error, workers*each)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					payload := []byte(fmt.Sprintf("worker %d call %d", w, i))
					data, _ := f.invocation(t, f.cluster, lattice.ActorEntity(key), key, "Echo.Echo", payload).Encode()
					msg, err := f.nc.Request(lattice.RPCActor("test", key), data, 10*time.Second)
					if err != nil {
						errs <- err
						continue
					}
					resp, err := lattice.DecodeInvocationResponse(msg.Data)
					switch {
					case err != nil:
						errs <- err
					case resp.Error != "" || !bytes.Equal(resp.Msg, payload):
						errs <- fmt.Errorf("%s: got %q, error %q", payload, resp.Msg, resp.Error)
					case !ids[resp.InstanceID]:
						errs <- fmt.Errorf("%s: answered by unknown instance %q", payload, resp.InstanceID)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		// A call that calls itself twice through __host_call holds all three
		// instances at once: guest → host → guest → host → guest.
		inner := key + "\nEcho.Echo\nthree deep"
		out, err := callHost(t, key, "Call.Host", []byte(inner))
		if err != nil || string(out) != "three deep" {
			t.Fatalf("nested host calls: %q %v", out, err)
		}
	})
}
