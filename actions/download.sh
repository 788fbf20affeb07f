#!/usr/bin/env bash
# Downloads the released gate-action for action.yml's input version:
# gate-action_<VERSION>_<os>_<arch>.tar.gz and SHA256SUMS from
# $BUILDGATE_RELEASE_URL/<VERSION> (default: the project's GitHub releases),
# checks the archive against SHA256SUMS, and unpacks it under
# $BUILDGATE_ACTION_CACHE (default $RUNNER_TOOL_CACHE/buildgate-action), where
# a later run of the same version finds it. A checksum that does not match
# stops the step: nothing unverified is run.
#
# It writes bin=PATH to $GITHUB_OUTPUT; build.sh then uses that binary.
set -euo pipefail

version=${1:?usage: download.sh VERSION}
out=${GITHUB_OUTPUT:-/dev/stdout}
base=${BUILDGATE_RELEASE_URL:-https://github.com/buildgate/buildgate/releases/download}
if ! [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
  echo "::error title=buildgate::input version \"$version\" is not a release tag like v1.2.3"
  exit 2
fi

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "::error title=buildgate::no gate-action release for $(uname -s): leave the input version empty to build from source"; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "::error title=buildgate::no gate-action release for $(uname -m): leave the input version empty to build from source"; exit 2 ;;
esac

archive=gate-action_${version}_${os}_${arch}.tar.gz
cache=${BUILDGATE_ACTION_CACHE:-${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/buildgate-action}
dir=$cache/release/$version/${os}_${arch}
bin=$dir/gate-action
if [ -x "$bin" ]; then
  echo "buildgate: gate-action $version is downloaded already ($bin)"
  echo "bin=$bin" >>"$out"
  exit 0
fi

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { curl -fsSL --retry 3 -o "$tmp/$1" "$base/$version/$1"; }

echo "buildgate: downloading $archive from $base/$version"
if ! fetch SHA256SUMS || ! fetch "$archive"; then
  echo "::error title=buildgate::cannot download $archive or SHA256SUMS of release $version from $base: check the input version"
  exit 2
fi
want=$(awk -v f="$archive" '$2 == f || $2 == "*"f { print $1 }' "$tmp/SHA256SUMS")
got=$(sha256 "$tmp/$archive" | cut -d' ' -f1)
if [ -z "$want" ]; then
  echo "::error title=buildgate::SHA256SUMS of release $version lists no $archive"
  exit 2
fi
if [ "$want" != "$got" ]; then
  echo "::error title=buildgate::checksum mismatch for $archive: SHA256SUMS says $want, the download is $got; not running it"
  exit 2
fi
mkdir -p "$dir"
tar -xzf "$tmp/$archive" -C "$tmp" gate-action
mv -f "$tmp/gate-action" "$bin"
echo "buildgate: gate-action $version verified (sha256 $got)"
echo "bin=$bin" >>"$out"
