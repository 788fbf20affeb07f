package vex

import (
	"path"

	openvex "github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"

	"github.com/buildgate/buildgate"
)

// Source is a document and the name decisions give it.
type Source struct {
	Name string
	Doc  *Document
}

// Judge decides which statement of its documents applies to a finding of
// one image. It implements policy.VEX.
type Judge struct {
	sources  []Source
	products []string
}

// NewJudge returns the judge of an image. The first source with a
// statement for a finding decides it; within a document the latest
// matching statement does.
func NewJudge(t buildgate.VEXTarget, sources ...Source) *Judge {
	return &Judge{sources: sources, products: ImageIdentifiers(t)}
}

// ImageIdentifiers are the identifiers a statement's product may give the
// image: each repository ("registry/repository", whatever the tag), the
// digest purl pkg:oci/<name>@<digest> with and without its
// repository_url, and the digest.
func ImageIdentifiers(t buildgate.VEXTarget) []string {
	var ids []string
	for _, r := range t.Repositories {
		ids = append(ids, r)
		if t.Digest != "" {
			ids = append(ids, OCIPurl(r, t.Digest))
		}
	}
	if t.Digest != "" {
		ids = append(ids, t.Digest)
	}
	return ids
}

// OCIPurl is an image's digest purl:
// pkg:oci/<name>@sha256:...?repository_url=<registry/repository>.
func OCIPurl(repo, digest string) string {
	var q packageurl.Qualifiers
	if repo != "" {
		q = packageurl.Qualifiers{{Key: "repository_url", Value: repo}}
	}
	return packageurl.NewPackageURL("oci", "", path.Base(repo), digest, q, "").ToString()
}

// Decide returns the statement that applies to the vulnerability of a
// package (p may be nil), nil when none does. A statement applies when
// one of its products, or one of their subcomponents, is the package's
// purl (qualifiers the statement omits do not matter) or when its product
// names the image (ImageIdentifiers) without subcomponents or with the
// package among them. Aliases of the vulnerability count on both sides.
func (j *Judge) Decide(m *buildgate.Match, p *buildgate.Package) *buildgate.VEXDecision {
	var purl string
	if p != nil {
		purl = p.PURL
	}
	var sub []string
	if purl != "" {
		sub = []string{purl}
	}
	ids := append([]string{m.VulnerabilityID}, m.RelatedIDs...)
	for _, src := range j.sources {
		for _, id := range ids {
			for _, prod := range j.products {
				if s := latest(src.Doc.doc.Matches(id, prod, sub)); s != nil {
					return decision(src, s, prod)
				}
			}
			if purl != "" {
				if s := latest(src.Doc.doc.Matches(id, purl, nil)); s != nil {
					return decision(src, s, purl)
				}
			}
		}
	}
	return nil
}

// latest is the last of statements sorted oldest first.
func latest(ss []openvex.Statement) *openvex.Statement {
	if len(ss) == 0 {
		return nil
	}
	return &ss[len(ss)-1]
}

func decision(src Source, s *openvex.Statement, product string) *buildgate.VEXDecision {
	return &buildgate.VEXDecision{
		Source: src.Name, Document: src.Doc.doc.ID, Vulnerability: string(s.Vulnerability.Name), Product: product,
		Status: string(s.Status), Justification: string(s.Justification),
		ImpactStatement: s.ImpactStatement, ActionStatement: s.ActionStatement,
	}
}
