package vulndb

import (
	"bytes"
	"fmt"

	"github.com/anchore/syft/syft/artifact"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"
)

// MatchDocument returns the syft-json document of what matching reads of
// an SBOM: its packages, the relationships between them, its source,
// distro and descriptor. grype's reader makes of it the packages and
// context it makes of the whole SBOM's document (the relationships it
// reads join two packages), so Match and MatchListing give the same
// matches and package list for both; it is a quarter of the size (no file
// entries, no package-to-file relationships) and so read in a fraction of
// the time. A cataloger that holds the SBOM in memory hands it to the
// matcher this way rather than the whole document.
func MatchDocument(s *sbom.SBOM) ([]byte, error) {
	if s == nil || s.Artifacts.Packages == nil {
		return nil, fmt.Errorf("making the matched document: no SBOM")
	}
	doc := sbom.SBOM{Source: s.Source, Descriptor: s.Descriptor}
	doc.Artifacts.Packages = s.Artifacts.Packages
	doc.Artifacts.LinuxDistribution = s.Artifacts.LinuxDistribution
	isPackage := func(a artifact.Identifiable) bool {
		return a != nil && s.Artifacts.Packages.Package(a.ID()) != nil
	}
	for _, r := range s.Relationships {
		if isPackage(r.From) && isPackage(r.To) {
			doc.Relationships = append(doc.Relationships, r)
		}
	}
	var buf bytes.Buffer
	if err := syftjson.NewFormatEncoder().Encode(&buf, doc); err != nil {
		return nil, fmt.Errorf("making the matched document: %w", err)
	}
	return buf.Bytes(), nil
}
