# Every command the README names lives here.
GO        ?= go
PKGS      := ./...
BIN       := bin
LINT      := $(shell $(GO) env GOPATH)/bin/golangci-lint
LINT_VER  := v2.15.0

.PHONY: all build test test-suites test-short lint fmt vet bench bench-slow docs run newcomer faults clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

## run: a local demo: build, then start a local webhook receiver, the scheduler,
## the api and two workers against PostgreSQL and Redis on localhost, with a
## 5 s CRON_INTERVAL unless you set one; prints the api, console, Swagger UI,
## asynqmon and metrics addresses; Ctrl-C stops them all. When PostgreSQL or
## Redis does not answer, scripts/services.sh starts throwaway ones for the run.
run:
	GO="$(GO)" BIN="$(BIN)" ./scripts/services.sh with run ./scripts/run-local.sh

## newcomer: follow the README on a fresh clone: make run against a new
## database, what it prints, every command of the README's tour with the
## answer the README shows, Ctrl-C; then make run against a missing database.
newcomer:
	./scripts/newcomer.sh

## test: the full suite against the local PostgreSQL and Redis, with the race detector,
## then the modules that ./... skips: the deployment's tests (deploy/: the
## Kubernetes manifests, docker-compose.yaml and the Dockerfile) and the
## benchmark's (bench/; its baseline build is left to make bench).
## When PostgreSQL or Redis does not answer, scripts/services.sh starts
## throwaway ones for the run.
test:
	./scripts/services.sh with test $(MAKE) --no-print-directory test-suites

## test-suites: what make test runs once the servers answer.
test-suites:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	cd deploy && $(GO) test -race -count=1 -timeout 5m ./...
	cd bench && $(GO) test -race -count=1 -timeout 5m -skip TestBuildBaseline ./...

## test-short: skip the slow end-to-end process tests.
test-short:
	$(GO) test -short -count=1 $(PKGS)

## faults: the fault scenarios plus the 100,000-message soak; prints the ledger table.
faults:
	$(GO) test -count=1 -timeout 30m -v -run . ./internal/faults -args -soak -outage 75s | grep -E '^(\||--- |ok|FAIL|PASS)'

## bench: the end-to-end benchmark against the local PostgreSQL and Redis
## (several minutes): this project's drains, the River peer (bench/river,
## its own module, built here; the first build downloads River), the
## baseline drain of the engine before the lifecycle columns (git revision
## 5324d75 plus bench/baseline/5324d75.patch), a drain beside a retention
## purge of 1,000,000 finished rows, pairs of drains with status callbacks
## off and on, and the claim timing; prints
## Markdown tables, see docs/benchmarks.md. The benchmark is a module of its
## own (bench/go.mod) and runs in bench/, so a relative -cpuprofile path is
## relative to bench/.
## BENCH_FLAGS=-quick for a smoke run; BENCH_FLAGS=-help lists the flags.
bench:
	cd bench && $(GO) run . $(BENCH_FLAGS)

## bench-slow: the slow receiver mode: the sink holds every answer 20 ms;
## 1, 2 and 4 workers of 16 calls, 20,000 messages each.
bench-slow:
	cd bench && $(GO) run . -receiver-delay 20ms -concurrency 16 $(BENCH_FLAGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

$(LINT):
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VER)

lint: $(LINT)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	$(LINT) run $(PKGS)
	cd deploy && $(GO) vet ./... && $(LINT) run --config ../.golangci.yml ./...
	cd bench && $(GO) vet ./... && $(LINT) run --config ../.golangci.yml ./...

## docs: regenerate the OpenAPI document in docs/ from the handler annotations
## in internal/api and the message view in internal/view, then add what swag
## cannot say (additionalProperties: false,
## the example body of every error answer; see internal/api/apidoc); a test
## there fails when docs/ is stale. The flags must match docsConfig in
## internal/api/docs_test.go.
docs:
	$(GO) tool swag init --quiet --requiredByDefault -d internal/api,internal/view -g api.go -o docs
	$(GO) run ./internal/api/apidoc/finish docs

clean:
	rm -rf $(BIN)
