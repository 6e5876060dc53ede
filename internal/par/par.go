// Package par reads and writes provider archives (.par.gz), the format
// wasmCloud's wash and provider-archive crate use to ship a capability
// provider: a tar, usually gzipped, holding claims.jwt (the provider's
// wascap claims, signed by an account key, whose target_hashes list the
// upper-case hex SHA-256 of each binary) and one executable per target named
// "{arch}-{os}.bin" (x86_64-linux.bin, aarch64-macos.bin, …).
//
// Read verifies everything it returns: the claims' signature and roles, and
// the hash of every binary against the claims. An archive is untrusted
// input: sizes and entry counts are bounded.
package par

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Limits on what Read accepts.
const (
	MaxUnpackedBytes = 512 << 20 // all entries together, after gunzip
	MaxEntries       = 64
	claimsFile       = "claims.jwt"
	binSuffix        = ".bin"
)

var gzipMagic = []byte{0x1f, 0x8b}

// Errors Read returns, for callers that branch on them.
var (
	ErrMalformed    = errors.New("malformed provider archive")
	ErrHashMismatch = errors.New("provider archive binary does not match its signed claims")
	ErrNoTarget     = errors.New("provider archive has no binary for this target")
)

// Archive is a verified provider archive.
type Archive struct {
	Claims  *trust.ProviderClaims
	Token   string            // claims.jwt as found
	Targets map[string][]byte // target -> executable
}

// TargetNames lists the archive's targets, sorted.
func (a *Archive) TargetNames() []string {
	names := make([]string, 0, len(a.Targets))
	for t := range a.Targets {
		names = append(names, t)
	}
	sort.Strings(names)
	return names
}

// Binary returns the executable for target (already verified by Read).
func (a *Archive) Binary(target string) ([]byte, error) {
	b, ok := a.Targets[target]
	if !ok {
		return nil, fmt.Errorf("%w %s (it has %s): build the provider for %s and add it with latticed par create",
			ErrNoTarget, target, strings.Join(a.TargetNames(), ", "), target)
	}
	return b, nil
}

// Hash is the provider-archive hash of a binary: upper-case hex SHA-256.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// Read parses and verifies an archive, gzipped or not. It checks the
// claims' signature and roles and every binary's hash; it does not check
// the claims' times (the caller does, with its clock).
func Read(data []byte) (*Archive, error) {
	var r io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, gzipMagic) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
		}
		defer zr.Close()
		r = zr
	}
	lr := &io.LimitedReader{R: r, N: MaxUnpackedBytes + 1}
	tr := tar.NewReader(lr)
	a := &Archive{Targets: map[string][]byte{}}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %v", ErrMalformed, err)
		}
		if n >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformed, MaxEntries)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue // directories and links carry nothing we run
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrMalformed, h.Name, err)
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: larger than %d bytes unpacked", ErrMalformed, MaxUnpackedBytes)
		}
		name := path.Base(h.Name)
		switch {
		case name == claimsFile:
			a.Token = strings.TrimSpace(string(body))
		case strings.HasSuffix(name, binSuffix) && len(name) > len(binSuffix):
			target := strings.TrimSuffix(name, binSuffix)
			if _, dup := a.Targets[target]; dup {
				return nil, fmt.Errorf("%w: target %s appears twice", ErrMalformed, target)
			}
			a.Targets[target] = body
		}
	}
	if a.Token == "" {
		return nil, fmt.Errorf("%w: no %s", ErrMalformed, claimsFile)
	}
	if len(a.Targets) == 0 {
		return nil, fmt.Errorf("%w: no {arch}-{os}.bin executable", ErrMalformed)
	}
	c, err := trust.ParseProviderClaims(a.Token)
	if err != nil {
		return nil, err
	}
	a.Claims = c
	for _, t := range a.TargetNames() {
		want, ok := c.Wascap.TargetHashes[t]
		if !ok {
			return nil, fmt.Errorf("%w: target %s is not listed in the claims' target_hashes", ErrHashMismatch, t)
		}
		if got := Hash(a.Targets[t]); !strings.EqualFold(got, want) {
			return nil, fmt.Errorf("%w: target %s hashes to %s, claims say %s (the binary was altered after signing)", ErrHashMismatch, t, got, want)
		}
	}
	return a, nil
}

// CreateOptions are the claims `latticed par create` writes.
type CreateOptions struct {
	Name, ContractID, Vendor, Ver string
	Rev                           int32
	Expires                       time.Time // zero: never
	// CompressionLevel is the gzip level; 0 means gzip.DefaultCompression.
	CompressionLevel int
}

// Create writes a gzipped archive of binaries (target -> executable) with
// claims signed by issuer (an account key) naming subject (a service key).
func Create(w io.Writer, opts CreateOptions, binaries map[string][]byte, issuer, subject *trust.KeyPair) (*trust.ProviderClaims, error) {
	if issuer.Kind() != lattice.KindAccount {
		return nil, fmt.Errorf("provider archive issuer: %w: want an account key, got %s", trust.ErrWrongKind, issuer.Kind())
	}
	if subject.Kind() != lattice.KindService {
		return nil, fmt.Errorf("provider archive subject: %w: want a service key, got %s", trust.ErrWrongKind, subject.Kind())
	}
	if opts.ContractID == "" {
		return nil, errors.New("provider archive: a capability contract id is required")
	}
	if len(binaries) == 0 {
		return nil, errors.New("provider archive: at least one target binary is required")
	}
	targets := make([]string, 0, len(binaries))
	hashes := map[string]string{}
	for t, b := range binaries {
		if t == "" || strings.ContainsAny(t, "/\\ ") {
			return nil, fmt.Errorf("provider archive: target %q must look like x86_64-linux", t)
		}
		targets = append(targets, t)
		hashes[t] = Hash(b)
	}
	sort.Strings(targets)
	c := &trust.ProviderClaims{Subject: subject.PublicKey(), Wascap: &trust.Provider{
		Name: opts.Name, ContractID: opts.ContractID, Vendor: opts.Vendor, Rev: opts.Rev, Ver: opts.Ver, TargetHashes: hashes,
	}}
	if !opts.Expires.IsZero() {
		c.Expires = opts.Expires.Unix()
	}
	token, err := c.Sign(issuer)
	if err != nil {
		return nil, fmt.Errorf("provider archive: %w", err)
	}
	level := opts.CompressionLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, fmt.Errorf("provider archive: %w", err)
	}
	tw := tar.NewWriter(zw)
	add := func(name string, mode int64, body []byte) error {
		h := &tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatGNU}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(claimsFile, 0o644, []byte(token)); err != nil {
		return nil, fmt.Errorf("provider archive: %w", err)
	}
	for _, t := range targets {
		if err := add(t+binSuffix, 0o755, binaries[t]); err != nil {
			return nil, fmt.Errorf("provider archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("provider archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("provider archive: %w", err)
	}
	return c, nil
}
