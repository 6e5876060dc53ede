package oci

import (
	"bytes"
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Push publishes data as an artifact of kind under ref, the way wash does:
// an OCI image manifest whose config is "{}" of the kind's config media
// type and whose single layer is data. It does not check data; callers
// verify the claims first (latticed push does). allowLatest permits a
// :latest tag. It returns the manifest's descriptor.
func (c *Client) Push(ctx context.Context, ref string, kind Kind, data []byte, allowLatest bool) (ocispec.Descriptor, error) {
	r, err := ParseReference(ref, allowLatest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := r.Digest(); err == nil {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: give a tag, not a digest", ref)
	}
	layerType, configType := MediaTypeActorLayer, MediaTypeActorConfig
	if kind == ProviderArchive {
		layerType, configType = MediaTypeProviderLayer, MediaTypeProviderConfig
	}
	plain := c.Insecure(r.Registry)
	repo := c.repository(r, plain)
	config := []byte("{}")
	configDesc := content.NewDescriptorFromBytes(configType, config)
	layerDesc := content.NewDescriptorFromBytes(layerType, data)
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{configDesc, config}, {layerDesc, data}} {
		ok, err := repo.Exists(ctx, b.desc)
		if err != nil {
			return ocispec.Descriptor{}, c.pushError(r, plain, err)
		}
		if !ok {
			if err := repo.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
				return ocispec.Descriptor{}, c.pushError(r, plain, err)
			}
		}
	}
	mdesc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_0, "", oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{layerDesc}, ConfigDescriptor: &configDesc,
	})
	if err != nil {
		return ocispec.Descriptor{}, c.pushError(r, plain, err)
	}
	if err := repo.Tag(ctx, mdesc, r.Reference.Reference); err != nil {
		return ocispec.Descriptor{}, c.pushError(r, plain, err)
	}
	c.log.Info("OCI artifact pushed", "ref", r.String(), "kind", kind.String(), "digest", mdesc.Digest.String(), "bytes", len(data))
	return mdesc, nil
}

func (c *Client) pushError(r Reference, plain bool, err error) error {
	hint := "check the registry address and credentials"
	if !plain {
		hint += "; a plain-HTTP registry needs --insecure"
	}
	return fmt.Errorf("push %s: %w (%s)", r.Original, err, hint)
}
