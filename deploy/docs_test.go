package deploy

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated settings table of docs/operations.md (make docs-settings)")

const (
	opsDoc        = "docs/operations.md"
	settingsBegin = "<!-- BEGIN SETTINGS: generated from `latticed up --help` by `make docs-settings`; do not edit -->"
	settingsEnd   = "<!-- END SETTINGS -->"
)

// upHelpSettings runs `latticed up --help` and returns its environment table
// as rows of variable, default, meaning.
func upHelpSettings(t *testing.T) [][3]string {
	t.Helper()
	out, err := runTool(t, 30*time.Second, "", binPath, "up", "--help")
	if err != nil {
		t.Fatalf("latticed up --help: %v\n%s", err, out)
	}
	_, table, ok := strings.Cut(out, "\nVARIABLE ")
	if !ok {
		t.Fatalf("latticed up --help has no VARIABLE table:\n%s", out)
	}
	cols := regexp.MustCompile(`\s{2,}`)
	var rows [][3]string
	for _, line := range strings.Split(table, "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		f := cols.Split(line, 3)
		if len(f) != 3 || !strings.HasPrefix(f[0], "WASMCLOUD_") && !strings.HasPrefix(f[0], "LATTICED_") {
			t.Fatalf("latticed up --help: cannot read table row %q", line)
		}
		rows = append(rows, [3]string{f[0], f[1], f[2]})
	}
	if len(rows) < 20 {
		t.Fatalf("latticed up --help lists only %d settings", len(rows))
	}
	return rows
}

func renderSettings(rows [][3]string) string {
	esc := strings.NewReplacer("|", `\|`)
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, r := range rows {
		def := r[1]
		if !strings.HasPrefix(def, "(") {
			def = "`" + def + "`"
		}
		b.WriteString("| `" + r[0] + "` | " + esc.Replace(def) + " | " + esc.Replace(r[2]) + " |\n")
	}
	return b.String()
}

// docs/operations.md names exactly the settings `latticed up --help` lists,
// and its settings table is the current one.
func TestOperationsDoc(t *testing.T) {
	rows := upHelpSettings(t)
	var table strings.Builder
	for _, r := range rows {
		table.WriteString(r[0] + "  x  x\n")
	}
	help := parseEnvTable(table.String())

	doc := readFile(t, opsDoc)
	before, rest, ok1 := strings.Cut(doc, settingsBegin)
	current, after, ok2 := strings.Cut(rest, settingsEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", opsDoc, settingsBegin, settingsEnd)
	}
	want := "\n" + renderSettings(rows)
	if *updateDocs {
		doc = before + settingsBegin + want + settingsEnd + after
		if err := os.WriteFile(path(opsDoc), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		current = want
	}
	if current != want {
		t.Errorf("the settings table in %s is not the one `latticed up --help` prints: run `make docs-settings`", opsDoc)
	}

	// Every name the prose uses is a setting (the table is generated, so
	// check the text outside it), and every setting appears in the document.
	prose := before + after
	for _, tok := range regexp.MustCompile(`\b(?:WASMCLOUD|LATTICED)_[A-Za-z0-9_]*`).FindAllString(prose, -1) {
		if tok == "WASMCLOUD_" || tok == "LATTICED_" { // the namespaces themselves
			continue
		}
		if !help.has(tok) && !slices.Contains(help.prefixes, tok) { // WASMCLOUD_LABEL_<name> is fine
			t.Errorf("%s names %s, which `latticed up --help` does not list", opsDoc, tok)
		}
	}
	for _, r := range rows {
		name := r[0]
		if i := strings.Index(name, "{"); i >= 0 {
			name = name[:i]
		}
		if !strings.Contains(doc, name) {
			t.Errorf("%s does not mention %s (listed by `latticed up --help`)", opsDoc, r[0])
		}
	}
}
