package oci

import (
	"log/slog"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
)

// NodeSettings are the settings of a node's OCI client, the same in the
// supervisor and the host: WASMCLOUD_OCI_ALLOW_LATEST,
// WASMCLOUD_OCI_ALLOWED_INSECURE, the WASMCLOUD_OCI_REGISTRY login, blobs
// cached in {data dir}/oci-cache and registries.put credentials kept in
// {data dir}/oci-credentials.json, which both share. It is resolved here,
// not in config, so that what imports config alone does not link the
// registry client.
func NodeSettings(cfg *config.Config, log *slog.Logger) Settings {
	return ArtifactSettings(cfg.Supervisor().Artifacts, cfg.DataDir, log)
}

// ArtifactSettings are NodeSettings from the supervisor's view of them.
func ArtifactSettings(a config.ArtifactSettings, dataDir string, log *slog.Logger) Settings {
	return Settings{
		AllowLatest: a.OCIAllowLatest, AllowedInsecure: a.OCIAllowedInsecure,
		Login:    Login{Registry: a.OCIRegistry, Username: a.OCIRegistryUser, Password: a.OCIRegistryPassword},
		CacheDir: datadir.Path(dataDir, datadir.OCICacheDir), CredentialsFile: datadir.Path(dataDir, datadir.OCICredentialsFile),
		Logger: log,
	}
}
