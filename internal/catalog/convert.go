package catalog

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/cyclonedxxml"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/format/spdxtagvalue"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"

	"github.com/buildgate/buildgate"
)

// SBOM formats ConvertSBOM writes.
const (
	FormatSyftJSON      = "syft-json"
	FormatCycloneDXJSON = "cyclonedx-json"
	FormatSPDXJSON      = "spdx-json"
)

// OutputFormats are the formats ConvertSBOM writes.
var OutputFormats = []string{FormatSyftJSON, FormatCycloneDXJSON, FormatSPDXJSON}

// InputFormats are the formats DecodeSBOM reads.
var InputFormats = []string{"syft-json", "cyclonedx-json", "cyclonedx-xml", "spdx-json", "spdx-tag-value"}

// ConvertSBOM re-encodes a syft-json document in format, one of
// OutputFormats.
func ConvertSBOM(syftJSON []byte, format string) ([]byte, error) {
	enc, err := encoderFor(format)
	if err != nil {
		return nil, err
	}
	s, _, _, err := syftjson.NewFormatDecoder().Decode(bytes.NewReader(syftJSON))
	if err != nil {
		return nil, fmt.Errorf("decoding syft-json: %w", err)
	}
	var buf bytes.Buffer
	if err := enc.Encode(&buf, *s); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", format, err)
	}
	return buf.Bytes(), nil
}

func encoderFor(format string) (sbom.FormatEncoder, error) {
	switch format {
	case FormatSyftJSON:
		return syftjson.NewFormatEncoder(), nil
	case FormatCycloneDXJSON:
		return cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.DefaultEncoderConfig())
	case FormatSPDXJSON:
		return spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	}
	return nil, fmt.Errorf("unknown SBOM format %q (accepted: %s)", format, strings.Join(OutputFormats, ", "))
}

// Decoded is what DecodeSBOM reads from an SBOM besides the document.
type Decoded struct {
	// Format and FormatVersion say what the document was, as syft names
	// them ("cyclonedx-json", "1.6").
	Format        string
	FormatVersion string
	// Name and Version are the SBOM's source name and version, if any.
	Name    string
	Version string
	// Packages are the SBOM's packages, sorted as Catalog sorts them.
	Packages []buildgate.Package
	// Metadata holds the distro and, for a syft-json SBOM of an image,
	// what the image's config and manifest say.
	Metadata buildgate.Metadata
	// SBOM is the document as syft decoded it, for a matcher that
	// matches it without reading the syft-json document again.
	SBOM *sbom.SBOM
}

// inputDecoders reads the formats listed in InputFormats, syft-json first.
var inputDecoders = format.NewDecoderCollection(
	syftjson.NewFormatDecoder(),
	cyclonedxxml.NewFormatDecoder(),
	cyclonedxjson.NewFormatDecoder(),
	spdxtagvalue.NewFormatDecoder(),
	spdxjson.NewFormatDecoder(),
)

// DecodeSBOM reads an SBOM in one of InputFormats, as a user uploads it,
// with its packages and metadata. SyftJSON encodes it as syft-json.
func DecodeSBOM(r io.Reader) (*Decoded, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading SBOM: %w", err)
	}
	accepted := strings.Join(InputFormats, ", ")
	id, version := inputDecoders.Identify(bytes.NewReader(data))
	if id == "" || version == "" {
		return nil, fmt.Errorf("decoding SBOM: not a recognised SBOM document (accepted: %s)", accepted)
	}
	s, _, _, err := inputDecoders.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decoding %s %s SBOM (accepted: %s): %w", id, version, accepted, err)
	}
	if s == nil {
		return nil, fmt.Errorf("decoding %s %s SBOM: empty document", id, version)
	}
	return &Decoded{
		Format:        string(id),
		FormatVersion: version,
		Name:          s.Source.Name,
		Version:       s.Source.Version,
		Packages:      packagesOf(s),
		Metadata:      sbomMetadata(s),
		SBOM:          s,
	}, nil
}

// SyftJSON encodes the decoded SBOM as syft-json, as the gate stores it.
func (d *Decoded) SyftJSON() ([]byte, error) { return encodeSyftJSON(d.SBOM) }

// sbomMetadata describes an image from what an SBOM records about it.
func sbomMetadata(s *sbom.SBOM) buildgate.Metadata {
	var md buildgate.Metadata
	var im *source.ImageMetadata
	switch m := s.Source.Metadata.(type) {
	case source.ImageMetadata:
		im = &m
	case *source.ImageMetadata:
		im = m
	}
	if im != nil {
		var manifest *v1.Manifest
		if len(im.RawManifest) > 0 {
			manifest, _ = v1.ParseManifest(bytes.NewReader(im.RawManifest))
		}
		var cf *v1.ConfigFile
		if len(im.RawConfig) > 0 {
			cf, _ = v1.ParseConfigFile(bytes.NewReader(im.RawConfig))
		}
		md = metadataFrom(manifest, cf)
		if manifest == nil {
			md.LayerCount = len(im.Layers)
			for _, l := range im.Layers {
				md.Size += l.Size
			}
		}
		if cf == nil {
			md.OS, md.Arch = im.OS, im.Architecture
			if len(im.Labels) > 0 {
				md.Labels = im.Labels
			}
		}
	}
	setDistro(&md, s.Artifacts.LinuxDistribution)
	return md
}
