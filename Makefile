# Wisp — two commands: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
GOROOT      := $(shell $(GO) env GOROOT)
WASM_EXEC   := $(GOROOT)/lib/wasm/wasm_exec.js
STATICCHECK := $(GOBIN)/staticcheck
WASMBT      := $(GOBIN)/wasmbrowsertest
DIST        := server/cmd/wisp-host/dist
HOST_ADDR   ?= 127.0.0.1:8080
RELAY_ADDR  ?= 127.0.0.1:5223
RUN_DIR     := .run
# Packages whose tests also run as js/wasm in headless Chromium.
WASM_TEST_PKGS := $(foreach d,crypto server/wire wasm,$(if $(wildcard $(d)/*),./$(d)/...))
E2E_TIMEOUT ?= 15m

.PHONY: build wasm bundle bins run test tools lint test-native test-wasm test-e2e test-scale bench clean

## build: the wasm core, the hashed and precompressed bundle, and bin/*.
build: bundle bins

wasm:
	@mkdir -p bin
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o bin/core.wasm ./wasm
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o bin/qr.wasm ./wasm/qrworker
	@# Unhashed copies for `wisp-host -dev`, which serves web/ from disk.
	cp bin/core.wasm web/core.wasm
	cp bin/qr.wasm web/qr.wasm
	cp $(WASM_EXEC) web/wasm_exec.js

bundle: wasm
	$(GO) run ./server/cmd/wisp-bundle -src web -out $(DIST) \
		-extra core.wasm=bin/core.wasm -extra qr.wasm=bin/qr.wasm -extra wasm_exec.js=$(WASM_EXEC) >/dev/null
	@echo "bundle: $$(ls $(DIST) | wc -l) files in $(DIST); core.wasm $$(stat -c %s bin/core.wasm) bytes," \
		"gzip $$(stat -c %s $(DIST)/core.*.wasm.gz), brotli $$(stat -c %s $(DIST)/core.*.wasm.br)"

bins: bundle
	@mkdir -p bin
	$(GO) build -trimpath -o bin/ ./server/cmd/...

## run: build, start a relay (when built) and the host, print where they are.
run: build
	@mkdir -p $(RUN_DIR)/relay
	@relay_flags=""; relay_pid=""; \
	trap '[ -n "$$relay_pid" ] && kill $$relay_pid 2>/dev/null; wait' EXIT; \
	if [ -x bin/wisp-relay ]; then \
		bin/wisp-relay -listen $(RELAY_ADDR) -data $(RUN_DIR)/relay -proxy-private >$(RUN_DIR)/relay.out 2>$(RUN_DIR)/relay.log & relay_pid=$$!; \
		for i in $$(seq 1 100); do grep -q '^relay address: ' $(RUN_DIR)/relay.out 2>/dev/null && break; \
			kill -0 $$relay_pid 2>/dev/null || { cat $(RUN_DIR)/relay.log; exit 1; }; sleep 0.1; done; \
		addr=$$(grep -m1 '^relay address: ' $(RUN_DIR)/relay.out | cut -d' ' -f3); \
		[ -n "$$addr" ] || { echo "relay did not start; see $(RUN_DIR)/relay.log"; exit 1; }; \
		echo "relay: $$addr  (log: $(RUN_DIR)/relay.log)"; relay_flags="-relay $$addr"; \
	fi; \
	echo "Open http://$(HOST_ADDR)/ — Ctrl-C stops everything."; \
	bin/wisp-host -listen $(HOST_ADDR) -allow-loopback-relays $$relay_flags

## test: everything — lint, native tests, js/wasm tests in Chromium, browser e2e.
test: tools lint test-native test-wasm test-e2e
	@echo "make test: all passed"

tools:
	@if ! command -v chromium >/dev/null || ! command -v zbarimg >/dev/null || ! command -v firefox-esr >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium, zbar-tools and firefox-esr with apt"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium zbar-tools firefox-esr >/dev/null; \
		else \
			echo "make test needs Chromium, zbarimg and Firefox ESR: run 'sudo apt-get install -y chromium zbar-tools firefox-esr'"; exit 1; \
		fi; \
	fi
	@# PostgreSQL for the relay's -store postgres:// tests (a throwaway server
	@# on a loopback port, started by the tests themselves; see
	@# server/internal/pgtest). Without it those tests skip, loudly.
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing postgresql with apt"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || \
				echo "*** could not install postgresql: the PostgreSQL store tests will be SKIPPED ***"; \
		else \
			echo "*** no PostgreSQL (sudo apt-get install -y postgresql): the PostgreSQL store tests will be SKIPPED ***"; \
		fi; \
	fi
	@[ -x $(STATICCHECK) ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	@[ -x $(WASMBT) ] || $(GO) install github.com/agnivade/wasmbrowsertest@v0.11.0
	@command -v npm >/dev/null || { echo "make test needs Node.js and npm (for axe-core and puppeteer-core in the browser tests)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)' || { echo "make test needs Node.js 18 or later (puppeteer-core drives Firefox)"; exit 1; }

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./web/e2e/
	GOOS=js GOARCH=wasm $(GO) vet $(WASM_TEST_PKGS)
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./web/e2e/
	GOOS=js GOARCH=wasm $(STATICCHECK) $(WASM_TEST_PKGS)

test-native:
	$(GO) test -race -timeout 20m ./...

## test-scale: the 100-member group (about 10 minutes of two cores), without
## the race detector; not part of `make test`, to keep CI under 30 minutes.
test-scale:
	$(GO) test -count=1 -timeout 40m -run 'TestGroupHundredMembers' -v ./wasm/chat/ | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|group_test'

test-wasm:
	GOOS=js GOARCH=wasm $(GO) test -exec $(WASMBT) -timeout 10m $(WASM_TEST_PKGS)

test-e2e: build web/e2e/node_modules/.package-lock.json
	WISP_ROOT=$(CURDIR) $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./web/e2e/

# Test-only npm packages of the e2e tests, pinned by package-lock.json: axe-core
# (accessibility rules) and puppeteer-core (drives Firefox in TestFirefox).
web/e2e/node_modules/.package-lock.json: web/e2e/package.json web/e2e/package-lock.json
	npm ci --prefix web/e2e --no-audit --no-fund --loglevel=error
	@touch $@

## bench: browser start-up figures (median of 5 loads).
bench: build
	WISP_ROOT=$(CURDIR) $(GO) test -tags e2e -run '^$$' -bench . -benchtime 5x ./web/e2e/

clean:
	rm -rf bin $(RUN_DIR) web/core.wasm web/wasm_exec.js web/e2e/artifacts web/e2e/node_modules
	find $(DIST) -mindepth 1 ! -name .gitkeep -delete
