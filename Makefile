# fleutanbeat — build, run and test. `make run` and `make test` are the two
# set-up commands of the README; .ci/run calls `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
PKGS     := ./...
# Benchmarks write their figures here (and to stdout).
BENCH_OUT ?= build/bench.txt

.PHONY: all build run test test-unit test-kernels test-package check-kernels-table vet fmt-check bench fuzz clean help package image venv

all: build

help:
	@echo "make build   build bin/fleutanbeat and bin/fleutan (the terminal views)"
	@echo "make run     build and run the agent with fleutanbeat.yml (events go to ./data)"
	@echo "make test    vet, format check and the whole test suite with -race against a real Elasticsearch, then make test-kernels"
	@echo "make test-kernels  the kernel-facing tests inside Debian's 5.10, 6.1 and 6.12 kernels (qemu; needs root)"
	@echo "make test-package  the .deb under systemd in qemu on Debian's 6.1 and 6.12 kernels (needs root)"
	@echo "make bench   benchmarks with side-by-side comparisons (needs root); figures in $(BENCH_OUT)"
	@echo "make fuzz    run every fuzz target for FUZZTIME (default 20s) each"
	@echo "make venv    the Python reference tools the tests compare against, in .venv"
	@echo "make package build build/fleutanbeat_VERSION_ARCH.deb (dpkg-deb)"
	@echo "make image   container image (needs a Docker engine)"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/fleutanbeat ./cmd/fleutanbeat
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/fleutan ./cmd/fleutan

# The shipped config must not be writable by group or others (strict.perms),
# whatever the umask of the checkout was.
run: build
	chmod go-w fleutanbeat.yml
	$(BIN)/fleutanbeat run -e -c fleutanbeat.yml --path.home .

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Elasticsearch for the tests: the official integ-test-zip distribution,
# fetched from Maven Central by .ci/elasticsearch.sh and cached under .es/.
ES_VERSION ?= 8.19.21

# OpenSearch for the tests of output.opensearch: the integ-test-zip of the
# newest 2.19.x and of a 3.x, fetched by .ci/opensearch.sh into .os/.
OS2_VERSION ?= 2.19.6
OS3_VERSION ?= 3.6.0
OPENSEARCH   = .ci/opensearch.sh run $(OS2_VERSION) .os/run/test2 $(OS3_VERSION) .os/run/test3 --

# The whole suite, race detector on, with one real Elasticsearch started for
# the run and stopped after it: a container of a locally built image on a
# private dockerd (.ci/docker.sh) when root can have one, else a process;
# and one OpenSearch of each tested major version, as processes.
# Kernel tests need root and skip without it unless FLEUTANBEAT_REQUIRE_ROOT=1
# (set by .ci/run) makes skips failures; likewise FLEUTANBEAT_REQUIRE_ES=1 for
# the Elasticsearch tests, FLEUTANBEAT_REQUIRE_OPENSEARCH=1 for the
# OpenSearch ones and FLEUTANBEAT_REQUIRE_DOCKER=1 for the engine.
# The kernel matrix runs last, after the host suite passed.
test: fmt-check vet build
	.ci/docker.sh run -- .ci/elasticsearch.sh run $(ES_VERSION) .es/run/test -- $(OPENSEARCH) $(GO) test -race -count=1 -timeout 60m $(PKGS)
	$(MAKE) test-kernels
	$(MAKE) test-package
# Tests that compare with a reference implementation find its Python here;
# without it they skip, unless FLEUTANBEAT_REQUIRE_TOOLS=1 (set by .ci/run).
test: venv
test: check-kernels-table
test: export FLEUTANBEAT_PYTHON = $(abspath $(VENV))/bin/python

# The Python packages of .ci/python-requirements.txt, from PyPI into a
# virtualenv under the ignored .venv/, kept between runs (like .es/) and
# brought up to date when that file changes. Add a tool by adding its line.
PYTHON ?= python3
VENV   ?= .venv
venv: $(VENV)/.installed
$(VENV)/.installed: .ci/python-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r .ci/python-requirements.txt
	touch $@

# The kernel matrix: kernel-facing test packages built static and run as
# root in qemu on Debian's kernels (cached under .kernels/); a table kernel x
# package, non-zero on any failure. KERNELS="bookworm" narrows it. Inside
# the guest FLEUTANBEAT_REQUIRE_ROOT=1 and FLEUTANBEAT_REQUIRE_KERNEL=1 make
# skips failures (.ci/kernels-guest.sh). Without root it skips, unless
# FLEUTANBEAT_REQUIRE_ROOT=1 makes that a failure too.
test-kernels:
	.ci/kernels.sh run

# The .deb under a real systemd: a debootstrap root (cached under
# .kernels/pkgroot) booted on Debian's 6.1 and 6.12 kernels; dpkg -i,
# capabilities, events, restart, upgrade, remove, purge, systemd-analyze
# security, and the inputs without the sock_diag modules.
test-package:
	.ci/package-vm.sh

# README's "Supported kernels" table is the one .ci/kernels.sh generated
# from the last full matrix run (.ci/kernels-matrix.tsv).
check-kernels-table:
	.ci/kernels.sh check-readme

bench: build
	@mkdir -p $(dir $(BENCH_OUT))
	$(GO) test -run '^$$' -bench 'FlowsVsSS|RouteAssign' -benchmem -benchtime 1x -timeout 60m ./input/flows/ | tee $(BENCH_OUT)
	$(GO) test -run '^$$' -bench ShortConnections -benchtime 1x -timeout 20m ./input/flows/flowsinput/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -skip ProcfsVsOwn -benchtime 1x -timeout 20m ./input/cpu/ ./input/qdisc/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench ProcfsVsOwn -benchmem -timeout 10m ./input/cpu/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench PipelineFlowsToFile -benchmem -benchtime 300000x -count 5 -timeout 30m ./pipeline/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench 'FlowEvent|Reporter|Rollup' -benchmem -count 3 ./input/flows/flowsinput/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench InputReportModes -benchtime 1x -timeout 20m ./input/flows/flowsinput/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench AgentFootprint -benchtime 1x -timeout 20m ./input/flows/flowsinput/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench FlowsEndpoint -benchmem -count 3 ./cmd/fleutanbeat/queryapi/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./pipeline/condition/ ./pipeline/diskqueue/ ./pipeline/processor/ ./output/codec/... ./output/file/ ./output/logstash/ ./input/internal/... | tee -a $(BENCH_OUT)
	.ci/docker.sh run -- .ci/elasticsearch.sh run $(ES_VERSION) .es/run/bench -- $(GO) test -run '^$$' -bench ShipToElasticsearch -benchtime 1x -timeout 60m ./output/elasticsearch/ | tee -a $(BENCH_OUT)
	.ci/opensearch.sh run $(OS2_VERSION) .os/run/bench2 $(OS3_VERSION) .os/run/bench3 -- $(GO) test -run '^$$' -bench ShipToOpenSearch -benchtime 1x -timeout 60m ./output/opensearch/ | tee -a $(BENCH_OUT)
	.ci/docker.sh run -- .ci/elasticsearch.sh run $(ES_VERSION) .es/run/fleet -- $(GO) test -run '^$$' -bench FleetProfile -benchtime 1x -timeout 120m ./input/flows/flowsinput/ | tee -a $(BENCH_OUT)

FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The .deb: binary, systemd unit, /etc/fleutanbeat/fleutanbeat.yml (0600),
# Kibana objects; its contents are checked by the packaging tests.
DEB_OUT ?= build
package: build
	sh cmd/fleutanbeat/packaging/build-deb.sh $(BIN)/fleutanbeat $(VERSION) $(DEB_OUT)

# The agent's image FROM scratch (no registry): the static binary, the
# machine's CA bundle, a non-root user, the default config.
image: build
	sh cmd/fleutanbeat/packaging/build-image.sh $(BIN)/fleutanbeat fleutanbeat:$(VERSION)

clean:
	rm -rf $(BIN) build
