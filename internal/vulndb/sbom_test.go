package vulndb_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"

	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// Test images in the shared directory.
const (
	dpkgOnly = "bullseye-dpkgonly.docker.tar"
	minbase  = "bullseye-minbase.docker.tar"
	appImage = "bookworm-app.docker.tar"
)

func imagePath(tb testing.TB, name string) string {
	tb.Helper()
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		tb.Skip(err)
	}
	p := filepath.Join(shared, "images", name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("test image: %v", err)
	}
	return p
}

type sbomOnce struct {
	once sync.Once
	sbom *sbom.SBOM
	doc  []byte
	err  error
}

var sboms sync.Map // image name -> *sbomOnce

// uncached is a Manager with the test DB and no match cache, to compare
// a cached manager's results with.
func uncached(tb testing.TB) *vulndb.Manager {
	tb.Helper()
	opts := vulndb.DefaultOptions()
	opts.MatchCacheSize = 0
	return vulndbtest.ManagerWith(tb, opts)
}

// syftJSON catalogs a shared test image with syft's library and
// vulndb.SBOMConfig, as the gate's cataloging side does, and returns the
// syft-json document; once per image per test binary.
func syftJSON(tb testing.TB, name string) []byte {
	tb.Helper()
	return catalogOnce(tb, name).doc
}

// syftSBOM is syftJSON's SBOM, as syft made it.
func syftSBOM(tb testing.TB, name string) *sbom.SBOM {
	tb.Helper()
	return catalogOnce(tb, name).sbom
}

func catalogOnce(tb testing.TB, name string) *sbomOnce {
	tb.Helper()
	path := imagePath(tb, name)
	v, _ := sboms.LoadOrStore(name, &sbomOnce{})
	s := v.(*sbomOnce)
	s.once.Do(func() {
		ctx := context.Background()
		src, err := syft.GetSource(ctx, path, syft.DefaultGetSourceConfig().WithSources("docker-archive"))
		if err != nil {
			s.err = err
			return
		}
		defer src.Close()
		doc, err := syft.CreateSBOM(ctx, src, vulndb.SBOMConfig())
		if err != nil {
			s.err = err
			return
		}
		s.sbom = doc
		s.doc, s.err = format.Encode(*doc, syftjson.NewFormatEncoder())
	})
	if s.err != nil {
		tb.Fatalf("cataloging %s: %v", name, s.err)
	}
	return s
}

func toJSON(v any) (string, error) {
	raw, err := json.MarshalIndent(v, "", "  ")
	return string(raw), err
}
