package vulndb_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/anchore/syft/syft/sbom"

	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestMatchDocumentParity checks that matching the document MatchDocument
// makes of an SBOM gives the matches and the package list that matching
// the SBOM's whole syft-json document gives, on both shared images.
func TestMatchDocumentParity(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs 60 MB images")
	}
	ctx := context.Background()
	m := vulndbtest.Manager(t)
	for _, name := range []string{minbase, appImage} {
		t.Run(name, func(t *testing.T) {
			doc := syftJSON(t, name)
			small, err := vulndb.MatchDocument(syftSBOM(t, name))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("SBOM %d bytes, matched document %d bytes", len(doc), len(small))
			if len(small) >= len(doc)/2 {
				t.Errorf("matched document %d bytes, want less than half the SBOM's %d", len(small), len(doc))
			}
			// what grype's reader reads of each: the same packages (the
			// package lists below) and relationships between them
			_, _, whole, err := vulndb.ReadSBOM(doc)
			if err != nil {
				t.Fatal(err)
			}
			_, _, read, err := vulndb.ReadSBOM(small)
			if err != nil {
				t.Fatal(err)
			}
			wantRels := packageRelationships(whole)
			if len(wantRels) == 0 {
				t.Fatal("no relationship between packages: the test proves nothing about them")
			}
			if got := packageRelationships(read); !slices.Equal(got, wantRels) {
				t.Errorf("%d relationships between packages, want %d", len(got), len(wantRels))
			}

			want, wantDB, wantList, err := m.MatchListing(ctx, doc)
			if err != nil {
				t.Fatal(err)
			}
			got, gotDB, gotList, err := m.MatchListing(ctx, small)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || wantList == nil {
				t.Fatalf("%d matches, package list of %d bytes: the test proves nothing", len(want), len(wantList))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("matches of the matched document differ from the SBOM's: %d, want %d", len(got), len(want))
			}
			if !reflect.DeepEqual(gotDB, wantDB) {
				t.Errorf("DB %+v, want %+v", gotDB, wantDB)
			}
			if !bytes.Equal(gotList, wantList) {
				t.Errorf("package list of the matched document differs from the SBOM's (%d bytes, want %d)", len(gotList), len(wantList))
			}
		})
	}
}

// packageRelationships lists the relationships between two packages of s,
// sorted.
func packageRelationships(s *sbom.SBOM) []string {
	var out []string
	for _, r := range s.Relationships {
		if s.Artifacts.Packages.Package(r.From.ID()) != nil && s.Artifacts.Packages.Package(r.To.ID()) != nil {
			out = append(out, fmt.Sprintf("%s %s %s", r.From.ID(), r.Type, r.To.ID()))
		}
	}
	slices.Sort(out)
	return out
}

func TestMatchDocumentRefusesNoSBOM(t *testing.T) {
	if _, err := vulndb.MatchDocument(nil); err == nil {
		t.Error("MatchDocument(nil): no error")
	}
}
