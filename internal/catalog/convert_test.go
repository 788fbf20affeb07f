package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/anchore/syft/syft/format/cyclonedxxml"
	"github.com/anchore/syft/syft/format/spdxtagvalue"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"

	"github.com/buildgate/buildgate"
)

// nameVersions lists packages as sorted "type:name@version".
func nameVersions(pkgs []buildgate.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Type+":"+p.Name+"@"+p.Version)
	}
	slices.Sort(out)
	return out
}

func TestConvertAndDecodeSBOM(t *testing.T) {
	res := catalogDpkgOnly(t)
	want := nameVersions(res.Packages)

	tests := []struct {
		name       string
		format     string
		wantPrefix string // what the document says it is
		wantID     string
	}{
		{name: "syft-json", format: FormatSyftJSON, wantPrefix: `"schema"`, wantID: "syft-json"},
		{name: "cyclonedx-json", format: FormatCycloneDXJSON, wantPrefix: `"bomFormat":"CycloneDX"`, wantID: "cyclonedx-json"},
		{name: "spdx-json", format: FormatSPDXJSON, wantPrefix: `"spdxVersion":"SPDX-2.3"`, wantID: "spdx-json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := ConvertSBOM(res.SBOM, tt.format)
			if err != nil {
				t.Fatalf("ConvertSBOM: %v", err)
			}
			if !json.Valid(doc) || !bytes.Contains(doc, []byte(tt.wantPrefix)) {
				t.Fatalf("%s document does not contain %s", tt.format, tt.wantPrefix)
			}

			d, err := DecodeSBOM(bytes.NewReader(doc))
			if err != nil {
				t.Fatalf("DecodeSBOM: %v", err)
			}
			syftJSON, err := d.SyftJSON()
			if err != nil {
				t.Fatalf("SyftJSON: %v", err)
			}
			if d.Format != tt.wantID || d.FormatVersion == "" {
				t.Errorf("format: got %q %q, want %s", d.Format, d.FormatVersion, tt.wantID)
			}
			if got := nameVersions(d.Packages); !slices.Equal(got, want) {
				t.Errorf("packages after the round trip differ:\n got %d %v\nwant %d", len(got), got[:min(5, len(got))], len(want))
			}
			if d.Metadata.Distro != "debian" || d.Metadata.DistroVersion != "11" {
				t.Errorf("distro: got %q %q, want debian 11", d.Metadata.Distro, d.Metadata.DistroVersion)
			}
			if !bytes.Contains(syftJSON, []byte(`"artifacts"`)) {
				t.Errorf("re-encoded document is not syft-json")
			}
			libc, ok := findPackage(d.Packages, "deb", "libc6")
			if !ok || libc.PURL == "" {
				t.Errorf("libc6 after the round trip: got %+v", libc)
			}
			if tt.format == FormatSyftJSON {
				if libc.Origin != "glibc" || libc.Size == 0 {
					t.Errorf("libc6 from syft-json: got origin %q size %d, want glibc and a size", libc.Origin, libc.Size)
				}
				md := d.Metadata
				if md.OS != "linux" || md.Arch != "amd64" || md.LayerCount != 1 || md.Size != res.Metadata.Size || d.Version != res.Digest {
					t.Errorf("image metadata from syft-json: got %+v version %q", md, d.Version)
				}
			}
		})
	}
}

func TestConvertSBOMErrors(t *testing.T) {
	res := catalogDpkgOnly(t)
	tests := []struct {
		name    string
		doc     []byte
		format  string
		wantErr []string
	}{
		{name: "unknown format", doc: res.SBOM, format: "cyclonedx-xml", wantErr: []string{`"cyclonedx-xml"`, "syft-json, cyclonedx-json, spdx-json"}},
		{name: "not syft-json", doc: []byte(`{"bomFormat":"CycloneDX"}`), format: FormatSPDXJSON, wantErr: []string{"decoding syft-json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConvertSBOM(tt.doc, tt.format)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeSBOMErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{name: "garbage", doc: "this is not an SBOM\x00\x01"},
		{name: "empty", doc: ""},
		{name: "other JSON", doc: `{"hello": "world"}`},
		{name: "truncated cyclonedx", doc: `{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [`},
		{name: "purl list", doc: "pkg:npm/lodash@4.17.15\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSBOM(strings.NewReader(tt.doc))
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), "accepted: "+strings.Join(InputFormats, ", ")) {
				t.Errorf("error %q does not list the accepted formats", err)
			}
		})
	}
}

// TestDecodeSBOMOtherFormats decodes the formats an upload may use that
// ConvertSBOM does not write.
func TestDecodeSBOMOtherFormats(t *testing.T) {
	res := catalogDpkgOnly(t)
	s, _, _, err := syftjson.NewFormatDecoder().Decode(bytes.NewReader(res.SBOM))
	if err != nil {
		t.Fatalf("decoding syft-json: %v", err)
	}
	cdxXML, err := cyclonedxxml.NewFormatEncoderWithConfig(cyclonedxxml.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	spdxTV, err := spdxtagvalue.NewFormatEncoderWithConfig(spdxtagvalue.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		encoder sbom.FormatEncoder
	}{
		{name: "cyclonedx-xml", encoder: cdxXML},
		{name: "spdx-tag-value", encoder: spdxTV},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.encoder.Encode(&buf, *s); err != nil {
				t.Fatalf("encoding: %v", err)
			}
			d, err := DecodeSBOM(&buf)
			if err != nil {
				t.Fatalf("DecodeSBOM: %v", err)
			}
			if d.Format != tt.name {
				t.Errorf("format: got %q, want %q", d.Format, tt.name)
			}
			if got, want := nameVersions(d.Packages), nameVersions(res.Packages); !slices.Equal(got, want) {
				t.Errorf("packages differ: got %d, want %d", len(got), len(want))
			}
		})
	}
}

// BenchmarkDecodeSBOM decodes the syft-json SBOM of bullseye-minbase (its
// packages, without the file list, as BenchmarkSubmitSBOM posts them): the
// most of a POST /v1/sboms. Its encoding as syft-json, which runs beside
// the matching, is not timed.
//
//	go test ./internal/catalog -run '^$' -bench BenchmarkDecodeSBOM
func BenchmarkDecodeSBOM(b *testing.B) {
	res, err := Catalog(context.Background(), layoutFromArchive(b, "bullseye-minbase.docker.tar"), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(res.SBOM, &top); err != nil {
		b.Fatal(err)
	}
	delete(top, "files")
	doc, err := json.Marshal(top)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := DecodeSBOM(bytes.NewReader(doc)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(res.Packages)), "packages") // after the loop, which resets metrics
}
