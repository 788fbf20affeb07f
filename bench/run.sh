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

echo
echo "## issue 16: cached check, re-match, SBOM submission (gate over HTTP)"
# Each benchmark prints its figures as metrics; compare them with the goals.
go test ./gate -run '^$' -bench 'BenchmarkCheckCached|BenchmarkRematch1000|BenchmarkSubmitSBOM' -benchtime 1x -timeout 60m |
  tee "$out/issue16.txt" | awk '
    function metric(unit,   i) { for (i = 4; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
    function verdict(name, unit, goal, le,   v) {
      v = metric(unit)
      if (v == "") { printf "%-26s %-10s missing\n", name, unit; fail = 1; return }
      ok = le ? v + 0 <= goal : v + 0 >= goal
      printf "%-26s %10s %-9s goal %s %-6s %s\n", name, v, unit, le ? "<=" : ">=", goal, ok ? "pass" : "FAIL"
    }
    /^BenchmarkCheckCached/ { verdict("P2 cached check p50", "p50-ms", 5, 1); verdict("P2 checks/s, 16 clients", "checks/s", 500, 0) }
    /^BenchmarkRematch1000/ { verdict("P4 re-match 1,000 SBOMs", "s", 30, 1) }
    /^BenchmarkSubmitSBOM/  { verdict("P4 POST /v1/sboms p50", "p50-ms", 100, 1); verdict("P4 POST, new DB", "first-ms", 100, 1) }
    /^(FAIL|panic)/ { print; fail = 1 }
    END { exit fail }'
