package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// privateRegistry starts a registry requiring login and pushes an actor
// artifact to ref "{registry}/a:1" with that login; it returns the registry.
func privateRegistry(t *testing.T, login *testenv.RegistryLogin) string {
	t.Helper()
	reg := testenv.Registry(t, login)
	c := newClient(t, reg, Settings{})
	c.PutCredentials(map[string]Credential{reg: {Username: login.Username, Password: login.Password}})
	if _, err := c.Push(context.Background(), reg+"/a:1", Actor, []byte("module"), false); err != nil {
		t.Fatal(err)
	}
	return reg
}

// The configured login (WASMCLOUD_OCI_REGISTRY, _USER, _PASSWORD) logs in
// to the registry it names and to no other; without it the pull fails
// saying what to check.
func TestLoginAppliesToItsRegistryOnly(t *testing.T) {
	login := &testenv.RegistryLogin{Username: "lattice", Password: "pw-" + t.Name()}
	named, other := privateRegistry(t, login), privateRegistry(t, login)
	ctx := context.Background()

	anonymous := newClient(t, named, Settings{})
	_, err := anonymous.Pull(ctx, named+"/a:1", Actor)
	if err == nil || !strings.Contains(err.Error(), "credential") || !strings.Contains(err.Error(), "WASMCLOUD_OCI_REGISTRY") {
		t.Fatalf("anonymous pull from a private registry: %v", err)
	}
	t.Logf("refused: %v", err)

	c := newClient(t, named, Settings{AllowedInsecure: []string{other}, Login: Login{Registry: named, Username: login.Username, Password: login.Password}})
	if _, err := c.Pull(ctx, named+"/a:1", Actor); err != nil {
		t.Fatalf("pull with the configured login: %v", err)
	}
	if _, err := c.Pull(ctx, other+"/a:1", Actor); err == nil {
		t.Fatal("the login of one registry was sent to another")
	}
}

// A registries.put for the configured registry wins over the configured
// login, as in wasmCloud hosts; one with no username, password or token
// makes it anonymous.
func TestRegistriesPutOverridesTheLogin(t *testing.T) {
	login := &testenv.RegistryLogin{Username: "lattice", Password: "pw-" + t.Name()}
	reg := privateRegistry(t, login)
	ctx := context.Background()
	c := newClient(t, reg, Settings{Login: Login{Registry: reg, Username: login.Username, Password: "stale"}})
	if _, err := c.Pull(ctx, reg+"/a:1", Actor); err == nil || !strings.Contains(err.Error(), "refused this node's login") {
		t.Fatalf("pull with a wrong configured password: %v", err)
	}
	c.PutCredentials(map[string]Credential{reg: {RegistryType: "oci", Username: login.Username, Password: login.Password}})
	if _, err := c.Pull(ctx, reg+"/a:1", Actor); err != nil {
		t.Fatalf("pull after registries.put: %v", err)
	}
	fresh := newClient(t, reg, Settings{Login: Login{Registry: reg, Username: login.Username, Password: login.Password}})
	fresh.PutCredentials(map[string]Credential{reg: {}})
	if _, err := fresh.Pull(ctx, reg+"/a:1", Actor); err == nil {
		t.Fatal("pull after an empty registries.put still used the configured login")
	}
}

// Saved credentials are private (0600), survive into a new client, and a
// damaged file is refused with what to do, not with its contents.
func TestCredentialsSavedAndLoaded(t *testing.T) {
	login := &testenv.RegistryLogin{Username: "lattice", Password: "pw-" + t.Name()}
	reg := privateRegistry(t, login)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "data", "oci-credentials.json")

	before := newClient(t, reg, Settings{CredentialsFile: file})
	if n, err := before.LoadCredentials(); n != 0 || err != nil {
		t.Fatalf("load without a file: %d %v", n, err)
	}
	before.PutCredentials(map[string]Credential{strings.ToUpper(reg): {RegistryType: "oci", Username: login.Username, Password: login.Password}})
	before.PutCredentials(map[string]Credential{"other.example.com": {Token: "tok-" + t.Name()}})
	if err := before.SaveCredentials(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{file: 0o600, filepath.Dir(file): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want mode %v", p, fi.Mode().Perm(), err, want)
		}
	}

	after := newClient(t, reg, Settings{CredentialsFile: file})
	if n, err := after.LoadCredentials(); n != 2 || err != nil {
		t.Fatalf("load: %d %v", n, err)
	}
	if _, err := after.Pull(ctx, reg+"/a:1", Actor); err != nil {
		t.Fatalf("pull with loaded credentials: %v", err)
	}

	if err := os.WriteFile(file, []byte(`{"`+reg+`": {"password": "`+login.Password+`"`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newClient(t, reg, Settings{CredentialsFile: file}).LoadCredentials()
	if !errors.Is(err, ErrCredentialsFile) || !strings.Contains(err.Error(), "delete it") || strings.Contains(err.Error(), login.Password) {
		t.Fatalf("damaged file: %v", err)
	}
}

// A save that cannot write says so (the host then answers registries.put
// with that error) and leaves no partial file.
func TestSaveCredentialsFailsWhenTheFileCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(Settings{CredentialsFile: filepath.Join(blocker, "oci-credentials.json")})
	c.PutCredentials(map[string]Credential{"registry.example.com": {Username: "u", Password: "pw-" + t.Name()}})
	err := c.SaveCredentials()
	if err == nil || !strings.Contains(err.Error(), "save registry credentials") || strings.Contains(err.Error(), "pw-") {
		t.Fatalf("save into a file's place: %v", err)
	}
}
