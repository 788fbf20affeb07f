package vulndb_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/anchore/grype/grype"
	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/matcher"
	"github.com/anchore/grype/grype/pkg"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

func TestMatchDpkgOnly(t *testing.T) {
	m := vulndbtest.Manager(t)
	matches, info, err := m.Match(context.Background(), syftJSON(t, dpkgOnly))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Built.Equal(vulndbtest.Timestamp) || len(info.Providers) == 0 {
		t.Errorf("db info = %+v", info)
	}
	if len(matches) == 0 {
		t.Fatal("no matches")
	}
	bySeverity := map[buildgate.Severity]int{}
	withCVSS, fixed := 0, 0
	for _, mt := range matches {
		bySeverity[mt.Severity]++
		if !strings.HasPrefix(mt.Namespace, "debian:distro:debian:11") {
			t.Errorf("%s on %s: namespace %q, want debian:distro:debian:11", mt.VulnerabilityID, mt.PackageName, mt.Namespace)
		}
		if mt.PackageType != "deb" || mt.PackagePath != "/var/lib/dpkg/status" || mt.PackageID == "" || mt.PackageVersion == "" {
			t.Errorf("%s: package fields %+v", mt.VulnerabilityID, mt)
		}
		if mt.DataSource == "" {
			t.Errorf("%s: no data source", mt.VulnerabilityID)
		}
		if len(mt.CVSS) > 0 {
			withCVSS++
		}
		if mt.FixState == buildgate.FixStateFixed {
			fixed++
			if len(mt.FixVersions) == 0 {
				t.Errorf("%s: fixed without fix versions", mt.VulnerabilityID)
			}
		}
	}
	t.Logf("%d matches: %v; %d with CVSS, %d fixed", len(matches), bySeverity, withCVSS, fixed)
	// Debian's records carry no severity: known ones came from NVD
	if known := len(matches) - bySeverity[buildgate.SeverityUnknown]; known == 0 {
		t.Error("every Debian match has severity Unknown: NVD severities did not reach them")
	}
	if withCVSS == 0 {
		t.Error("no Debian match carries CVSS")
	}

	if got, err := toJSON(matches[0]); err == nil {
		t.Logf("first match: %s", got)
	}
}

// key is what parity compares.
type key struct{ id, name, version string }

func (k key) String() string { return fmt.Sprintf("%s %s@%s", k.id, k.name, k.version) }

// TestMatchParity checks that matching the syft-json SBOM in the gate gives
// exactly what grype's library gives when it catalogs the image itself with
// the CLI's defaults, on the same DB.
func TestMatchParity(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs 60 MB images")
	}
	m := vulndbtest.Manager(t)

	for _, name := range []string{minbase, appImage} {
		t.Run(name, func(t *testing.T) {
			gate, _, err := m.Match(context.Background(), syftJSON(t, name))
			if err != nil {
				t.Fatal(err)
			}
			got := map[key]buildgate.Match{}
			for _, mt := range gate {
				got[key{mt.VulnerabilityID, mt.PackageName, mt.PackageVersion}] = mt
			}

			// grype's library, as the CLI runs it
			rd, err := v6.NewReader(v6.Config{DBDirPath: filepath.Dir(m.Status().Path)})
			if err != nil {
				t.Fatal(err)
			}
			vp := v6.NewVulnerabilityProvider(rd)
			defer vp.Close()
			packages, pkgCtx, _, err := pkg.Provide("docker-archive:"+imagePath(t, name), vulndb.ProviderConfig())
			if err != nil {
				t.Fatal(err)
			}
			vm := grype.VulnerabilityMatcher{
				VulnerabilityProvider: vp,
				Matchers:              matcher.NewDefaultMatchers(vulndb.MatcherConfig()),
				IgnoreRules:           vulndb.IgnoreRules(),
			}
			remaining, _, err := vm.FindMatchesContext(context.Background(), packages, pkgCtx)
			if err != nil {
				t.Fatal(err)
			}
			want := map[key]bool{}
			for _, gm := range remaining.Sorted() {
				want[key{gm.Vulnerability.ID, gm.Package.Name, gm.Package.Version}] = true
			}

			var missing, extra []string
			for k := range want {
				if _, ok := got[k]; !ok {
					missing = append(missing, k.String())
				}
			}
			for k := range got {
				if !want[k] {
					extra = append(extra, k.String())
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			if len(missing)+len(extra) > 0 {
				t.Errorf("gate differs from grype: missing %v, extra %v", missing, extra)
			}
			byType := map[string]int{}
			for _, mt := range gate {
				byType[mt.PackageType]++
			}
			t.Logf("%d matches (grype: %d) by package type %v", len(got), len(want), byType)
			if len(want) == 0 {
				t.Error("grype found no matches")
			}

			if name == appImage {
				checkApp(t, gate)
			}
		})
	}
}

// checkApp checks bookworm-app's matches beyond the OS: npm and Go ones, and
// KEV on HTTP/2 Rapid Reset in golang.org/x/net (PROVENANCE.md).
func checkApp(t *testing.T, matches []buildgate.Match) {
	t.Helper()
	types := map[string]bool{}
	kev := false
	for _, mt := range matches {
		types[mt.PackageType] = true
		related := append([]string{mt.VulnerabilityID}, mt.RelatedIDs...)
		for _, id := range related {
			if id == "CVE-2023-44487" && mt.PackageName == "golang.org/x/net" {
				if !mt.KEV {
					t.Errorf("%s on %s: KEV = false, want true (CVE-2023-44487 is in CISA KEV)", mt.VulnerabilityID, mt.PackageName)
				}
				kev = true
				if s, err := toJSON(mt); err == nil {
					t.Logf("KEV match: %s", s)
				}
			}
		}
	}
	for _, typ := range []string{"deb", "npm", "go-module"} {
		if !types[typ] {
			t.Errorf("no %s matches in %s", typ, appImage)
		}
	}
	if !kev {
		t.Error("no match for CVE-2023-44487 on golang.org/x/net")
	}
}

// TestSBOMRoundTripKeepsGoSymbols checks that the syft-json SBOM keeps the
// Go binary symbols grype's govulndb qualifier needs.
func TestSBOMRoundTripKeepsGoSymbols(t *testing.T) {
	if testing.Short() {
		t.Skip("catalogs a 56 MB image")
	}
	packages, _, _, err := pkg.ProvideFromReader(bytes.NewReader(syftJSON(t, appImage)), vulndb.ProviderConfig())
	if err != nil {
		t.Fatal(err)
	}
	binaries, withSymbols := 0, 0
	for _, p := range packages {
		md, ok := p.Metadata.(pkg.GolangBinMetadata)
		if !ok {
			continue
		}
		binaries++
		if len(md.Symbols) > 0 {
			withSymbols++
		}
	}
	t.Logf("%d Go binary packages, %d with symbols after the syft-json round trip", binaries, withSymbols)
	if binaries == 0 || withSymbols == 0 {
		t.Errorf("Go symbols lost in the syft-json round trip: %d of %d packages have them", withSymbols, binaries)
	}
}

func BenchmarkMatch(b *testing.B) {
	m := vulndbtest.Manager(b)
	sbom := syftJSON(b, minbase)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := m.Match(context.Background(), sbom); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMatchCacheParity checks that matching with the per-package cache
// warm from other images (the shared images and images built from the
// same base with other package sets) gives exactly the matches of
// matching each image alone without a cache.
func TestMatchCacheParity(t *testing.T) {
	ctx := context.Background()
	cached := vulndbtest.Manager(t)
	plain := uncached(t)
	docs := map[string][]byte{"app": syftJSON(t, appImage), "minbase": syftJSON(t, minbase)}
	for name, keep := range map[string]func(int) bool{
		"minbase-even":   func(i int) bool { return i%2 == 0 },
		"minbase-not3rd": func(i int) bool { return i%3 != 0 },
	} {
		d, err := vulndbtest.SubsetSBOM(docs["minbase"], keep)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = d
	}
	for _, doc := range docs { // warm the cache from every image
		if _, _, err := cached.Match(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(how string) {
		t.Helper()
		for name, doc := range docs {
			want, _, err := plain.Match(ctx, doc)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := cached.Match(ctx, doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("%s: no matches", name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %d matches %s, %d without a cache; they differ", name, len(got), how, len(want))
			}
		}
	}
	compare("with the cache")

	// A DB imported next is warmed with what the cache holds before the
	// swap; its matches are those of an uncached matcher too.
	if _, err := cached.ImportFile(ctx, vulndbtest.Archive(t)); err != nil {
		t.Fatal(err)
	}
	w := cached.Status().Warmed
	if w == nil || !w.Complete || w.Packages == 0 || w.Packages != w.Held {
		t.Fatalf("the new DB was warmed with %+v, want every package the cache held", w)
	}
	compare("from the cache warmed at the import")
}
