# buildgate: see README.md.
GO      ?= go
# Version stamping (internal/buildinfo): the git tag, the commit and its
# time, passed explicitly so they hold with -buildvcs=false. The commit time
# is also SOURCE_DATE_EPOCH, the one timestamp of the images and archives.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DATE    ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
BI      := github.com/buildgate/buildgate/internal/buildinfo
LDFLAGS := -s -w -X $(BI).Version=$(VERSION) -X $(BI).Commit=$(COMMIT) -X $(BI).Date=$(DATE)
export SOURCE_DATE_EPOCH
SHARED  ?= ../shared

.PHONY: build test e2e demo bench vet fmt-check clean

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate ./gate
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-jenkins ./jenkins
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-action ./actions
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gate-gitlab ./gitlab-ci

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: build fmt-check vet
	$(GO) test -count=1 -timeout 30m ./...

# The GitHub Action under nektos/act and the GitLab template under
# gitlab-ci-local, against a real gate (both on PATH; .ci/run installs them).
e2e:
	BUILDGATE_E2E=1 $(GO) test -count=1 -run 'TestWorkflowUnderAct|TestTemplateUnderGitLabCILocal' ./actions ./gitlab-ci

demo: build
	$(GO) run ./examples/demo -gate bin/gate -shared $(SHARED)

bench: build
	bash bench/run.sh

clean:
	rm -rf bin
