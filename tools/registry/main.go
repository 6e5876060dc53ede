// Command registry is the CNCF distribution registry (pinned in go.mod)
// with only what latticed's tests use: filesystem and in-memory storage and
// htpasswd auth. Leaving out the cloud storage drivers (Azure, GCS, S3)
// halves its build. It is its own module so that none of this reaches
// latticed's dependencies; mk/oci.mk installs it into .tools/bin.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
