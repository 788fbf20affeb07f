package api

import "time"

// VEXDocument describes a stored VEX document (POST /v1/vex answers it,
// GET /v1/vex lists them).
type VEXDocument struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Scope is the glob over "registry/repository" of the images the
	// document applies to; "*" applies it to every image.
	Scope string `json:"scope"`
	// Format is "openvex" or "cyclonedx".
	Format     string    `json:"format"`
	Statements int       `json:"statements"`
	CreatedAt  time.Time `json:"created_at"`
}

// VEXDocumentList is the answer of GET /v1/vex.
type VEXDocumentList struct {
	Documents []VEXDocument `json:"documents"`
}
