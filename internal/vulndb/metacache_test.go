package vulndb

import (
	"errors"
	"testing"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/distro"
	"github.com/anchore/grype/grype/vulnerability"
)

// countingProvider counts the metadata reads that reach it.
type countingProvider struct {
	vulnerability.Provider
	reads map[string]int
}

func (p countingProvider) VulnerabilityMetadata(ref vulnerability.Reference) (*vulnerability.Metadata, error) {
	p.reads[ref.ID+"@"+ref.Namespace]++
	if ref.ID == "fails" {
		return nil, errors.New("db closed")
	}
	return &vulnerability.Metadata{ID: ref.ID, Namespace: ref.Namespace}, nil
}

type eolProvider struct{ countingProvider }

func (eolProvider) GetOperatingSystemEOL(*distro.Distro) (eolDate, eoasDate *time.Time, err error) {
	eol := time.Date(2026, 8, 14, 0, 0, 0, 0, time.UTC)
	return &eol, nil, nil
}

// TestMetadataCache: the DB's metadata of a record is read once while the
// cache holds it, per row and namespace; errors are not kept; the least
// recently used record goes first; the wrapper stays an EOL checker; no
// cache (size 0) or a provider grype would not check EOL with is
// returned as it is.
func TestMetadataCache(t *testing.T) {
	inner := eolProvider{countingProvider{reads: map[string]int{}}}
	vp := withMetadataCache(inner, 2*metadataBytes) // two records
	if _, ok := vp.(vulnerability.EOLChecker); !ok {
		t.Fatal("the wrapped provider is no EOL checker: grype would stop tracking EOL distros")
	}
	if eol, _, _ := vp.(vulnerability.EOLChecker).GetOperatingSystemEOL(nil); eol == nil || eol.Year() != 2026 {
		t.Fatalf("EOL date %v, want the DB's", eol)
	}
	read := func(ref vulnerability.Reference) *vulnerability.Metadata {
		t.Helper()
		m, err := vp.VulnerabilityMetadata(ref) //nolint:staticcheck // the method under test
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != ref.ID || m.Namespace != ref.Namespace {
			t.Fatalf("metadata of %+v: %+v", ref, m)
		}
		return m
	}
	a := vulnerability.Reference{ID: "CVE-1", Namespace: "debian:distro:debian:12", Internal: &v6.VulnerabilityHandle{ID: 1}}
	aOther := vulnerability.Reference{ID: "CVE-1", Namespace: "nvd:cpe", Internal: &v6.VulnerabilityHandle{ID: 1}}
	b := vulnerability.Reference{ID: "CVE-2", Namespace: "debian:distro:debian:12"}
	read(a)
	read(a)
	read(aOther)
	if got := inner.reads["CVE-1@debian:distro:debian:12"]; got != 1 {
		t.Errorf("CVE-1 read from the DB %d times, want once", got)
	}
	if got := inner.reads["CVE-1@nvd:cpe"]; got != 1 {
		t.Errorf("CVE-1 in another namespace read %d times, want once", got)
	}
	read(b) // pushes out a, the least recently used
	read(aOther)
	read(a)
	if got := inner.reads["CVE-1@debian:distro:debian:12"]; got != 2 {
		t.Errorf("CVE-1 read %d times after it was pushed out, want 2", got)
	}
	for range 2 {
		if _, err := vp.VulnerabilityMetadata(vulnerability.Reference{ID: "fails"}); err == nil { //nolint:staticcheck // the method under test
			t.Fatal("a failed read gave no error")
		}
	}
	if got := inner.reads["fails@"]; got != 2 {
		t.Errorf("a failed read reached the DB %d times of 2: its error was kept", got)
	}

	if _, ok := withMetadataCache(inner, 0).(metadataProvider); ok {
		t.Error("size 0 wrapped the provider")
	}
	plain := countingProvider{reads: map[string]int{}}
	if _, ok := withMetadataCache(plain, metadataBytes).(metadataProvider); ok {
		t.Error("a provider without EOL data was wrapped as an EOL checker")
	}
}
