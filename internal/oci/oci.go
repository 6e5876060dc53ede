// Package oci pulls and pushes latticed's artifacts — signed actor modules
// and provider archives — from and to OCI registries the way wasmCloud's
// wash does (docs/protocol.md §15), with oras-go as the registry client.
//
// An artifact is an OCI image manifest with one layer: the signed wasm
// module (MediaTypeActorLayer) or the .par.gz provider archive
// (MediaTypeProviderLayer), and a "{}" config blob of the matching config
// media type. Pulled blobs are cached by digest under the cache directory
// (blobs/sha256/{hex}, 0600), so a second pull of an unchanged reference
// only asks the registry which digest the tag names.
package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Media types wash writes (wash-lib's OCI push; see the issue #12 note).
const (
	MediaTypeActorLayer     = "application/vnd.module.wasm.content.layer.v1+wasm"
	MediaTypeActorConfig    = "application/vnd.wasmcloud.actor.archive.config"
	MediaTypeProviderLayer  = "application/vnd.wasmcloud.provider.archive.layer.v1+par"
	MediaTypeProviderConfig = "application/vnd.wasmcloud.provider.archive.config"
	// MediaTypeOCILayerTar is also accepted on pull, as wasmCloud hosts do.
	MediaTypeOCILayerTar = "application/vnd.oci.image.layer.v1.tar"
)

// Kind is what an artifact holds.
type Kind int

// Artifact kinds.
const (
	Actor Kind = iota + 1
	ProviderArchive
)

func (k Kind) String() string {
	switch k {
	case Actor:
		return "actor"
	case ProviderArchive:
		return "provider archive"
	}
	return "unknown"
}

// layerTypes are the layer media types a pull of kind accepts.
func (k Kind) layerTypes() []string {
	if k == ProviderArchive {
		return []string{MediaTypeProviderLayer, MediaTypeOCILayerTar}
	}
	return []string{MediaTypeActorLayer, MediaTypeOCILayerTar}
}

// MaxArtifactBytes bounds a pulled layer.
const MaxArtifactBytes = 512 << 20

// Errors callers branch on.
var (
	ErrLatestRefused = errors.New("OCI references tagged :latest (or without a tag) are refused")
	ErrNotReference  = errors.New("not an OCI reference")
)

// Settings configure a Client. They come from config (WASMCLOUD_OCI_*).
type Settings struct {
	// AllowLatest permits :latest and untagged references (WASMCLOUD_OCI_ALLOW_LATEST).
	AllowLatest bool
	// AllowedInsecure lists registries (host[:port]) reached over plain HTTP
	// (WASMCLOUD_OCI_ALLOWED_INSECURE); all others use HTTPS.
	AllowedInsecure []string
	// CacheDir holds pulled blobs by digest; empty disables the cache.
	CacheDir string
	// Login is the credential of one registry from the node's settings
	// (WASMCLOUD_OCI_REGISTRY, _USER, _PASSWORD). It applies to that
	// registry only; credentials of a registries.put for it win.
	Login Login
	// CredentialsFile keeps what registries.put sent, so that a restarted
	// node still pulls from private registries (LoadCredentials,
	// SaveCredentials); empty: memory only.
	CredentialsFile string
	// HTTPClient is the transport; nil uses oras's retrying default client.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Credential is one registry's login as registries.put carries it
// (docs/protocol.md §15).
type Credential struct {
	RegistryType string `json:"registryType,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	Token        string `json:"token,omitempty"`
}

// Client pulls and pushes artifacts. It is safe for concurrent use.
type Client struct {
	s     Settings
	log   *slog.Logger
	cache *blobCache

	mu    sync.RWMutex
	creds map[string]Credential // registry host[:port] -> credential of registries.put
	auth  auth.Cache

	saveMu sync.Mutex // orders SaveCredentials: the last write holds the latest map
}

// New returns a client with s.
func New(s Settings) *Client {
	c := &Client{s: s, log: s.Logger, creds: map[string]Credential{}, auth: auth.NewCache()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if s.CacheDir != "" {
		c.cache = &blobCache{dir: s.CacheDir}
	}
	return c
}

// PutCredentials adds or replaces registry credentials (registries.put).
// Entries whose registryType is set and is not "oci" are ignored.
func (c *Client) PutCredentials(creds map[string]Credential) (applied int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for reg, cr := range creds {
		if cr.RegistryType != "" && !strings.EqualFold(cr.RegistryType, "oci") {
			continue
		}
		c.creds[strings.ToLower(reg)] = cr
		applied++
	}
	c.auth = auth.NewCache() // tokens fetched with old credentials are dropped
	return applied
}

// credential is what the client logs in to hostport with: the credential
// of a registries.put for it, else the configured Login if it names
// hostport, else none. A registries.put without username, password or
// token thus makes a registry anonymous, as in wasmCloud hosts.
func (c *Client) credential(_ context.Context, hostport string) (auth.Credential, error) {
	hostport = strings.ToLower(hostport)
	c.mu.RLock()
	cr, ok := c.creds[hostport]
	c.mu.RUnlock()
	if !ok {
		if l := c.s.Login; l.Registry != "" && strings.EqualFold(l.Registry, hostport) {
			return auth.Credential{Username: l.Username, Password: l.Password}, nil
		}
		return auth.EmptyCredential, nil
	}
	return auth.Credential{Username: cr.Username, Password: cr.Password, AccessToken: cr.Token}, nil
}

// Reference is a checked OCI reference.
type Reference struct {
	registry.Reference
	Original string
}

// IsReference reports whether ref looks like an OCI reference rather than
// a file path or a builtin: name: an explicit registry (a host with a dot
// or a port, or localhost) and a repository. Names ending in .wasm, .par or
// .par.gz are files.
func IsReference(ref string) bool {
	if ref == "" || strings.HasPrefix(ref, "file://") || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") ||
		strings.HasPrefix(ref, "builtin:") || strings.Contains(ref, "://") ||
		strings.HasSuffix(ref, ".wasm") || strings.HasSuffix(ref, ".par") || strings.HasSuffix(ref, ".par.gz") {
		return false
	}
	host, _, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return false
	}
	_, err := registry.ParseReference(strings.ToLower(ref))
	return err == nil
}

// ParseReference checks ref as a pull or push would: lowercased (as
// wasmCloud does), with a registry, and tagged other than latest unless
// allowLatest (a missing tag means latest).
func ParseReference(ref string, allowLatest bool) (Reference, error) {
	if !IsReference(ref) {
		return Reference{}, fmt.Errorf("%w: %q (want registry/repository:tag, e.g. localhost:5000/echo:0.1.0)", ErrNotReference, ref)
	}
	r, err := registry.ParseReference(strings.ToLower(ref))
	if err != nil {
		return Reference{}, fmt.Errorf("%w: %q: %v", ErrNotReference, ref, err)
	}
	if r.Reference == "" || r.Reference == "latest" {
		if !allowLatest {
			return Reference{}, fmt.Errorf("%w: %q: give an explicit version tag or a digest, or set WASMCLOUD_OCI_ALLOW_LATEST=true", ErrLatestRefused, ref)
		}
		if r.Reference == "" {
			r.Reference = "latest"
		}
	}
	return Reference{Reference: r, Original: ref}, nil
}

// Insecure reports whether registry (host[:port]) may be used over plain HTTP.
func (c *Client) Insecure(reg string) bool {
	return slices.ContainsFunc(c.s.AllowedInsecure, func(r string) bool { return strings.EqualFold(r, reg) })
}

// repository is a client for ref's repository, plain HTTP when plainHTTP.
func (c *Client) repository(ref Reference, plainHTTP bool) *remote.Repository {
	hc := c.s.HTTPClient
	if hc == nil {
		hc = retry.DefaultClient
	}
	c.mu.RLock()
	cache := c.auth
	c.mu.RUnlock()
	return &remote.Repository{
		Reference: ref.Reference,
		PlainHTTP: plainHTTP,
		Client:    &auth.Client{Client: hc, Cache: cache, Credential: c.credential, Header: http.Header{"User-Agent": {"latticed"}}},
	}
}
