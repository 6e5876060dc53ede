# Native Go fuzzing of the wire-protocol decoders (lattice/fuzz_test.go).
# go test accepts one -fuzz target per run, so each target runs in turn for
# $(FUZZTIME). New crashers are written to lattice/testdata/fuzz/<Target>/.
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
	FuzzParseJWT \
	FuzzIssuerPolicyCheck \
	FuzzWasmSections \
	FuzzDecodeHostData \
	FuzzInvocationClaims \
	FuzzDecodeHTTPRequest \
	FuzzDecodeHTTPResponse
# The provider archive reader (par/), seed corpus in par/testdata/fuzz/FuzzRead.
PAR_FUZZ_TARGETS ?= FuzzRead

.PHONY: fuzz fuzz-seeds $(addprefix fuzz-,$(FUZZ_TARGETS))

# Every target runs even if an earlier one fails; the failures are listed at the end.
fuzz:
	@failed=; for t in $(FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $(FUZZ_PKG) || failed="$$failed $$t"; \
	done; \
	for t in $(PAR_FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZTIME), ./internal/par/)"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./internal/par/ || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failing targets:$$failed"; exit 1; fi

$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%:
	$(GO) test -run='^$$' -fuzz='^$*$$' -fuzztime=$(FUZZTIME) $(FUZZ_PKG)

# The committed seed corpus only, as plain tests (fast; suitable for CI).
fuzz-seeds:
	$(GO) test -run='Fuzz|Nesting' -count=1 $(FUZZ_PKG) ./internal/par/
