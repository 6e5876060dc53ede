package oci

import (
	"context"
	"os"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/trust"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.CleanupBuilds()
	os.Exit(code)
}

// BenchmarkPullActor pulls the signed echo actor from a loopback registry:
// cold (empty digest cache: resolve, manifest, layer) and cached (resolve
// the tag; manifest and layer from the cache, digests re-verified).
func BenchmarkPullActor(b *testing.B) {
	reg := testenv.Registry(b, nil)
	ctx := context.Background()
	actor := testenv.SignActor(b, b.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	ref := reg + "/bench/echo:0.1.0"
	if _, err := newClient(b, reg, Settings{}).Push(ctx, ref, Actor, actor.Module, false); err != nil {
		b.Fatal(err)
	}
	b.Logf("echo actor module: %d bytes", len(actor.Module))
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(int64(len(actor.Module)))
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c := newClient(b, reg, Settings{})
			b.StartTimer()
			if a, err := c.Pull(ctx, ref, Actor); err != nil || a.Cached {
				b.Fatalf("cold pull: %v", err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := newClient(b, reg, Settings{})
		if _, err := c.Pull(ctx, ref, Actor); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(actor.Module)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if a, err := c.Pull(ctx, ref, Actor); err != nil || !a.Cached {
				b.Fatalf("cached pull: %v", err)
			}
		}
	})
}
