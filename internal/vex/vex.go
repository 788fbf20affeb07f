// Package vex reads OpenVEX and CycloneDX VEX documents (through the
// openvex and cyclonedx-go libraries grype uses), decides which statement
// applies to a vulnerability finding, and exports an evaluation's
// decisions as OpenVEX.
package vex

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/url"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	openvex "github.com/openvex/go-vex/pkg/vex"

	"github.com/buildgate/buildgate"
)

// Formats of a VEX document.
const (
	FormatOpenVEX   = "openvex"
	FormatCycloneDX = "cyclonedx"
)

// Document is a parsed VEX document, held as OpenVEX whatever its format.
type Document struct {
	Format string
	doc    *openvex.VEX
}

// Statements is how many statements the document holds.
func (d *Document) Statements() int { return len(d.doc.Statements) }

// Parse reads an OpenVEX or CycloneDX (JSON) VEX document. It refuses, with
// the reason, a document that does not parse, holds no statement, or whose
// statement names no vulnerability or product or has an unknown status.
func Parse(data []byte) (*Document, error) {
	var head struct {
		Context   string `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the VEX document is not JSON: %v", err)
	}
	var d *Document
	var err error
	switch {
	case strings.Contains(head.Context, "openvex"):
		d, err = parseOpenVEX(data)
	case head.BOMFormat == "CycloneDX":
		d, err = parseCycloneDX(data)
	default:
		return nil, buildgate.Errorf(buildgate.EINVALID, `the VEX document is neither OpenVEX (an "@context" of https://openvex.dev/ns) nor CycloneDX ("bomFormat": "CycloneDX")`)
	}
	if err != nil {
		return nil, err
	}
	if len(d.doc.Statements) == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the %s document holds no VEX statement", d.Format)
	}
	return d, nil
}

func parseOpenVEX(data []byte) (*Document, error) {
	doc, err := openvex.Parse(data)
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the OpenVEX document does not parse: %v", err)
	}
	for i := range doc.Statements {
		s := &doc.Statements[i]
		if err := checkStatement(i, s); err != nil {
			return nil, err
		}
		if err := s.Validate(); err != nil {
			return nil, buildgate.Errorf(buildgate.EINVALID, "OpenVEX statement %d (%s): %v", i+1, s.Vulnerability.Name, err)
		}
	}
	return &Document{Format: FormatOpenVEX, doc: doc}, nil
}

// checkStatement refuses a statement without vulnerability, product or
// known status.
func checkStatement(i int, s *openvex.Statement) error {
	if s.Vulnerability.Name == "" {
		return buildgate.Errorf(buildgate.EINVALID, "VEX statement %d names no vulnerability", i+1)
	}
	named := false
	for _, p := range s.Products {
		named = named || p.ID != "" || len(p.Identifiers) > 0 || len(p.Hashes) > 0
	}
	if !named {
		return buildgate.Errorf(buildgate.EINVALID, "VEX statement %d (%s) names no product", i+1, s.Vulnerability.Name)
	}
	if !s.Status.Valid() {
		return buildgate.Errorf(buildgate.EINVALID, "VEX statement %d (%s) has the unknown status %q (want one of %s)",
			i+1, s.Vulnerability.Name, s.Status, strings.Join(openvex.Statuses(), ", "))
	}
	return nil
}

// cdxStatus maps CycloneDX analysis states to OpenVEX statuses.
var cdxStatus = map[cdx.ImpactAnalysisState]openvex.Status{
	cdx.IASNotAffected:          openvex.StatusNotAffected,
	cdx.IASFalsePositive:        openvex.StatusNotAffected,
	cdx.IASResolved:             openvex.StatusFixed,
	cdx.IASResolvedWithPedigree: openvex.StatusFixed,
	cdx.IASExploitable:          openvex.StatusAffected,
	cdx.IASInTriage:             openvex.StatusUnderInvestigation,
}

// cdxJustification maps CycloneDX justifications to OpenVEX ones.
var cdxJustification = map[cdx.ImpactAnalysisJustification]openvex.Justification{
	cdx.IAJCodeNotPresent:               openvex.VulnerableCodeNotPresent,
	cdx.IAJCodeNotReachable:             openvex.VulnerableCodeNotInExecutePath,
	cdx.IAJRequiresConfiguration:        openvex.VulnerableCodeCannotBeControlledByAdversary,
	cdx.IAJRequiresDependency:           openvex.ComponentNotPresent,
	cdx.IAJRequiresEnvironment:          openvex.VulnerableCodeCannotBeControlledByAdversary,
	cdx.IAJProtectedByCompiler:          openvex.InlineMitigationsAlreadyExist,
	cdx.IAJProtectedAtRuntime:           openvex.InlineMitigationsAlreadyExist,
	cdx.IAJProtectedAtPerimeter:         openvex.InlineMitigationsAlreadyExist,
	cdx.IAJProtectedByMitigatingControl: openvex.InlineMitigationsAlreadyExist,
}

// parseCycloneDX turns each vulnerability's analysis into one OpenVEX
// statement whose products are the affected components (their purls when
// the refs name components of the document or are purls themselves).
func parseCycloneDX(data []byte) (*Document, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the CycloneDX document does not parse: %v", err)
	}
	purls := map[string]string{}
	var walk func(cs *[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for _, c := range *cs {
			if c.BOMRef != "" && c.PackageURL != "" {
				purls[c.BOMRef] = c.PackageURL
			}
			walk(c.Components)
		}
	}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		walk(&[]cdx.Component{*bom.Metadata.Component})
	}
	walk(bom.Components)

	doc := openvex.New()
	doc.ID = bom.SerialNumber
	if bom.Vulnerabilities == nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the CycloneDX document holds no vulnerabilities, so no VEX statement")
	}
	for i, v := range *bom.Vulnerabilities {
		s := openvex.Statement{Vulnerability: openvex.Vulnerability{Name: openvex.VulnerabilityID(v.ID)}}
		if v.References != nil {
			for _, r := range *v.References {
				if r.ID != "" {
					s.Vulnerability.Aliases = append(s.Vulnerability.Aliases, openvex.VulnerabilityID(r.ID))
				}
			}
		}
		if v.Affects != nil {
			for _, a := range *v.Affects {
				if id := resolveRef(a.Ref, purls); id != "" {
					s.Products = append(s.Products, openvex.Product{Component: openvex.Component{ID: id}})
				}
			}
		}
		var state cdx.ImpactAnalysisState
		if v.Analysis != nil {
			state = v.Analysis.State
			s.Justification = cdxJustification[v.Analysis.Justification]
			detail := v.Analysis.Detail
			if v.Analysis.Justification != "" && s.Justification == "" {
				detail = strings.TrimSpace(string(v.Analysis.Justification) + " " + detail)
			}
			switch state {
			case cdx.IASExploitable:
				s.ActionStatement = cmp.Or(detail, v.Recommendation, "exploitable")
			case cdx.IASFalsePositive:
				s.ImpactStatement = strings.TrimSpace("false positive " + detail)
			case cdx.IASNotAffected:
				s.ImpactStatement = detail
			}
		}
		s.Status = cdxStatus[state]
		if s.Status == "" {
			s.Status = openvex.Status(state)
		}
		if err := checkStatement(i, &s); err != nil {
			if s.Status == "" {
				return nil, buildgate.Errorf(buildgate.EINVALID, "CycloneDX vulnerability %d (%s) has no analysis state (want one of not_affected, false_positive, resolved, resolved_with_pedigree, exploitable, in_triage)", i+1, v.ID)
			}
			if !s.Status.Valid() {
				return nil, buildgate.Errorf(buildgate.EINVALID, "CycloneDX vulnerability %d (%s) has the unknown analysis state %q (want one of not_affected, false_positive, resolved, resolved_with_pedigree, exploitable, in_triage)", i+1, v.ID, state)
			}
			return nil, err
		}
		doc.Statements = append(doc.Statements, s)
	}
	return &Document{Format: FormatCycloneDX, doc: &doc}, nil
}

// resolveRef returns the identifier an affects ref names: the purl of the
// component it refers to, the purl it is, or the purl a BOM-Link
// (urn:cdx:serial/version#ref) points at; else the ref itself.
func resolveRef(ref string, purls map[string]string) string {
	if p, ok := purls[ref]; ok {
		return p
	}
	if strings.HasPrefix(ref, "urn:cdx:") {
		if _, frag, ok := strings.Cut(ref, "#"); ok {
			if f, err := url.PathUnescape(frag); err == nil {
				frag = f
			}
			if p, ok := purls[frag]; ok {
				return p
			}
			return frag
		}
	}
	return ref
}
