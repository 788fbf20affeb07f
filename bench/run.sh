#!/usr/bin/env bash
# make bench: buildgate's cold analysis against the grype CLI of the same
# version (go.mod's tool directive) on the same image and DB, plus the Go
# benchmarks of the policy engine, the matcher and the cataloger.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
out=bench/out
mkdir -p "$out"

go build -o "$out/grype" github.com/anchore/grype/cmd/grype
vd="$SHARED/vulndata"
rm -rf "$out/db"
bin/gate db build --out "$out/db" \
  --provider nvd="$vd/workspaces/nvd" --provider debian="$vd/workspaces/debian" \
  --provider github="$vd/workspaces/github" --provider kev="$vd/workspaces/kev" \
  --osv govulndb="$vd/osv/govulndb" >/dev/null
archive=$(ls "$out"/db/vulnerability-db_*.tar.gz)

echo "## cold analysis: gate vs grype CLI"
go run ./bench/coldscan -gate bin/gate -grype "$out/grype" -db "$archive" \
  -image "$SHARED/images/bullseye-minbase.docker.tar" -runs "${RUNS:-3}"

echo
echo "## go test -bench"
go test -run '^$' -bench . -benchmem ./internal/policy ./internal/vulndb ./internal/catalog
