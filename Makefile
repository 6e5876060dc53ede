# latticed — build, run and test. Two commands on a fresh machine:
#   make run    lattice of one with the echo actor
#   make test   every test (installs the pinned tools the tests use)

GO          ?= go
BIN         := $(CURDIR)/bin
TOOLS       := $(CURDIR)/.tools/bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w# mk/deploy.mk adds the version and commit stamps (internal/buildinfo)

# Pinned external tools (installed from the Go module proxy into .tools/bin).
NATS_SERVER_VERSION := v2.15.2
NATS_CLI_VERSION    := v0.5.1

TEST_TIMEOUT ?= 9m

.PHONY: all build install run actors test unit lint bench bench-kit bench-kit-test soak walk fuzz tools clean help

all: build

help:
	@echo "make run     build, start a lattice of one (embedded NATS) and the echo actor"
	@echo "make test    lint + every test, with pinned tools installed into .tools/bin"
	@echo "make bench   benchmarks with ratios to the floor measured in the same run"
	@echo "make bench-kit  bin/latticed-bench-kit-<os>-<arch>.tar.gz: make bench for a machine without Go"
	@echo "make bench-kit-test  build the kit, unpack it, run it without Go outside the repository"
	@echo "make soak    steady load with scaling and provider restarts for SOAK (default 2m)"
	@echo "make walk    the Go files one HTTP request through the demo node runs code in (coverage)"
	@echo "make fuzz    each fuzz target for FUZZTIME (default 10s)"
	@echo "make build   bin/latticed"
	@echo "make install latticed into \$$(go env GOPATH)/bin (go install ./cmd/latticed)"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/latticed ./cmd/latticed

# latticed on PATH for actor authors (README, Writing an actor in Go).
install:
	$(GO) install ./cmd/latticed

# The demo actors, built from source and signed with the default keys (the
# data dir's, or wash's key directory when there is one: claims sign --help),
# so their identities survive rebuilds. They are the SDK's examples and
# build in the actor module, as an actor author's would.
actors: build
	@mkdir -p $(BIN)/actors
	cd actor && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(BIN)/actors/echo.wasm ./examples/echo
	cd actor && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(BIN)/actors/kvcounter.wasm ./examples/kvcounter
	$(BIN)/latticed claims sign $(BIN)/actors/echo.wasm -d $(BIN)/actors/echo_s.wasm \
		--name echo --call-alias echo --cap wasmcloud:httpserver --ver 0.1.0 --rev 1 >/dev/null
	$(BIN)/latticed claims sign $(BIN)/actors/kvcounter.wasm -d $(BIN)/actors/kvcounter_s.wasm \
		--name kvcounter --call-alias kvcounter --cap wasmcloud:httpserver --cap wasmcloud:keyvalue --ver 0.1.0 --rev 1 >/dev/null

run: actors
	WASMCLOUD_ALLOW_FILE_LOAD=true $(BIN)/latticed up --apply examples/demo.yaml

tools: $(TOOLS)/nats-server $(TOOLS)/nats

comma := ,

# $(call go_tool,name,package,version[,go install flags]) installs the Go
# tool name into $(TOOLS) from the Go module proxy unless the binary there
# was built from that module version (go version -m says): a line before,
# naming the tool, its version and where it comes from, and one after with
# the time it took. Nothing is printed when the pinned version is there,
# so make test's output stays its tests'. The targets are phony so that a
# changed pin is installed.
define go_tool
	@if [ "$$($(GO) version -m $(TOOLS)/$(1) 2>/dev/null | awk '$$1=="mod" {print $$3}')" != "$(3)" ]; then \
		echo "tools: installing $(1) $(3) from $(2) (Go module proxy) into $(TOOLS)"; \
		start=$$(date +%s); \
		GOBIN=$(TOOLS) $(GO) install $(4) $(2)@$(3) || exit 1; \
		echo "tools: $(1) $(3) installed in $$(( $$(date +%s) - start )) s"; \
	fi
endef

# $(call tool_timed,name,what and where from,command) runs the install
# command of a tool make found missing, between a line naming it and one
# with the time it took.
define tool_timed
	@echo "tools: installing $(1) $(2)"
	@start=$$(date +%s); $(3) && echo "tools: $(1) installed in $$(( $$(date +%s) - start )) s"
endef

.PHONY: $(TOOLS)/nats-server $(TOOLS)/nats

$(TOOLS)/nats-server:
	$(call go_tool,nats-server,github.com/nats-io/nats-server/v2,$(NATS_SERVER_VERSION))

$(TOOLS)/nats:
	$(call go_tool,nats,github.com/nats-io/natscli/nats,$(NATS_CLI_VERSION))

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd wire && $(GO) vet ./...
	cd actor && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

# Packages with concurrency run under the race detector. The host's run
# without it except for its concurrency tests: -race slows wazero's compiler
# about twentyfold. Every other package (go list, so none is missed) runs plainly.
RACE_PKGS        := ./lattice/... ./trust/... ./rpc/... ./provider/... ./ctlclient/... ./internal/builtin/... ./internal/cacheread/... ./internal/policy/... ./internal/child/... ./internal/supervisor/... ./internal/manifest/... ./internal/config/... ./internal/metrics/...
RACE_PKG_PATTERN := latticed/(lattice|trust|rpc|provider|ctlclient|internal/(builtin|cacheread|policy|child|supervisor|manifest|config|metrics))(/|$$)
HOST_RACE_TESTS := Gate|StartCallScaleStop|PooledInstance|RejectedInvocations|PoolUpgradeHammer|PoolRetire|PoolAnnounces|LiveUpdate|SleepingActorMeetsItsDeadline|StartForeverActor|HostStopsPromptly
TEST_ENV         := LATTICED_NATS_SERVER_BIN=$(TOOLS)/nats-server LATTICED_NATS_CLI_BIN=$(TOOLS)/nats

# -parallel 8: the tests marked waitBound (internal/supervisor) spend their
# run waiting on timeouts, so more of them overlap than there are cores; no
# other package of RACE_PKGS has parallel tests.
test: tools lint
	$(TEST_ENV) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race -parallel 8 $(RACE_PKGS)
	$(TEST_ENV) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race -run '$(HOST_RACE_TESTS)' ./internal/host
	$(TEST_ENV) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -Ev '$(RACE_PKG_PATTERN)')
	cd wire && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race ./...
	cd actor && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race ./...

bench: tools
	$(TEST_ENV) $(GO) run ./bench

# The bench kit (bench/README.md): the bench binary, latticed, the prebuilt
# actors and the pinned nats-server, built static (CGO_ENABLED=0) so that the
# tarball runs on another Linux machine without Go or the repository.
KIT_TOOLS := $(BIN)/kit-tools

$(KIT_TOOLS)/nats-server:
	CGO_ENABLED=0 GOBIN=$(KIT_TOOLS) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

bench-kit: $(KIT_TOOLS)/nats-server
	CGO_ENABLED=0 $(GO) build -trimpath -o $(KIT_TOOLS)/bench ./bench
	LATTICED_NATS_SERVER_BIN=$(KIT_TOOLS)/nats-server $(KIT_TOOLS)/bench -make-kit $(BIN)

# Builds a kit into a temp dir, unpacks it and runs ./bench -quick -only node
# from outside the repository with no go on PATH (about a minute on 2 idle
# cores, so not part of make test).
bench-kit-test: tools
	$(TEST_ENV) $(GO) test -count=1 -timeout 10m -tags benchkit -run TestBenchKit -v ./bench

# A longer soak than make test's short one: steady load, actor scaling and
# provider restarts for SOAK (default 2m); memory and goroutines must stay flat.
SOAK ?= 2m
soak: tools
	LATTICED_SOAK=$(SOAK) $(TEST_ENV) $(GO) test -count=1 -timeout 30m -run 'TestSoak' -v ./internal/supervisor

clean:
	rm -rf $(BIN) .tools

include mk/fuzz.mk
include mk/deploy.mk
include mk/rust.mk
include mk/oci.mk
include mk/console.mk

# The Go files one HTTP request through a real demo node runs code in
# (docs/architecture.md, "Where an invocation goes"): coverage of every
# process of the node, idle versus 200 requests.
walk: tools
	mk/walk.sh $(CURDIR) $(CURDIR)/bin/walk0 0 >/dev/null
	mk/walk.sh $(CURDIR) $(CURDIR)/bin/walk1 200 >/dev/null
	python3 mk/walkdiff.py bin/walk0/cov.txt bin/walk1/cov.txt 200
