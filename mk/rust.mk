# The Rust toolchain the ABI-compatibility test (internal/host/rust_actor_test.go)
# builds internal/testing/actors/rustecho with: Debian's rustc and its wasm32 std,
# pinned to Debian 12's version. Installed by `make tools` only when missing.
# The test calls $(RUST_RUSTC) by its full path (a rustup rustc elsewhere on
# PATH has no wasm32 std) and fails with "run make tools" when it is missing.
#   make -f mk/rust.mk rust-wasm32    # just this toolchain
# Included at the end of the Makefile.

RUST_DEB_VERSION  := 1.63.0+dfsg1-2
RUST_RUSTC        := /usr/bin/rustc
# Present once libstd-rust-dev-wasm32 is installed.
RUSTC_WASM        := /usr/lib/rustlib/wasm32-unknown-unknown/lib
# rustc links wasm32 modules with rust-lld, which Debian's rustc ships as a
# link to lld-14; the package is only recommended by the wasm32 std, so
# --no-install-recommends needs it named.
RUST_LLD          := /usr/bin/lld-14
LLD_DEB_VERSION   := 1:14.0.6-12
RUST_DEB_PACKAGES := rustc=$(RUST_DEB_VERSION) libstd-rust-dev-wasm32=$(RUST_DEB_VERSION) lld-14=$(LLD_DEB_VERSION)

RUST_APT_GET = $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: rust-wasm32

rust-wasm32: $(RUSTC_WASM) $(RUST_LLD)

tools: $(RUSTC_WASM) $(RUST_LLD)

# One apt-get run installs both (grouped target).
$(RUSTC_WASM) $(RUST_LLD) &:
	@command -v apt-get >/dev/null 2>&1 || { echo "rust: $(RUSTC_WASM) or $(RUST_LLD) missing and no apt-get here; install Debian's rustc, libstd-rust-dev-wasm32 $(RUST_DEB_VERSION) and lld-14" >&2; exit 1; }
	@echo "tools: installing $(RUST_DEB_PACKAGES) from Debian (apt-get)"
	@start=$$(date +%s); $(RUST_APT_GET) install -y --no-install-recommends $(RUST_DEB_PACKAGES) || { \
		$(RUST_APT_GET) update -qq && $(RUST_APT_GET) install -y --no-install-recommends $(RUST_DEB_PACKAGES); } && \
		echo "tools: rustc and its wasm32 std installed in $$(( $$(date +%s) - start )) s"
	@for f in $(RUSTC_WASM) $(RUST_LLD); do test -e $$f || { echo "rust: installed, but $$f is still missing" >&2; exit 1; }; done
	@$(RUST_RUSTC) --version
