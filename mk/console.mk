# The browser the web console's test (internal/supervisor/console_browser_test.go)
# drives through chromedp: Debian 12's chromium, pinned, installed by
# `make tools` only when missing. The test fails, naming `make tools`, when no
# chromium is on PATH: a browser test that skipped would hide that the console
# was never opened.
#   make -f mk/console.mk chromium    # just the browser
# Debian's security archive keeps only its latest chromium: when apt-get
# cannot find this version, `apt-cache policy chromium` shows the one to pin.
# Included at the end of the Makefile.

CHROMIUM_DEB_VERSION := 148.0.7778.167-1~deb12u1
CHROMIUM             := /usr/bin/chromium

CHROMIUM_APT_GET = $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: chromium

chromium: $(CHROMIUM)

tools: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null 2>&1 || { echo "chromium: $(CHROMIUM) missing and no apt-get here; install Chromium $(CHROMIUM_DEB_VERSION) or later" >&2; exit 1; }
	@echo "tools: installing chromium $(CHROMIUM_DEB_VERSION) from Debian (apt-get)"
	@start=$$(date +%s); $(CHROMIUM_APT_GET) install -y --no-install-recommends chromium=$(CHROMIUM_DEB_VERSION) || { \
		$(CHROMIUM_APT_GET) update -qq && $(CHROMIUM_APT_GET) install -y --no-install-recommends chromium=$(CHROMIUM_DEB_VERSION); } && \
		echo "tools: chromium installed in $$(( $$(date +%s) - start )) s"
	@test -x $(CHROMIUM) || { echo "chromium: installed, but $(CHROMIUM) is still missing" >&2; exit 1; }
	@$(CHROMIUM) --version
