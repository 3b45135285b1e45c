# Dominus — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/dominus
# The reference target of `dominus bench`: the same command built with the
# tag benchreference (its state machine only counts and hashes after
# genesis). Never deploy it; bench finds it beside $(BIN).
BIN_REFERENCE := bin/dominus-bench-reference
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dominus-kernel/dominus/internal/cli.Version=$(VERSION)
# Packages whose tests run real Raft, sockets or goroutines: run with -race.
RACE_PKGS := ./kernel/... ./cluster-tests/... ./archive/... ./internal/... ./client/... ./driver/... ./jepsen/... ./transport/... ./passport/... ./cortex/...
FUZZTIME ?= 20s
# The reference MCP server the gateway's end-to-end test and demo drive,
# installed with npm into the user's cache folder (where the test looks).
MCP_FS_VERSION := 2026.8.31
MCP_NPM_PREFIX := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dominus/mcp-npm

.PHONY: help build bench-reference mcp-deps test test-unit test-race test-cluster jepsen bench fuzz lint demo demo-federation demo-transparency demo-evolution clean sense-eval

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: bench-reference ## build bin/dominus (and the benchmark reference beside it)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dominus

bench-reference: ## build only bin/dominus-bench-reference, the reference target of dominus bench (-tags benchreference)
	$(GO) build -tags benchreference -ldflags "$(LDFLAGS)" -o $(BIN_REFERENCE) ./cmd/dominus

mcp-deps: ## install @modelcontextprotocol/server-filesystem (pinned) with npm into the cache folder the MCP gateway test uses
	@command -v npm >/dev/null || { echo "make: npm is missing: the MCP gateway test needs node (v20+) and npm (apt-get install nodejs npm)"; exit 1; }
	@grep -qs '"version": "$(MCP_FS_VERSION)"' $(MCP_NPM_PREFIX)/node_modules/@modelcontextprotocol/server-filesystem/package.json || \
	  npm install --prefix $(MCP_NPM_PREFIX) --no-audit --no-fund @modelcontextprotocol/server-filesystem@$(MCP_FS_VERSION)

test: build lint mcp-deps ## everything CI runs: vet, staticcheck, unit, race, cluster tests, then the fault-test smoke runs (root, iptables)
	$(GO) test -count=1 -timeout 10m ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)
	$(GO) run ./jepsen/cmd/jepsen -bin $(BIN) -smoke
	$(GO) run ./jepsen/cmd/jepsen -bin $(BIN) -federation -time 45s

test-cluster: ## only the in-process multi-node cluster tests (with -race)
	$(GO) test -race -count=1 -timeout 15m -v ./cluster-tests/...

jepsen: build ## fault tests of real processes (root, iptables): JEPSEN_TIME (3m), JEPSEN_SEED, JEPSEN_NEMESIS (all), JEPSEN_EVOLVE=1 (a policy evolution runs through the faults); report in jepsen/reports/
	$(GO) run ./jepsen/cmd/jepsen -bin $(BIN)

.PHONY: jepsen-federation
jepsen-federation: build ## sovereign + domains a, b: bus cuts, kill of b's leader, b's passport revoked (root, iptables); JEPSEN_TIME (45s), JEPSEN_SEED, JEPSEN_NEMESIS
	JEPSEN_FEDERATION=1 $(GO) run ./jepsen/cmd/jepsen -bin $(BIN)

.PHONY: jepsen-smoke
jepsen-smoke: build ## 60 s of ops under partitions, a kill -9, latency and a snapshot-installing follower, then the targeted scenarios (root, iptables; under 2.5 min)
	$(GO) run ./jepsen/cmd/jepsen -bin $(BIN) -smoke

bench: build ## gate vs reference on local 3-node clusters at 1, 16, 256 clients (5 s each), then micro-benchmarks (BENCH_ARGS adds flags)
	$(BIN) bench --duration 5s $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench . -benchmem ./bench/ ./fsm/... ./archive/...

.PHONY: bench-long
bench-long: build ## leader kill -9 failover (5x), offline replay of a 1M-event ledger, elections in 5 min under load, snapshot size/time and memory at 1M events, revocation against subtree size, cross-domain bus latency and throughput
	$(BIN) bench --mode failover,replay,elections,snapshot,memory,revocation --replay-events 1000000 --ledger-events 1000000 --elections-duration 5m $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench CrossDomainCall -benchtime 500x ./kernel/

sense-eval: ## the sensing evaluation (sense/EVALUATION.md): 240 entities over 2 days, tuning seeds 1-3 then held-out seeds 9001-9003 (~5 min)
	$(GO) run ./bench/senseeval/cmd/sense-eval

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in ./fsm ./archive ./kernel ./passport ./transport; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; done

# staticcheck is pinned by the tool directive in go.mod (go tool runs that
# version, nothing installed globally); it checks test files too.
lint: ## gofmt, go vet, go mod tidy check, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) tool staticcheck ./...

demo: build mcp-deps ## run the kernel story, the MCP gateway story, the federation story (sovereign + 2 domains, 9 processes), verifiable history, then governed evolution
	./scripts/demo.sh
	./scripts/demo-mcp.sh
	./scripts/demo-federation.sh
	./scripts/demo-transparency.sh
	./scripts/demo-evolution.sh

demo-federation: build ## only the federation story
	./scripts/demo-federation.sh

demo-transparency: build ## only verifiable history: an offline inclusion proof of a payment, then a forged history caught
	./scripts/demo-transparency.sh

demo-evolution: build ## only governed evolution: a regression rolled back from a 25% canary, a candidate promoted, policy history
	./scripts/demo-evolution.sh

clean: ## remove build output
	rm -rf bin
