package storetest

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/testclock"
)

// bigFacts is an analysis the size of a small image's: n files with their
// digests, owned by packages of ten files each, and an SBOM that lists
// the same files and packages, as the gate's analyses are.
func bigFacts(digest string, n int) *buildgate.Analysis {
	a := &buildgate.Analysis{Facts: buildgate.Facts{Digest: digest, Metadata: buildgate.Metadata{Distro: "debian"}}}
	var sbomFiles []map[string]string
	for i := range n {
		path := fmt.Sprintf("/usr/lib/pkg-%d/file-%d.so", i/10, i)
		sha, md := sha256.Sum256([]byte(path)), md5.Sum([]byte(path))
		f := buildgate.File{Path: path, Size: int64(i), Mode: 0o644, Type: "file", SHA256: hex.EncodeToString(sha[:]), MD5: hex.EncodeToString(md[:])}
		a.Files = append(a.Files, f)
		if i%10 == 0 {
			a.Packages = append(a.Packages, buildgate.Package{ID: fmt.Sprintf("%016x", i), Name: fmt.Sprintf("pkg-%d", i/10), Version: "1.0", Type: "deb", Path: "/var/lib/dpkg/status"})
		}
		p := &a.Packages[len(a.Packages)-1]
		p.Files = append(p.Files, buildgate.PackageFile{Path: path, Digest: f.MD5})
		sbomFiles = append(sbomFiles, map[string]string{"path": path, "sha256": f.SHA256})
	}
	a.Matches = []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}
	a.SBOM, _ = json.Marshal(map[string]any{"artifacts": a.Packages, "files": sbomFiles})
	return a
}

// testBigAnalyses: analyses the size of an image's, with or without an
// SBOM, read back exactly as they were saved, and their matches replaced
// alone leave the rest readable.
func testBigAnalyses(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	withSBOM, noSBOM := bigFacts("sha256:big", 5000), bigFacts("sha256:nosbom", 200)
	noSBOM.SBOM = nil
	for _, a := range []*buildgate.Analysis{withSBOM, noSBOM} {
		submit(t, db, a.Digest)
		a.MatchedAt = clock.Now()
		if err := db.SaveAnalysis(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := db.Analysis(ctx, a.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.SBOM) != string(a.SBOM) || !reflect.DeepEqual(got.Facts, a.Facts) {
			t.Fatalf("%s: the analysis read back differs from the one saved (%d packages, %d files, %d bytes of SBOM; saved %d, %d, %d)",
				a.Digest, len(got.Packages), len(got.Files), len(got.SBOM), len(a.Packages), len(a.Files), len(a.SBOM))
		}
		if err := db.UpdateMatches(ctx, a.Digest, []buildgate.Match{{VulnerabilityID: "CVE-2"}}, t0, clock.Now()); err != nil {
			t.Fatal(err)
		}
		got, err = db.Analysis(ctx, a.Digest)
		if err != nil || len(got.Matches) != 1 || got.Matches[0].VulnerabilityID != "CVE-2" || !reflect.DeepEqual(got.Files, a.Files) {
			t.Fatalf("%s after new matches: %v", a.Digest, err)
		}
	}
}
