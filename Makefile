# Dominus — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/dominus
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dominus-kernel/dominus/internal/cli.Version=$(VERSION)
# Packages whose tests run real Raft, sockets or goroutines: run with -race.
RACE_PKGS := ./kernel/... ./cluster-tests/... ./archive/... ./internal/... ./client/...
FUZZTIME ?= 20s

.PHONY: help build test test-unit test-race test-cluster jepsen bench fuzz lint demo clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/dominus
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dominus

test: build lint ## everything CI runs: vet, unit, race, cluster tests
	$(GO) test -count=1 -timeout 10m ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

test-cluster: ## only the in-process multi-node cluster tests (with -race)
	$(GO) test -race -count=1 -timeout 15m -v ./cluster-tests/...

jepsen: build ## fault tests of real processes (not yet implemented)
	@echo "jepsen: the fault-testing suite is not built yet (see jepsen/doc.go)"; exit 1

bench: ## micro-benchmarks of the ledger and archive
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/... ./archive/...

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in ./fsm ./archive; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; done

lint: ## gofmt, go vet, go mod tidy check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

demo: build ## start a local 3-node kernel and run the scripted workload
	./scripts/demo.sh

clean: ## remove build output
	rm -rf bin
