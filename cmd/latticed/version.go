package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/internal/buildinfo"
)

// versionInfo is what `latticed version --output json` prints under
// "version".
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Long: `version prints the release version and source commit stamped into the binary
at build time (make build, make dist, make image), the Go version and platform.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{
				Version: buildinfo.Version, Commit: buildinfo.GetCommit(),
				GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
			}
			return printKeyed(cmd, "version", v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "latticed %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.GoVersion, v.Platform)
				return err
			})
		},
	}
	addOutputFlag(cmd)
	return cmd
}
