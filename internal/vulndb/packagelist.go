package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/syft/syft/artifact"
	"github.com/anchore/syft/syft/cpe"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format/syftjson"
	syftPkg "github.com/anchore/syft/syft/pkg"
	"github.com/anchore/syft/syft/sbom"

	"github.com/buildgate/buildgate"
)

// A package list is what Match reads from an SBOM, kept compactly: the
// packages grype matches, as its SBOM reader made them (overlapping
// packages already removed, related packages as indexes), and the SBOM's
// document without its packages, relationships and files, from which
// grype's reader makes the image's distro and context again. Reading it
// costs a fraction of reading the SBOM, which holds every package's files
// and metadata a matcher never looks at; matching it gives the matches
// matching the SBOM gives (a test proves it on both shared images).
type packageList struct {
	Version int `json:"version"`
	// Context is the syft-json document without packages,
	// relationships and files.
	Context json.RawMessage `json:"context"`
	// Packages are the packages matched, then the packages only related
	// to them (removed for overlapping another): Matched counts the first.
	Packages []listedPackage `json:"packages"`
	Matched  int             `json:"matched"`
}

// packageListVersion is the version of the package list format; a list
// of another is refused (the re-match reads the SBOM then).
const packageListVersion = 1

// listedPackage is a grype package. No field is omitted when empty: an
// empty list and none read back as they were, and hash alike (packageID).
type listedPackage struct {
	ID        pkg.ID                `json:"id"`
	Name      string                `json:"name"`
	Version   string                `json:"version"`
	Locations []file.Location       `json:"locations"`
	Language  syftPkg.Language      `json:"language"`
	Distro    bool                  `json:"distro"` // the image's
	Licenses  []string              `json:"licenses"`
	Type      syftPkg.Type          `json:"type"`
	CPEs      []cpe.CPE             `json:"cpes"`
	PURL      string                `json:"purl"`
	Upstreams []pkg.UpstreamPackage `json:"upstreams"`
	// MetadataType names the Go type of Metadata (listedMetadata).
	MetadataType string          `json:"metadataType"`
	Metadata     json.RawMessage `json:"metadata"`
	// Symbols are a Go binary's, which GolangBinMetadata's JSON leaves out.
	Symbols     map[string][]string                 `json:"symbols"`
	Annotations map[string][]string                 `json:"annotations"`
	Related     map[artifact.RelationshipType][]int `json:"related"`
}

// listedMetadata makes each kind of metadata grype's SBOM reader makes
// (grype/pkg dataFromPkg), by the name of its Go type.
var listedMetadata = map[string]func(json.RawMessage) (any, error){
	"pkg.GolangBinMetadata":          decodeMetadata[pkg.GolangBinMetadata],
	"pkg.GolangModMetadata":          decodeMetadata[pkg.GolangModMetadata],
	"pkg.GolangSourceMetadata":       decodeMetadata[pkg.GolangSourceMetadata],
	"pkg.JavaMetadata":               decodeMetadata[pkg.JavaMetadata],
	"*pkg.JavaMetadata":              decodeMetadata[*pkg.JavaMetadata],
	"pkg.JavaVMInstallationMetadata": decodeMetadata[pkg.JavaVMInstallationMetadata],
	"pkg.ApkMetadata":                decodeMetadata[pkg.ApkMetadata],
	"pkg.RpmMetadata":                decodeMetadata[pkg.RpmMetadata],
}

func decodeMetadata[T any](b json.RawMessage) (any, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// errNotListable is returned for an SBOM whose packages a package list
// cannot hold exactly; its re-match reads the SBOM.
var errNotListable = errors.New("the packages cannot be kept as a package list")

// readSBOM reads a syft-json SBOM as grype's CLI does; the document it
// read is what encodePackageList needs.
func readSBOM(doc []byte) ([]pkg.Package, pkg.Context, *sbom.SBOM, error) {
	packages, pkgContext, s, err := pkg.ProvideFromReader(bytes.NewReader(doc), readerConfig())
	if err != nil {
		return nil, pkg.Context{}, nil, fmt.Errorf("reading sbom: %w", err)
	}
	return packages, pkgContext, s, nil
}

// encodePackageList returns the package list of the packages and context
// grype read from the document s, or errNotListable.
func encodePackageList(s *sbom.SBOM, packages []pkg.Package, pkgContext pkg.Context) ([]byte, error) {
	ctxDoc, err := contextDocument(s)
	if err != nil {
		return nil, err
	}
	list := packageList{Version: packageListVersion, Context: ctxDoc, Matched: len(packages)}
	index := map[*pkg.Package]int{}
	var all []*pkg.Package
	for i := range packages {
		index[&packages[i]] = i
		all = append(all, &packages[i])
	}
	// The packages related to those matched but not matched themselves
	// come after them; so do theirs.
	for i := 0; i < len(all); i++ {
		for _, rel := range all[i].RelatedPackages {
			for _, r := range rel {
				if _, ok := index[r]; !ok && r != nil {
					index[r] = len(all)
					all = append(all, r)
				}
			}
		}
	}
	for _, p := range all {
		lp, err := listPackage(p, pkgContext, index)
		if err != nil {
			return nil, err
		}
		list.Packages = append(list.Packages, lp)
	}
	return json.Marshal(list)
}

func listPackage(p *pkg.Package, pkgContext pkg.Context, index map[*pkg.Package]int) (listedPackage, error) {
	if p.Distro != nil && p.Distro != pkgContext.Distro {
		return listedPackage{}, fmt.Errorf("%w: %s has a distro of its own", errNotListable, p.Name)
	}
	lp := listedPackage{
		ID: p.ID, Name: p.Name, Version: p.Version, Locations: p.Locations.ToSlice(), Language: p.Language,
		Distro: p.Distro != nil, Licenses: p.Licenses, Type: p.Type, CPEs: p.CPEs, PURL: p.PURL,
		Upstreams: p.Upstreams, Annotations: p.Annotations,
	}
	if p.Metadata != nil {
		lp.MetadataType = fmt.Sprintf("%T", p.Metadata)
		if listedMetadata[lp.MetadataType] == nil {
			return listedPackage{}, fmt.Errorf("%w: %s has metadata of type %s", errNotListable, p.Name, lp.MetadataType)
		}
		b, err := json.Marshal(p.Metadata)
		if err != nil {
			return listedPackage{}, err
		}
		lp.Metadata = b
		if gm, ok := p.Metadata.(pkg.GolangBinMetadata); ok {
			lp.Symbols = gm.Symbols
		}
	}
	if p.RelatedPackages != nil {
		lp.Related = map[artifact.RelationshipType][]int{}
		for t, rel := range p.RelatedPackages {
			is := make([]int, len(rel))
			for j, r := range rel {
				if r == nil {
					return listedPackage{}, fmt.Errorf("%w: %s has a missing related package", errNotListable, p.Name)
				}
				is[j] = index[r]
			}
			lp.Related[t] = is
		}
	}
	return lp, nil
}

// contextDocument returns the syft-json document of s without packages,
// relationships and files: its source, distro and descriptor.
func contextDocument(s *sbom.SBOM) ([]byte, error) {
	bare := sbom.SBOM{Source: s.Source, Descriptor: s.Descriptor}
	bare.Artifacts.Packages, bare.Artifacts.LinuxDistribution = syftPkg.NewCollection(), s.Artifacts.LinuxDistribution
	var doc bytes.Buffer
	if err := syftjson.NewFormatEncoder().Encode(&doc, bare); err != nil {
		return nil, fmt.Errorf("encoding the package list's context: %w", err)
	}
	return doc.Bytes(), nil
}

// decodePackageList returns the packages and context of a package list,
// as readSBOM returned them.
func decodePackageList(b []byte) ([]pkg.Package, pkg.Context, error) {
	var list packageList
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, pkg.Context{}, fmt.Errorf("reading package list: %w", err)
	}
	if list.Version != packageListVersion {
		return nil, pkg.Context{}, fmt.Errorf("reading package list: version %d, want %d", list.Version, packageListVersion)
	}
	if list.Matched < 0 || list.Matched > len(list.Packages) {
		return nil, pkg.Context{}, fmt.Errorf("reading package list: %d packages matched of %d", list.Matched, len(list.Packages))
	}
	_, pkgContext, _, err := readSBOM(list.Context)
	if err != nil {
		return nil, pkg.Context{}, fmt.Errorf("reading package list: %w", err)
	}
	all := make([]pkg.Package, len(list.Packages))
	for i, lp := range list.Packages {
		p := pkg.Package{
			ID: lp.ID, Name: lp.Name, Version: lp.Version, Locations: file.NewLocationSet(lp.Locations...), Language: lp.Language,
			Licenses: lp.Licenses, Type: lp.Type, CPEs: lp.CPEs, PURL: lp.PURL, Upstreams: lp.Upstreams, Annotations: lp.Annotations,
		}
		if lp.Distro {
			if pkgContext.Distro == nil {
				return nil, pkg.Context{}, fmt.Errorf("reading package list: %s has the image's distro, which has none", lp.Name)
			}
			p.Distro = pkgContext.Distro
		}
		if lp.MetadataType != "" {
			decode := listedMetadata[lp.MetadataType]
			if decode == nil {
				return nil, pkg.Context{}, fmt.Errorf("reading package list: %s has metadata of unknown type %q", lp.Name, lp.MetadataType)
			}
			if p.Metadata, err = decode(lp.Metadata); err != nil {
				return nil, pkg.Context{}, fmt.Errorf("reading package list: metadata of %s: %w", lp.Name, err)
			}
			if gm, ok := p.Metadata.(pkg.GolangBinMetadata); ok {
				gm.Symbols = lp.Symbols
				p.Metadata = gm
			}
		}
		all[i] = p
	}
	for i, lp := range list.Packages {
		if lp.Related == nil {
			continue
		}
		all[i].RelatedPackages = map[artifact.RelationshipType][]*pkg.Package{}
		for t, is := range lp.Related {
			rel := make([]*pkg.Package, len(is))
			for j, k := range is {
				if k < 0 || k >= len(all) {
					return nil, pkg.Context{}, fmt.Errorf("reading package list: %s is related to package %d of %d", lp.Name, k, len(all))
				}
				rel[j] = &all[k]
			}
			all[i].RelatedPackages[t] = rel
		}
	}
	var packages []pkg.Package
	if list.Matched > 0 {
		packages = all[:list.Matched:list.Matched]
	}
	return packages, pkgContext, nil
}

// ListPackages returns the package list of a syft-json SBOM, for
// MatchPackageList; it fails with an error naming what it cannot keep
// for an SBOM whose packages a list cannot hold exactly.
func ListPackages(doc []byte) ([]byte, error) {
	packages, pkgContext, s, err := readSBOM(doc)
	if err != nil {
		return nil, err
	}
	return encodePackageList(s, packages, pkgContext)
}

// MatchPackageList matches the packages of a package list (ListPackages,
// MatchListing) as Match matches the SBOM it was made of.
func (m *Manager) MatchPackageList(ctx context.Context, list []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	h, err := m.acquire()
	if err != nil {
		return nil, buildgate.DBInfo{}, err
	}
	defer h.refs.Done()
	packages, pkgContext, err := decodePackageList(list)
	if err != nil {
		return nil, h.info, err
	}
	return h.match(ctx, packages, pkgContext)
}

// MatchListing matches like Match and returns the SBOM's package list
// too, or no list (and no error) when a list cannot hold its packages.
func (m *Manager) MatchListing(ctx context.Context, doc []byte) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	return m.matchListed(ctx, func() ([]pkg.Package, pkg.Context, *sbom.SBOM, error) { return readSBOM(doc) })
}

// matchListed matches the packages provide gives, with the package list
// of their SBOM: MatchListing's and MatchSBOM's common part.
func (m *Manager) matchListed(ctx context.Context, provide func() ([]pkg.Package, pkg.Context, *sbom.SBOM, error)) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	h, err := m.acquire()
	if err != nil {
		return nil, buildgate.DBInfo{}, nil, err
	}
	defer h.refs.Done()
	packages, pkgContext, s, err := provide()
	if err != nil {
		return nil, h.info, nil, err
	}
	list, err := encodePackageList(s, packages, pkgContext)
	if errors.Is(err, errNotListable) {
		list, err = nil, nil
	}
	if err != nil {
		return nil, h.info, nil, err
	}
	matches, info, err := h.match(ctx, packages, pkgContext)
	return matches, info, list, err
}
