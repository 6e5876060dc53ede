package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"

	"github.com/latticed/latticed/internal/datadir"
)

// Login is one registry's username and password from a node's settings.
type Login struct {
	Registry string // host[:port], as in references
	Username string
	Password string
}

// LogValue shows the registry and user, never the password.
func (l Login) LogValue() slog.Value {
	return slog.GroupValue(slog.String("registry", l.Registry), slog.String("username", l.Username),
		slog.Bool("password", l.Password != ""))
}

// LogValue shows which kind of login a credential is, never its secrets.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("registryType", c.RegistryType), slog.String("username", c.Username),
		slog.Bool("password", c.Password != ""), slog.Bool("token", c.Token != ""))
}

// ErrCredentialsFile is the reason a kept credentials file cannot be used.
var ErrCredentialsFile = errors.New("registry credentials file unusable")

// maxCredentialsFileBytes bounds the credentials file (a few hundred bytes
// per registry).
const maxCredentialsFileBytes = 1 << 20

// Registries lists the registries that registries.put credentials are held
// for, sorted: for logs, which must not show the credentials themselves.
func (c *Client) Registries() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.creds))
}

// LoadCredentials adds the credentials kept in Settings.CredentialsFile (the
// registries.put shape: {"host[:port]": {"registryType", "username",
// "password", "token"}}), as a registries.put of them would. A missing
// file is no credentials; a damaged one is an error wrapping
// ErrCredentialsFile that says how to recover, without its contents.
func (c *Client) LoadCredentials() (applied int, err error) {
	path := c.s.CredentialsFile
	if path == "" {
		return 0, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCredentialsFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsFileBytes+1))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCredentialsFile, err)
	}
	var creds map[string]Credential
	if len(b) > maxCredentialsFileBytes || json.Unmarshal(b, &creds) != nil {
		// The decoder's message could quote part of a password: not shown.
		return 0, fmt.Errorf("%w: %s is not the JSON object of registry credentials registries.put carries: "+
			"fix it, or delete it and send registries.put again", ErrCredentialsFile, path)
	}
	applied = c.PutCredentials(creds)
	c.log.Info("registry credentials loaded", "registries", c.Registries(), "file", path)
	return applied, nil
}

// SaveCredentials writes the registries.put credentials the client holds to
// Settings.CredentialsFile (0600, in a 0700 directory, replaced atomically),
// for LoadCredentials after a restart. Only one process of a node saves:
// the host, which answers registries.put. Without a file it does nothing.
func (c *Client) SaveCredentials() error {
	if c.s.CredentialsFile == "" {
		return nil
	}
	// The map is read inside the lock that orders writes, so the file last
	// written holds every put made before it, whatever the interleaving.
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.RLock()
	b, err := json.MarshalIndent(c.creds, "", "  ")
	c.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("encode registry credentials: %w", err)
	}
	if err := datadir.WriteSecret(c.s.CredentialsFile, append(b, '\n')); err != nil {
		return fmt.Errorf("save registry credentials: %w", err)
	}
	return nil
}
