package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/buildinfo"
)

// The stamped values reach both output formats (the -ldflags -X stamping
// itself is tested by deploy.TestDistArchives through make dist).
func TestVersionCmd(t *testing.T) {
	oldV, oldC := buildinfo.Version, buildinfo.Commit
	t.Cleanup(func() { buildinfo.Version, buildinfo.Commit = oldV, oldC })
	buildinfo.Version, buildinfo.Commit = "v1.2.3-test", "0123456789ab"

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("latticed version: exit %d: %s", code, stderr.String())
	}
	want := "latticed v1.2.3-test (commit 0123456789ab, " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if stdout.String() != want {
		t.Errorf("latticed version printed %q, want %q", stdout.String(), want)
	}

	stdout.Reset()
	if code := run(context.Background(), []string{"version", "--output", "json"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("latticed version --output json: exit %d: %s", code, stderr.String())
	}
	var got versionInfo
	decodeEnvelope(t, stdout.String(), "version", &got)
	wantInfo := versionInfo{Version: "v1.2.3-test", Commit: "0123456789ab", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if got != wantInfo {
		t.Errorf("version JSON = %+v, want %+v", got, wantInfo)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"version", "extra"}, strings.NewReader(""), &stdout, &stderr); code != exitUsage {
		t.Errorf("latticed version extra: exit %d, want %d", code, exitUsage)
	}
}

// An unstamped build (plain go build, as TestMain does) still answers.
func TestVersionUnstamped(t *testing.T) {
	r := newCLIEnv(t).run("version", "--output", "json")
	r.want(t, exitOK)
	var got versionInfo
	decodeEnvelope(t, r.stdout, "version", &got)
	if got.Version != "dev" || got.Commit == "" {
		t.Errorf("unstamped version = %+v, want version dev and a commit (or unknown)", got)
	}
}
