package catalog

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/pkg"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"

	"github.com/buildgate/buildgate"
)

// createSBOM runs syft's catalogers on src.
func createSBOM(ctx context.Context, src source.Source, cfg *syft.CreateSBOMConfig) (*sbom.SBOM, error) {
	ctx, err := withLicenseScanner(ctx, cfg.Licenses)
	if err != nil {
		return nil, err
	}
	s, err := syft.CreateSBOM(ctx, src, cfg)
	if err != nil {
		return nil, fmt.Errorf("cataloging packages: %w", err)
	}
	return s, nil
}

// licenseScanners holds, per license coverage threshold, a context that
// carries syft's license scanner. Building one compiles every known
// license into one DFA, about half a second of CPU that syft would
// otherwise spend on every SBOM; the scanner is safe for concurrent use.
var licenseScanners struct {
	sync.Mutex
	byCoverage map[float64]context.Context
}

// withLicenseScanner returns ctx carrying the shared license scanner for
// cfg, unless ctx already carries one.
func withLicenseScanner(ctx context.Context, cfg cataloging.LicenseConfig) (context.Context, error) {
	licenseScanners.Lock()
	defer licenseScanners.Unlock()
	values, ok := licenseScanners.byCoverage[cfg.Coverage]
	if !ok {
		var err error
		values, err = syft.SetContextLicenseScanner(context.Background(), cfg)
		if err != nil {
			return nil, fmt.Errorf("building license scanner: %w", err)
		}
		if licenseScanners.byCoverage == nil {
			licenseScanners.byCoverage = map[float64]context.Context{}
		}
		licenseScanners.byCoverage[cfg.Coverage] = values
	}
	return valuesFrom{Context: ctx, values: values}, nil
}

// Warm builds what the first catalog would otherwise build: syft's
// license scanner for DefaultSBOMConfig, about a second of CPU.
func Warm() error {
	_, err := withLicenseScanner(context.Background(), DefaultSBOMConfig().Licenses)
	return err
}

// valuesFrom is a context that falls back to the values of another.
type valuesFrom struct {
	context.Context
	values context.Context
}

func (c valuesFrom) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

// encodeSyftJSON encodes s as a syft-json document.
func encodeSyftJSON(s *sbom.SBOM) ([]byte, error) {
	var buf bytes.Buffer
	if err := syftjson.NewFormatEncoder().Encode(&buf, *s); err != nil {
		return nil, fmt.Errorf("encoding syft-json: %w", err)
	}
	return buf.Bytes(), nil
}

// packagesOf converts the SBOM's packages into domain packages, sorted by
// type, name, version, path and ID.
func packagesOf(s *sbom.SBOM) []buildgate.Package {
	if s == nil || s.Artifacts.Packages == nil {
		return nil
	}
	out := make([]buildgate.Package, 0, s.Artifacts.Packages.PackageCount())
	for p := range s.Artifacts.Packages.Enumerate() {
		out = append(out, toPackage(p))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Type != b.Type:
			return a.Type < b.Type
		case a.Name != b.Name:
			return a.Name < b.Name
		case a.Version != b.Version:
			return a.Version < b.Version
		case a.Path != b.Path:
			return a.Path < b.Path
		}
		return a.ID < b.ID
	})
	return out
}

func toPackage(p pkg.Package) buildgate.Package {
	out := buildgate.Package{
		ID:       string(p.ID()),
		Name:     p.Name,
		Version:  p.Version,
		Type:     string(p.Type),
		Language: string(p.Language),
		PURL:     p.PURL,
	}
	if locs := p.Locations.ToSlice(); len(locs) > 0 {
		out.Path = locs[0].RealPath
	}
	seen := map[string]bool{}
	for _, l := range p.Licenses.ToSlice() {
		v := l.Value
		if v == "" {
			v = l.SPDXExpression
		}
		if v != "" && !seen[v] {
			seen[v] = true
			out.Licenses = append(out.Licenses, v)
		}
	}
	out.Origin, out.Size = originAndSize(p.Metadata)
	out.Files = packageFiles(p.Metadata)
	return out
}

// originAndSize returns the source package and the installed size in
// bytes that a package manager's metadata records, when it does.
func originAndSize(metadata any) (string, int64) {
	switch m := metadata.(type) {
	case pkg.DpkgDBEntry:
		return m.Source, int64(m.InstalledSize) * 1024 // dpkg counts KiB
	case *pkg.DpkgDBEntry:
		return m.Source, int64(m.InstalledSize) * 1024
	case pkg.DpkgArchiveEntry:
		return m.Source, int64(m.InstalledSize) * 1024
	case pkg.ApkDBEntry:
		return m.OriginPackage, int64(m.InstalledSize)
	case *pkg.ApkDBEntry:
		return m.OriginPackage, int64(m.InstalledSize)
	case pkg.RpmDBEntry:
		return m.SourceRpm, int64(m.Size)
	case *pkg.RpmDBEntry:
		return m.SourceRpm, int64(m.Size)
	case pkg.AlpmDBEntry:
		return m.BasePackage, int64(m.Size)
	case pkg.PortageEntry:
		return "", int64(m.InstalledSize)
	}
	return "", 0
}
