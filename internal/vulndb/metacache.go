package vulndb

import (
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/distro"
	"github.com/anchore/grype/grype/vulnerability"
	lru "github.com/hashicorp/golang-lru/v2"
)

// metadataBytes is the estimated size of one vulnerability's metadata
// (description, URLs, CVSS vectors, KEV and EPSS entries), by which the
// metadata cache's share of Options.MatchCacheSize is counted: a quarter
// of it (metadataShare), the match cache the rest.
const (
	metadataBytes = 4096
	metadataShare = 4
)

// metadataProvider is a DB's provider that keeps the metadata it reads
// by vulnerability, least recently used out past its bound. grype reads
// a match's metadata from the DB again after every image's matching (to
// count matches by severity for its progress monitor: three queries per
// match), where the matchers' results come from the match cache: without
// this the re-match of 1,000 images spent a third of its CPU there.
// The metadata of a vulnerability record is a function of the DB and the
// record alone, and is read, never changed, by grype and by convertMatch.
type metadataProvider struct {
	vulnerability.Provider
	eol   vulnerability.EOLChecker
	cache *lru.Cache[metadataKey, *vulnerability.Metadata]
}

// metadataKey names a record: by its row in the DB when grype's reference
// carries it (as the v6 provider's matches do), else by ID; the namespace
// goes into the metadata.
type metadataKey struct {
	row           v6.ID
	id, namespace string
}

// withMetadataCache returns vp with a metadata cache within cacheBytes,
// or vp itself when cacheBytes is not positive or vp is not the v6
// provider grype's matchers expect (an EOL checker, which a wrapper must
// stay).
func withMetadataCache(vp vulnerability.Provider, cacheBytes int64) vulnerability.Provider {
	eol, ok := vp.(vulnerability.EOLChecker)
	if cacheBytes <= 0 || !ok {
		return vp
	}
	cache, err := lru.New[metadataKey, *vulnerability.Metadata](int(max(cacheBytes/metadataBytes, 1)))
	if err != nil {
		return vp
	}
	return metadataProvider{Provider: vp, eol: eol, cache: cache}
}

func (p metadataProvider) VulnerabilityMetadata(ref vulnerability.Reference) (*vulnerability.Metadata, error) {
	key := metadataKey{id: ref.ID, namespace: ref.Namespace}
	if h, ok := ref.Internal.(*v6.VulnerabilityHandle); ok && h != nil {
		key = metadataKey{row: h.ID, namespace: ref.Namespace}
	}
	if m, ok := p.cache.Get(key); ok {
		return m, nil
	}
	m, err := p.Provider.VulnerabilityMetadata(ref) //nolint:staticcheck // the method grype itself calls
	if err != nil {
		return nil, err
	}
	p.cache.Add(key, m)
	return m, nil
}

// GetOperatingSystemEOL is the DB's, for grype's EOL tracking.
func (p metadataProvider) GetOperatingSystemEOL(d *distro.Distro) (eolDate, eoasDate *time.Time, err error) {
	return p.eol.GetOperatingSystemEOL(d)
}
