package deploy

import (
	"strings"
	"testing"
)

// The repository carries the full Apache-2.0 text and the README says so.
func TestLicense(t *testing.T) {
	lic := readFile(t, "LICENSE")
	for _, want := range []string{
		"Apache License\n                           Version 2.0, January 2004",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
		"APPENDIX: How to apply the Apache License to your work.",
	} {
		if !strings.Contains(lic, want) {
			t.Errorf("LICENSE is not the full Apache-2.0 text: it lacks %q", want)
		}
	}
	readme := readFile(t, "README.md")
	if !strings.Contains(readme, "## License") || !strings.Contains(readme, "Apache License, Version 2.0") || !strings.Contains(readme, "(LICENSE)") {
		t.Error("README.md does not state the licence (a License section naming Apache-2.0 and linking LICENSE)")
	}
}
