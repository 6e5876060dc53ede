package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/par"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// maxArchiveFileBytes bounds a .par.gz read from a file.
const maxArchiveFileBytes = 512 << 20

// startArtifacts sets up what provider starts need besides processes: the
// OCI client (its credentials follow registries.put, which the host
// answers and saves) and the external policy service for start_provider.
func (s *Supervisor) startArtifacts(set config.SupervisorSettings) error {
	s.oci = oci.New(oci.ArtifactSettings(set.Artifacts, set.Paths.DataDir, s.log))
	// The host saves what registries.put sends; read here, the credentials
	// of the last run pull provider archives before any new put arrives.
	if _, err := s.oci.LoadCredentials(); err != nil {
		return err
	}
	if _, err := s.nc.Subscribe(s.ctl.RegistriesPut(), func(m *nats.Msg) {
		var creds map[string]oci.Credential
		if err := json.Unmarshal(m.Data, &creds); err != nil {
			s.log.Warn("undecodable registries.put ignored", "err", err)
			return
		}
		n := s.oci.PutCredentials(creds)
		s.log.Info("registry credentials updated", "registries", s.oci.Registries(), "applied", n)
	}); err != nil {
		return fmt.Errorf("subscribe to registries.put: %w", err)
	}
	if set.Policy.Topic == "" {
		return nil
	}
	s.policySvc = policy.New(s.nc, set.Policy.Topic, set.Policy.Timeout, s.policyHost)
	s.policySvc.ObserveDecisions(policy.CountDecisions(s.m.PolicyDecisions))
	if set.Policy.ChangesTopic != "" {
		if _, err := s.policySvc.SubscribeChanges(set.Policy.ChangesTopic, s.log.Debug); err != nil {
			return fmt.Errorf("subscribe to policy changes: %w", err)
		}
	}
	return nil
}

// policyHost describes the host this supervisor runs, with the labels the
// host child itself holds (Supervisor.labels), not the configured ones: labels
// set through the control interface count, as in the host's own requests.
func (s *Supervisor) policyHost() policy.Host {
	own := s.opts.ClusterKey.PublicKey()
	return policy.NewHost(s.hostID, own, s.prefix, s.labels.get(), clusterIssuers(s.settings().Lattice.ClusterIssuers, own))
}

// checkStartProvider asks the policy service whether prog may start under
// link (wasmCloud's start_provider request: a placeholder source, the
// provider as target). Without a service everything may start.
func (s *Supervisor) checkStartProvider(ctx context.Context, prog providerProgram, link string) error {
	if s.policySvc == nil {
		return nil
	}
	exp := time.Now().Add(time.Minute).Unix()
	src := policy.Source{Capabilities: []string{}, ExpiresAt: &exp}
	_, err := s.policySvc.Decide(ctx, policy.ActionStartProvider, src,
		policy.Target{PublicKey: prog.key, Issuer: prog.issuer, ContractID: prog.contract, LinkName: link})
	return err
}

// isArchivePath reports whether a file reference names a provider archive.
func isArchivePath(path string) bool {
	return strings.HasSuffix(path, ".par.gz") || strings.HasSuffix(path, ".par")
}

// providerFromArchiveFile reads a .par.gz (file references need
// WASMCLOUD_ALLOW_FILE_LOAD; the caller checked).
func (s *Supervisor) providerFromArchiveFile(ref, path string) (providerProgram, error) {
	f, err := os.Open(path)
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider %s: %w", ref, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxArchiveFileBytes+1))
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider %s: %w", ref, err)
	}
	if len(b) > maxArchiveFileBytes {
		return providerProgram{}, fmt.Errorf("provider %s: archive larger than %d bytes", ref, maxArchiveFileBytes)
	}
	return s.providerFromArchive(ref, b)
}

// providerFromOCI pulls a provider archive (through the digest cache).
func (s *Supervisor) providerFromOCI(ctx context.Context, ref string) (providerProgram, error) {
	a, err := s.oci.Pull(ctx, ref, oci.ProviderArchive)
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider %s: %w", ref, err)
	}
	prog, err := s.providerFromArchive(ref, a.Data)
	prog.fromOCI = err == nil
	return prog, err
}

// providerFromArchive verifies an archive (claims signature and times, the
// hash of every binary) and extracts this machine's binary to
// {data dir}/providers/{V key}/{hash} (0700), where it is run like any
// provider: its key is the claims' subject.
func (s *Supervisor) providerFromArchive(ref string, data []byte) (providerProgram, error) {
	a, err := par.Read(data)
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider archive %s refused: %w", ref, err)
	}
	if err := a.Claims.CheckTime(time.Now(), 0); err != nil {
		return providerProgram{}, fmt.Errorf("provider archive %s refused: claims: %w", ref, err)
	}
	bin, err := a.Binary(trust.ProviderTarget())
	if err != nil {
		return providerProgram{}, fmt.Errorf("provider archive %s: %w", ref, err)
	}
	hash := par.Hash(bin)
	dir := filepath.Join(datadir.Path(s.settings().Paths.DataDir, datadir.ProviderBinDir), a.Claims.Subject)
	path := filepath.Join(dir, strings.ToLower(hash))
	if err := writeExecutable(dir, path, hash, bin); err != nil {
		return providerProgram{}, fmt.Errorf("provider archive %s: extract the %s binary: %w", ref, trust.ProviderTarget(), err)
	}
	w := a.Claims.Wascap
	return providerProgram{key: a.Claims.Subject, contract: w.ContractID, name: w.Name, path: path,
		issuer: a.Claims.Issuer, claims: a.Claims}, nil
}

// writeExecutable puts bin at path (0700, atomically), unless a file with
// the right hash is already there; a file with another hash is replaced.
func writeExecutable(dir, path, hash string, bin []byte) error {
	if b, err := os.ReadFile(path); err == nil && par.Hash(b) == hash {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".extract-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(bin)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o700)); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// recordProvider writes what the lattice cache keeps of a provider started
// from an archive: its claims, and for an OCI reference the refmap
// (reference → key), as wasmCloud hosts do (docs/protocol.md §11). Best effort:
// a provider runs without its cache entries.
func (s *Supervisor) recordProvider(ref string, prog providerProgram) {
	if prog.claims == nil {
		return
	}
	// Long enough to wait out a leader election of the cache stream.
	ctx, cancel := context.WithTimeout(context.Background(), jswrite.WriteTimeout)
	defer cancel()
	var js jetstream.JetStream
	var err error
	if d := s.settings().Lattice.JSDomain; d != "" {
		js, err = jetstream.NewWithDomain(s.nc, d)
	} else {
		js, err = jetstream.New(s.nc)
	}
	put := func(subject string, v any) {
		if err == nil {
			_, _, err = jswrite.Publish(ctx, js, subject, mustJSON(v))
		}
	}
	put(lattice.CacheClaims(s.prefix, prog.key), trust.FlattenProvider(prog.claims))
	if prog.fromOCI {
		put(lattice.CacheRefmap(s.prefix, ref), map[string]string{"oci_url": ref, "public_key": prog.key})
	}
	if err != nil {
		s.log.Warn("provider claims or refmap not written to the lattice cache", "ref", ref, "provider", prog.key, "err", err)
		return
	}
	if prog.fromOCI {
		s.publishEvent(lattice.EventRefmapSet, map[string]string{"oci_url": ref, "public_key": prog.key})
	}
}
