package vulndb

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/anchore/grype/grype/match"
	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/grype/grype/vulnerability"
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
