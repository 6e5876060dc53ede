package config

import (
	"log/slog"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/oci"
)

// OCI is the settings of the node's OCI client, the same in the supervisor
// and the host: WASMCLOUD_OCI_ALLOW_LATEST, WASMCLOUD_OCI_ALLOWED_INSECURE,
// blobs cached in {data dir}/oci-cache, which both share.
func (c *Config) OCI(log *slog.Logger) oci.Settings {
	return oci.Settings{
		AllowLatest: c.OCIAllowLatest, AllowedInsecure: c.OCIAllowedInsecure,
		CacheDir: datadir.Path(c.DataDir, datadir.OCICacheDir), Logger: log,
	}
}
