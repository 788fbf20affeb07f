package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestRematchFromPackageList: the gate keeps the package list of an
// image it analyses, and the re-match after a DB import matches it to
// exactly what matching the SBOM gives on the new DB. An image stored
// without a list (analysed before the gate kept them) is re-matched from
// its SBOM, to the same matches, and keeps a list from then on.
func TestRematchFromPackageList(t *testing.T) {
	g := startGate(t, nil)
	ctx := context.Background()
	ref := testRegistry(t) + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("%s = %s %s", ref, img.Status, img.Error)
	}
	if _, err := g.Store.PackageList(ctx, img.Digest); err != nil {
		t.Fatalf("no package list kept for the analysed image: %v", err)
	}
	a, err := g.Store.Analysis(ctx, img.Digest)
	if err != nil {
		t.Fatal(err)
	}
	unlisted := "sha256:" + strings.Repeat("0b", 32)
	if _, _, err := g.Store.SubmitImage(ctx, buildgate.Submission{Digest: unlisted, Source: "sbom", Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := g.Store.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: unlisted, Metadata: a.Metadata}, SBOM: a.SBOM, MatchedAt: g.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Store.PackageList(ctx, unlisted); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Fatalf("package list of an analysis stored without one: %v, want not found", err)
	}

	// The new DB lacks the Debian record of one of the image's matches.
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	var drop string
	for _, m := range a.Matches {
		f := filepath.Join("debian-11", strings.ToLower(m.VulnerabilityID)+".json")
		if _, err := os.Stat(filepath.Join(shared, "vulndata", "workspaces", "debian", "results", f)); err == nil {
			drop = f
			break
		}
	}
	if drop == "" {
		t.Fatal("no match with a Debian record of its own")
	}
	built := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	g.importArchive(t, dbWithout(t, built, drop))
	waitFor(t, "the re-match", time.Minute, func() bool {
		for _, d := range []string{img.Digest, unlisted} {
			st, err := g.Store.MatchStamp(ctx, d)
			if err != nil || !st.DBBuilt.Equal(built) {
				return false
			}
		}
		return true
	})

	want, db, err := g.VulnDB.Match(ctx, a.SBOM)
	if err != nil {
		t.Fatal(err)
	}
	if !db.Built.Equal(built) {
		t.Fatalf("matched with the DB built %v, want %v", db.Built, built)
	}
	wantJSON := jsonOf(t, want)
	if wantJSON == jsonOf(t, a.Matches) {
		t.Fatal("the new DB changes no match: the test proves nothing")
	}
	for _, d := range []string{img.Digest, unlisted} {
		got, err := g.Store.ImageMatches(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if jsonOf(t, got) != wantJSON {
			t.Errorf("%s: %d matches re-matched, %d matching the SBOM on the new DB; they differ", d, len(got), len(want))
		}
	}
	if _, err := g.Store.PackageList(ctx, unlisted); err != nil {
		t.Errorf("no package list kept after re-matching from the SBOM: %v", err)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
