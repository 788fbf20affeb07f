package anchore

import (
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

// vulnTypes are the vulnerability types of /images/{digest}/vuln/{type}.
var vulnTypes = []string{"os", "non-os", "all"}

func (a *API) vulnTypes(c echo.Context) error {
	if _, err := a.image(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, vulnTypes)
}

// vulnerability is one vulnerability of one package, as Anchore reports it.
type vulnerability struct {
	Vuln           string       `json:"vuln"`
	Package        string       `json:"package"`
	PackageName    string       `json:"package_name"`
	PackageVersion string       `json:"package_version"`
	PackageType    string       `json:"package_type"`
	PackagePath    string       `json:"package_path"`
	PackageCPE     string       `json:"package_cpe"`
	Severity       string       `json:"severity"`
	Fix            string       `json:"fix"`
	URL            string       `json:"url"`
	Feed           string       `json:"feed"`
	FeedGroup      string       `json:"feed_group"`
	WillNotFix     bool         `json:"will_not_fix"`
	NVDData        []cvssRecord `json:"nvd_data"`
	VendorData     []cvssRecord `json:"vendor_data"`
}

// cvssRecord holds a vulnerability's CVSS scores from one source; a score
// that is not known is -1, as in Anchore.
type cvssRecord struct {
	ID     string     `json:"id"`
	CVSSv2 cvssScores `json:"cvss_v2"`
	CVSSv3 cvssScores `json:"cvss_v3"`
}

type cvssScores struct {
	BaseScore           float64 `json:"base_score"`
	ExploitabilityScore float64 `json:"exploitability_score"`
	ImpactScore         float64 `json:"impact_score"`
}

var unknownScores = cvssScores{BaseScore: -1, ExploitabilityScore: -1, ImpactScore: -1}

type vulnerabilityList struct {
	ImageDigest       string          `json:"imageDigest"`
	VulnerabilityType string          `json:"vulnerability_type"`
	Vulnerabilities   []vulnerability `json:"vulnerabilities"`
}

// vulnerabilities answers /images/{digest}/vuln/{type}?vendor_only=. With
// vendor_only (the default, as in Anchore) vulnerabilities the distro
// vendor will not fix are left out.
func (a *API) vulnerabilities(c echo.Context) error {
	typ := c.Param("type")
	keep := map[string]func(buildgate.Match) bool{
		"os":     buildgate.Match.IsOS,
		"non-os": func(m buildgate.Match) bool { return !m.IsOS() },
		"all":    func(buildgate.Match) bool { return true },
	}[typ]
	if keep == nil {
		return buildgate.Errorf(buildgate.ENOTFOUND, "vulnerability type (%s) not available (want os, non-os or all)", typ)
	}
	vendorOnly, err := boolParam(c, "vendor_only", true)
	if err != nil {
		return err
	}
	img, an, err := a.analysed(c)
	if err != nil {
		return err
	}
	out := vulnerabilityList{ImageDigest: img.Digest, VulnerabilityType: typ, Vulnerabilities: []vulnerability{}}
	for _, m := range sortedMatches(an.Matches) {
		if !keep(m) || (vendorOnly && m.FixState == buildgate.FixStateWontFix) {
			continue
		}
		out.Vulnerabilities = append(out.Vulnerabilities, toVulnerability(m))
	}
	return c.JSON(http.StatusOK, out)
}

func toVulnerability(m buildgate.Match) vulnerability {
	feed, group := feedOf(m.Namespace)
	v := vulnerability{
		Vuln: m.VulnerabilityID, Package: m.PackageName + "-" + m.PackageVersion,
		PackageName: m.PackageName, PackageVersion: m.PackageVersion, PackageType: packageType(m.PackageType),
		PackagePath: m.PackagePath, PackageCPE: "None", Severity: m.Severity.String(), Fix: "None", URL: "None",
		Feed: feed, FeedGroup: group, WillNotFix: m.FixState == buildgate.FixStateWontFix,
		NVDData: []cvssRecord{}, VendorData: []cvssRecord{},
	}
	if m.IsOS() || v.PackagePath == "" {
		v.PackagePath = "pkgdb"
	}
	if m.FixState == buildgate.FixStateFixed && len(m.FixVersions) > 0 {
		v.Fix = strings.Join(m.FixVersions, ",")
	}
	switch {
	case m.DataSource != "":
		v.URL = m.DataSource
	case len(m.URLs) > 0:
		v.URL = m.URLs[0]
	}
	if rec, ok := cvssOf(m); ok {
		if feed == "github" {
			v.VendorData = append(v.VendorData, rec)
		} else {
			v.NVDData = append(v.NVDData, rec)
		}
	}
	return v
}

// cvssOf gathers a match's CVSS v2 and v3 scores, preferring primary
// scores (NVD's own) to secondary ones.
func cvssOf(m buildgate.Match) (cvssRecord, bool) {
	rec := cvssRecord{ID: m.VulnerabilityID, CVSSv2: unknownScores, CVSSv3: unknownScores}
	if !strings.HasPrefix(m.VulnerabilityID, "CVE-") {
		for _, id := range m.RelatedIDs {
			if strings.HasPrefix(id, "CVE-") {
				rec.ID = id
				break
			}
		}
	}
	var have2, have3, primary2, primary3 bool
	for _, s := range m.CVSS {
		scores := cvssScores{BaseScore: s.BaseScore, ExploitabilityScore: orUnknown(s.ExploitabilityScore), ImpactScore: orUnknown(s.ImpactScore)}
		primary := !strings.EqualFold(s.Type, "Secondary")
		switch {
		case strings.HasPrefix(s.Version, "2"):
			if !have2 || (primary && !primary2) {
				rec.CVSSv2, have2, primary2 = scores, true, primary
			}
		case strings.HasPrefix(s.Version, "3"):
			if !have3 || (primary && !primary3) {
				rec.CVSSv3, have3, primary3 = scores, true, primary
			}
		}
	}
	return rec, have2 || have3
}

func orUnknown(f float64) float64 {
	if f == 0 {
		return -1
	}
	return f
}

// feedOf names Anchore's feed and group for a grype namespace:
// debian:distro:debian:11 is vulnerabilities/debian:11, nvd:cpe is
// nvdv2/nvdv2:cves, github:language:python is github/github:python.
func feedOf(ns string) (feed, group string) {
	parts := strings.Split(ns, ":")
	switch {
	case ns == "":
		return "vulnerabilities", "None"
	case parts[0] == "nvd":
		return "nvdv2", "nvdv2:cves"
	case len(parts) >= 4 && parts[1] == "distro":
		return "vulnerabilities", parts[2] + ":" + parts[3]
	case len(parts) >= 3 && parts[1] == "language":
		return parts[0], parts[0] + ":" + parts[2]
	}
	return "vulnerabilities", ns
}

// packageType names a syft package type as Anchore does.
func packageType(t string) string {
	switch t {
	case "deb":
		return "dpkg"
	case "apk":
		return "APKG"
	case "java-archive", "jenkins-plugin":
		return "java"
	case "go-module":
		return "go"
	}
	return t
}

// contentTypes are the content types of /images/{digest}/content/{type},
// with the syft package types each covers (os and files are special).
var contentTypes = []string{"os", "files", "npm", "gem", "python", "java", "go"}

var contentPackageTypes = map[string][]string{
	"npm":    {"npm"},
	"gem":    {"gem"},
	"python": {"python"},
	"java":   {"java-archive", "jenkins-plugin"},
	"go":     {"go-module"},
}

func (a *API) contentTypes(c echo.Context) error {
	if _, err := a.image(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, contentTypes)
}

type contentList struct {
	ImageDigest string `json:"imageDigest"`
	ContentType string `json:"content_type"`
	Content     []any  `json:"content"`
}

type osPackage struct {
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Size     string   `json:"size"`
	Type     string   `json:"type"`
	Origin   string   `json:"origin"`
	License  string   `json:"license"`
	Licenses []string `json:"licenses"`
}

type langPackage struct {
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Location string   `json:"location"`
	Type     string   `json:"type"`
	Origin   string   `json:"origin"`
	License  string   `json:"license"`
	Licenses []string `json:"licenses"`
}

type javaPackage struct {
	Package               string `json:"package"`
	SpecificationVersion  string `json:"specification-version"`
	ImplementationVersion string `json:"implementation-version"`
	MavenVersion          string `json:"maven-version"`
	Location              string `json:"location"`
	Type                  string `json:"type"`
	Origin                string `json:"origin"`
}

type fileEntry struct {
	Filename string  `json:"filename"`
	Size     int64   `json:"size"`
	Mode     string  `json:"mode"`
	Type     string  `json:"type"`
	LinkDest *string `json:"linkdest"`
	SHA256   *string `json:"sha256"`
}

// content answers /images/{digest}/content/{type}.
func (a *API) content(c echo.Context) error {
	typ := c.Param("type")
	_, known := contentPackageTypes[typ]
	if !known && typ != "os" && typ != "files" {
		return buildgate.Errorf(buildgate.ENOTFOUND, "content type (%s) not available (want one of %s)", typ, strings.Join(contentTypes, ", "))
	}
	img, an, err := a.analysed(c)
	if err != nil {
		return err
	}
	out := contentList{ImageDigest: img.Digest, ContentType: typ, Content: []any{}}
	switch typ {
	case "os":
		for _, p := range an.Packages {
			if p.IsOS() {
				out.Content = append(out.Content, osPackage{
					Package: p.Name, Version: p.Version, Size: strconv.FormatInt(p.Size, 10), Type: packageType(p.Type),
					Origin: orNA(p.Origin), License: licenseText(p.Licenses), Licenses: nonNil(p.Licenses),
				})
			}
		}
	case "files":
		for _, f := range an.Files {
			e := fileEntry{Filename: f.Path, Size: f.Size, Mode: fmt.Sprintf("%05o", f.Mode&0o7777|specialBits(f.Mode)), Type: fileType(f.Type)}
			if f.LinkDest != "" {
				e.LinkDest = ptr(f.LinkDest)
			}
			if f.SHA256 != "" {
				e.SHA256 = ptr(f.SHA256)
			}
			out.Content = append(out.Content, e)
		}
	default:
		want := map[string]bool{}
		for _, t := range contentPackageTypes[typ] {
			want[t] = true
		}
		for _, p := range an.Packages {
			if !want[p.Type] {
				continue
			}
			if typ == "java" {
				out.Content = append(out.Content, javaPackage{
					Package: p.Name, SpecificationVersion: "N/A", ImplementationVersion: orNA(p.Version), MavenVersion: orNA(p.Version),
					Location: p.Path, Type: javaType(p.Path), Origin: orNA(p.Origin),
				})
				continue
			}
			out.Content = append(out.Content, langPackage{
				Package: p.Name, Version: p.Version, Location: p.Path, Type: strings.ToUpper(typ),
				Origin: orNA(p.Origin), License: licenseText(p.Licenses), Licenses: nonNil(p.Licenses),
			})
		}
	}
	return c.JSON(http.StatusOK, out)
}

// specialBits moves os.FileMode's setuid, setgid and sticky bits to their
// chmod places (04000, 02000, 01000).
func specialBits(mode uint32) uint32 {
	const (
		setuid = 1 << 23
		setgid = 1 << 22
		sticky = 1 << 20
	)
	var b uint32
	if mode&setuid != 0 {
		b |= 0o4000
	}
	if mode&setgid != 0 {
		b |= 0o2000
	}
	if mode&sticky != 0 {
		b |= 0o1000
	}
	return b
}

// fileType names a file type as Anchore does.
func fileType(t string) string {
	switch t {
	case "symlink":
		return "slink"
	case "hardlink":
		return "hlink"
	}
	return t
}

func javaType(p string) string {
	switch ext := strings.ToUpper(strings.TrimPrefix(path.Ext(p), ".")); ext {
	case "JAR", "WAR", "EAR", "JPI", "HPI":
		return "JAVA-" + ext
	}
	return "JAVA-JAR"
}

func licenseText(ls []string) string {
	if len(ls) == 0 {
		return "Unknown"
	}
	return strings.Join(ls, " ")
}

func orNA(s string) string {
	if s == "" {
		return "N/A"
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
