# Native Go fuzzing of the wire-protocol decoders (lattice/fuzz_test.go, and
# wire/fuzz_test.go in the wire module) and of the token, issuer and
# wasm-claims verifiers (trust/fuzz_test.go). go test accepts one -fuzz target
# per run, so each target runs in turn for $(FUZZTIME). New crashers are
# written to <package>/testdata/fuzz/<Target>/.
#   make fuzz                  # every target, 10s each
#   make fuzz FUZZTIME=2m      # longer
#   make fuzz-FuzzParseJWT     # one target

GO ?= go
FUZZTIME ?= 10s
FUZZ_PKG ?= ./lattice/
FUZZ_TARGETS ?= \
	FuzzDecodeInvocation \
	FuzzDecodeInvocationResponse \
	FuzzDecodeLinkDefinition \
	FuzzDecodeHostData
# The verifiers in trust/, seed corpus in trust/testdata/fuzz/<Target>/.
TRUST_FUZZ_TARGETS ?= \
	FuzzParseJWT \
	FuzzIssuersCheck \
	FuzzWasmSections \
	FuzzKeyTableVerify \
	FuzzInvocationClaims
# The httpserver payload codec, in the wire module (wire/testdata/fuzz).
WIRE_FUZZ_TARGETS ?= FuzzDecodeHTTPRequest FuzzDecodeHTTPResponse
# The other decoders of untrusted bytes, as package:Target (seed corpus in
# each package's testdata/fuzz/<Target>/): the provider archive reader, the
# key-value provider's argument decoder, NATS server lists, the data-segment
# packer of Go actors, the loop instrumentation every actor gets
# (wasmstop), and the console's live-feed events.
PKG_FUZZ_TARGETS ?= \
	./internal/par/:FuzzRead \
	./internal/builtin/keyvalue/:FuzzDecodeArgs \
	./internal/config/:FuzzParseServers \
	./internal/host/:FuzzPackDataSegments \
	./internal/wasmstop/:FuzzInstrument \
	./internal/console/:FuzzFeedEvent

.PHONY: fuzz fuzz-seeds $(addprefix fuzz-,$(FUZZ_TARGETS) $(TRUST_FUZZ_TARGETS) $(WIRE_FUZZ_TARGETS))

# Every target runs even if an earlier one fails; the failures are listed at the end.
fuzz:
	@failed=; for t in $(FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $(FUZZ_PKG) || failed="$$failed $$t"; \
	done; \
	for t in $(TRUST_FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZTIME), ./trust/)"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./trust/ || failed="$$failed $$t"; \
	done; \
	for t in $(WIRE_FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZTIME), ./wire)"; \
		(cd wire && $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) .) || failed="$$failed $$t"; \
	done; \
	for pt in $(PKG_FUZZ_TARGETS); do \
		p=$${pt%%:*}; t=$${pt##*:}; \
		echo "== $$t ($(FUZZTIME), $$p)"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$p || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failing targets:$$failed"; exit 1; fi

$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%:
	$(GO) test -run='^$$' -fuzz='^$*$$' -fuzztime=$(FUZZTIME) $(FUZZ_PKG)

$(addprefix fuzz-,$(TRUST_FUZZ_TARGETS)): fuzz-%:
	$(GO) test -run='^$$' -fuzz='^$*$$' -fuzztime=$(FUZZTIME) ./trust/

$(addprefix fuzz-,$(WIRE_FUZZ_TARGETS)): fuzz-%:
	cd wire && $(GO) test -run='^$$' -fuzz='^$*$$' -fuzztime=$(FUZZTIME) .

# The committed seed corpus only, as plain tests (fast; suitable for CI).
fuzz-seeds:
	$(GO) test -run='Fuzz|Nesting' -count=1 $(FUZZ_PKG) ./trust/ $(foreach pt,$(PKG_FUZZ_TARGETS),$(firstword $(subst :, ,$(pt))))
	cd wire && $(GO) test -run='Fuzz' -count=1 .
