package vulndb_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/anchore/grype/grype/pkg"

	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestPackageListRoundTrip checks that a package list reads back as the
// packages and context grype's reader makes of the SBOM: every field a
// matcher reads (packageID hashes them all), the related packages and the
// distro.
func TestPackageListRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs 60 MB images")
	}
	for _, name := range []string{minbase, appImage} {
		t.Run(name, func(t *testing.T) {
			doc := syftJSON(t, name)
			want, wantCtx, _, err := vulndb.ReadSBOM(doc)
			if err != nil {
				t.Fatal(err)
			}
			list, err := vulndb.ListPackages(doc)
			if err != nil {
				t.Fatal(err)
			}
			got, gotCtx, err := vulndb.DecodePackageList(list)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d packages: SBOM %d bytes, package list %d bytes", len(want), len(doc), len(list))
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("%d packages read back, want %d", len(got), len(want))
			}
			if !reflect.DeepEqual(gotCtx.Distro, wantCtx.Distro) || wantCtx.Distro == nil {
				t.Errorf("distro %v, want %v", gotCtx.Distro, wantCtx.Distro)
			}
			if gotCtx.DistroDetectionFailed != wantCtx.DistroDetectionFailed {
				t.Errorf("distro detection failed %v, want %v", gotCtx.DistroDetectionFailed, wantCtx.DistroDetectionFailed)
			}
			related, symbols := 0, 0
			for i := range want {
				g, w := got[i], want[i]
				gid, err := vulndb.PackageID(g)
				if err != nil {
					t.Fatal(err)
				}
				wid, err := vulndb.PackageID(w)
				if err != nil {
					t.Fatal(err)
				}
				if gid != wid {
					t.Errorf("package %d (%s): read back as %+v, want %+v", i, w.Name, g, w)
				}
				// packageID leaves out what the metadata's JSON does (a Go
				// binary's symbols).
				if !reflect.DeepEqual(g.Metadata, w.Metadata) {
					t.Errorf("package %d (%s): metadata %+v, want %+v", i, w.Name, g.Metadata, w.Metadata)
				}
				if md, ok := w.Metadata.(pkg.GolangBinMetadata); ok && len(md.Symbols) > 0 {
					symbols++
				}
				if g.Distro != gotCtx.Distro {
					t.Errorf("package %d (%s) does not have the image's distro", i, w.Name)
				}
				if !reflect.DeepEqual(relatedIDs(g), relatedIDs(w)) {
					t.Errorf("package %d (%s): related %v, want %v", i, w.Name, relatedIDs(g), relatedIDs(w))
				}
				related += len(w.RelatedPackages)
			}
			if related == 0 {
				t.Error("no package has related packages: the test proves nothing about them")
			}
			if name == appImage && symbols == 0 {
				t.Error("no Go binary with symbols: the test proves nothing about them")
			}
		})
	}
}

func relatedIDs(p pkg.Package) map[string][]pkg.ID {
	out := map[string][]pkg.ID{}
	for t, rel := range p.RelatedPackages {
		for _, r := range rel {
			out[string(t)] = append(out[string(t)], r.ID)
		}
	}
	return out
}

// TestPackageListMatchParity checks that a re-match from the package list
// gives exactly the matches of matching the SBOM on a new DB, with and
// without the per-package cache, on both shared images and on an image of
// the same base with fewer packages.
func TestPackageListMatchParity(t *testing.T) {
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
	lists := map[string][]byte{}
	for name, doc := range docs {
		if lists[name], err = vulndb.ListPackages(doc); err != nil {
			t.Fatal(err)
		}
	}
	plain := uncached(t)
	cached := vulndbtest.Manager(t) // a DB the lists were not made with
	for name, doc := range docs {
		want, wantDB, err := plain.Match(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatalf("%s: no matches", name)
		}
		for _, m := range []*vulndb.Manager{plain, cached, cached} { // the cache cold, then warm
			got, db, err := m.MatchPackageList(ctx, lists[name])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %d matches from the package list, %d from the SBOM; they differ", name, len(got), len(want))
			}
			if !db.Built.Equal(wantDB.Built) {
				t.Errorf("%s: matched with the DB built %v, want %v", name, db.Built, wantDB.Built)
			}
		}
		got, _, list, err := cached.MatchListing(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || string(list) != string(lists[name]) {
			t.Errorf("%s: MatchListing's matches or list differ from Match's and ListPackages'", name)
		}
	}
}

// TestPackageListRefused checks that a list that is not one, or of
// another version, is refused with an error saying so.
func TestPackageListRefused(t *testing.T) {
	m := vulndbtest.Manager(t)
	for list, want := range map[string]string{
		`not json`: "reading package list",
		`{"version": 99, "context": {}, "packages": [], "matched": 0}`:    "version 99",
		`{"version": 1, "context": {}, "packages": [], "matched": 2}`:     "2 packages matched of 0",
		`{"version": 1, "context": "nope", "packages": [], "matched": 0}`: "reading package list",
	} {
		_, _, err := m.MatchPackageList(context.Background(), []byte(list))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("MatchPackageList(%s) = %v, want an error saying %q", list, err, want)
		}
	}
}
