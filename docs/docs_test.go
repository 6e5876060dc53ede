package docs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository's root, relative to this package.
const repoRoot = ".."

// archDoc is the document whose package map and dependency rules the tests
// hold to the code.
const archDoc = "docs/architecture.md"

// pkg is one package of one of the repository's modules.
type pkg struct {
	rel        string   // directory relative to the repository root, slash-separated
	importPath string   // as go list prints it
	doc        string   // the package doc's first sentence ("" when it has none)
	imports    []string // import paths of non-test files
}

// skipDirs are directories no check looks into: tool downloads, build
// output and version control, none of which the repository's authors write.
var skipDirs = map[string]bool{".git": true, ".tools": true, "bin": true, "dist": true}

// modules returns the directory of every Go module in the repository
// (go.mod files), relative to the root: the root module and nested ones
// alike, so a module split out later is checked without editing this test.
func modules() ([]string, error) {
	var mods []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (skipDirs[d.Name()] || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.mod" {
			rel, err := filepath.Rel(repoRoot, filepath.Dir(path))
			if err != nil {
				return err
			}
			mods = append(mods, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find modules: %w", err)
	}
	if !slices.Contains(mods, ".") {
		return nil, fmt.Errorf("no go.mod at the repository root %s", repoRoot)
	}
	return mods, nil
}

// goList lists every package of the module in dir (relative to the root)
// with `go list`, for the platform env selects.
func goList(dir string, env ...string) ([]pkg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-f",
		"{{.Dir}}\t{{.ImportPath}}\t{{.Doc}}\t{{join .Imports \" \"}}", "./...")
	cmd.Dir = filepath.Join(repoRoot, dir)
	// GOWORK=off: each module is listed on its own, so a package is found
	// in the module that owns it whether or not a workspace file exists.
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./... in %s: %w\n%s", cmd.Dir, err, stderr.String())
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("go list in %s: cannot read line %q", cmd.Dir, sc.Text())
		}
		rel, err := filepath.Rel(root, f[0])
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, pkg{rel: filepath.ToSlash(rel), importPath: f[1], doc: f[2], imports: strings.Fields(f[3])})
	}
	return pkgs, nil
}

// listAll lists every package of every module in the repository, for the
// host platform and for wasip1: `go list ./...` leaves out a package whose
// files all build for wasip1 only (an actor that speaks the ABI by hand),
// and a package has its doc from whichever listing has one.
func listAll() ([]pkg, error) {
	mods, err := modules()
	if err != nil {
		return nil, err
	}
	var all []pkg
	for _, mod := range mods {
		native, err := goList(mod)
		if err != nil {
			return nil, err
		}
		wasm, err := goList(mod, "GOOS=wasip1", "GOARCH=wasm")
		if err != nil {
			return nil, err
		}
		byRel := map[string]*pkg{}
		var order []string
		for _, p := range append(native, wasm...) {
			seen, ok := byRel[p.rel]
			if !ok {
				p := p
				byRel[p.rel] = &p
				order = append(order, p.rel)
				continue
			}
			if seen.doc == "" {
				seen.doc = p.doc
			}
			for _, imp := range p.imports {
				if !slices.Contains(seen.imports, imp) {
					seen.imports = append(seen.imports, imp)
				}
			}
		}
		for _, rel := range order {
			all = append(all, *byRel[rel])
		}
	}
	if len(all) == 0 {
		return nil, errors.New("go list found no packages")
	}
	return all, nil
}

// listed is listAll's result, computed once for all the tests that need it.
var listed = sync.OnceValues(listAll)

// packages returns every package of every module in the repository.
func packages(t *testing.T) []pkg {
	t.Helper()
	pkgs, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// Every package says what it owns: `go doc` and pkg.go.dev show nothing
// useful for a package without a doc comment, and a newcomer reads the
// layout through them.
func TestEveryPackageHasADoc(t *testing.T) {
	for _, p := range packages(t) {
		if p.doc == "" {
			t.Errorf("package %s (%s) has no package doc: add a doc.go whose comment says what the package owns and why it is separate", p.rel, p.importPath)
		}
	}
}

// section returns the body of the level-2 section of doc whose heading
// starts with title, up to the next level-2 heading.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title)
	if !ok {
		t.Fatalf("%s has no section %q", archDoc, "## "+title)
	}
	body, _, _ := strings.Cut(rest, "\n## ")
	return body
}

// mapRow is the first cell of a table row in the package map: one or more
// packages in backquotes, such as | `internal/host` |.
var mapRow = regexp.MustCompile("^\\|\\s*((?:`[^`]+`[ ,]*)+)\\|")

// mappedPackages returns the directories the package map of archDoc names,
// as written there (relative to the repository root).
func mappedPackages(t *testing.T) map[string]int {
	t.Helper()
	body := section(t, readFile(t, archDoc), "Package map")
	named := map[string]int{}
	for i, line := range strings.Split(body, "\n") {
		m := mapRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, name := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[1], -1) {
			named[strings.TrimSuffix(name[1], "/")] = i
		}
	}
	if len(named) == 0 {
		t.Fatalf("%s: the package map has no rows", archDoc)
	}
	return named
}

// The package map in docs/architecture.md names every package and no
// package that does not exist. Run after merging a restructuring, this
// lists what the map lacks and what it names in vain.
func TestArchitecturePackageMap(t *testing.T) {
	named := mappedPackages(t)
	exists := map[string]bool{}
	for _, p := range packages(t) {
		exists[p.rel] = true
		if _, ok := named[p.rel]; !ok {
			t.Errorf("%s: the package map lacks %s: add a row saying what it owns", archDoc, p.rel)
		}
	}
	for name := range named {
		if !exists[name] {
			t.Errorf("%s: the package map names %s, which is no package: remove or rename its row", archDoc, name)
		}
	}
}

// depRule is one of the one-way rules of docs/architecture.md: packages
// matching from import, of this repository's packages, only those matching
// only (when only is set) and none matching never.
type depRule struct {
	from  string
	only  []string
	never []string
}

// depRules are the rules of docs/architecture.md, "Dependency rules".
// Patterns are directories relative to the root; "x/..." is x and
// everything under it.
var depRules = []depRule{
	// The wire module is the floor: actors, providers and hosts share its
	// types, so it imports nothing of ours.
	{from: "wire/...", only: []string{}},
	// lattice, the invocation and control types every process speaks, is
	// built on wire only; trust, whom to believe, on lattice and wire.
	{from: "lattice", only: []string{"wire/..."}},
	{from: "trust/...", only: []string{"lattice", "wire/..."}},
	// The actor SDK compiles into guests: wire only.
	{from: "actor/...", only: []string{"actor/...", "wire/..."}},
	// The public SDKs never reach into a process's implementation.
	{from: "rpc/...", never: []string{"internal/host/...", "internal/supervisor/...", "internal/child/...", "internal/builtin/...", "ctlclient/...", "provider/..."}},
	{from: "provider/...", never: []string{"internal/host/...", "internal/supervisor/...", "internal/child/...", "internal/builtin/...", "ctlclient/..."}},
	{from: "ctlclient/...", never: []string{"internal/host/...", "internal/supervisor/...", "internal/child/...", "internal/builtin/...", "provider/..."}},
	// The host and the supervisor are different processes: they meet over
	// NATS and the admin socket, never through an import.
	{from: "internal/host/...", never: []string{"internal/supervisor/...", "internal/child/...", "internal/admin/...", "internal/builtin/...", "provider/...", "ctlclient/..."}},
	{from: "internal/supervisor/...", never: []string{"internal/host/...", "internal/builtin/httpserver/...", "provider/..."}},
	// What both processes share knows neither of them.
	{from: "internal/child/...", never: []string{"internal/host/...", "internal/supervisor/..."}},
	{from: "internal/admin/...", never: []string{"internal/host/...", "internal/supervisor/..."}},
	{from: "internal/datadir/...", never: []string{"internal/host/...", "internal/supervisor/..."}},
	{from: "internal/health/...", never: []string{"internal/host/...", "internal/supervisor/..."}},
	// Built-in providers see the lattice only through the provider SDK.
	{from: "internal/builtin/...", never: []string{"internal/host/...", "internal/supervisor/...", "ctlclient/..."}},
}

// match reports whether the directory rel matches pattern.
func match(pattern, rel string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == pattern
}

func matchAny(patterns []string, rel string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, rel) })
}

// The one-way dependency rules of docs/architecture.md hold: each rule
// above, and test fixtures (internal/testing/...) are imported by tests and
// the bench command only.
func TestDependencyRules(t *testing.T) {
	pkgs := packages(t)
	relOf := map[string]string{}
	for _, p := range pkgs {
		relOf[p.importPath] = p.rel
	}
	for _, p := range pkgs {
		for _, imp := range p.imports {
			dep, ours := relOf[imp]
			if !ours {
				continue
			}
			for _, r := range depRules {
				if !match(r.from, p.rel) {
					continue
				}
				if r.only != nil && !matchAny(r.only, dep) {
					allowed := "no package"
					if len(r.only) > 0 {
						allowed = "only " + strings.Join(r.only, ", ")
					}
					t.Errorf("%s imports %s: %s may import %s of this repository (%s, \"Dependency rules\")", p.rel, dep, r.from, allowed, archDoc)
				}
				if matchAny(r.never, dep) {
					t.Errorf("%s imports %s, which %s must never import (%s, \"Dependency rules\")", p.rel, dep, r.from, archDoc)
				}
			}
			if match("internal/testing/...", dep) && !match("internal/testing/...", p.rel) && p.rel != "bench" {
				t.Errorf("%s imports the test fixture %s outside a test (%s, \"Dependency rules\")", p.rel, dep, archDoc)
			}
		}
	}
}

// outsideCitation matches a citation of a document that is not in the
// repository: the background notes the project was written from. Written
// as a pattern so that this file does not match itself.
var outsideCitation = regexp.MustCompile(`\b(?:PROTOCOL|PROTOCOL-REFERENCE|DESIGN|STYLE)\.md\b|(?:\.\./|/work/)shared\b`)

// docCitation matches a citation of a document under docs/, with an
// optional section: docs/protocol.md §5, or docs/operations.md, "Memory".
var docCitation = regexp.MustCompile(`docs/([a-z0-9_-]+\.md)(?:,? §(\d+)|, "([^"]+)")?`)

// textFiles calls fn with the path (relative to the root) and contents of
// every text file the repository's authors write.
func textFiles(t *testing.T, fn func(rel string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 {
			return nil // binary
		}
		rel, err := filepath.Rel(repoRoot, path)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel), data)
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
}

// The repository stands alone: no comment or document cites a file outside
// it, and every citation of docs/ names a document, a section number
// (§N, a "## N." heading) or a heading or bold paragraph title that exists.
func TestCitationsStayInTheRepository(t *testing.T) {
	docs := map[string]string{}
	doc := func(name string) (string, bool) {
		if s, ok := docs[name]; ok {
			return s, true
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, "docs", name))
		if err != nil {
			return "", false
		}
		docs[name] = string(b)
		return docs[name], true
	}
	checked := 0
	textFiles(t, func(rel string, data []byte) {
		for i, line := range strings.Split(string(data), "\n") {
			if m := outsideCitation.FindString(line); m != "" {
				t.Errorf("%s:%d cites %s, which is not in the repository: cite docs/protocol.md or docs/architecture.md instead", rel, i+1, m)
			}
			for _, c := range docCitation.FindAllStringSubmatch(line, -1) {
				checked++
				body, ok := doc(c[1])
				switch {
				case !ok:
					t.Errorf("%s:%d cites docs/%s, which does not exist", rel, i+1, c[1])
				case c[2] != "" && !hasHeading(body, c[2]+"."):
					t.Errorf("%s:%d cites docs/%s §%s, which has no heading \"%s. …\"", rel, i+1, c[1], c[2], c[2])
				case c[3] != "" && !hasHeading(body, c[3]) && !strings.Contains(body, "**"+c[3]):
					t.Errorf("%s:%d cites docs/%s, %q, which has no such heading or paragraph title", rel, i+1, c[1], c[3])
				}
			}
		}
	})
	if checked == 0 {
		t.Fatal("found no citation of docs/ at all: is the walk reading the repository?")
	}
}

// quoted is a span in backquotes without white space; dotted is a path
// written from the root as a command would (go test ./internal/host).
var (
	quoted = regexp.MustCompile("`([^`\\s]+)`")
	dotted = regexp.MustCompile(`(?:^|[\s(=])\./([a-z][a-z0-9_./-]*[a-z0-9_])`)
)

// Documents name only paths that exist: every path into the repository that
// a markdown file names, in backquotes or as ./path, is a file or directory,
// so that a move or a rename that forgets the docs fails here.
func TestDocsNamePathsThatExist(t *testing.T) {
	entries, err := os.ReadDir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	top := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && !skipDirs[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			top[e.Name()] = true
		}
	}
	checked := 0
	textFiles(t, func(rel string, data []byte) {
		if !strings.HasSuffix(rel, ".md") {
			return
		}
		for i, line := range strings.Split(string(data), "\n") {
			var paths []string
			for _, m := range quoted.FindAllStringSubmatch(line, -1) {
				paths = append(paths, strings.TrimPrefix(m[1], "./"))
			}
			for _, m := range dotted.FindAllStringSubmatch(line, -1) {
				paths = append(paths, m[1])
			}
			for _, path := range paths {
				path = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(path, "/..."), "/…"), "/")
				first, _, nested := strings.Cut(path, "/")
				if !nested || !top[first] || strings.ContainsAny(path, "*{}<>…$") {
					continue // not a path into the repository, or a pattern
				}
				checked++
				if _, err := os.Stat(filepath.Join(repoRoot, path)); err != nil {
					t.Errorf("%s:%d names %s, which does not exist: update the document", rel, i+1, path)
				}
			}
		}
	})
	if checked < 100 {
		t.Errorf("checked only %d paths in the repository's markdown: is this test reading it?", checked)
	}
}

// hasHeading reports whether the markdown doc has a heading (any level)
// whose text starts with prefix.
func hasHeading(doc, prefix string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") && strings.HasPrefix(text, prefix) {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}
