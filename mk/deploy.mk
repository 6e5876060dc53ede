# Packaging and deployment (deploy/, Dockerfile, docs/operations.md).
#   make version    what make build stamps into the binary
#   make dist       release archives + SHA256SUMS in dist/ (DIST_PLATFORMS)
#   make image      container image $(IMAGE) (needs a Docker engine)
# Tools the deploy/ tests use, installed by `make tools` only when missing:
#   promtool and kustomize (Go module proxy, pinned), systemd-analyze
#   (Debian's systemd package, linked from the system when present).
# Included at the end of the Makefile, so GO, BIN, TOOLS, VERSION and LDFLAGS
# are already defined.

COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILDINFO := github.com/latticed/latticed/internal/buildinfo
# `latticed version`, host info and latticed_build_info all read these.
LDFLAGS   += -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT)

# Pinned tools.
PROMTOOL_VERSION        := 3.16.0
PROMTOOL_MODULE_VERSION := v0.316.0
KUSTOMIZE_VERSION       := v5.8.1

DIST_DIR       ?= $(CURDIR)/dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64
# GNU tar, for reproducible archives (gtar on macOS).
TAR            ?= tar
SHA256SUM      ?= $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')

DOCKER ?= docker
IMAGE  ?= latticed:$(VERSION)

# Run apt-get as root, or through sudo when it needs no password.
APT_GET = $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: version dist image

version:
	@echo "version=$(VERSION) commit=$(COMMIT)"

# Each platform is built by `make build` itself (one source of truth for flags).
dist:
	@mkdir -p $(DIST_DIR)
	@rm -rf $(DIST_DIR)/.stage $(DIST_DIR)/SHA256SUMS $(DIST_DIR)/latticed_*.tar.gz
	@set -e; for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=latticed_$(VERSION)_$${os}_$${arch}; stage=$(DIST_DIR)/.stage/$$name; \
		echo "dist: $$name.tar.gz"; \
		$(MAKE) --no-print-directory build GOOS=$$os GOARCH=$$arch BIN=$$stage VERSION=$(VERSION) COMMIT=$(COMMIT); \
		cp README.md $$stage/; \
		if [ $$os = linux ]; then mkdir -p $$stage/systemd; \
			cp deploy/systemd/latticed.service deploy/systemd/latticed.env.example $$stage/systemd/; fi; \
		$(TAR) -C $(DIST_DIR)/.stage --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - $$name \
			| gzip -9n > $(DIST_DIR)/$$name.tar.gz; \
	done
	@cd $(DIST_DIR) && $(SHA256SUM) latticed_*.tar.gz > SHA256SUMS
	@rm -rf $(DIST_DIR)/.stage
	@cat $(DIST_DIR)/SHA256SUMS

image:
	@$(DOCKER) info >/dev/null 2>&1 || { \
		echo "make image: no container engine answers ('$(DOCKER) info' failed)." >&2; \
		echo "  Start Docker (or set DOCKER=podman) and run make image again." >&2; exit 1; }
	$(DOCKER) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

tools: $(TOOLS)/promtool $(TOOLS)/kustomize $(TOOLS)/systemd-analyze

# promtool from the Go module proxy, pinned (Prometheus 3.16.0). Debian's
# prometheus package is not used: it is built without Kubernetes service
# discovery, so its promtool rejects deploy/prometheus/prometheus.yml. The
# build tags keep only that discovery (the others pull in modules the proxy
# may not serve). First install takes a minute or two.
.PHONY: $(TOOLS)/promtool $(TOOLS)/kustomize

$(TOOLS)/promtool:
	$(call go_tool,promtool,github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_MODULE_VERSION),-tags remove_all_sd$(comma)enable_kubernetes_sd -ldflags '-X github.com/prometheus/common/version.Version=$(PROMTOOL_VERSION)')

$(TOOLS)/kustomize:
	$(call go_tool,kustomize,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

$(TOOLS)/systemd-analyze:
	@mkdir -p $(TOOLS)
	@set -e; if [ "$$(uname -s)" != Linux ]; then \
		echo "systemd-analyze: not on Linux; the deploy/systemd checks are skipped"; exit 0; fi; \
	if ! command -v systemd-analyze >/dev/null 2>&1; then \
		command -v apt-get >/dev/null 2>&1 || { echo "systemd-analyze: not found and no apt-get here; install systemd's tools" >&2; exit 1; }; \
		echo "tools: installing systemd-analyze (Debian's systemd, apt-get)"; start=$$(date +%s); \
		$(APT_GET) install -y --no-install-recommends systemd; \
		echo "tools: systemd-analyze installed in $$(( $$(date +%s) - start )) s"; \
	fi; \
	ln -sf "$$(command -v systemd-analyze)" $@

# Regenerate the settings table of docs/operations.md from `latticed up --help`.
.PHONY: docs-settings
docs-settings:
	$(GO) test ./deploy -run '^TestOperationsDoc$$' -count=1 -update-docs
