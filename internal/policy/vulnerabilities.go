package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

const day = 24 * time.Hour

// days converts a day count to a duration, capped at 100,000 days so a
// huge parameter cannot overflow.
func days(n int64) time.Duration {
	if n > 100000 {
		n = 100000
	}
	return time.Duration(n) * day
}

// compare applies a comparison operator (= != < > <= >=) to a and b.
func compare[T int | int64 | uint32 | float64 | string](a T, op string, b T) bool {
	switch op {
	case "=", "equals":
		return a == b
	case "!=", "not_equals":
		return a != b
	case "<":
		return a < b
	case ">":
		return a > b
	case "<=":
		return a <= b
	case ">=":
		return a >= b
	}
	return false
}

// anchorePackageTypes maps syft package types to the names Anchore shows
// in vulnerability messages.
var anchorePackageTypes = map[string]string{
	"deb":            "dpkg",
	"apk":            "APKG",
	"java-archive":   "java",
	"jenkins-plugin": "java",
	"go-module":      "go",
	"rust-crate":     "rust",
}

func anchorePackageType(t string) string {
	if a, ok := anchorePackageTypes[strings.ToLower(t)]; ok {
		return a
	}
	return t
}

func packageClass(m *buildgate.Match) string {
	if m.IsOS() {
		return "os"
	}
	return "non-os"
}

// vulnLink is the first URL of the match, else a well-known page for CVE
// and GHSA ids, else "N/A".
func vulnLink(m *buildgate.Match) string {
	for _, u := range m.URLs {
		if u != "" {
			return u
		}
	}
	switch {
	case strings.HasPrefix(m.VulnerabilityID, "CVE-"):
		return "https://nvd.nist.gov/vuln/detail/" + m.VulnerabilityID
	case strings.HasPrefix(m.VulnerabilityID, "GHSA-"):
		return "https://github.com/advisories/" + m.VulnerabilityID
	}
	return "N/A"
}

// vulnPackageName is the package as Anchore names it in messages: the
// name for OS packages, the path (the name when unknown) for others.
func vulnPackageName(m *buildgate.Match) string {
	if !m.IsOS() && m.PackagePath != "" {
		return m.PackagePath
	}
	return m.PackageName
}

// fixMessage is "(fixed in: <versions>)", or "" when no fix is known:
// Anchore leaves the part out rather than writing "None".
func fixMessage(m *buildgate.Match) string {
	if m.FixState != buildgate.FixStateFixed || len(m.FixVersions) == 0 {
		return ""
	}
	return "(fixed in: " + strings.Join(m.FixVersions, ", ") + ")"
}

// pyFloat formats a float the way Python's str() does (7.0, 9.8).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// vulnMessage builds Anchore's vulnerability message:
// "HIGH Vulnerability found in os package type (dpkg) - openssl (fixed in: 1.1.1n-0+deb11u5)(CVE-2023-0286 - <url>)".
// extra parts (each "(...)") go between the fix and the id.
func vulnMessage(prefix string, m *buildgate.Match, extra ...string) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + len(m.PackageName) + len(m.PackagePath) + len(m.VulnerabilityID) + 160)
	sb.WriteString(prefix)
	sb.WriteString(" found in ")
	sb.WriteString(packageClass(m))
	sb.WriteString(" package type (")
	sb.WriteString(anchorePackageType(m.PackageType))
	sb.WriteString(") - ")
	sb.WriteString(vulnPackageName(m))
	sb.WriteString(" ")
	sb.WriteString(fixMessage(m))
	for _, e := range extra {
		sb.WriteString(e)
	}
	sb.WriteString("(")
	sb.WriteString(m.VulnerabilityID)
	sb.WriteString(" - ")
	sb.WriteString(vulnLink(m))
	sb.WriteString(")")
	return sb.String()
}

func severityWord(m *buildgate.Match) string { return strings.ToUpper(m.Severity.String()) }

// cvssConstraint is one CVSS threshold of a vulnerabilities/package rule.
type cvssConstraint struct {
	name      string // parameter name, also used in the message
	kind      string // base, exploitability or impact
	vendor    bool
	op        string
	threshold float64
}

// isNVD reports whether a CVSS entry comes from NVD: its Source names NVD
// (grype writes "nvd@nist.gov"), or, when the entry has no Source, the
// match itself came from an NVD namespace. Every other entry (a distro's
// or GitHub's) is the vendor's.
func isNVD(c *buildgate.CVSS, m *buildgate.Match) bool {
	if c.Source != "" {
		return strings.Contains(strings.ToLower(c.Source), "nvd")
	}
	return strings.Contains(strings.ToLower(m.Namespace), "nvd")
}

// bestScore returns the highest score of a kind among the match's CVSS
// entries of the major version and source wanted, and whether there was
// one. Exploitability and impact scores of 0 count as absent.
func bestScore(m *buildgate.Match, kind, version string, vendor bool) (float64, bool) {
	best, found := 0.0, false
	for i := range m.CVSS {
		c := &m.CVSS[i]
		if c.Version != version && !strings.HasPrefix(c.Version, version+".") {
			continue
		}
		if isNVD(c, m) == vendor {
			continue
		}
		var s float64
		switch kind {
		case "base":
			s = c.BaseScore
		case "exploitability":
			s = c.ExploitabilityScore
			if s == 0 {
				continue
			}
		case "impact":
			s = c.ImpactScore
			if s == 0 {
				continue
			}
		}
		if !found || s > best {
			best, found = s, true
		}
	}
	return best, found
}

// evalVulnPackage implements vulnerabilities/package. Every given
// criterion must hold:
//   - package_type: os (buildgate.IsOSType), non-os, or all;
//   - severity compared with severity_comparison;
//   - vendor_only (default true): skip wont-fix matches;
//   - fix_available: the match's fix state is "fixed" exactly when true;
//   - max_days_since_creation: published at least N days before now
//     (as Anchore: a vulnerability exactly N days old fires); an unknown
//     publication date does not fire;
//   - max_days_since_fix (with fix_available=true): the fix is at least N
//     days old; an unknown fix date does not fire;
//   - CVSS thresholds: the highest score of score_version from NVD entries
//     (vendor_* from the others, see isNVD); no score, no fire;
//   - package_path_exclude: skip non-OS packages whose path matches.
func evalVulnPackage(r *compiledRule, x *evalContext) []fired {
	p := r.p
	pkgType := p.str("package_type")
	sevOp := p.str("severity_comparison")
	sev := buildgate.SeverityOf(p.str("severity"))
	vendorOnly := p.boolean("vendor_only")
	fixSet, fixWant := p.has("fix_available"), p.boolean("fix_available")
	pathRe := p.re("package_path_exclude")
	scoreVersion := p.str("score_version")

	var createdBefore, fixedBefore *time.Time
	if p.has("max_days_since_creation") {
		t := x.now.Add(-days(p.integer("max_days_since_creation")))
		createdBefore = &t
	}
	if p.has("max_days_since_fix") && fixSet && fixWant {
		t := x.now.Add(-days(p.integer("max_days_since_fix")))
		fixedBefore = &t
	}
	var cons []cvssConstraint
	for _, vendor := range []bool{false, true} {
		for _, kind := range []string{"base", "exploitability", "impact"} {
			name := "cvss_v3_" + kind + "_score"
			if vendor {
				name = "vendor_" + name
			}
			if p.has(name) {
				cons = append(cons, cvssConstraint{name: name, kind: kind, vendor: vendor, op: p.str(name + "_comparison"), threshold: p.float(name)})
			}
		}
	}

	var out []fired
	ms := x.in.Facts.Matches
matches:
	for i := range ms {
		m := &ms[i]
		isOS := m.IsOS()
		if (pkgType == "os" && !isOS) || (pkgType == "non-os" && isOS) {
			continue
		}
		if !compare(int(m.Severity), sevOp, int(sev)) {
			continue
		}
		if vendorOnly && m.FixState == buildgate.FixStateWontFix {
			continue
		}
		if pathRe != nil && !isOS && pathRe.MatchString(m.PackagePath) {
			continue
		}
		if fixSet && (m.FixState == buildgate.FixStateFixed) != fixWant {
			continue
		}
		var timeParts []string
		if createdBefore != nil {
			if m.PublishedAt == nil || m.PublishedAt.After(*createdBefore) {
				if m.PublishedAt != nil {
					x.changesAt(m.PublishedAt.Add(x.now.Sub(*createdBefore)))
				}
				continue
			}
			timeParts = append(timeParts, "max_days_since_creation="+m.PublishedAt.UTC().Format(time.DateOnly))
		}
		if fixedBefore != nil {
			if m.FixedAt == nil || m.FixedAt.After(*fixedBefore) {
				if m.FixedAt != nil {
					x.changesAt(m.FixedAt.Add(x.now.Sub(*fixedBefore)))
				}
				continue
			}
			timeParts = append(timeParts, "max_days_since_fix="+m.FixedAt.UTC().Format(time.DateOnly))
		}
		var scoreParts, vendorParts []string
		for _, c := range cons {
			s, ok := bestScore(m, c.kind, scoreVersion, c.vendor)
			if !ok || !compare(s, c.op, c.threshold) {
				continue matches
			}
			part := c.name + "=" + pyFloat(s)
			if c.vendor {
				vendorParts = append(vendorParts, part)
			} else {
				scoreParts = append(scoreParts, part)
			}
		}
		var extra []string
		for _, parts := range [][]string{scoreParts, timeParts, vendorParts} {
			if len(parts) > 0 {
				extra = append(extra, "("+strings.Join(parts, " ")+")")
			}
		}
		out = append(out, fired{
			id:    vulnTriggerID(m),
			msg:   vulnMessage(severityWord(m)+" Vulnerability", m, extra...),
			match: m,
		})
	}
	return out
}

// evalStaleFeed implements vulnerabilities/stale_feed_data: it fires when
// the DB was built more than max_days_since_sync days before now, or its
// build time is unknown (as Anchore does without a sync date).
func evalStaleFeed(r *compiledRule, x *evalContext) []fired {
	n := r.p.integer("max_days_since_sync")
	built := x.in.DB.Built
	if !built.IsZero() && x.now.Sub(built) <= days(n) {
		x.changesAt(built.Add(days(n) + 1))
		return nil
	}
	return []fired{{msg: fmt.Sprintf("The vulnerability feed for this image distro is older than MAXAGE (%d) days", n)}}
}

// evalDataUnavailable implements vulnerabilities/vulnerability_data_unavailable:
// it fires when the DB has no records for the image's distro
// ("name:version" among DB.Distros, trying the version and its shorter
// dotted prefixes, 3.18.4 then 3.18 then 3, and the distros the image is
// like). An image with no detected distro fires only if it has OS
// packages: a scratch or distroless image with none has nothing the
// distro data would cover.
func evalDataUnavailable(_ *compiledRule, x *evalContext) []fired {
	md := x.in.Facts.Metadata
	ns := strings.ToLower(md.Distro)
	if md.DistroVersion != "" {
		ns += ":" + md.DistroVersion
	}
	if md.Distro == "" {
		hasOS := slices.ContainsFunc(x.in.Facts.Packages, func(p buildgate.Package) bool { return p.IsOS() })
		if !hasOS {
			return nil
		}
		ns = "unknown"
	} else if haveDistroData(x.in.DB.Distros, append([]string{md.Distro}, md.LikeDistro...), md.DistroVersion) {
		return nil
	}
	return []fired{{msg: fmt.Sprintf("Distro-specific feed data not found for distro namespace: %s. Cannot perform CVE scan OS/distro packages", ns)}}
}

func haveDistroData(have []string, names []string, version string) bool {
	set := make(map[string]bool, len(have))
	for _, d := range have {
		set[strings.ToLower(strings.TrimSpace(d))] = true
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		v := strings.ToLower(version)
		for {
			if set[n+":"+v] {
				return true
			}
			i := strings.LastIndex(v, ".")
			if i < 0 {
				break
			}
			v = v[:i]
		}
		if version == "" && set[n] {
			return true
		}
	}
	return false
}

// evalVulnBlacklist implements vulnerabilities/blacklist. Unlike Anchore,
// which fires once listing every id found, it fires once per match (with
// the <vulnerability>+<package> trigger id) so matches can be allowlisted
// one by one. Ids match the vulnerability's id or its aliases, in any case.
func evalVulnBlacklist(r *compiledRule, x *evalContext) []fired {
	ids := map[string]string{}
	for _, id := range r.p.list("vulnerability_ids") {
		ids[strings.ToUpper(id)] = id
	}
	vendorOnly := r.p.boolean("vendor_only")
	var out []fired
	ms := x.in.Facts.Matches
	for i := range ms {
		m := &ms[i]
		if vendorOnly && m.FixState == buildgate.FixStateWontFix {
			continue
		}
		listed, ok := ids[strings.ToUpper(m.VulnerabilityID)]
		for _, rel := range m.RelatedIDs {
			if !ok {
				listed, ok = ids[strings.ToUpper(rel)]
			}
		}
		if !ok {
			continue
		}
		out = append(out, fired{id: vulnTriggerID(m), msg: vulnMessage("Blacklisted vulnerability "+listed, m), match: m})
	}
	return out
}

// evalKnownExploited implements vulnerabilities/known_exploited: once per
// match in CISA KEV, optionally only when a fix is (or is not) available.
func evalKnownExploited(r *compiledRule, x *evalContext) []fired {
	fixSet, fixWant := r.p.has("fix_available"), r.p.boolean("fix_available")
	var out []fired
	ms := x.in.Facts.Matches
	for i := range ms {
		m := &ms[i]
		if !m.KEV || (fixSet && (m.FixState == buildgate.FixStateFixed) != fixWant) {
			continue
		}
		out = append(out, fired{id: vulnTriggerID(m), msg: vulnMessage(severityWord(m)+" Known exploited vulnerability (CISA KEV)", m), match: m})
	}
	return out
}

// evalEPSS implements vulnerabilities/epss: once per match whose EPSS
// probability compares true with threshold; matches without EPSS never fire.
func evalEPSS(r *compiledRule, x *evalContext) []fired {
	op, th := r.p.str("comparison"), r.p.float("threshold")
	thText := strconv.FormatFloat(th, 'f', -1, 64)
	var out []fired
	ms := x.in.Facts.Matches
	for i := range ms {
		m := &ms[i]
		if m.EPSS == nil || !compare(*m.EPSS, op, th) {
			continue
		}
		prefix := severityWord(m) + " Vulnerability with EPSS probability " + strconv.FormatFloat(*m.EPSS, 'f', -1, 64) + " (" + op + " " + thText + ")"
		out = append(out, fired{id: vulnTriggerID(m), msg: vulnMessage(prefix, m), match: m})
	}
	return out
}
