package lattice

// The core host labels. Every wasmCloud host sets them from Rust's
// std::env::consts (ARCH, OS, FAMILY) and they win over configured labels of
// the same name; latticed sets them with the same values for the machine it
// runs on, and the control interface refuses to change or remove them.
const (
	LabelArch     = "hostcore.arch"
	LabelOS       = "hostcore.os"
	LabelOSFamily = "hostcore.osfamily"
)

// CoreLabels are the core labels of a host built for goarch/goos.
func CoreLabels(goarch, goos string) map[string]string {
	family := "unix" // every OS latticed runs on but Windows
	if goos == "windows" {
		family = "windows"
	}
	return map[string]string{LabelArch: RustArch(goarch), LabelOS: RustOS(goos), LabelOSFamily: family}
}

// IsCoreLabel reports whether key is one of the core labels.
func IsCoreLabel(key string) bool { return key == LabelArch || key == LabelOS || key == LabelOSFamily }

// RustArch is Rust's name (std::env::consts::ARCH) for a Go GOARCH; one
// Go has no other name for is passed through.
func RustArch(goarch string) string {
	if a, ok := rustArch[goarch]; ok {
		return a
	}
	return goarch
}

var rustArch = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "386": "x86", "arm": "arm", "riscv64": "riscv64",
	"ppc64": "powerpc64", "ppc64le": "powerpc64", "s390x": "s390x", "loong64": "loongarch64",
	"mips": "mips", "mipsle": "mips", "mips64": "mips64", "mips64le": "mips64", "wasm": "wasm32",
}

// RustOS is Rust's name (std::env::consts::OS) for a Go GOOS: the same
// except darwin, which Rust calls macos.
func RustOS(goos string) string {
	if goos == "darwin" {
		return "macos"
	}
	return goos
}
