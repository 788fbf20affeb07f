package catalog

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeSBOM: whatever a user uploads as an SBOM, DecodeSBOM returns
// an error or an SBOM that encodes as valid syft-json (or says why it
// cannot); it never panics.
func FuzzDecodeSBOM(f *testing.F) {
	for _, seed := range []string{
		"",
		"this is not an SBOM\x00\x01",
		`{"hello": "world"}`,
		`{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}`,
		`{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [`,
		`{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [{"type": "library", "name": "lodash", "version": "4.17.15", "purl": "pkg:npm/lodash@4.17.15"}]}`,
		`{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x", "packages": [{"SPDXID": "SPDXRef-p", "name": "openssl", "versionInfo": "1.1.1"}]}`,
		"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nDocumentName: x\n",
		`<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1"><components/></bom>`,
		`{"artifacts": [], "source": {"type": "image"}, "distro": {}, "descriptor": {"name": "syft", "version": "1"}, "schema": {"version": "16.0.0", "url": "https://raw.githubusercontent.com/anchore/syft/main/schema/json/schema-16.0.0.json"}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := DecodeSBOM(strings.NewReader(doc))
		if err != nil {
			return
		}
		if d == nil {
			t.Fatalf("DecodeSBOM accepted %q but returned nothing", doc)
		}
		out, err := d.SyftJSON()
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("DecodeSBOM accepted %q but returned %v and invalid JSON %q", doc, d, out)
		}
	})
}
