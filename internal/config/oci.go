package config

import "strings"

// The login of one private OCI registry, named as wasmCloud hosts name it:
// all three or none; a registries.put for that registry overrides it.
const (
	EnvOCIRegistry         = "WASMCLOUD_OCI_REGISTRY"
	EnvOCIRegistryUser     = "WASMCLOUD_OCI_REGISTRY_USER"
	EnvOCIRegistryPassword = "WASMCLOUD_OCI_REGISTRY_PASSWORD"
)

// validateOCILogin checks the one-registry login (WASMCLOUD_OCI_REGISTRY,
// _USER, _PASSWORD). wasmCloud's host takes the three together or not at
// all; half a login would silently pull anonymously, so it is refused. The
// password is never echoed.
func (c *Config) validateOCILogin(e *errs) {
	set := map[string]bool{
		EnvOCIRegistry: c.OCIRegistry != "", EnvOCIRegistryUser: c.OCIRegistryUser != "",
		EnvOCIRegistryPassword: c.OCIRegistryPassword != "",
	}
	var missing []string
	for _, env := range []string{EnvOCIRegistry, EnvOCIRegistryUser, EnvOCIRegistryPassword} {
		if !set[env] {
			missing = append(missing, env)
		}
	}
	if len(missing) == 1 || len(missing) == 2 {
		// One problem, one error, under the first setting missing.
		e.add(missing[0], "not set, but %s is: set %s, %s and %s together, or none (missing: %s)",
			other(set), EnvOCIRegistry, EnvOCIRegistryUser, EnvOCIRegistryPassword, strings.Join(missing, ", "))
	}
	if r := c.OCIRegistry; r != "" && (hasSpace(r) || strings.Contains(r, "://") || strings.Contains(r, "/")) {
		e.add(EnvOCIRegistry, "%q: expected a registry host[:port] without scheme, path or spaces (as in host:port/repo:tag)", r)
	}
}

// other names the first of the login settings that is set.
func other(set map[string]bool) string {
	for _, o := range []string{EnvOCIRegistry, EnvOCIRegistryUser, EnvOCIRegistryPassword} {
		if set[o] {
			return o
		}
	}
	return ""
}
