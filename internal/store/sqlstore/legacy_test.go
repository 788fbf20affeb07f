package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store/postgres"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
	"github.com/buildgate/buildgate/internal/store/sqlite"
	"github.com/buildgate/buildgate/internal/store/sqlstore"
)

// TestLegacyDocumentsRead: the documents an older gate stored, gzipped
// (analyses, verdicts, vulnerability changes) or plain JSON, read back
// as they were after the upgrade to zstd, with no migration, on SQLite and
// PostgreSQL; a document written again is stored in zstd.
func TestLegacyDocumentsRead(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(t *testing.T) *sqlstore.DB{
		"sqlite": func(t *testing.T) *sqlstore.DB {
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gate.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db.DB
		},
		"postgres": func(t *testing.T) *sqlstore.DB {
			pgtest.Skip(t)
			srv, err := pgtest.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			db, err := postgres.Open(ctx, srv.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db.DB
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			sbom := []byte(`{"artifacts":[{"name":"openssl"}]}`)
			pkgs := []buildgate.Package{{Name: "openssl", Version: "1.1", Files: []buildgate.PackageFile{{Path: "/usr/lib/libssl.so", Digest: "d41d8cd98f00b204e9800998ecf8427e"}}}}
			files := []buildgate.File{{Path: "/usr/lib/libssl.so", Type: "file", MD5: "d41d8cd98f00b204e9800998ecf8427e"}}
			matches := []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}
			verdict := []byte(`{"final":"stop"}`)
			for _, d := range []string{"sha256:gz", "sha256:plain"} {
				_, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: d, Source: "registry"})
				must(err)
				must(db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: d}, MatchedAt: t0}))
			}
			// The rows as the older gates stored them.
			must(db.Exec(ctx, `UPDATE analyses SET sbom = ?, packages = ?, files = ?, matches = ? WHERE digest = 'sha256:gz'`,
				sqlstore.Gzipped(t, sbom), sqlstore.Gzipped(t, js(t, pkgs)), sqlstore.Gzipped(t, js(t, files)), sqlstore.Gzipped(t, js(t, matches))))
			must(db.Exec(ctx, `UPDATE analyses SET sbom = ?, packages = ?, files = ?, matches = ? WHERE digest = 'sha256:plain'`,
				sbom, js(t, pkgs), js(t, files), js(t, matches)))
			must(db.SaveEvaluation(ctx, buildgate.StoredEvaluation{Digest: "sha256:gz", Tag: "r/x:1", PolicyID: "p", EvaluatedAt: t0, Result: []byte("{}")}))
			must(db.Exec(ctx, `UPDATE evaluations SET result = ?`, sqlstore.Gzipped(t, verdict)))
			must(db.SaveVulnerabilityChange(ctx, buildgate.VulnerabilityChange{Digest: "sha256:gz", ChangedAt: t0}))
			must(db.Exec(ctx, `UPDATE vulnerability_changes SET appeared = ?, disappeared = ?`, sqlstore.Gzipped(t, js(t, matches)), js(t, matches)))

			for _, d := range []string{"sha256:gz", "sha256:plain"} {
				a, err := db.Analysis(ctx, d)
				must(err)
				if string(a.SBOM) != string(sbom) || !reflect.DeepEqual(a.Packages, pkgs) || !reflect.DeepEqual(a.Files, files) || !reflect.DeepEqual(a.Matches, matches) {
					t.Errorf("%s read back as %+v", d, a)
				}
				if ms, err := db.ImageMatches(ctx, d); err != nil || !reflect.DeepEqual(ms, matches) {
					t.Errorf("%s: matches = %+v %v", d, ms, err)
				}
			}
			e, err := db.Evaluation(ctx, "sha256:gz", "r/x:1", "p")
			if err != nil || string(e.Result) != string(verdict) {
				t.Errorf("verdict = %+v %v", e, err)
			}
			cs, err := db.VulnerabilityChanges(ctx, "sha256:gz")
			if err != nil || len(cs) != 1 || !reflect.DeepEqual(cs[0].Appeared, matches) || !reflect.DeepEqual(cs[0].Disappeared, matches) {
				t.Errorf("vulnerability changes = %+v %v", cs, err)
			}

			// Matches written again are stored in zstd and read back.
			must(db.UpdateMatches(ctx, "sha256:gz", matches, t0, t0.Add(time.Hour)))
			if ms, err := db.ImageMatches(ctx, "sha256:gz"); err != nil || !reflect.DeepEqual(ms, matches) {
				t.Errorf("re-written matches = %+v %v", ms, err)
			}
			stored, err := db.Bytes(ctx, `SELECT matches FROM analyses WHERE digest = 'sha256:gz'`)
			if err != nil || !bytes.HasPrefix(stored, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
				t.Errorf("re-written matches stored as %x... (%v), want a zstd frame", stored[:min(4, len(stored))], err)
			}
		})
	}
}

func js(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
