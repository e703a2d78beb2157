# tbfg-node: the Tiny Build Farm for Guix.
# `make help` lists the targets.

GO        ?= go
BIN       := bin/tbfg-node
PKGS      := ./...
FUZZTIME  ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

# What `tbfg-node version` says: the nearest tag (or the commit) and the full
# commit, each with -dirty for a modified tree; devel and unknown outside a
# git checkout (a release tarball can pass VERSION=… COMMIT=…).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT    ?= $(shell git describe --always --dirty --abbrev=40 --exclude='*' 2>/dev/null || echo unknown)
VERSIONPKG := github.com/tbfg/tbfg-node/internal/version
LDFLAGS   := -X $(VERSIONPKG).Version=$(VERSION) -X $(VERSIONPKG).Commit=$(COMMIT)

# Where make install puts things, under DESTDIR (for packagers). The unit
# goes to $(PREFIX)/lib/systemd/system, which systemd searches for
# /usr/local and /usr alike; /etc/systemd/system is the administrator's, for
# overrides and drop-ins.
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR    ?= $(PREFIX)/share/doc/tbfg-node

.PHONY: help build docs install uninstall test integration lint fuzz bench demo demo-stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

build: ## build bin/tbfg-node, stamped with VERSION and COMMIT from git
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tbfg-node

# The man page, completion and example settings come from the binary's own
# flag sets, so they describe exactly the flags it parses.
docs: build ## generate bin/tbfg-node.1 (man page), bin/tbfg-node.bash (completion) and bin/config.toml (example settings)
	$(BIN) man >$(BIN).1
	$(BIN) completion bash >$(BIN).bash
	$(BIN) config example >$(dir $(BIN))config.toml

install: docs ## install the binary, man page, systemd unit and bash completion under DESTDIR/PREFIX (default /usr/local)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/tbfg-node
	install -m 0644 $(BIN).1 $(DESTDIR)$(MANDIR)/man1/tbfg-node.1
	install -m 0644 $(BIN).bash $(DESTDIR)$(BASHCOMPDIR)/tbfg-node
	install -m 0644 $(dir $(BIN))config.toml $(DESTDIR)$(DOCDIR)/config.toml.example
	@# The unit's Exec lines run the binary just installed, wherever PREFIX is.
	sed -E 's#^(Exec[A-Za-z]*=[-@+!:]*)[^ ]*tbfg-node( |$$)#\1$(BINDIR)/tbfg-node\2#' \
	  contrib/systemd/tbfg-node.service >$(DESTDIR)$(UNITDIR)/tbfg-node.service
	sed -E 's#^(Exec[A-Za-z]*=[-@+!:]*)[^ ]*tbfg-node( |$$)#\1$(BINDIR)/tbfg-node\2#' \
	  contrib/systemd/tbfg-node-guix.conf >$(DESTDIR)$(DOCDIR)/tbfg-node-guix.conf
	chmod 0644 $(DESTDIR)$(UNITDIR)/tbfg-node.service $(DESTDIR)$(DOCDIR)/tbfg-node-guix.conf
	@[ -n "$(DESTDIR)" ] || echo "Installed. Settings: $(DOCDIR)/config.toml.example -> /etc/tbfg/config.toml; then systemctl daemon-reload."

uninstall: ## remove what install put under DESTDIR/PREFIX (not /etc/tbfg or the data dir)
	rm -f $(DESTDIR)$(BINDIR)/tbfg-node $(DESTDIR)$(MANDIR)/man1/tbfg-node.1 \
	  $(DESTDIR)$(UNITDIR)/tbfg-node.service $(DESTDIR)$(BASHCOMPDIR)/tbfg-node \
	  $(DESTDIR)$(DOCDIR)/config.toml.example $(DESTDIR)$(DOCDIR)/tbfg-node-guix.conf
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

test: ## run every test with the race detector (CI runs it as root with CI=true: a missing tool or root fails)
	$(GO) test -race -count=1 -timeout 40m $(PKGS)

integration: build ## run only the multi-host tests in network namespaces (needs root)
	$(GO) test -race -count=1 -timeout 35m -v ./integration/...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	  done; \
	done

# -p 1: one package's benchmarks at a time, so that none loads the machine
# while another measures its reference. README says which print what.
bench: ## run the benchmarks (node-vs-nginx as root, with wrk and nginx); most print x-faster-than-REF, against REF run alongside
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 3x -timeout 60m $(PKGS)

demo: build ## as root: three namespace hosts build a demo graph and serve substitutes (stop: make demo-stop)
	$(GO) build -o bin/tbfg-demo-gengraph ./integration/demo/gengraph
	integration/demo/demo.sh start

demo-stop: ## as root: stop the demo's nodes, delete its namespaces and bridge and its state
	integration/demo/demo.sh stop

clean: ## remove built binaries
	rm -rf bin
