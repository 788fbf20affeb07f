#!/usr/bin/env bash
# Builds gate-action for action.yml from the action's own checkout
# ($1, github.action_path) with the runner's Go, once per source: the
# binary is kept under $BUILDGATE_ACTION_CACHE (default
# $RUNNER_TOOL_CACHE/buildgate-action) in a directory named after a hash
# of the Go version and of every Go source, go.mod and go.sum, so a later
# run of the same commit skips the build. GOCACHE and GOMODCACHE default
# to directories beside it (kept between runs on self-hosted runners; add
# actions/cache on that directory on GitHub-hosted ones); values already
# in the environment are kept.
#
# With $BUILDGATE_ACTION_BINARY (the input binary) it builds nothing and
# uses that prebuilt binary.
#
# It writes bin=PATH to $GITHUB_OUTPUT.
set -euo pipefail

src=${1:?usage: build.sh ACTION_PATH}
out=${GITHUB_OUTPUT:-/dev/stdout}

if [ -n "${BUILDGATE_ACTION_BINARY:-}" ]; then
  if [ ! -x "$BUILDGATE_ACTION_BINARY" ] || [ -d "$BUILDGATE_ACTION_BINARY" ]; then
    echo "::error title=buildgate::the input binary ($BUILDGATE_ACTION_BINARY) is not an executable file"
    exit 2
  fi
  echo "buildgate: using the prebuilt $BUILDGATE_ACTION_BINARY"
  echo "bin=$BUILDGATE_ACTION_BINARY" >>"$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "::error title=buildgate::no Go on this runner: add actions/setup-go (Go 1.26 or later) before this step, or give the input binary"
  exit 2
fi

cache=${BUILDGATE_ACTION_CACHE:-${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/buildgate-action}
export GOCACHE=${GOCACHE:-$cache/go-build}
export GOMODCACHE=${GOMODCACHE:-$cache/go-mod}

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
sources() { find actions internal -name '*.go' ! -name '*_test.go' -print0 | LC_ALL=C sort -z; }

cd "$src"
key=$(
  {
    go version
    go env GOOS GOARCH
    cat go.mod go.sum
    sources | tr '\0' '\n'
    sources | xargs -0 cat
  } | sha256 | cut -c1-16
)
bin=$cache/bin/$key/gate-action

if [ -x "$bin" ]; then
  echo "buildgate: gate-action $key is built already ($bin)"
else
  echo "::group::buildgate: building gate-action $key"
  mkdir -p "$(dirname "$bin")"
  tmp=$bin.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  start=$SECONDS
  go build -buildvcs=false -ldflags "-s -w -X github.com/buildgate/buildgate/internal/buildinfo.Version=${ACTION_REF:-dev}+$key" -o "$tmp" ./actions
  mv -f "$tmp" "$bin"
  echo "buildgate: built gate-action $key in $((SECONDS - start))s ($bin)"
  echo "::endgroup::"
fi
echo "bin=$bin" >>"$out"
