package vulndbtest

import (
	"encoding/json"
	"fmt"
	"slices"
)

// SubsetSBOM returns a syft-json document holding the packages of doc
// for which keep(i) is true (i counts doc's packages) and the
// relationships between them: an image built from the same
// base with other packages, as the benchmarks of re-matching need. Its
// files are left out, as in an uploaded SBOM.
func SubsetSBOM(doc []byte, keep func(i int) bool) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("reading syft-json: %w", err)
	}
	var artifacts []json.RawMessage
	if err := json.Unmarshal(top["artifacts"], &artifacts); err != nil {
		return nil, fmt.Errorf("reading artifacts: %w", err)
	}
	keptIDs := map[string]bool{}
	var kept []json.RawMessage
	for i, a := range artifacts {
		var id struct{ ID string }
		if err := json.Unmarshal(a, &id); err != nil {
			return nil, fmt.Errorf("reading artifact %d: %w", i, err)
		}
		if keep(i) {
			kept = append(kept, a)
			keptIDs[id.ID] = true
		}
	}
	var rels []relationship
	if err := json.Unmarshal(top["artifactRelationships"], &rels); err != nil {
		return nil, fmt.Errorf("reading relationships: %w", err)
	}
	rels = slices.DeleteFunc(rels, func(r relationship) bool { return !keptIDs[r.Parent] || !keptIDs[r.Child] })
	var err error
	if top["artifacts"], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	if top["artifactRelationships"], err = json.Marshal(rels); err != nil {
		return nil, err
	}
	delete(top, "files")
	return json.Marshal(top)
}

// relationship is an entry of syft-json's artifactRelationships.
type relationship struct {
	Parent   string `json:"parent"`
	Child    string `json:"child"`
	Type     string `json:"type"`
	Metadata any    `json:"metadata,omitempty"`
}
