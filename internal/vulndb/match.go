package vulndb

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/anchore/grype/grype"
	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/distro"
	"github.com/anchore/grype/grype/match"
	"github.com/anchore/grype/grype/matcher"
	"github.com/anchore/grype/grype/matcher/dotnet"
	"github.com/anchore/grype/grype/matcher/dpkg"
	"github.com/anchore/grype/grype/matcher/golang"
	"github.com/anchore/grype/grype/matcher/hex"
	"github.com/anchore/grype/grype/matcher/java"
	"github.com/anchore/grype/grype/matcher/javascript"
	"github.com/anchore/grype/grype/matcher/python"
	"github.com/anchore/grype/grype/matcher/rpm"
	"github.com/anchore/grype/grype/matcher/ruby"
	"github.com/anchore/grype/grype/matcher/rust"
	"github.com/anchore/grype/grype/matcher/stock"
	"github.com/anchore/grype/grype/pkg"
	"github.com/anchore/grype/grype/version"
	"github.com/anchore/grype/grype/vex"
	"github.com/anchore/grype/grype/vulnerability"
	stereoimage "github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	syftPkg "github.com/anchore/syft/syft/pkg"

	"github.com/buildgate/buildgate"
)

// The functions below mirror grype's CLI defaults (cmd/grype/cli/options
// DefaultGrype, as used by runGrype, getProviderConfig and getMatcherConfig
// in cmd/grype/cli/commands/root.go of grype v0.121.2). They are written out
// rather than read from grype's options package because that package pulls
// in every report presenter (and modules this repository does not carry).

// SBOMConfig returns the syft configuration grype's CLI catalogs images with
// (getProviderConfig): syft's defaults, the CLI's archive search defaults,
// Go binary symbol capture (so govulndb's symbol-level advisories only match
// binaries that use the vulnerable functions) and packages without a version
// dropped. Catalog with it so that Match sees what grype would.
func SBOMConfig() *syft.CreateSBOMConfig {
	search := cataloging.DefaultArchiveSearchConfig() // options.defaultSearch
	cfg := syft.DefaultCreateSBOMConfig()
	cfg.Packages.JavaArchive.IncludeIndexedArchives = search.IncludeIndexedArchives
	cfg.Packages.JavaArchive.IncludeUnindexedArchives = search.IncludeUnindexedArchives
	cfg.Packages.Golang = cfg.Packages.Golang.WithCaptureSymbols(cataloging.SymbolScopeAll)
	cfg.Compliance.MissingVersion = cataloging.ComplianceActionDrop
	return cfg
}

// ProviderConfig returns the package provider configuration of grype's CLI
// defaults (getProviderConfig), with SBOMConfig for cataloging.
func ProviderConfig() pkg.ProviderConfig {
	return pkg.ProviderConfig{
		SyftProviderConfig: pkg.SyftProviderConfig{
			// the CLI's registry options with no flags or config set
			RegistryOptions: &stereoimage.RegistryOptions{Credentials: []stereoimage.RegistryCredentials{}},
			SBOMOptions:     SBOMConfig(),
		},
		SynthesisConfig: pkg.SynthesisConfig{
			GenerateMissingCPEs: false,
			Distro: pkg.DistroConfig{
				// getFixChannels over options.DefaultFixChannels, which are
				// the API defaults
				FixChannels: distro.DefaultFixChannels(),
			},
		},
	}
}

// readerConfig is ProviderConfig, made once: syft's default cataloging
// configuration in it costs milliseconds to build, and reading an SBOM
// neither uses nor changes it.
var readerConfig = sync.OnceValue(ProviderConfig)

// MatcherConfig returns grype's CLI default matcher configuration
// (getMatcherConfig over options.defaultMatchConfig and
// defaultExternalSources: external sources disabled).
func MatcherConfig() matcher.Config {
	return matcher.Config{
		Java: java.MatcherConfig{
			ExternalSearchConfig: java.ExternalSearchConfig{
				SearchMavenUpstream: false,
				MavenBaseURL:        "https://search.maven.org/solrsearch/select",
				MavenRateLimit:      300 * time.Millisecond,
			},
			UseCPEs: false,
		},
		Ruby:       ruby.MatcherConfig{UseCPEs: false},
		Python:     python.MatcherConfig{UseCPEs: false},
		Dotnet:     dotnet.MatcherConfig{UseCPEs: false},
		Javascript: javascript.MatcherConfig{UseCPEs: false},
		Golang: golang.MatcherConfig{
			UseCPEs:                                false,
			AlwaysUseCPEForStdlib:                  false,
			AllowMainModulePseudoVersionComparison: false,
		},
		Rust:  rust.MatcherConfig{UseCPEs: false},
		Hex:   hex.MatcherConfig{UseCPEs: false},
		Stock: stock.MatcherConfig{UseCPEs: true},
		Dpkg: dpkg.MatcherConfig{
			MissingEpochStrategy: version.MissingEpochStrategyZero,
			UseCPEsForEOL:        false,
			UseCPEs:              false,
		},
		Rpm: rpm.MatcherConfig{
			MissingEpochStrategy: version.MissingEpochStrategyAuto,
			UseCPEsForEOL:        false,
			UseCPEs:              false,
		},
	}
}

// IgnoreRules are the ignore rules grype's CLI applies by default: no
// configured ignores, plus the Linux kernel headers rules runGrype adds
// unless --match-upstream-kernel-headers is set.
func IgnoreRules() []match.IgnoreRule {
	return []match.IgnoreRule{
		{Package: match.IgnoreRulePackage{Name: "kernel-headers", UpstreamName: "kernel", Type: string(syftPkg.RpmPkg)}, MatchType: match.ExactIndirectMatch},
		{Package: match.IgnoreRulePackage{Name: "linux(-.*)?-headers-.*", UpstreamName: "linux.*", Type: string(syftPkg.DebPkg)}, MatchType: match.ExactIndirectMatch},
		{Package: match.IgnoreRulePackage{Name: "linux-libc-dev", UpstreamName: "linux", Type: string(syftPkg.DebPkg)}, MatchType: match.ExactIndirectMatch},
		{Package: match.IgnoreRulePackage{Name: "linux-kbuild-.*", UpstreamName: "linux.*", Type: string(syftPkg.DebPkg)}, MatchType: match.ExactIndirectMatch},
	}
}

// NewVulnerabilityMatcher returns the matcher grype's CLI runs by default
// over vp: default matchers with the CLI's matcher config, the default
// ignore rules, no VEX documents, EOL distro tracking on, not normalised by
// CVE. Unlike the CLI it never fails on a severity: the gate's policy
// decides. A matcher keeps per-run state; make one per run.
func NewVulnerabilityMatcher(vp vulnerability.Provider) (*grype.VulnerabilityMatcher, error) {
	ignore := IgnoreRules()
	vexProcessor, err := vex.NewProcessor(vex.ProcessorOptions{IgnoreRules: ignore})
	if err != nil {
		return nil, fmt.Errorf("creating VEX processor: %w", err)
	}
	return &grype.VulnerabilityMatcher{
		VulnerabilityProvider: vp,
		IgnoreRules:           ignore,
		NormalizeByCVE:        false,
		Matchers:              matcher.NewDefaultMatchers(MatcherConfig()),
		VexProcessor:          vexProcessor,
		Alerts:                grype.AlertsConfig{EnableEOLDistroWarnings: true},
	}, nil
}

// Match matches the packages of a syft-json SBOM (as syft's syftjson
// encoder writes it; catalog with SBOMConfig) against the open DB, exactly
// as grype's CLI would, and returns the matches sorted as grype sorts them,
// with the DB they were made with. It is safe for concurrent use and does
// not reopen the DB; a DB swapped in meanwhile is used by later calls.
func (m *Manager) Match(ctx context.Context, sbom []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	h, err := m.acquire()
	if err != nil {
		return nil, buildgate.DBInfo{}, err
	}
	defer h.refs.Done()
	packages, pkgContext, _, err := readSBOM(sbom)
	if err != nil {
		return nil, h.info, err
	}
	return h.match(ctx, packages, pkgContext)
}

// match matches packages grype read from an SBOM against the handle's DB.
func (h *handle) match(ctx context.Context, packages []pkg.Package, pkgContext pkg.Context) ([]buildgate.Match, buildgate.DBInfo, error) {
	vm, err := NewVulnerabilityMatcher(h.provider)
	if err != nil {
		return nil, h.info, err
	}
	vm.Matchers, packages = h.packages.wrap(ctx, vm.Matchers, h.provider, packages)
	remaining, _, err := vm.FindMatchesContext(ctx, packages, pkgContext)
	if err != nil {
		return nil, h.info, fmt.Errorf("matching: %w", err)
	}
	if remaining == nil {
		return nil, h.info, nil
	}
	out := make([]buildgate.Match, 0, remaining.Count())
	for _, gm := range remaining.Sorted() {
		im, err := convertMatch(gm, h.provider)
		if err != nil {
			return nil, h.info, err
		}
		out = append(out, im)
	}
	return out, h.info, nil
}

// convertMatch turns a grype match into the domain's, deriving each field
// as grype's presenter models do (grype/presenter/models).
func convertMatch(gm match.Match, vp vulnerability.Provider) (buildgate.Match, error) {
	v := gm.Vulnerability
	meta := v.Metadata
	if meta == nil {
		var err error
		meta, err = vp.VulnerabilityMetadata(v.Reference) //nolint:staticcheck // as grype's presenter does for records without metadata
		if err != nil {
			return buildgate.Match{}, fmt.Errorf("reading metadata of %s: %w", v.ID, err)
		}
	}
	if meta == nil {
		meta = &vulnerability.Metadata{ID: v.ID, Namespace: v.Namespace}
	}
	p := gm.Package

	out := buildgate.Match{
		VulnerabilityID: v.ID,
		Severity:        buildgate.SeverityOf(meta.Severity),
		Description:     meta.Description,
		Namespace:       v.Namespace,
		DataSource:      meta.DataSource,
		URLs:            meta.URLs,
		PackageID:       string(p.ID),
		PackageName:     p.Name,
		PackageVersion:  p.Version,
		PackageType:     string(p.Type),
		FixState:        fixState(v.Fix.State),
		FixVersions:     sortVersions(v.Fix.Versions, pkg.VersionFormat(p)),
		KEV:             len(meta.KnownExploited) > 0,
	}
	if meta.Namespace != "" {
		out.Namespace = meta.Namespace
	}
	if locs := p.Locations.ToSlice(); len(locs) > 0 {
		out.PackagePath = locs[0].RealPath
		if out.PackagePath == "" {
			out.PackagePath = locs[0].AccessPath
		}
	}

	seen := map[string]bool{v.ID: true}
	for _, r := range v.RelatedVulnerabilities {
		if !seen[r.ID] {
			seen[r.ID] = true
			out.RelatedIDs = append(out.RelatedIDs, r.ID)
		}
	}

	for _, fa := range v.Fix.Available {
		if fa.Date.IsZero() {
			continue
		}
		if out.FixedAt == nil || fa.Date.Before(*out.FixedAt) {
			t := fa.Date.UTC()
			out.FixedAt = &t
		}
	}
	if vh, ok := v.Internal.(*v6.VulnerabilityHandle); ok && vh != nil && vh.PublishedDate != nil && !vh.PublishedDate.IsZero() {
		t := vh.PublishedDate.UTC()
		out.PublishedAt = &t
	}

	for _, c := range meta.Cvss {
		ic := buildgate.CVSS{
			Version:   c.Version,
			Vector:    c.Vector,
			Source:    c.Source,
			Type:      c.Type,
			BaseScore: c.Metrics.BaseScore,
		}
		if c.Metrics.ExploitabilityScore != nil {
			ic.ExploitabilityScore = *c.Metrics.ExploitabilityScore
		}
		if c.Metrics.ImpactScore != nil {
			ic.ImpactScore = *c.Metrics.ImpactScore
		}
		out.CVSS = append(out.CVSS, ic)
	}

	// several CVEs (a GHSA's aliases) may carry EPSS; report the highest
	for _, e := range meta.EPSS {
		if out.EPSS == nil || e.EPSS > *out.EPSS {
			score, pct := e.EPSS, e.Percentile
			out.EPSS, out.EPSSPercentile = &score, &pct
		}
	}
	return out, nil
}

func fixState(s vulnerability.FixState) buildgate.FixState {
	switch s {
	case vulnerability.FixStateFixed:
		return buildgate.FixStateFixed
	case vulnerability.FixStateNotFixed:
		return buildgate.FixStateNotFixed
	case vulnerability.FixStateWontFix:
		return buildgate.FixStateWontFix
	}
	return buildgate.FixStateUnknown
}

// sortVersions orders fix versions ascending in the package's version
// format, unparsable ones last, as grype's presenter does.
func sortVersions(versions []string, format version.Format) []string {
	if len(versions) <= 1 {
		return append([]string(nil), versions...)
	}
	type parsed struct {
		raw string
		v   *version.Version
	}
	var ok []parsed
	var bad []string
	for _, s := range versions {
		v := version.New(s, format)
		if v.Validate() != nil {
			bad = append(bad, s)
			continue
		}
		ok = append(ok, parsed{s, v})
	}
	sort.SliceStable(ok, func(i, j int) bool {
		c, err := ok[i].v.Compare(ok[j].v)
		return err == nil && c < 0
	})
	out := make([]string, 0, len(versions))
	for _, p := range ok {
		out = append(out, p.raw)
	}
	return append(out, bad...)
}
