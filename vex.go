package buildgate

import "time"

// VEX statuses, as OpenVEX names them (CycloneDX analysis states are
// mapped onto these).
const (
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// VEXDocument is a VEX document stored by an admin: it applies to the
// images of every repository Scope matches ("" or "*": all images).
type VEXDocument struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Scope is a glob over "registry/repository" ("ghcr.io/acme/*").
	Scope string `json:"scope"`
	// Format is "openvex" or "cyclonedx".
	Format string `json:"format"`
	// Statements is how many statements the document holds.
	Statements int       `json:"statements"`
	Document   []byte    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// VEXTarget is what a VEX statement's product may name: the image by
// digest and the repositories ("registry/repository") it is tagged in.
type VEXTarget struct {
	Digest       string
	Repositories []string
}

// VEXDecision is the VEX statement that applies to a vulnerability
// finding.
type VEXDecision struct {
	// Source names the document: "vex document <id>" for a stored one,
	// "this run's --vex" for one sent with the check.
	Source string `json:"source"`
	// Document is the document's own id (OpenVEX @id, CycloneDX serial).
	Document      string `json:"document,omitempty"`
	Vulnerability string `json:"vulnerability"`
	// Product is the identifier the statement matched: the package purl,
	// the image's digest purl or its repository.
	Product         string `json:"product"`
	Status          string `json:"status"`
	Justification   string `json:"justification,omitempty"`
	ImpactStatement string `json:"impact_statement,omitempty"`
	ActionStatement string `json:"action_statement,omitempty"`
}

// Suppresses reports whether the statement waives the finding: the
// product is not affected, or the vulnerability is fixed in it.
func (d *VEXDecision) Suppresses() bool {
	return d.Status == VEXNotAffected || d.Status == VEXFixed
}

// Text is the decision as a person reads it:
// "not_affected (vulnerable_code_not_present): the code is not built".
func (d *VEXDecision) Text() string {
	s := d.Status
	if d.Justification != "" {
		s += " (" + d.Justification + ")"
	}
	for _, t := range []string{d.ImpactStatement, d.ActionStatement} {
		if t != "" {
			s += ": " + t
		}
	}
	return s
}
