package oci

import (
	"log/slog"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
)

// NodeSettings are the settings of a node's OCI client, the same in the
// supervisor and the host: WASMCLOUD_OCI_ALLOW_LATEST,
// WASMCLOUD_OCI_ALLOWED_INSECURE, and blobs cached in {data dir}/oci-cache,
// which both share. It is resolved here, not in config, so that what
// imports config alone does not link the registry client.
func NodeSettings(cfg *config.Config, log *slog.Logger) Settings {
	return Settings{
		AllowLatest: cfg.OCIAllowLatest, AllowedInsecure: cfg.OCIAllowedInsecure,
		CacheDir: datadir.Path(cfg.DataDir, datadir.OCICacheDir), Logger: log,
	}
}
