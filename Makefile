# buildgate: see README.md.
GO      ?= go
# Version stamping (internal/buildinfo): the git tag, the commit and its
# time, passed explicitly so they hold with -buildvcs=false. The commit time
# is also SOURCE_DATE_EPOCH, the one timestamp of the images and archives.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DATE    ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
# Read once, and handed to the sub-makes: a commit or an edit during a long
# build must not stamp the images and archives with other values than the
# binaries in them.
VERSION := $(VERSION)
COMMIT  := $(COMMIT)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
DATE    := $(DATE)
export VERSION COMMIT SOURCE_DATE_EPOCH DATE
BI      := github.com/buildgate/buildgate/internal/buildinfo
LDFLAGS := -s -w -X $(BI).Version=$(VERSION) -X $(BI).Commit=$(COMMIT) -X $(BI).Date=$(DATE)
SHARED  ?= $(or $(BUILDGATE_SHARED),../shared)

# One build configuration for every go command make runs (the binaries,
# vet, golangci-lint's loading, the tests and the binaries they build, the
# static cross builds): no cgo, -trimpath. The packages one compiles are
# then the cache of the others, so a cold CI compiles grype and syft for
# linux/amd64 once, not once for the release and again for the tests. (The
# race detector needs cgo: make race is a configuration of its own.)
export CGO_ENABLED := 0
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)
.PHONY: build test e2e fuzz fuzz-ci demo bench vet lint race fmt-check clean cross image release chart

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate ./gate
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-jenkins ./jenkins
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-action ./actions
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-gitlab ./gitlab-ci
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gatectl ./gatectl

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# golangci-lint v2 as a Go tool, in its own module file (tools/lint.mod) so
# its dependencies never move the gate's; .golangci.yml says what it checks.
lint:
	$(GO) tool -modfile=tools/lint.mod golangci-lint run ./...

# The race detector over the packages that run goroutines of their own.
# (internal/step runs none; its tests pull in grype and syft, which a race
# build compiles again: minutes of CI for nothing.)
RACE_PKGS ?= ./internal/analysis ./internal/alert ./internal/admission ./internal/store/... ./internal/server/... ./internal/notify/...
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test: build fmt-check vet lint race
	$(GO) test -count=1 -timeout 30m ./...

# The GitHub Action under nektos/act and the GitLab template under
# gitlab-ci-local, against a real gate (both on PATH; .ci/run installs them).
e2e:
	BUILDGATE_E2E=1 $(GO) test -count=1 -run 'TestWorkflowUnderAct|TestTemplateUnderGitLabCILocal' ./actions ./gitlab-ci

# Bounded fuzzing of the parsers that read what users send. Budgets are
# counts, not durations: Go 1.26 can fail a duration-bounded run with a bare
# "context deadline exceeded" when the time runs out (go.dev/issue/75804).
# Minimising a new coverage input gets a second at most; the default of 60 s
# spent most of a 20 s budget minimising instead of fuzzing.
FUZZ = $(GO) test -run '^$$' -fuzzminimizetime 1s
fuzz-ci:
	$(FUZZ) -fuzz FuzzParseBundle -fuzztime 300000x ./internal/policy
	$(FUZZ) -fuzz FuzzTopLevelKeys -fuzztime 100000x ./internal/server/anchore
	$(FUZZ) -fuzz FuzzParseReference -fuzztime 100000x ./internal/registry

# fuzz-ci plus the SBOM decoder, whose instrumented build of syft takes
# minutes (CI leaves it out; make test runs its seed corpus).
fuzz: fuzz-ci
	$(FUZZ) -fuzz FuzzDecodeSBOM -fuzztime 20000x ./internal/catalog

demo: build
	$(GO) run ./examples/demo -gate bin/gate -step bin/gate-jenkins -shared $(SHARED)

bench: build
	bash bench/run.sh

# Static binaries for other platforms: dist/bin/<os>_<arch>/<name>.
# BINS are name=package pairs; -trimpath and the stamps above make them
# the same on every machine for one commit.
BINS           ?= gate=./gate gate-jenkins=./jenkins gate-action=./actions gate-gitlab=./gitlab-ci
PLATFORMS      ?= linux/amd64 linux/arm64
cross:
	@set -e; for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  for b in $(BINS); do n=$${b%%=*}; pkg=$${b#*=}; \
	    echo "build $$n $$os/$$arch"; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o dist/bin/$${os}_$${arch}/$$n $$pkg; \
	  done; done

# The gate and step images (linux/amd64 and linux/arm64), without Docker:
# dist/gate.oci/, dist/gate-step.oci/ (crane push), dist/*.docker.tar
# (docker load), dist/*.sbom.*.json, dist/*.digest.
image:
	$(MAKE) cross PLATFORMS="linux/amd64 linux/arm64"
	$(GO) run ./tools/imagebuild -bin dist/bin -out dist -version $(VERSION) -revision $(COMMIT) -epoch $(SOURCE_DATE_EPOCH)

# Release archives (one tar.gz per binary and platform, with the licence),
# the images and their SBOMs, the packaged chart, and dist/SHA256SUMS.
# CI runs it as a snapshot; .github/workflows/release.yml on tags.
GATE_PLATFORMS ?= linux/amd64 linux/arm64
STEP_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
STEP_BINS      := gate-jenkins=./jenkins gate-action=./actions gate-gitlab=./gitlab-ci
TAR            := tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner --mode=go-w
release: image chart
	$(MAKE) cross PLATFORMS="$(STEP_PLATFORMS)" BINS="$(STEP_BINS)"
	@set -e; mkdir -p dist/release; \
	arch() { for p in $$2; do os=$${p%/*}; a=$${p#*/}; \
	  $(TAR) -cf - -C dist/bin/$${os}_$${a} $$1 -C $(CURDIR) LICENSE | gzip -9n > dist/release/$${1}_$(VERSION)_$${os}_$${a}.tar.gz; \
	done; }; \
	arch gate "$(GATE_PLATFORMS)"; \
	for b in gate-jenkins gate-action gate-gitlab; do arch $$b "$(STEP_PLATFORMS)"; done; \
	cp dist/*.sbom.spdx.json dist/*.sbom.syft.json dist/release/; \
	cd dist/release && sha256sum *.tar.gz *.tgz *.json > SHA256SUMS && cat SHA256SUMS

# The Helm chart, linted and packaged with appVersion = the binaries' version.
HELM  := $(GO) tool -modfile=tools/helm.mod helm
CHART_VERSION ?= $(patsubst v%,%,$(shell git describe --tags --abbrev=0 2>/dev/null || echo 0.1.0))
chart:
	$(HELM) lint deploy/helm/buildgate
	$(HELM) package deploy/helm/buildgate --version $(CHART_VERSION) --app-version $(VERSION) -d dist/release

clean:
	rm -rf bin dist
