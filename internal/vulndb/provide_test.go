package vulndb_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/syft/syft/artifact"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/linux"
	syftPkg "github.com/anchore/syft/syft/pkg"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"

	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestMatchSBOMParity checks that matching an SBOM as syft decoded it
// gives the matches and the package list of matching the syft-json
// document (MatchListing): of a syft-json document, that document; of a
// CycloneDX or SPDX one, the syft-json document the gate re-encodes it
// to. On both shared images and an image of the same base with fewer
// packages, the per-package cache cold and warm.
func TestMatchSBOMParity(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs 60 MB images")
	}
	ctx := context.Background()
	docs := map[string][]byte{"app": syftJSON(t, appImage), "minbase": syftJSON(t, minbase)}
	sub, err := vulndbtest.SubsetSBOM(docs["app"], func(i int) bool { return i%3 != 0 })
	if err != nil {
		t.Fatal(err)
	}
	docs["app-subset"] = sub
	cdx, err := cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	spdx, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	plain := uncached(t)
	cached := vulndbtest.Manager(t)
	for name, doc := range docs {
		for _, enc := range []sbom.FormatEncoder{syftjson.NewFormatEncoder(), cdx, spdx} {
			t.Run(name+"/"+string(enc.ID()), func(t *testing.T) {
				upload := doc
				if enc.ID() != syftjson.ID {
					upload = encode(t, enc, decode(t, doc))
				}
				s := decode(t, upload)
				stored := encode(t, syftjson.NewFormatEncoder(), s) // what the gate stores and matched so far
				want, _, wantList, err := plain.MatchListing(ctx, stored)
				if err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 || wantList == nil {
					t.Fatalf("%d matches, package list %v: the test proves nothing", len(want), wantList != nil)
				}
				for _, m := range []*vulndb.Manager{plain, cached, cached} { // the cache cold, then warm
					got, _, list, err := m.MatchSBOM(ctx, s)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%d matches of the decoded SBOM, %d of the document; they differ", len(got), len(want))
					}
					if !bytes.Equal(list, wantList) {
						t.Errorf("the package list of the decoded SBOM differs from the document's (%d bytes, want %d)", len(list), len(wantList))
					}
				}
			})
		}
	}
}

func decode(t *testing.T, doc []byte) *sbom.SBOM {
	t.Helper()
	s, _, _, err := format.Decode(bytes.NewReader(doc))
	if err != nil || s == nil {
		t.Fatalf("decoding: %v", err)
	}
	return s
}

func encode(t *testing.T, enc sbom.FormatEncoder, s *sbom.SBOM) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc.Encode(&b, *s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestProvideSBOMOverlap checks that the packages made of a decoded SBOM
// drop those whose files a package of the distro owns, as grype's reader
// does: of a Debian image, an npm package and a binary one of about the
// same version as their owner go, a binary one of another version stays.
// The shared images have none.
func TestProvideSBOMOverlap(t *testing.T) {
	s := &sbom.SBOM{Source: source.Description{Name: "overlap"}}
	s.Artifacts.LinuxDistribution = &linux.Release{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux"}
	owner := syftPkg.Package{Name: "python3.11", Version: "3.11.2-6", Type: syftPkg.DebPkg, PURL: "pkg:deb/debian/python3.11@3.11.2-6?distro=debian-12"}
	npm := syftPkg.Package{Name: "left-pad", Version: "3.11.2", Type: syftPkg.NpmPkg, PURL: "pkg:npm/left-pad@3.11.2"}
	binary := syftPkg.Package{Name: "python", Version: "3.11.2", Type: syftPkg.BinaryPkg}
	other := syftPkg.Package{Name: "python", Version: "2.7.18", Type: syftPkg.BinaryPkg}
	pkgs := []*syftPkg.Package{&owner, &npm, &binary, &other}
	for _, p := range pkgs {
		p.Locations = file.NewLocationSet(file.NewLocation("/usr/bin/" + p.Name + "-" + p.Version))
		p.SetID()
	}
	s.Artifacts.Packages = syftPkg.NewCollection(owner, npm, binary, other)
	for _, p := range pkgs[1:] {
		s.Relationships = append(s.Relationships, artifact.Relationship{From: owner, To: *p, Type: artifact.OwnershipByFileOverlapRelationship})
	}
	doc := encode(t, syftjson.NewFormatEncoder(), s)
	want, wantCtx, _, err := vulndb.ReadSBOM(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, gotCtx, err := vulndb.ProvideSBOM(decode(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []pkg.Package) (out []string) {
		for _, p := range ps {
			out = append(out, p.Name+"@"+p.Version)
		}
		return out
	}
	if w := []string{"python@2.7.18", "python3.11@3.11.2-6"}; !reflect.DeepEqual(names(want), w) {
		t.Fatalf("grype's reader kept %v, want %v: the test proves nothing", names(want), w)
	}
	if !reflect.DeepEqual(names(got), names(want)) {
		t.Errorf("kept %v, grype's reader %v", names(got), names(want))
	}
	if !reflect.DeepEqual(gotCtx.Distro, wantCtx.Distro) || gotCtx.Distro == nil {
		t.Errorf("distro %v, grype's reader %v", gotCtx.Distro, wantCtx.Distro)
	}
}

// TestMatchSBOMInMemoryParity: matching the SBOM syft made, in memory, as
// the gate's analysis does, gives the matches and the package list that
// matching its syft-json document gives, on both shared images.
func TestMatchSBOMInMemoryParity(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs 60 MB images")
	}
	ctx := context.Background()
	m := vulndbtest.Manager(t)
	for _, name := range []string{minbase, appImage} {
		t.Run(name, func(t *testing.T) {
			want, wantDB, wantList, err := m.MatchListing(ctx, syftJSON(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || wantList == nil {
				t.Fatalf("%d matches, package list of %d bytes: the test proves nothing", len(want), len(wantList))
			}
			got, gotDB, gotList, err := m.MatchSBOM(ctx, syftSBOM(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("matches of the SBOM in memory differ from its document's: %d, want %d", len(got), len(want))
			}
			if !reflect.DeepEqual(gotDB, wantDB) {
				t.Errorf("DB %+v, want %+v", gotDB, wantDB)
			}
			if !bytes.Equal(gotList, wantList) {
				t.Errorf("package list of the SBOM in memory differs from its document's (%d bytes, want %d)", len(gotList), len(wantList))
			}
		})
	}
}
