# tbfg-node: the Tiny Build Farm for Guix.
# `make help` lists the targets.

GO        ?= go
BIN       := bin/tbfg-node
PKGS      := ./...
FUZZTIME  ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

.PHONY: help build test integration lint fuzz bench demo demo-stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

build: ## build bin/tbfg-node
	$(GO) build -o $(BIN) ./cmd/tbfg-node

test: ## run every test with the race detector (CI runs it as root with CI=true: a missing tool or root fails)
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

integration: build ## run only the multi-host tests in network namespaces (needs root)
	$(GO) test -race -count=1 -timeout 20m -v ./integration/...

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
