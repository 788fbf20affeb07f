#!/usr/bin/env bash
# Builds gate-action for action.yml from the action's own checkout
# ($1, github.action_path) with the runner's Go, into a fresh private
# directory under $RUNNER_TEMP (mode 0700; the runner empties RUNNER_TEMP
# for every job). The binary is never reused across jobs: on a shared
# runner any job can write the tool cache, so a binary found at a
# predictable path there could be anyone's. Go's build cache keeps the
# rebuild to a link step. GOCACHE and GOMODCACHE keep their values from
# the environment (Go's defaults otherwise); $BUILDGATE_ACTION_CACHE, when
# set, puts them in that directory instead.
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

if [ -n "${BUILDGATE_ACTION_CACHE:-}" ]; then
  export GOCACHE=${GOCACHE:-$BUILDGATE_ACTION_CACHE/go-build}
  export GOMODCACHE=${GOMODCACHE:-$BUILDGATE_ACTION_CACHE/go-mod}
fi

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
dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/buildgate-action.XXXXXXXX")
chmod 0700 "$dir"
bin=$dir/gate-action

echo "::group::buildgate: building gate-action $key"
start=$SECONDS
go build -buildvcs=false -ldflags "-s -w -X github.com/buildgate/buildgate/internal/buildinfo.Version=${ACTION_REF:-dev}+$key" -o "$bin" ./actions
echo "buildgate: built gate-action $key in $((SECONDS - start))s ($bin)"
echo "::endgroup::"
echo "bin=$bin" >>"$out"
