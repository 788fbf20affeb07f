package vulndb

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anchore/grype/grype/match"
	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/grype/grype/vulnerability"
	"github.com/anchore/syft/syft/artifact"
	syftPkg "github.com/anchore/syft/syft/pkg"
)

// countingMatcher counts the packages it matched, by name.
type countingMatcher struct {
	typ   match.MatcherType
	types []syftPkg.Type
	mu    *sync.Mutex
	calls map[string]int
}

func (m countingMatcher) PackageTypes() []syftPkg.Type { return m.types }
func (m countingMatcher) Type() match.MatcherType      { return m.typ }
func (m countingMatcher) Match(_ vulnerability.Provider, p pkg.Package) ([]match.Match, []match.IgnoreFilter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[string(m.typ)+"/"+p.Name]++
	switch p.Name {
	case "panics":
		panic("a matcher's bug")
	case "clean":
		return nil, nil, nil
	}
	return []match.Match{{Package: p}}, nil, nil
}

// TestPrefetch: wrapping matchers for an image's packages matches each
// package the cache does not hold with the matchers grype runs on it (its
// type's, else the stock matcher) once, before grype's pass, which then
// finds them all in the cache; a panic is left to grype's pass. A package
// all of whose matchers found nothing is spared grype's pass.
func TestPrefetch(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	dpkg := countingMatcher{typ: match.DpkgMatcher, types: []syftPkg.Type{syftPkg.DebPkg}, mu: &mu, calls: calls}
	stock := countingMatcher{typ: match.StockMatcher, types: []syftPkg.Type{syftPkg.BinaryPkg}, mu: &mu, calls: calls}
	var packages []pkg.Package
	for _, p := range []struct {
		name string
		typ  syftPkg.Type
	}{{"libc6", syftPkg.DebPkg}, {"bash", syftPkg.DebPkg}, {"left-pad", syftPkg.NpmPkg}, {"panics", syftPkg.DebPkg}, {"clean", syftPkg.DebPkg}} {
		packages = append(packages, pkg.Package{ID: pkg.ID(p.name), Name: p.name, Version: "1", Type: p.typ})
	}
	c := newPackageCache(DefaultMatchCacheSize)
	ms, pass := c.wrap(context.Background(), []match.Matcher{dpkg, stock}, nil, packages)
	want := map[string]int{"dpkg-matcher/libc6": 1, "dpkg-matcher/bash": 1, "stock-matcher/left-pad": 1, "dpkg-matcher/panics": 1, "dpkg-matcher/clean": 1}
	var names []string
	for _, p := range pass {
		names = append(names, p.Name)
	}
	if want := []string{"libc6", "bash", "left-pad", "panics"}; !slices.Equal(names, want) {
		t.Errorf("grype's pass gets %v, want %v: all but the package its matchers found nothing for", names, want)
	}
	if len(calls) != len(want) {
		t.Fatalf("before grype's pass: %v, want %v", calls, want)
	}
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("before grype's pass: %v, want %v", calls, want)
		}
	}
	for _, p := range packages[:3] { // grype's pass
		m := ms[0]
		if p.Type != syftPkg.DebPkg {
			m = ms[1]
		}
		got, _, err := m.Match(nil, p)
		if err != nil || len(got) != 1 || got[0].Package.Name != p.Name {
			t.Errorf("%s: %v, %v", p.Name, got, err)
		}
	}
	c.wrap(context.Background(), []match.Matcher{dpkg, stock}, nil, packages) // the next image
	want["dpkg-matcher/panics"] = 2                                           // not kept
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("after grype's pass and another image: %v, want %v", calls, want)
		}
	}
}

// metadataCounter is a provider that counts the metadata read of it.
type metadataCounter struct {
	vulnerability.Provider
	reads *atomic.Int32
}

func (p metadataCounter) VulnerabilityMetadata(vulnerability.Reference) (*vulnerability.Metadata, error) {
	p.reads.Add(1)
	return nil, nil
}

// TestWarm: a new DB's cache is warmed with the packages the cache of the
// DB in use holds, each with the matcher that found what is kept there,
// without its related packages, so that the image's matching in the new
// DB calls no matcher; a warming cut short matches nothing more, and a
// matcher the new DB's configuration lacks is skipped. The metadata of
// each match found is read, so that the provider's cache holds it.
func TestWarm(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string]int{}
	dpkg := countingMatcher{typ: match.DpkgMatcher, types: []syftPkg.Type{syftPkg.DebPkg}, mu: &mu, calls: calls}
	stock := countingMatcher{typ: match.StockMatcher, types: []syftPkg.Type{syftPkg.BinaryPkg}, mu: &mu, calls: calls}
	ms := []match.Matcher{dpkg, stock}
	var packages []pkg.Package
	for _, p := range []struct {
		name string
		typ  syftPkg.Type
	}{{"libc6", syftPkg.DebPkg}, {"left-pad", syftPkg.NpmPkg}, {"clean", syftPkg.DebPkg}, {"panics", syftPkg.DebPkg}} {
		packages = append(packages, pkg.Package{ID: pkg.ID(p.name), Name: p.name, Version: "1", Type: p.typ,
			RelatedPackages: map[artifact.RelationshipType][]*pkg.Package{artifact.OwnershipByFileOverlapRelationship: {{Name: "owner"}}}})
	}
	old := newPackageCache(DefaultMatchCacheSize)
	old.wrap(ctx, ms, nil, packages)
	clear(calls)

	cut, cancel := context.WithCancel(ctx)
	cancel()
	if n, held := newPackageCache(DefaultMatchCacheSize).warm(cut, old, ms, nil); n != 0 || held != 3 {
		t.Errorf("a warming cut before it began matched %d of %d, want 0 of 3", n, held)
	}

	c := newPackageCache(DefaultMatchCacheSize)
	var reads atomic.Int32
	if n, held := c.warm(ctx, old, ms, metadataCounter{reads: &reads}); n != 3 || held != 3 {
		t.Errorf("warmed %d of %d, want 3 of 3 (libc6, left-pad, clean)", n, held)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("warming read the metadata of %d matches, want 2 (libc6's and left-pad's)", n)
	}
	want := map[string]int{"dpkg-matcher/libc6": 1, "stock-matcher/left-pad": 1, "dpkg-matcher/clean": 1}
	if !maps.Equal(calls, want) {
		t.Errorf("warming called %v, want %v", calls, want)
	}
	for _, e := range c.held() {
		if e.pkg.RelatedPackages != nil {
			t.Errorf("%s is kept with its related packages", e.pkg.Name)
		}
	}
	clear(calls)
	wrapped, pass := c.wrap(ctx, ms, nil, packages[:3])
	if len(calls) != 0 {
		t.Errorf("the image's matching in the warmed DB called %v, want nothing", calls)
	}
	if len(pass) != 2 {
		t.Errorf("grype's pass gets %d packages, want 2: all but the one found clean", len(pass))
	}
	got, _, err := wrapped[0].Match(nil, packages[0])
	if err != nil || len(got) != 1 || len(got[0].Package.RelatedPackages) != 1 {
		t.Errorf("libc6 from the warmed cache: %+v, %v; want its match, of the image's package", got, err)
	}

	if n, held := c.warm(ctx, old, []match.Matcher{stock}, metadataCounter{reads: &reads}); n != 1 || held != 3 {
		t.Errorf("without the dpkg matcher: warmed %d of %d, want 1 of 3", n, held)
	}
}
