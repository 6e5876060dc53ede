package par

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func keys(t testing.TB) (issuer, subject *trust.KeyPair) {
	t.Helper()
	var err error
	if issuer, err = trust.CreateKeyPair(lattice.KindAccount); err != nil {
		t.Fatal(err)
	}
	if subject, err = trust.CreateKeyPair(lattice.KindService); err != nil {
		t.Fatal(err)
	}
	return issuer, subject
}

func create(t testing.TB, bins map[string][]byte) ([]byte, *trust.KeyPair) {
	t.Helper()
	issuer, subject := keys(t)
	var buf bytes.Buffer
	if _, err := Create(&buf, CreateOptions{Name: "Test", ContractID: "wasmcloud:test", Vendor: "latticed", Ver: "0.1.0", Rev: 2}, bins, issuer, subject); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), subject
}

// unpack returns the archive's entries in order, for tampering.
func unpack(t testing.TB, data []byte) (names []string, bodies [][]byte) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names, bodies = append(names, h.Name), append(bodies, b)
	}
}

func pack(t testing.TB, gz bool, names []string, bodies [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for i, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(bodies[i])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bodies[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestCreatedArchiveReadsBackWithVerifiedClaimsAndBinaries(t *testing.T) {
	bins := map[string][]byte{"x86_64-linux": []byte("\x7fELF linux amd64"), "aarch64-macos": []byte("macho arm64")}
	data, subject := create(t, bins)
	names, bodies := unpack(t, data)
	if strings.Join(names, ",") != "claims.jwt,aarch64-macos.bin,x86_64-linux.bin" {
		t.Fatalf("entries %v", names)
	}
	for _, gz := range []bool{true, false} {
		a, err := Read(pack(t, gz, names, bodies))
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if a.Claims.Subject != subject.PublicKey() || a.Claims.Wascap.ContractID != "wasmcloud:test" || a.Claims.Wascap.Rev != 2 {
			t.Fatalf("claims %+v %+v", a.Claims, a.Claims.Wascap)
		}
		if got := a.Claims.Wascap.TargetHashes["x86_64-linux"]; got != Hash(bins["x86_64-linux"]) || got != strings.ToUpper(got) {
			t.Fatalf("target hash %q", got)
		}
		b, err := a.Binary("aarch64-macos")
		if err != nil || string(b) != "macho arm64" {
			t.Fatalf("binary %q %v", b, err)
		}
		if _, err := a.Binary("riscv64-linux"); !errors.Is(err, ErrNoTarget) {
			t.Fatalf("missing target: %v", err)
		}
	}
}

func TestReadRefusesAlteredOrIncompleteArchives(t *testing.T) {
	data, _ := create(t, map[string][]byte{"x86_64-linux": []byte("original binary")})
	names, bodies := unpack(t, data)
	otherIssuer, _ := keys(t)
	forged := strings.Split(string(bodies[0]), ".")
	resigned, _ := (&trust.ProviderClaims{Subject: "x", Wascap: &trust.Provider{ContractID: "c"}}).Sign(otherIssuer)
	tests := []struct {
		name   string
		data   []byte
		want   error
		reason string
	}{
		{"binary altered", pack(t, true, names, [][]byte{bodies[0], []byte("evil binary")}), ErrHashMismatch, "altered after signing"},
		{"extra unlisted binary", pack(t, true, append(names, "aarch64-linux.bin"), append(bodies, []byte("x"))), ErrHashMismatch, "not listed"},
		{"claims body swapped", pack(t, true, names, [][]byte{[]byte(forged[0] + "." + strings.Split(resigned, ".")[1] + "." + forged[2]), bodies[1]}), trust.ErrJWTSignature, "signature"},
		{"no claims", pack(t, true, names[1:], bodies[1:]), ErrMalformed, "no claims.jwt"},
		{"no binary", pack(t, true, names[:1], bodies[:1]), ErrMalformed, "executable"},
		{"not an archive", []byte("hello"), ErrMalformed, "tar"},
		{"truncated gzip", data[:len(data)/2], ErrMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.data)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.reason)
			}
		})
	}
}

func TestCreateRefusesWrongKeyKinds(t *testing.T) {
	issuer, subject := keys(t)
	bins := map[string][]byte{"x86_64-linux": []byte("b")}
	if _, err := Create(io.Discard, CreateOptions{ContractID: "c"}, bins, subject, subject); !errors.Is(err, trust.ErrWrongKind) {
		t.Fatalf("service key as issuer: %v", err)
	}
	if _, err := Create(io.Discard, CreateOptions{ContractID: "c"}, bins, issuer, issuer); !errors.Is(err, trust.ErrWrongKind) {
		t.Fatalf("account key as subject: %v", err)
	}
}

func TestTargetNames(t *testing.T) {
	for _, tc := range []struct{ arch, os, want string }{
		{"amd64", "linux", "x86_64-linux"}, {"arm64", "darwin", "aarch64-macos"}, {"arm64", "linux", "aarch64-linux"},
	} {
		if got := trust.TargetOf(tc.arch, tc.os); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.os, tc.arch, got, tc.want)
		}
	}
}
