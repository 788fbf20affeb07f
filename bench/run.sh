#!/usr/bin/env bash
# make bench: issue 16's goals, each figure beside its peer in one run, with
# PASS or FAIL. Every section starts with a "## " line; add a goal as a new
# section below the others.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-${BUILDGATE_SHARED:-../shared}}
out=bench/out
mkdir -p "$out"

# The peer: the grype CLI of go.mod's tool directive, on the same DB.
go build -o "$out/grype" github.com/anchore/grype/cmd/grype
vd="$SHARED/vulndata"
rm -rf "$out/db"
bin/gate db build --out "$out/db" \
  --provider nvd="$vd/workspaces/nvd" --provider debian="$vd/workspaces/debian" \
  --provider github="$vd/workspaces/github" --provider kev="$vd/workspaces/kev" \
  --osv govulndb="$vd/osv/govulndb" >/dev/null
archive=$(ls "$out"/db/vulnerability-db_*.tar.gz)
echo "load: $(uptime)"

echo "## P1, P1b, peak RSS: gate analysis vs grype docker-archive:FILE -o json"
# PROFILE=12s also writes the gate's CPU profiles of the first run's
# analyses to bench/out/*.pprof (go tool pprof -top -cum bin/gate FILE).
go run ./bench/coldscan -gate bin/gate -grype "$out/grype" -db "$archive" -runs "${RUNS:-5}" ${PROFILE:+-profile "$PROFILE"} \
  -images "$SHARED/images/bullseye-minbase.docker.tar,$SHARED/images/bookworm-app.docker.tar"

echo
echo "## go test -bench"
go test -run '^$' -bench . -benchmem ./internal/policy ./internal/vulndb ./internal/catalog

echo
echo "## P3 (issue 13): 50 clients, 20 new images, on one gate and on three sharing one PostgreSQL"
# Needs PostgreSQL 15 (/usr/lib/postgresql/15/bin); skipped without it.
go test -run '^$' -bench BenchmarkReplicas -benchtime 1x -timeout 60m ./gate | grep -E '^(Benchmark|--- SKIP|ok|FAIL)'
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
    /^BenchmarkSubmitSBOM/  { verdict("P4 POST /v1/sboms p50", "p50-ms", 100, 1); verdict("P4 POST, new DB, median 5", "first-ms", 100, 1)
                              printf "%-26s %10s %-9s (the slowest of the five: no goal)\n", "P4 POST, new DB, max", metric("first-max-ms"), "max-ms"
                              printf "%-26s %10s %-9s (packages never matched: no goal)\n", "P4 POST, unseen packages", metric("unseen-ms"), "unseen-ms" }
    /^(FAIL|panic)/ { print; fail = 1 }
    END { exit fail }'

echo
echo "## P7 (issue 16): bytes in the store per analysed image (both shared images, fresh SQLite store)"
go test ./gate -run '^$' -bench BenchmarkStoreSize -benchtime 1x -timeout 30m | tee "$out/storesize.txt" | awk '
    /^BenchmarkStoreSize/ {
      for (i = 4; i < NF; i++) {
        if ($(i+1) == "KiB/image") { v = $i; found = 1 }
        else if ($(i+1) ~ /-KiB\/image$/) { part = $(i+1); sub(/-KiB\/image$/, "", part); printf "  %-24s %8s KiB/image\n", part, $i }
      }
    }
    /^(FAIL|panic)/ { print; fail = 1 }
    END {
      if (!found) { print "P7 store per image        missing"; exit 1 }
      ok = v + 0 <= 150
      printf "%-26s %10s %-9s goal <= %-6s %s\n", "P7 store per image", v, "KiB/image", 150, ok ? "pass" : "FAIL"
      exit fail
    }'
