package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// readmeActorSection is the README section a new actor author follows.
const readmeActorSection = "### Writing an actor in Go"

// checkoutPlaceholder is how the README names the reader's checkout.
const checkoutPlaceholder = "/path/to/latticed"

// readmeBlock is one fenced code block: its info string and its text.
type readmeBlock struct{ lang, text string }

// readmeBlocks returns the fenced code blocks of the README section that
// starts with heading, up to the next heading of its level or above.
func readmeBlocks(t *testing.T, readme, heading string) []readmeBlock {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	section := readme[start+1+len(heading):]
	if end := regexp.MustCompile(`\n#{2,3} `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	var blocks []readmeBlock
	for rest := section; ; {
		open := strings.Index(rest, "```")
		if open < 0 {
			break
		}
		lang, body, ok := strings.Cut(rest[open+3:], "\n")
		if !ok {
			t.Fatalf("README.md %q: unterminated code block", heading)
		}
		text, after, ok := strings.Cut(body, "```\n")
		if !ok {
			t.Fatalf("README.md %q: unterminated code block", heading)
		}
		blocks = append(blocks, readmeBlock{lang: strings.TrimSpace(lang), text: text})
		rest = after
	}
	return blocks
}

// The README's "Writing an actor in Go" works as written, in an empty
// directory outside the repository and without a network: its blocks, in
// order, are `make install` in the checkout, the actor's go.mod, its
// main.go, build + sign + `latticed up` (run as one script, left running),
// and the call from a second terminal, whose reply must be the one the
// README shows in the comment after the command. Only /path/to/latticed is
// substituted; the environment keeps the node on free loopback ports and
// the data in the test's directory.
func TestReadmeWritingAnActorInGo(t *testing.T) {
	root := testenv.ModuleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme), readmeActorSection)
	var langs []string
	for _, b := range blocks {
		langs = append(langs, b.lang)
	}
	if got := strings.Join(langs, " "); got != "sh  go sh sh" {
		t.Fatalf("README %q has code blocks %q; the test runs: sh (make install), go.mod (no language), go (main.go), sh (build, sign, up), sh (call)", readmeActorSection, got)
	}
	subst := func(s string) string { return strings.ReplaceAll(s, checkoutPlaceholder, root) }
	install, goMod, mainGo, run, call := subst(blocks[0].text), subst(blocks[1].text), blocks[2].text, blocks[3].text, blocks[4].text

	tmp := t.TempDir()
	dir, gobin, data := filepath.Join(tmp, "hello"), filepath.Join(tmp, "bin"), filepath.Join(tmp, "data")
	for _, d := range []string{dir, gobin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"go.mod": goMod, "main.go": mainGo} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The reader's environment, minus their lattice settings: latticed from
	// make install first on PATH, Go's settings file and caches kept though
	// HOME moves (a cold build cache would rebuild the standard library
	// twice), no module proxy, no workspace.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "HOME", name == "XDG_DATA_HOME", name == "PATH", name == "GOFLAGS", name == "GOBIN",
			strings.HasPrefix(name, "LATTICED_"), strings.HasPrefix(name, "WASMCLOUD_"), strings.HasPrefix(name, "WASH_"):
			continue
		}
		env = append(env, kv)
	}
	for _, v := range []string{"GOENV", "GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	env = append(env,
		"HOME="+filepath.Join(tmp, "home"), "XDG_DATA_HOME="+filepath.Join(tmp, "xdg"),
		"PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"), "GOBIN="+gobin,
		"GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local",
		"LATTICED_DATA_DIR="+data,
		"LATTICED_NATS_LISTEN=127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)),
		"LATTICED_METRICS_ADDR=127.0.0.1:0",
		"LATTICED_LOG_LEVEL=warn",
		"LATTICED_CONSOLE_ADDR=", // the default port may be a developer's running node
		"WASMCLOUD_LATTICE_PREFIX=readme",
	)
	// Module resolution may update the actor's go.mod (it must not need
	// to: checked below), never the checkout's.
	actorEnv := append(env[:len(env):len(env)], "GOFLAGS=-mod=mod")

	sh := func(script, dir string, env []string) *exec.Cmd {
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
	if out, err := sh(install, tmp, env).CombinedOutput(); err != nil {
		t.Fatalf("README install block %q: %v\n%s", install, err, out)
	}
	if _, err := os.Stat(filepath.Join(gobin, "latticed")); err != nil {
		t.Fatalf("make install did not install latticed into GOBIN: %v", err)
	}

	// The node runs until the test ends; its process group is stopped, so
	// that whether sh execs latticed or waits for it does not matter.
	node := sh(run, dir, actorEnv)
	logs := &testenv.SyncBuffer{}
	node.Stdout, node.Stderr = logs, logs
	node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-node.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-node.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Error("latticed up did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("README build, sign and up block:\n%s", logs.String())
		}
	})

	command, want, ok := strings.Cut(strings.TrimSpace(call), "   # ")
	if !ok || strings.Contains(command, "\n") {
		t.Fatalf("README call block %q: want one command followed by '   # ' and the reply it prints", call)
	}
	// The node builds nothing once started, but the block builds the actor
	// first: a cold wasip1 build of the runtime takes a while on a busy
	// machine.
	var got string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("the README's build, sign and up block exited (%v) before %s answered", err, command)
		default:
		}
		var stdout, stderr bytes.Buffer
		cmd := sh(command, dir, env)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil {
			got = strings.TrimSpace(stdout.String())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still fails after 3m: %v: %s", command, err, stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got != want {
		t.Errorf("%s printed %s; the README says %s", command, got, want)
	}
	after, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != goMod {
		t.Errorf("the go command rewrote the README's go.mod: it is incomplete; go.mod after the build:\n%s", after)
	}
}
