# buildgate: see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
SHARED  ?= ../shared

.PHONY: build test e2e demo bench vet fmt-check clean

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
