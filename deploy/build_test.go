package deploy

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	stage int    // index of the FROM it belongs to
	cmd   string // upper case: FROM, RUN, ENV, ...
	args  string
}

func parseDockerfile(t testing.TB) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	stage := -1
	var cur strings.Builder
	for _, line := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, dockerInstr{stage: stage, cmd: cmd, args: strings.TrimSpace(args)})
	}
	return out
}

// imageEnv is the environment the final image stage sets (ENV k=v ...).
func imageEnv(t testing.TB) map[string]string {
	t.Helper()
	instrs := parseDockerfile(t)
	last := instrs[len(instrs)-1].stage
	env := map[string]string{}
	for _, in := range instrs {
		if in.stage != last || in.cmd != "ENV" {
			continue
		}
		for _, f := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				t.Fatalf("Dockerfile: ENV %s: use the KEY=value form", in.args)
			}
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t)
	last := instrs[len(instrs)-1].stage
	if last < 1 {
		t.Fatalf("Dockerfile has %d stage(s), want a builder and a runtime stage", last+1)
	}
	final := map[string][]string{}
	var builds []string
	for _, in := range instrs {
		if in.stage == last {
			final[in.cmd] = append(final[in.cmd], in.args)
		} else if in.cmd == "RUN" && strings.Contains(in.args, "build") {
			builds = append(builds, in.args)
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			t.Errorf("Dockerfile runs `go build` (%s); build with `make build`, the one source of build flags", in.args)
		}
	}

	// The builder compiles with exactly the Makefile's build target.
	if !slices.ContainsFunc(builds, func(s string) bool { return strings.Contains(s, "make build") }) {
		t.Errorf("no RUN in the build stage invokes `make build`; got %q", builds)
	}
	goMod := readFile(t, "go.mod")
	for _, in := range instrs {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
			want := ""
			for _, l := range strings.Split(goMod, "\n") {
				if v, ok := strings.CutPrefix(l, "go "); ok {
					want = strings.TrimSpace(v)
				}
			}
			if got := strings.TrimPrefix(in.args, "GO_VERSION="); got != want {
				t.Errorf("Dockerfile ARG GO_VERSION=%s, but go.mod says go %s", got, want)
			}
		}
	}

	if from := final["FROM"]; len(from) != 1 || !strings.HasPrefix(from[0], "gcr.io/distroless/static") && from[0] != "scratch" {
		t.Errorf("runtime stage FROM %q, want gcr.io/distroless/static-*:nonroot or scratch", from)
	}
	if u := final["USER"]; len(u) != 1 || strings.HasPrefix(u[0], "0") || strings.HasPrefix(u[0], "root") {
		t.Errorf("runtime stage USER %q, want a numeric non-root user (runAsNonRoot needs a number)", u)
	}
	env := imageEnv(t)
	if env["LATTICED_DATA_DIR"] != "/data" {
		t.Errorf("image LATTICED_DATA_DIR=%q, want /data", env["LATTICED_DATA_DIR"])
	}
	if env["LATTICED_METRICS_ADDR"] != "0.0.0.0:9464" {
		t.Errorf("image LATTICED_METRICS_ADDR=%q, want 0.0.0.0:9464 (probes and scrapes come from outside the container)", env["LATTICED_METRICS_ADDR"])
	}
	checkSettingNames(t, "Dockerfile ENV", sortedKeys(env))
	// OpenShift runs the image as an arbitrary UID in group 0: /data must be
	// owned by group 0 and group-writable, the user's group 0 too.
	var dataCopy string
	for _, c := range final["COPY"] {
		if f := strings.Fields(c); len(f) > 0 && f[len(f)-1] == "/data" {
			dataCopy = c
		}
	}
	if !strings.Contains(dataCopy, "--chown=65532:0") || !strings.Contains(dataCopy, "--chmod=0770") {
		t.Errorf("runtime stage COPY to /data is %q, want --chown=65532:0 --chmod=0770 (group 0, g=u: an arbitrary UID in group 0 must create /data/keys)", dataCopy)
	}
	if u := final["USER"]; len(u) != 1 || !strings.HasSuffix(u[0], ":0") {
		t.Errorf("runtime stage USER %q, want group 0 (uid:0) so that the default user shares /data's group with an arbitrary UID", u)
	}
	if !slices.ContainsFunc(final["COPY"], func(c string) bool { return strings.Contains(c, "LICENSE") }) {
		t.Error("the image does not carry LICENSE")
	}
	if v := final["VOLUME"]; len(v) != 1 || !strings.Contains(v[0], "/data") {
		t.Errorf("runtime stage VOLUME %q, want /data", v)
	}
	if e := final["EXPOSE"]; len(e) != 1 || !slices.Equal(strings.Fields(e[0]), []string{"4222", "9464"}) {
		t.Errorf("EXPOSE %q, want 4222 9464", e)
	}
	var entry, cmd []string
	if len(final["ENTRYPOINT"]) == 1 {
		_ = json.Unmarshal([]byte(final["ENTRYPOINT"][0]), &entry)
	}
	if len(final["CMD"]) == 1 {
		_ = json.Unmarshal([]byte(final["CMD"][0]), &cmd)
	}
	if args := append(entry, cmd...); len(args) != 2 || filepath.Base(args[0]) != "latticed" || args[1] != "up" {
		t.Errorf("image runs %q by default, want [/usr/local/bin/latticed up] (exec form)", args)
	}
}

// .dockerignore must not hide what `make build` reads.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ignored := func(rel string) string {
		for _, p := range patterns {
			if strings.HasPrefix(p, "!") {
				continue
			}
			if rel == p || strings.HasPrefix(rel, p+"/") {
				return p
			}
			if base, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := filepath.Match(base, filepath.Base(rel)); m {
					return p
				}
			}
		}
		return ""
	}
	needed := []string{"go.mod", "go.sum", "Makefile", "mk/deploy.mk", "mk/fuzz.mk"}
	out, err := runTool(t, 2*time.Minute, repoRoot, "go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/latticed")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dir := range strings.Fields(out) {
		if rel, err := filepath.Rel(repoRoot, dir); err == nil && !strings.HasPrefix(rel, "..") {
			needed = append(needed, filepath.ToSlash(rel)+"/x.go")
		}
	}
	for _, rel := range needed {
		if p := ignored(rel); p != "" {
			t.Errorf(".dockerignore pattern %q hides %s, which `make build` needs", p, rel)
		}
	}
}

// make dist stamps the version and commit; the archive for this machine's
// platform holds a binary that reports them.
func TestDistArchives(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	dist := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	const version, commit = "v0.0.0-disttest", "0123456789ab"
	out, err := runTool(t, 5*time.Minute, repoRoot, "make", "--no-print-directory", "dist",
		"DIST_DIR="+dist, "DIST_PLATFORMS="+platform, "VERSION="+version, "COMMIT="+commit)
	if err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}
	name := "latticed_" + version + "_" + runtime.GOOS + "_" + runtime.GOARCH
	archive := filepath.Join(dist, name+".tar.gz")
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatalf("make dist did not write %s: %v\n%s", filepath.Base(archive), err, out)
	}

	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	sum := sha256.Sum256(data)
	if got := sums[name+".tar.gz"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256SUMS has %q for %s, want %x", got, name+".tar.gz", sum)
	}
	if len(sums) != 1 {
		t.Errorf("SHA256SUMS lists %d files, want 1: %v", len(sums), sums)
	}

	files := untar(t, archive, t.TempDir())
	want := []string{name + "/latticed", name + "/README.md"}
	if runtime.GOOS == "linux" {
		want = append(want, name+"/systemd/latticed.service", name+"/systemd/latticed.env.example")
	}
	for _, want := range want {
		if _, ok := files[want]; !ok {
			t.Errorf("%s lacks %s; it has %v", filepath.Base(archive), want, sortedKeys(files))
		}
	}
	bin := files[name+"/latticed"]
	if bin == "" {
		t.FailNow()
	}
	out, err = runTool(t, 30*time.Second, "", bin, "version", "--output", "json")
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	var env struct { // wash's envelope: {"version": {...}, "success": true}
		Version struct{ Version, Commit, Platform string } `json:"version"`
		Success bool                                       `json:"success"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || !env.Success {
		t.Fatalf("version JSON %q: %v", out, err)
	}
	v := env.Version
	if v.Version != version || v.Commit != commit || v.Platform != platform {
		t.Errorf("dist binary reports %+v, want version %s commit %s platform %s", v, version, commit, platform)
	}
}

func readSums(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("SHA256SUMS line %q: want <sum> <file>", l)
		}
		sums[strings.TrimPrefix(f[1], "*")] = f[0]
	}
	return sums
}

// untar extracts regular files and returns archive name -> extracted path.
func untar(t *testing.T, archive, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("archive entry %q escapes the archive's directory", h.Name)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("archive entry %s owned by %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
		files[h.Name] = p
	}
}

// make image says clearly that it needs a container engine.
func TestMakeImageWithoutEngine(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	fake := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runTool(t, time.Minute, repoRoot, "make", "--no-print-directory", "image", "DOCKER="+fake)
	if err == nil {
		t.Fatalf("make image succeeded without an engine:\n%s", out)
	}
	if !strings.Contains(out, "no container engine answers") || strings.Contains(out, fake+" build") {
		t.Errorf("make image without an engine printed:\n%s\nwant a clear message and no build attempt", out)
	}
}
