package vulndb

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/anchore/grype/grype/match"
	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/grype/grype/vulnerability"
	"github.com/anchore/syft/syft/file"
	syftPkg "github.com/anchore/syft/syft/pkg"
)

// DefaultMatchCacheSize bounds the per-package matches kept for the DB in
// use (see Options.MatchCacheSize).
const DefaultMatchCacheSize = 64 << 20

// packageCache keeps what each of grype's matchers found for a package in
// the DB of one handle, so that a package many images share is matched
// once per DB: images built on the same base share most of theirs. It
// keeps the least recently used entries past its estimated size in bytes.
//
// A grype matcher's result is a function of the DB and the package alone;
// the key is the whole package but its related packages, which no matcher
// reads (grype applies them to the matches of the whole image afterwards,
// as it does here on the matches handed out with the image's package).
type packageCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *packageEntry, most recent first
	byKey map[packageKey]*list.Element
}

type packageKey struct {
	matcher match.MatcherType
	pkg     [sha256.Size]byte
}

type packageEntry struct {
	key packageKey
	// pkg is the package matched, without its related packages: the next
	// DB is warmed with it (warm).
	pkg      pkg.Package
	matches  []match.Match
	ignorers []match.IgnoreFilter
	size     int64
}

func newPackageCache(maxBytes int64) *packageCache {
	if maxBytes <= 0 {
		return nil
	}
	return &packageCache{max: maxBytes, order: list.New(), byKey: map[packageKey]*list.Element{}}
}

// Estimated sizes of what an entry holds: the package (its CPEs,
// locations and the metadata grype keeps of it), and grype's matches,
// which carry the package, the vulnerability's record and how it was
// found.
const (
	entryBytes   = 256 + packageBytes
	packageBytes = 2048
	matchBytes   = 4096
	ignorerBytes = 256
)

// wrap returns matchers that consult the cache before ms, or ms when
// there is no cache, for matching packages: each package is hashed once,
// and those the cache does not hold yet are matched with a worker per
// core first, so that grype's pass over them, one after another, finds
// them all in the cache.
//
// It returns as well the packages grype's pass needs: all but those every
// matcher of which found nothing (no match, no ignore filter). Such a
// package adds nothing to grype's result, yet its pass costs it an index
// of grype's explicit ignore rules built for no match (the most of the
// matching time of an image whose packages the cache holds).
func (c *packageCache) wrap(ctx context.Context, ms []match.Matcher, vp vulnerability.Provider, packages []pkg.Package) ([]match.Matcher, []pkg.Package) {
	if c == nil {
		return ms, packages
	}
	ids := make(packageIDs, len(packages))
	for _, p := range packages {
		if id, err := packageID(p); err == nil {
			ids[p.ID] = hashedPackage{name: p.Name, version: p.Version, typ: p.Type, id: id}
		}
	}
	cms := make([]cachedMatcher, len(ms))
	out := make([]match.Matcher, len(ms))
	for i, m := range ms {
		cms[i] = cachedMatcher{Matcher: m, cache: c, ids: ids}
		out[i] = cms[i]
	}
	matchersOf := matcherIndex(cms)
	c.prefetch(ctx, matchersOf, vp, packages)
	return out, slices.DeleteFunc(slices.Clone(packages), func(p pkg.Package) bool {
		return foundNothing(matchersOf(p), p)
	})
}

// matcherIndex returns the matchers grype runs on a package, as its pass
// picks them (newMatcherIndex): those of its type, else the stock matcher.
func matcherIndex(ms []cachedMatcher) func(pkg.Package) []cachedMatcher {
	byType := map[syftPkg.Type][]cachedMatcher{}
	var stock []cachedMatcher
	for _, m := range ms {
		if m.Type() == match.StockMatcher {
			stock = []cachedMatcher{m}
			continue
		}
		for _, t := range m.PackageTypes() {
			byType[t] = append(byType[t], m)
		}
	}
	return func(p pkg.Package) []cachedMatcher {
		if matchers, ok := byType[p.Type]; ok {
			return matchers
		}
		return stock
	}
}

// foundNothing reports whether the cache holds, for each of ms, that it
// found nothing for p. A package without matchers is left to grype.
func foundNothing(ms []cachedMatcher, p pkg.Package) bool {
	if len(ms) == 0 {
		return false
	}
	for _, m := range ms {
		e, ok := m.entry(p)
		if !ok || len(e.matches) > 0 || len(e.ignorers) > 0 {
			return false
		}
	}
	return true
}

// packageIDs are the hashes (packageID) of one image's packages, by
// grype's ID, which is unique in an image.
type packageIDs map[pkg.ID]hashedPackage

type hashedPackage struct {
	name, version string
	typ           syftPkg.Type
	id            [sha256.Size]byte
}

// of returns the hash of p: the one made for the image, or a new one for
// a package of another (never expected: a guard).
func (ids packageIDs) of(p pkg.Package) ([sha256.Size]byte, error) {
	if h, ok := ids[p.ID]; ok && h.name == p.Name && h.version == p.Version && h.typ == p.Type {
		return h.id, nil
	}
	return packageID(p)
}

// prefetch runs the matchers (cachedMatchers) of each package, as
// matchersOf picks them, unless the cache holds what they find already,
// with a worker per core: what they find is kept. Errors and panics are
// left to grype's own pass, which calls them again.
func (c *packageCache) prefetch(ctx context.Context, matchersOf func(pkg.Package) []cachedMatcher, vp vulnerability.Provider, packages []pkg.Package) {
	type job struct {
		m cachedMatcher
		p *pkg.Package
	}
	var jobs []job
	for i := range packages {
		p := &packages[i]
		for _, m := range matchersOf(*p) {
			if _, held := m.entry(*p); !held {
				jobs = append(jobs, job{m, p})
			}
		}
	}
	perCore(ctx, jobs, func(j job) { _, _, _ = j.m.Match(vp, *j.p) })
}

// perCore calls do on each job with a worker per core, until ctx is done,
// and returns how many jobs it handed out. A panic in do ends that job
// alone: the matchers' errors and panics are grype's own pass's to report.
func perCore[T any](ctx context.Context, jobs []T, do func(T)) int {
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				func() {
					defer func() { _ = recover() }()
					do(j)
				}()
			}
		}()
	}
	n := 0
send:
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- j:
			n++
		case <-ctx.Done():
			break send
		}
	}
	close(work)
	wg.Wait()
	return n
}

// entry returns the entry of what m finds for p, if the cache holds it,
// as used (even when grype's pass is spared it). Its slices are not to be
// changed.
func (m cachedMatcher) entry(p pkg.Package) (*packageEntry, bool) {
	key, err := m.key(p)
	if err != nil {
		return nil, false
	}
	return m.cache.lookup(key)
}

// cachedMatcher is a grype matcher answering from the cache.
type cachedMatcher struct {
	match.Matcher
	cache *packageCache
	ids   packageIDs
}

// key is what the cache keeps what m finds for p under.
func (m cachedMatcher) key(p pkg.Package) (packageKey, error) {
	id, err := m.ids.of(p)
	return packageKey{matcher: m.Type(), pkg: id}, err
}

func (m cachedMatcher) Match(vp vulnerability.Provider, p pkg.Package) ([]match.Match, []match.IgnoreFilter, error) {
	key, err := m.key(p)
	if err != nil {
		return m.Matcher.Match(vp, p)
	}
	if matches, ignorers, ok := m.cache.get(key, p); ok {
		return matches, ignorers, nil
	}
	matches, ignorers, err := m.Matcher.Match(vp, p)
	if err != nil {
		return matches, ignorers, err // not kept: tried again next time
	}
	m.cache.put(key, p, matches, ignorers)
	return matches, ignorers, nil
}

// get returns copies of the matches kept for key, of package p, and the
// ignore filters.
func (c *packageCache) get(key packageKey, p pkg.Package) ([]match.Match, []match.IgnoreFilter, bool) {
	e, ok := c.lookup(key)
	if !ok {
		return nil, nil, false
	}
	var matches []match.Match
	if e.matches != nil {
		matches = make([]match.Match, len(e.matches))
		for i, m := range e.matches {
			// The package as this image has it (its related packages),
			// and details of its own: grype appends to them.
			m.Package = p
			m.Details = slices.Clone(m.Details)
			matches[i] = m
		}
	}
	return matches, slices.Clone(e.ignorers), true
}

// lookup returns the entry kept for key, moved to the front.
func (c *packageCache) lookup(key packageKey) (*packageEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*packageEntry), true
}

func (c *packageCache) put(key packageKey, p pkg.Package, matches []match.Match, ignorers []match.IgnoreFilter) {
	p.RelatedPackages = nil
	e := &packageEntry{
		key: key, pkg: p, matches: slices.Clone(matches), ignorers: slices.Clone(ignorers),
		size: entryBytes + matchBytes*int64(len(matches)) + ignorerBytes*int64(len(ignorers)),
	}
	for i := range e.matches {
		e.matches[i].Details = slices.Clone(e.matches[i].Details)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	if e.size > c.max {
		return
	}
	c.byKey[key] = c.order.PushFront(e)
	c.size += e.size
	for c.size > c.max {
		c.remove(c.order.Back())
	}
}

func (c *packageCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*packageEntry)
	delete(c.byKey, e.key)
	c.size -= e.size
}

// packageID hashes everything of a grype package a matcher may read: all
// of it but its related packages.
func packageID(p pkg.Package) ([sha256.Size]byte, error) {
	b, err := json.Marshal(struct {
		ID           pkg.ID
		Name         string
		Version      string
		Locations    []file.Location
		Language     syftPkg.Language
		Distro       any
		Licenses     []string
		Type         syftPkg.Type
		CPEs         any
		PURL         string
		Upstreams    []pkg.UpstreamPackage
		MetadataType string
		Metadata     any
		Annotations  map[string][]string
	}{
		p.ID, p.Name, p.Version, p.Locations.ToSlice(), p.Language, p.Distro, p.Licenses, p.Type, p.CPEs, p.PURL, p.Upstreams,
		fmt.Sprintf("%T", p.Metadata), p.Metadata, p.Annotations,
	})
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// held returns the keys and packages of the entries c holds, most
// recently used first.
func (c *packageCache) held() []packageEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]packageEntry, 0, len(c.byKey))
	for el := c.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*packageEntry)
		out = append(out, packageEntry{key: e.key, pkg: e.pkg})
	}
	return out
}

// warm matches in vp, with grype's matchers ms, the packages old holds
// (the cache of the DB in use), most recently used first, with a worker
// per core, and keeps what each matcher finds under the key old keeps it
// under, until ctx is done. It reads the metadata of the vulnerabilities
// found as well, which grype reads after every image's matching, so that
// vp's metadata cache holds it. It returns how many of old's entries it
// matched, and how many old held.
//
// A matcher's result is a function of the DB and the package alone, so
// what warm keeps is what the image's matching would find; a package the
// warming did not reach is matched when an image has it, as before.
func (c *packageCache) warm(ctx context.Context, old *packageCache, ms []match.Matcher, vp vulnerability.Provider) (matched, held int) {
	if c == nil || old == nil {
		return 0, 0
	}
	byType := map[match.MatcherType]match.Matcher{}
	for _, m := range ms {
		byType[m.Type()] = m
	}
	entries := old.held()
	held = len(entries)
	jobs := slices.DeleteFunc(entries, func(e packageEntry) bool {
		return byType[e.key.matcher] == nil // a matcher the new DB's configuration has not
	})
	matched = perCore(ctx, jobs, func(e packageEntry) {
		matches, ignorers, err := byType[e.key.matcher].Match(vp, e.pkg)
		if err != nil {
			return
		}
		for _, found := range matches {
			_, _ = vp.VulnerabilityMetadata(found.Vulnerability.Reference) //nolint:staticcheck // the method grype itself calls
		}
		c.put(e.key, e.pkg, matches, ignorers)
	})
	return matched, held
}
