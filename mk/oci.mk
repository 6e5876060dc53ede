# OCI artifacts (oci/, par/, latticed push, latticed par).
# Included at the end of the Makefile, so GO, BIN, TOOLS and TEST_ENV are defined.
#   make providers   the built-in providers as provider archives in bin/providers
#                    (linux/amd64 and linux/arm64, signed with keys in the data dir)
# The tests start a real CNCF distribution registry on loopback: the
# registry of github.com/distribution/distribution/v3 (version pinned in
# tools/registry/go.mod) built without the cloud storage drivers, which
# halves its build (93 s of CPU instead of 163 s from an empty build cache).

PROVIDER_PLATFORMS ?= linux/amd64 linux/arm64
PROVIDER_VER       ?= 0.1.0

TEST_ENV += LATTICED_OCI_REGISTRY_BIN=$(TOOLS)/registry

.PHONY: providers

tools: $(TOOLS)/registry

$(TOOLS)/registry: tools/registry/go.mod tools/registry/main.go
	$(call tool_timed,registry,(the CNCF distribution registry at the version tools/registry/go.mod pins$(comma) built from tools/registry; about 90 s of CPU),cd tools/registry && GOBIN=$(TOOLS) $(GO) install .)

# Each built-in provider as a standalone executable per platform, packed
# into one archive: bin/providers/{name}.par.gz. Push one with
#   bin/latticed push registry.example.com/latticed/httpserver:0.1.0 bin/providers/httpserver.par.gz
providers: build
	@mkdir -p $(BIN)/providers/.stage
	@set -e; for name in httpserver keyvalue; do \
		bins=; for p in $(PROVIDER_PLATFORMS); do \
			os=$${p%/*}; arch=$${p#*/}; out=$(BIN)/providers/.stage/$$name-$$os-$$arch; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w' -o $$out ./cmd/provider-$$name; \
			bins="$$bins --binary $$os/$$arch=$$out"; \
		done; \
		$(BIN)/latticed par create --builtin $$name --ver $(PROVIDER_VER) $$bins --destination $(BIN)/providers/$$name.par.gz; \
	done
	@rm -rf $(BIN)/providers/.stage
