package vulndb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/anchore/grype/grype/distro"
	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/syft/syft/artifact"
	syftPkg "github.com/anchore/syft/syft/pkg"
	"github.com/anchore/syft/syft/sbom"

	"github.com/buildgate/buildgate"
)

// MatchSBOM matches the packages of an SBOM syft decoded from a syft-json
// document as Match matches that document, without reading it again, and
// returns its package list too (nil when a list cannot hold its packages),
// as MatchListing does. Of an SBOM decoded from another format it matches
// what MatchListing matches in the syft-json document syft encodes it to.
// Tests prove both on the shared images.
func (m *Manager) MatchSBOM(ctx context.Context, s *sbom.SBOM) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	return m.matchListed(ctx, func() ([]pkg.Package, pkg.Context, *sbom.SBOM, error) {
		packages, pkgContext, err := provideSBOM(s)
		return packages, pkgContext, s, err
	})
}

// MatchDecoded is MatchSBOM for the gate's analysis service, which holds
// the SBOM it decoded as any; decoded must be a *sbom.SBOM.
func (m *Manager) MatchDecoded(ctx context.Context, decoded any) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	s, ok := decoded.(*sbom.SBOM)
	if !ok || s == nil {
		return nil, buildgate.DBInfo{}, nil, fmt.Errorf("matching a decoded SBOM: a %T, not a syft SBOM", decoded)
	}
	return m.MatchSBOM(ctx, s)
}

// provideSBOM returns the packages and context grype's SBOM reader
// (pkg.ProvideFromReader with ProviderConfig) makes of a syft-json
// document syft decoded into s, without the document: grype's steps after
// its decode are private, and are written out here as grype v0.121.2 runs
// them for syft-json (grype/pkg provider.go, syft_sbom_provider.go,
// package.go): no distro override, no exclusions, no PURL enhancers.
func provideSBOM(s *sbom.SBOM) ([]pkg.Package, pkg.Context, error) {
	// The context (the source, the distro with its fix channels) grype
	// reads from the document's source and release alone: it is read from
	// the document without its packages, as a package list's is.
	ctxDoc, err := contextDocument(s)
	if err != nil {
		return nil, pkg.Context{}, err
	}
	_, pkgContext, _, err := readSBOM(ctxDoc)
	if err != nil {
		return nil, pkg.Context{}, err
	}
	packages := pkg.FromCollection(s.Artifacts.Packages, s.Relationships, readerConfig().SynthesisConfig)
	setContextDistro(packages, &pkgContext)
	if pkgContext.Distro != nil {
		for _, p := range packages {
			if p.Distro == nil {
				p.Distro = pkgContext.Distro
			}
		}
	}
	return pkg.FromPtrs(removePackagesByOverlap(packages)), pkgContext, nil
}

// setContextDistro is grype's: without a distro of the image, the one
// all packages that have one share.
func setContextDistro(packages []*pkg.Package, ctx *pkg.Context) {
	if ctx.Distro != nil {
		return
	}
	var single *distro.Distro
	for _, p := range packages {
		if p.Distro == nil {
			continue
		}
		if single == nil {
			single = p.Distro
			continue
		}
		if single.Type != p.Distro.Type || single.Version != p.Distro.Version || single.Codename != p.Distro.Codename {
			return
		}
	}
	if single != nil {
		ctx.Distro = single
	}
}

// removePackagesByOverlap is grype's: it drops a package whose files an
// OS package owns (of a distro with a comprehensive feed), or a binary
// package, of about the same version.
func removePackagesByOverlap(pkgs []*pkg.Package) []*pkg.Package {
	return slices.DeleteFunc(pkgs, func(p *pkg.Package) bool {
		for _, from := range p.RelatedPackages[artifact.OwnershipByFileOverlapRelationship] {
			if excludePackage(p, from) {
				return true
			}
		}
		return false
	})
}

func excludePackage(p, parent *pkg.Package) bool {
	if p == nil || parent == nil || parent.Distro == nil {
		return false
	}
	if !strings.HasPrefix(parent.Version, p.Version) && !strings.HasPrefix(p.Version, parent.Version) {
		return false
	}
	if distroFeedIsComprehensive(parent.Distro) && isOSPackage(parent) && !isOSPackage(p) {
		return true
	}
	return p.Type == syftPkg.BinaryPkg
}

// comprehensiveDistros are grype's distros whose feeds list unfixed
// vulnerabilities too.
var comprehensiveDistros = []distro.Type{
	distro.ArchLinux, distro.Azure, distro.Debian, distro.Mariner, distro.RedHat, distro.SLES, distro.Ubuntu,
}

func distroFeedIsComprehensive(d *distro.Distro) bool {
	if d == nil || d.Type == distro.AmazonLinux {
		return false
	}
	for _, c := range comprehensiveDistros {
		if strings.EqualFold(string(c), d.Name()) {
			return true
		}
		for _, n := range d.IDLike {
			if strings.EqualFold(string(c), n) {
				return true
			}
		}
	}
	return false
}

func isOSPackage(p *pkg.Package) bool {
	switch p.Type {
	case syftPkg.DebPkg, syftPkg.RpmPkg, syftPkg.PortagePkg, syftPkg.AlpmPkg, syftPkg.ApkPkg:
		return true
	}
	return false
}
