package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/progress"
)

// maxManifestBytes bounds a manifest (they are a few hundred bytes).
const maxManifestBytes = 4 << 20

// Artifact is a pulled, digest-verified artifact.
type Artifact struct {
	Ref         string        // the reference as pulled (lowercased, tag filled in)
	Digest      digest.Digest // of the manifest
	LayerDigest digest.Digest
	MediaType   string // of the layer
	Data        []byte
	Cached      bool          // the layer came from the digest cache
	Took        time.Duration // resolve + fetch (or cache read)
}

// Pull fetches the artifact of kind that ref names. The registry is asked
// which manifest the tag names (a digest reference whose manifest is cached
// needs no registry at all); blobs already in the cache are not downloaded.
// It logs a start line and one end line, pulled or failed, with the bytes,
// whether they came from the cache, and the seconds taken (package
// progress names the lines).
func (c *Client) Pull(ctx context.Context, ref string, kind Kind) (*Artifact, error) {
	start := time.Now()
	c.log.Info(progress.PullStarted, progress.KeyRef, ref, "kind", kind.String())
	a, err := c.pull(ctx, ref, kind, start)
	if err != nil {
		c.log.Warn(progress.PullFailed, progress.KeyRef, ref, "kind", kind.String(),
			progress.KeySeconds, time.Since(start).Seconds(), "err", err)
		return nil, err
	}
	c.log.Info(progress.PullFinished, progress.KeyRef, ref, "kind", kind.String(), "digest", a.Digest.String(),
		"layer", a.LayerDigest.String(), progress.KeyBytes, len(a.Data), progress.KeyCached, a.Cached, progress.KeySeconds, a.Took.Seconds())
	return a, nil
}

func (c *Client) pull(ctx context.Context, ref string, kind Kind, start time.Time) (*Artifact, error) {
	r, err := ParseReference(ref, c.s.AllowLatest)
	if err != nil {
		return nil, err
	}
	plain := c.Insecure(r.Registry)
	repo := c.repository(r, plain)
	var mdesc ocispec.Descriptor
	var mbytes []byte
	if d, derr := r.Digest(); derr == nil {
		if b, ok := c.cache.get(d, maxManifestBytes); ok {
			mdesc, mbytes = ocispec.Descriptor{Digest: d, Size: int64(len(b)), MediaType: ocispec.MediaTypeImageManifest}, b
		}
	}
	if mbytes == nil {
		if mdesc, err = repo.Resolve(ctx, r.Reference.Reference); err != nil {
			return nil, c.pullError(r, plain, err)
		}
		if mdesc.Size > maxManifestBytes {
			return nil, fmt.Errorf("pull %s: manifest of %d bytes is too large", r.Original, mdesc.Size)
		}
		var ok bool
		if mbytes, ok = c.cache.get(mdesc.Digest, maxManifestBytes); !ok {
			if mbytes, err = content.FetchAll(ctx, repo, mdesc); err != nil {
				return nil, c.pullError(r, plain, err)
			}
			c.store(mdesc.Digest, mbytes)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mbytes, &m); err != nil {
		return nil, fmt.Errorf("pull %s: manifest %s is not an OCI image manifest: %w", r.Original, mdesc.Digest, err)
	}
	layer, err := pickLayer(m, kind)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Original, err)
	}
	if layer.Size > MaxArtifactBytes {
		return nil, fmt.Errorf("pull %s: layer of %d bytes is larger than %d", r.Original, layer.Size, MaxArtifactBytes)
	}
	a := &Artifact{Ref: r.String(), Digest: mdesc.Digest, LayerDigest: layer.Digest, MediaType: layer.MediaType}
	if b, ok := c.cache.get(layer.Digest, MaxArtifactBytes); ok {
		a.Data, a.Cached = b, true
	} else {
		if a.Data, err = c.fetchLayer(ctx, repo, layer, ref); err != nil {
			return nil, c.pullError(r, plain, err)
		}
		c.store(layer.Digest, a.Data)
	}
	a.Took = time.Since(start)
	return a, nil
}

// fetchLayer fetches a layer, verified by size and digest as
// content.FetchAll does, and says how far it got at its first read and then
// every progressEvery in a progress record (package progress: a terminal's status line shows it;
// no log prints it).
func (c *Client) fetchLayer(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, ref string) ([]byte, error) {
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The first read reports at once: a terminal shows the total from the start.
	cr := &countingReader{r: rc, next: time.Now(), report: func(n int64) {
		c.log.Log(ctx, progress.LevelProgress, progress.PullProgress, progress.KeyRef, ref,
			progress.KeyBytes, n, progress.KeyTotal, desc.Size)
	}}
	return content.ReadAll(cr, desc)
}

// progressEvery is how often a pull in progress says how far it got.
const progressEvery = 200 * time.Millisecond

// countingReader counts what is read through it and reports the count at
// most every progressEvery.
type countingReader struct {
	r      io.Reader
	n      int64
	next   time.Time
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); n > 0 && now.After(c.next) {
		c.next = now.Add(progressEvery)
		c.report(c.n)
	}
	return n, err
}

func (c *Client) store(d digest.Digest, b []byte) {
	if err := c.cache.put(d, b); err != nil {
		c.log.Warn("OCI blob not cached", "digest", d.String(), "err", err)
	}
}

// pickLayer finds the one layer of kind in m.
func pickLayer(m ocispec.Manifest, kind Kind) (ocispec.Descriptor, error) {
	want := kind.layerTypes()
	var found []string
	for _, l := range m.Layers {
		if slices.Contains(want, l.MediaType) {
			return l, nil
		}
		found = append(found, l.MediaType)
	}
	if len(found) == 0 {
		found = []string{"none"}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no %s layer (want media type %s; the manifest has %s)", kind, want[0], strings.Join(found, ", "))
}

func (c *Client) pullError(r Reference, plain bool, err error) error {
	var resp *errcode.ErrorResponse
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("pull %s: %w (the registry wants a login and this node has none for %s: send it with registries.put, "+
			"or set %s=%s with %s and %s)",
			r.Original, err, r.Registry, config.EnvOCIRegistry, r.Registry, config.EnvOCIRegistryUser, config.EnvOCIRegistryPassword)
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("pull %s: %w (the registry refused this node's login for %s: check the username and password "+
			"sent with registries.put or set in %s and %s)",
			r.Original, err, r.Registry, config.EnvOCIRegistryUser, config.EnvOCIRegistryPassword)
	}
	hint := "check the reference, that the registry is reachable, and credentials (registries.put, or " +
		config.EnvOCIRegistry + " with " + config.EnvOCIRegistryUser + " and " + config.EnvOCIRegistryPassword + ")"
	if !plain {
		hint += "; a plain-HTTP registry must be listed in " + config.EnvOCIAllowedInsecure
	}
	return fmt.Errorf("pull %s: %w (%s)", r.Original, err, hint)
}
