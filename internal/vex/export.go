package vex

import (
	"bytes"
	"cmp"
	"fmt"
	"time"

	openvex "github.com/openvex/go-vex/pkg/vex"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// Export writes an evaluation's decisions about the image's
// vulnerabilities as an OpenVEX document: each VEX statement that applied,
// and each allowlisted finding as not_affected with the allowlist item as
// its impact statement. Every statement's product is the image's digest
// purl with the package's purl as subcomponent; findings whose package
// has no purl are left out, as a statement without subcomponent would
// cover every package of the image.
func Export(t buildgate.VEXTarget, ev *policy.Evaluation, now time.Time) ([]byte, error) {
	doc := openvex.New()
	doc.ID = "urn:buildgate:vex:" + t.Digest + ":" + ev.EvaluatedAt.UTC().Format(time.RFC3339Nano)
	doc.Author = "buildgate"
	doc.AuthorRole = "build gate"
	ts := now.UTC()
	doc.Timestamp = &ts
	repo := ""
	if len(t.Repositories) > 0 {
		repo = t.Repositories[0]
	}
	product := OCIPurl(repo, t.Digest)
	seen := map[string]bool{}
	for i := range ev.Findings {
		f := &ev.Findings[i]
		if f.Vulnerability == nil || f.Package == nil || f.Package.PURL == "" || (f.VEX == nil && f.Allowlisted == nil) {
			continue
		}
		key := f.Vulnerability.VulnerabilityID + " " + f.Package.PURL
		if seen[key] {
			continue
		}
		seen[key] = true
		s := openvex.Statement{
			Vulnerability: openvex.Vulnerability{Name: openvex.VulnerabilityID(f.Vulnerability.VulnerabilityID)},
			Products: []openvex.Product{{
				Component:     openvex.Component{ID: product},
				Subcomponents: []openvex.Subcomponent{{Component: openvex.Component{ID: f.Package.PURL}}},
			}},
		}
		for _, a := range f.Vulnerability.RelatedIDs {
			s.Vulnerability.Aliases = append(s.Vulnerability.Aliases, openvex.VulnerabilityID(a))
		}
		if d := f.VEX; d != nil {
			s.Status = openvex.Status(d.Status)
			s.Justification = openvex.Justification(d.Justification)
			s.ImpactStatement, s.ActionStatement = d.ImpactStatement, d.ActionStatement
			s.StatusNotes = "from " + d.Source + cmpNote(d.Document)
		} else {
			a := f.Allowlisted
			s.Status = openvex.StatusNotAffected
			s.ImpactStatement = fmt.Sprintf("allowlisted by item %q of allowlist %q", a.ItemID, cmp.Or(a.AllowlistName, a.AllowlistID))
			if a.Reason != "" {
				s.ImpactStatement += ": " + a.Reason
			}
			if a.ExpiresOn != nil {
				s.ImpactStatement += " (expires " + a.ExpiresOn.UTC().Format(time.RFC3339) + ")"
			}
		}
		doc.Statements = append(doc.Statements, s)
	}
	var buf bytes.Buffer
	if err := doc.ToJSON(&buf); err != nil {
		return nil, fmt.Errorf("encoding the OpenVEX document: %w", err)
	}
	return buf.Bytes(), nil
}

func cmpNote(docID string) string {
	if docID == "" {
		return ""
	}
	return " (" + docID + ")"
}
