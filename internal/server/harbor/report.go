package harbor

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// vulnReport is the spec's HarborVulnerabilityReport.
type vulnReport struct {
	GeneratedAt time.Time `json:"generated_at"`
	Artifact    artifact  `json:"artifact"`
	Scanner     scanner   `json:"scanner"`
	// Severity is the highest of the vulnerabilities', absent when there
	// are none (the spec's scale has no "none").
	Severity        string     `json:"severity,omitempty"`
	Vulnerabilities []vulnItem `json:"vulnerabilities"`
}

// vulnItem is the spec's VulnerabilityItem. The package's type and purl,
// which the spec has no field for, are vendor attributes.
type vulnItem struct {
	ID               string         `json:"id"`
	Package          string         `json:"package"`
	Version          string         `json:"version"`
	FixVersion       string         `json:"fix_version,omitempty"`
	Severity         string         `json:"severity"`
	Description      string         `json:"description,omitempty"`
	Links            []string       `json:"links"`
	PreferredCVSS    *cvssDetails   `json:"preferred_cvss,omitempty"`
	VendorAttributes map[string]any `json:"vendor_attributes"`
}

// cvssDetails is the spec's CVSSDetails.
type cvssDetails struct {
	ScoreV3  *float64 `json:"score_v3,omitempty"`
	ScoreV2  *float64 `json:"score_v2,omitempty"`
	VectorV3 string   `json:"vector_v3,omitempty"`
	VectorV2 string   `json:"vector_v2,omitempty"`
}

// vendorCVSS is one source's scores under vendor_attributes.CVSS, in the
// spelling Harbor's console reads (and Harbor's Trivy adapter writes).
type vendorCVSS struct {
	V3Score  *float64 `json:"V3Score,omitempty"`
	V3Vector string   `json:"V3Vector,omitempty"`
	V2Score  *float64 `json:"V2Score,omitempty"`
	V2Vector string   `json:"V2Vector,omitempty"`
}

// vulnerabilityReport maps an analysis to Harbor's report: one item per
// match, severities on the spec's scale (the gate's are the same names),
// the fix versions a fixed match names, CVSS scores preferred from the
// primary source, links, and the package's identity.
func vulnerabilityReport(a *buildgate.Analysis, art artifact, sc scanner) vulnReport {
	purls := map[string]string{}
	for _, p := range a.Packages {
		purls[p.ID] = p.PURL
	}
	out := vulnReport{GeneratedAt: a.MatchedAt.UTC(), Artifact: art, Scanner: sc, Vulnerabilities: []vulnItem{}}
	top := buildgate.Severity(-1)
	for _, m := range a.Matches {
		v := vulnItem{
			ID: m.VulnerabilityID, Package: m.PackageName, Version: m.PackageVersion,
			Severity: m.Severity.String(), Description: m.Description, Links: links(m.URLs),
			VendorAttributes: map[string]any{"package_type": m.PackageType},
		}
		if m.FixState == buildgate.FixStateFixed {
			v.FixVersion = strings.Join(m.FixVersions, ", ")
		}
		if p := purls[m.PackageID]; p != "" {
			v.VendorAttributes["purl"] = p
		}
		if len(m.CVSS) > 0 {
			v.PreferredCVSS = preferred(m.CVSS)
			bySource := map[string]*vendorCVSS{}
			for _, c := range m.CVSS {
				src := strings.ToLower(c.Source)
				if src == "" {
					src = "unknown"
				}
				vc := bySource[src]
				if vc == nil {
					vc = &vendorCVSS{}
					bySource[src] = vc
				}
				score := c.BaseScore
				switch {
				case strings.HasPrefix(c.Version, "3") && vc.V3Score == nil:
					vc.V3Score, vc.V3Vector = &score, c.Vector
				case strings.HasPrefix(c.Version, "2") && vc.V2Score == nil:
					vc.V2Score, vc.V2Vector = &score, c.Vector
				}
			}
			v.VendorAttributes["CVSS"] = bySource
		}
		if m.Severity > top {
			top = m.Severity
		}
		out.Vulnerabilities = append(out.Vulnerabilities, v)
	}
	if top >= 0 {
		out.Severity = top.String()
	}
	return out
}

// preferred picks the v3 and v2 scores of the primary source (the first
// listed when none says it is primary), the latest v3 version first.
func preferred(cvss []buildgate.CVSS) *cvssDetails {
	sorted := slices.Clone(cvss)
	slices.SortStableFunc(sorted, func(a, b buildgate.CVSS) int {
		if pa, pb := a.Type == "Primary", b.Type == "Primary"; pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return strings.Compare(b.Version, a.Version)
	})
	d := &cvssDetails{}
	for _, c := range sorted {
		score := c.BaseScore
		switch {
		case strings.HasPrefix(c.Version, "3") && d.ScoreV3 == nil:
			d.ScoreV3, d.VectorV3 = &score, c.Vector
		case strings.HasPrefix(c.Version, "2") && d.ScoreV2 == nil:
			d.ScoreV2, d.VectorV2 = &score, c.Vector
		}
	}
	if d.ScoreV3 == nil && d.ScoreV2 == nil {
		return nil
	}
	return d
}

// links keeps the absolute http(s) URLs (the spec's links are URIs).
func links(urls []string) []string {
	out := []string{}
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			out = append(out, s)
		}
	}
	return out
}

// sbomReport is the spec's HarborSbomReport; SBOM is the document the
// gate's SBOM export makes.
type sbomReport struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Artifact    artifact        `json:"artifact"`
	Scanner     scanner         `json:"scanner"`
	MediaType   string          `json:"media_type"`
	SBOM        json.RawMessage `json:"sbom"`
}
