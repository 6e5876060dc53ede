package oci

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/latticed/latticed/internal/testing/testenv"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		ref         string
		allowLatest bool
		want        string
		err         error
	}{
		{"localhost:5000/echo:0.1.0", false, "localhost:5000/echo:0.1.0", nil},
		{"Registry.Example.com/Team/Echo:V1", false, "registry.example.com/team/echo:v1", nil},
		{"localhost:5000/echo:latest", false, "", ErrLatestRefused},
		{"localhost:5000/echo", false, "", ErrLatestRefused},
		{"localhost:5000/echo", true, "localhost:5000/echo:latest", nil},
		{"localhost:5000/echo:latest", true, "localhost:5000/echo:latest", nil},
		{"localhost:5000/echo@sha256:" + strings.Repeat("ab", 32), false, "localhost:5000/echo@sha256:" + strings.Repeat("ab", 32), nil},
		{"file:///tmp/echo.wasm", false, "", ErrNotReference},
		{"/tmp/echo.wasm", false, "", ErrNotReference},
		{"./echo.wasm", false, "", ErrNotReference},
		{"echo.wasm", false, "", ErrNotReference},
		{"builtin:httpserver", false, "", ErrNotReference},
		{"https://localhost:5000/echo:1", false, "", ErrNotReference},
		{"testdata/echo.wasm", false, "", ErrNotReference},
		{"actors/echo:1", false, "", ErrNotReference},
		{"localhost/echo:1", false, "localhost/echo:1", nil},
		{"bin/providers/httpserver.par.gz", false, "", ErrNotReference},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			r, err := ParseReference(tc.ref, tc.allowLatest)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && r.String() != tc.want {
				t.Fatalf("got %s, want %s", r.String(), tc.want)
			}
		})
	}
}

func newClient(t testing.TB, reg string, s Settings) *Client {
	t.Helper()
	if s.CacheDir == "" {
		s.CacheDir = t.TempDir()
	}
	s.AllowedInsecure = append(s.AllowedInsecure, reg)
	return New(s)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// A pushed artifact has wash's shape, pulls back byte for byte, and a second
// pull of the same tag comes from the digest cache.
func TestPushThenPullUsesWashMediaTypesAndTheDigestCache(t *testing.T) {
	reg := testenv.Registry(t, nil)
	ctx := context.Background()
	c := newClient(t, reg, Settings{})
	for _, tc := range []struct {
		kind                  Kind
		ref, layer, configTyp string
	}{
		{Actor, reg + "/echo:0.1.0", MediaTypeActorLayer, MediaTypeActorConfig},
		{ProviderArchive, reg + "/httpserver:0.1.0", MediaTypeProviderLayer, MediaTypeProviderConfig},
	} {
		module := randomBytes(t, 256<<10)
		mdesc, err := c.Push(ctx, tc.ref, tc.kind, module, false)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := ParseReference(tc.ref, false)
		raw, err := c.repository(r, true).Fetch(ctx, mdesc)
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		if err := json.NewDecoder(raw).Decode(&m); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != tc.configTyp || len(m.Layers) != 1 || m.Layers[0].MediaType != tc.layer {
			t.Fatalf("%s manifest: %+v", tc.kind, m)
		}
		cold, err := c.Pull(ctx, tc.ref, tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		if cold.Cached || !bytes.Equal(cold.Data, module) || cold.Digest != mdesc.Digest {
			t.Fatalf("cold pull: cached %v, digest %s want %s", cold.Cached, cold.Digest, mdesc.Digest)
		}
		warm, err := c.Pull(ctx, tc.ref, tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		if !warm.Cached || !bytes.Equal(warm.Data, module) {
			t.Fatalf("second pull not from the cache")
		}
	}
	// An actor is not a provider archive.
	if _, err := c.Pull(ctx, reg+"/echo:0.1.0", ProviderArchive); err == nil || !strings.Contains(err.Error(), "no provider archive layer") {
		t.Fatalf("kind mismatch: %v", err)
	}
	// Cached blobs are private and named by digest.
	err := filepath.WalkDir(c.s.CacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A blob damaged in the cache is fetched again, not used.
func TestDamagedCacheEntryIsRefetched(t *testing.T) {
	reg := testenv.Registry(t, nil)
	ctx := context.Background()
	c := newClient(t, reg, Settings{})
	data := randomBytes(t, 4096)
	if _, err := c.Push(ctx, reg+"/a:1", Actor, data, false); err != nil {
		t.Fatal(err)
	}
	a, err := c.Pull(ctx, reg+"/a:1", Actor)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.cache.path(a.LayerDigest)
	if err := os.WriteFile(p, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := c.Pull(ctx, reg+"/a:1", Actor)
	if err != nil || b.Cached || !bytes.Equal(b.Data, data) {
		t.Fatalf("pull after damage: cached %v err %v", b != nil && b.Cached, err)
	}
}

// Registry credentials arrive with registries.put; without them a
// protected registry refuses.
func TestCredentialsFromRegistriesPut(t *testing.T) {
	login := &testenv.RegistryLogin{Username: "lattice", Password: "s3cret-" + t.Name()}
	reg := testenv.Registry(t, login)
	ctx := context.Background()
	c := newClient(t, reg, Settings{})
	if _, err := c.Push(ctx, reg+"/a:1", Actor, []byte("x"), false); err == nil || !strings.Contains(err.Error(), "credential") {
		t.Fatalf("push without credentials: %v", err)
	}
	var creds map[string]Credential
	if err := json.Unmarshal([]byte(`{"`+reg+`":{"registryType":"oci","username":"lattice","password":"`+login.Password+`"}}`), &creds); err != nil {
		t.Fatal(err)
	}
	if n := c.PutCredentials(creds); n != 1 {
		t.Fatalf("applied %d", n)
	}
	if _, err := c.Push(ctx, reg+"/a:1", Actor, []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctx, reg+"/a:1", Actor); err != nil {
		t.Fatal(err)
	}
}

// HTTPS is the default: a plain-HTTP registry not listed as insecure fails
// with a hint naming the setting.
func TestPlainHTTPOnlyForListedRegistries(t *testing.T) {
	reg := testenv.Registry(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := New(Settings{CacheDir: t.TempDir()})
	_, err := c.Pull(ctx, reg+"/a:1", Actor)
	if err == nil || !strings.Contains(err.Error(), "WASMCLOUD_OCI_ALLOWED_INSECURE") {
		t.Fatalf("pull over HTTPS from a plain-HTTP registry: %v", err)
	}
}

// TestPullTime logs what an actor pull costs from the local registry, cold
// and from the digest cache (the figure in the issue #12 note).
func TestPullTime(t *testing.T) {
	reg := testenv.Registry(t, nil)
	ctx := context.Background()
	data := randomBytes(t, 3<<20) // the size of a TinyGo/Go actor module
	push := newClient(t, reg, Settings{})
	if _, err := push.Push(ctx, reg+"/timed:1", Actor, data, false); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var cold, warm time.Duration
	for i := 0; i < n; i++ {
		c := newClient(t, reg, Settings{}) // fresh cache dir: cold
		a, err := c.Pull(ctx, reg+"/timed:1", Actor)
		if err != nil || a.Cached {
			t.Fatalf("cold pull: %v", err)
		}
		cold += a.Took
		b, err := c.Pull(ctx, reg+"/timed:1", Actor)
		if err != nil || !b.Cached {
			t.Fatalf("warm pull: %v", err)
		}
		warm += b.Took
	}
	t.Logf("pull of a %d MiB actor from a loopback registry, mean of %d: cold %v, digest cache %v",
		len(data)>>20, n, (cold / n).Round(10*time.Microsecond), (warm / n).Round(10*time.Microsecond))
}
