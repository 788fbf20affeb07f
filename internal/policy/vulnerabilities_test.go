package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
)

func TestVulnerabilitiesPackage(t *testing.T) {
	high := vm("CVE-1", "openssl", "deb", buildgate.SeverityHigh)
	medium := vm("CVE-2", "zlib", "deb", buildgate.SeverityMedium)
	low := vm("CVE-3", "lodash", "npm", buildgate.SeverityLow)
	critical := vm("CVE-4", "log4j", "java-archive", buildgate.SeverityCritical)
	unknown := vm("CVE-5", "bash", "deb", buildgate.SeverityUnknown)
	all := withMatches(high, medium, low, critical, unknown)

	nvd := func(base, expl, impact float64) buildgate.CVSS {
		return buildgate.CVSS{Version: "3.1", Source: "nvd@nist.gov", Type: "Primary", BaseScore: base, ExploitabilityScore: expl, ImpactScore: impact}
	}
	vendor := func(base float64) buildgate.CVSS {
		return buildgate.CVSS{Version: "3.1", Source: "security@debian.org", Type: "Secondary", BaseScore: base}
	}

	tests := []struct {
		name   string
		params []Param
		in     Input
		want   []string // trigger ids, in order
	}{
		{"default fires above unknown", kv("package_type", "all"), all,
			[]string{"CVE-1+openssl", "CVE-2+zlib", "CVE-3+/app/lib/lodash.jar", "CVE-4+/app/lib/log4j.jar"}},
		{"severity > medium", kv("package_type", "all", "severity_comparison", ">", "severity", "medium"), all,
			[]string{"CVE-1+openssl", "CVE-4+/app/lib/log4j.jar"}},
		{"severity >= medium", kv("package_type", "all", "severity_comparison", ">=", "severity", "medium"), all,
			[]string{"CVE-1+openssl", "CVE-2+zlib", "CVE-4+/app/lib/log4j.jar"}},
		{"severity = medium", kv("package_type", "all", "severity_comparison", "=", "severity", "MEDIUM"), all,
			[]string{"CVE-2+zlib"}},
		{"severity != medium", kv("package_type", "all", "severity_comparison", "!=", "severity", "medium"), all,
			[]string{"CVE-1+openssl", "CVE-3+/app/lib/lodash.jar", "CVE-4+/app/lib/log4j.jar", "CVE-5+bash"}},
		{"severity < medium", kv("package_type", "all", "severity_comparison", "<", "severity", "medium"), all,
			[]string{"CVE-3+/app/lib/lodash.jar", "CVE-5+bash"}},
		{"severity <= low", kv("package_type", "all", "severity_comparison", "<=", "severity", "low"), all,
			[]string{"CVE-3+/app/lib/lodash.jar", "CVE-5+bash"}},
		{"severity > critical never", kv("package_type", "all", "severity", "critical"), all, []string{}},
		{"os only", kv("package_type", "os", "severity_comparison", ">=", "severity", "unknown"), all,
			[]string{"CVE-1+openssl", "CVE-2+zlib", "CVE-5+bash"}},
		{"non-os only", kv("package_type", "non-os"), all,
			[]string{"CVE-3+/app/lib/lodash.jar", "CVE-4+/app/lib/log4j.jar"}},

		{"fix_available true", kv("package_type", "all", "fix_available", "true"),
			withMatches(vm("CVE-1", "a", "deb", buildgate.SeverityHigh, fixed("2")), vm("CVE-2", "b", "deb", buildgate.SeverityHigh)),
			[]string{"CVE-1+a"}},
		{"fix_available false", kv("package_type", "all", "fix_available", "false"),
			withMatches(vm("CVE-1", "a", "deb", buildgate.SeverityHigh, fixed("2")), vm("CVE-2", "b", "deb", buildgate.SeverityHigh)),
			[]string{"CVE-2+b"}},
		{"fix_available false excludes wont-fix only through vendor_only", kv("package_type", "all", "fix_available", "false", "vendor_only", "false"),
			withMatches(vm("CVE-1", "a", "deb", buildgate.SeverityHigh, wontFix)),
			[]string{"CVE-1+a"}},
		{"vendor_only default skips wont-fix", kv("package_type", "all"),
			withMatches(vm("CVE-1", "a", "deb", buildgate.SeverityHigh, wontFix), vm("CVE-2", "b", "deb", buildgate.SeverityHigh)),
			[]string{"CVE-2+b"}},
		{"vendor_only false keeps wont-fix", kv("package_type", "all", "vendor_only", "false"),
			withMatches(vm("CVE-1", "a", "deb", buildgate.SeverityHigh, wontFix), vm("CVE-2", "b", "deb", buildgate.SeverityHigh)),
			[]string{"CVE-1+a", "CVE-2+b"}},

		{"max_days_since_creation boundary", kv("package_type", "all", "max_days_since_creation", "30"),
			withMatches(
				vm("CVE-old", "a", "deb", buildgate.SeverityHigh, published(daysAgo(31))),
				vm("CVE-exact", "b", "deb", buildgate.SeverityHigh, published(daysAgo(30))),
				vm("CVE-new", "c", "deb", buildgate.SeverityHigh, published(daysAgo(29.9))),
				vm("CVE-undated", "d", "deb", buildgate.SeverityHigh)),
			[]string{"CVE-old+a", "CVE-exact+b"}},
		{"max_days_since_fix boundary", kv("package_type", "all", "fix_available", "true", "max_days_since_fix", "7"),
			withMatches(
				vm("CVE-old", "a", "deb", buildgate.SeverityHigh, fixed("2"), fixedAt(daysAgo(8))),
				vm("CVE-new", "b", "deb", buildgate.SeverityHigh, fixed("2"), fixedAt(daysAgo(6))),
				vm("CVE-undated", "c", "deb", buildgate.SeverityHigh, fixed("2")),
				vm("CVE-nofix", "d", "deb", buildgate.SeverityHigh, fixedAt(daysAgo(100)))),
			[]string{"CVE-old+a"}},
		{"max_days_since_fix ignored without fix_available", kv("package_type", "all", "max_days_since_fix", "7"),
			withMatches(vm("CVE-new", "b", "deb", buildgate.SeverityHigh, fixed("2"), fixedAt(daysAgo(1)))),
			[]string{"CVE-new+b"}},

		{"cvss base >= default comparison", kv("package_type", "all", "cvss_v3_base_score", "7.5"),
			withMatches(
				vm("CVE-hi", "a", "deb", buildgate.SeverityLow, cvss(nvd(7.5, 3.9, 3.6))),
				vm("CVE-lo", "b", "deb", buildgate.SeverityLow, cvss(nvd(7.4, 3.9, 3.6))),
				vm("CVE-none", "c", "deb", buildgate.SeverityLow)),
			[]string{"CVE-hi+a"}},
		{"cvss base < missing score does not fire", kv("package_type", "all", "cvss_v3_base_score", "5", "cvss_v3_base_score_comparison", "<"),
			withMatches(
				vm("CVE-lo", "a", "deb", buildgate.SeverityLow, cvss(nvd(4.0, 1, 1))),
				vm("CVE-none", "b", "deb", buildgate.SeverityLow)),
			[]string{"CVE-lo+a"}},
		{"cvss takes the highest nvd score", kv("package_type", "all", "cvss_v3_base_score", "9"),
			withMatches(vm("CVE-x", "a", "deb", buildgate.SeverityLow, cvss(nvd(5, 1, 1), nvd(9.8, 1, 1), vendor(2)))),
			[]string{"CVE-x+a"}},
		{"cvss ignores vendor scores", kv("package_type", "all", "cvss_v3_base_score", "9"),
			withMatches(vm("CVE-x", "a", "deb", buildgate.SeverityLow, cvss(vendor(9.8)))),
			[]string{}},
		{"cvss ignores v2 scores", kv("package_type", "all", "cvss_v3_base_score", "9"),
			withMatches(vm("CVE-x", "a", "deb", buildgate.SeverityLow, cvss(buildgate.CVSS{Version: "2.0", Source: "nvd@nist.gov", BaseScore: 10}))),
			[]string{}},
		{"score_version 2", kv("package_type", "all", "score_version", "2", "cvss_v3_base_score", "9"),
			withMatches(vm("CVE-x", "a", "deb", buildgate.SeverityLow, cvss(buildgate.CVSS{Version: "2.0", Source: "nvd@nist.gov", BaseScore: 10}))),
			[]string{"CVE-x+a"}},
		{"cvss exploitability and impact", kv("package_type", "all", "cvss_v3_exploitability_score", "3", "cvss_v3_impact_score", "5", "cvss_v3_impact_score_comparison", ">"),
			withMatches(
				vm("CVE-both", "a", "deb", buildgate.SeverityLow, cvss(nvd(9, 3.9, 5.9))),
				vm("CVE-impact-eq", "b", "deb", buildgate.SeverityLow, cvss(nvd(9, 3.9, 5))),
				vm("CVE-expl-lo", "c", "deb", buildgate.SeverityLow, cvss(nvd(9, 2.8, 5.9)))),
			[]string{"CVE-both+a"}},
		{"vendor cvss", kv("package_type", "all", "vendor_cvss_v3_base_score", "7"),
			withMatches(
				vm("CVE-v", "a", "deb", buildgate.SeverityLow, cvss(vendor(7.1))),
				vm("CVE-nvd", "b", "deb", buildgate.SeverityLow, cvss(nvd(9, 1, 1)))),
			[]string{"CVE-v+a"}},
		{"cvss entry without source counts as nvd for an nvd match", kv("package_type", "all", "cvss_v3_base_score", "7"),
			withMatches(
				vm("CVE-n", "a", "npm", buildgate.SeverityLow, cvss(buildgate.CVSS{Version: "3.1", BaseScore: 8}), func(m *buildgate.Match) { m.Namespace = "nvd:cpe" }),
				vm("CVE-d", "b", "deb", buildgate.SeverityLow, cvss(buildgate.CVSS{Version: "3.1", BaseScore: 8}), func(m *buildgate.Match) { m.Namespace = "debian:distro:debian:12" })),
			[]string{"CVE-n+/app/lib/a.jar"}},

		{"package_path_exclude skips non-os", kv("package_type", "all", "package_path_exclude", `.*test.*\.jar`),
			withMatches(
				vm("CVE-1", "junit", "java-archive", buildgate.SeverityHigh, func(m *buildgate.Match) { m.PackagePath = "/app/lib/test/junit.jar" }),
				vm("CVE-2", "spring", "java-archive", buildgate.SeverityHigh),
				vm("CVE-3", "test", "deb", buildgate.SeverityHigh, func(m *buildgate.Match) { m.PackagePath = "/var/lib/dpkg/test.jar" })),
			[]string{"CVE-2+/app/lib/spring.jar", "CVE-3+test"}},
		{"package_path_exclude anchors at start", kv("package_type", "all", "package_path_exclude", `test`),
			withMatches(vm("CVE-1", "junit", "java-archive", buildgate.SeverityHigh, func(m *buildgate.Match) { m.PackagePath = "/app/test/junit.jar" })),
			[]string{"CVE-1+/app/test/junit.jar"}},
		{"non-os without path uses name", kv("package_type", "all"),
			withMatches(vm("CVE-1", "golang.org/x/net", "go-module", buildgate.SeverityHigh, func(m *buildgate.Match) { m.PackagePath = "" })),
			[]string{"CVE-1+golang.org/x/net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := triggerIDs(fire(t, "vulnerabilities", "package", tt.params, tt.in))
			if !slices.Equal(got, tt.want) {
				t.Errorf("trigger ids = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVulnerabilityMessages(t *testing.T) {
	tests := []struct {
		name   string
		params []Param
		m      buildgate.Match
		want   string
	}{
		{"os with fix", kv("package_type", "all"),
			buildgate.Match{VulnerabilityID: "CVE-2023-0286", Severity: buildgate.SeverityHigh, PackageName: "openssl", PackageType: "deb",
				FixState: buildgate.FixStateFixed, FixVersions: []string{"1.1.1n-0+deb11u5"}, URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2023-0286"}},
			"HIGH Vulnerability found in os package type (dpkg) - openssl (fixed in: 1.1.1n-0+deb11u5)(CVE-2023-0286 - https://security-tracker.debian.org/tracker/CVE-2023-0286)"},
		{"os without fix leaves the fix out, as Anchore", kv("package_type", "all"),
			buildgate.Match{VulnerabilityID: "CVE-2019-5435", Severity: buildgate.SeverityMedium, PackageName: "curl", PackageType: "apk",
				FixState: buildgate.FixStateNotFixed, URLs: []string{"http://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2019-5435"}},
			"MEDIUM Vulnerability found in os package type (APKG) - curl (CVE-2019-5435 - http://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2019-5435)"},
		{"non-os names the path; no url falls back to nvd", kv("package_type", "all"),
			buildgate.Match{VulnerabilityID: "CVE-2021-44228", Severity: buildgate.SeverityCritical, PackageName: "log4j-core", PackageType: "java-archive",
				PackagePath: "/app/log4j-core-2.14.jar", FixState: buildgate.FixStateFixed, FixVersions: []string{"2.15.0", "2.12.2"}},
			"CRITICAL Vulnerability found in non-os package type (java) - /app/log4j-core-2.14.jar (fixed in: 2.15.0, 2.12.2)(CVE-2021-44228 - https://nvd.nist.gov/vuln/detail/CVE-2021-44228)"},
		{"scores in message", kv("package_type", "all", "cvss_v3_base_score", "7"),
			buildgate.Match{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh, PackageName: "a", PackageType: "rpm", URLs: []string{"u"},
				CVSS: []buildgate.CVSS{{Version: "3.1", Source: "nvd@nist.gov", BaseScore: 8}}},
			"HIGH Vulnerability found in os package type (rpm) - a (cvss_v3_base_score=8.0)(CVE-1 - u)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := fire(t, "vulnerabilities", "package", tt.params, withMatches(tt.m))
			if len(fs) != 1 || fs[0].Message != tt.want {
				t.Fatalf("messages = %q, want %q", messages(fs), tt.want)
			}
			if fs[0].Vulnerability == nil || fs[0].Vulnerability.VulnerabilityID != tt.m.VulnerabilityID {
				t.Errorf("finding does not carry its vulnerability: %+v", fs[0].Vulnerability)
			}
		})
	}
}

func TestFindingCarriesPackage(t *testing.T) {
	in := withMatches(vm("CVE-1", "openssl", "deb", buildgate.SeverityHigh, func(m *buildgate.Match) { m.PackageID = "pkg-1" }))
	in.Facts.Packages = []buildgate.Package{{ID: "pkg-1", Name: "openssl", Version: "1.0", Type: "deb", Licenses: []string{"OpenSSL"}}}
	fs := fire(t, "vulnerabilities", "package", kv("package_type", "all"), in)
	if len(fs) != 1 || fs[0].Package == nil || fs[0].Package.Licenses[0] != "OpenSSL" {
		t.Fatalf("finding package = %+v", fs)
	}
}

func TestStaleFeedData(t *testing.T) {
	tests := []struct {
		name  string
		built time.Time
		want  int
	}{
		{"fresh", *daysAgo(1), 0},
		{"exactly at the limit", *daysAgo(2), 0},
		{"just over", daysAgo(2).Add(-time.Second), 1},
		{"old", *daysAgo(30), 1},
		{"unknown build time", time.Time{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := withMatches()
			in.DB.Built = tt.built
			fs := fire(t, "vulnerabilities", "stale_feed_data", kv("max_days_since_sync", "2"), in)
			if len(fs) != tt.want {
				t.Fatalf("findings = %q, want %d", messages(fs), tt.want)
			}
			if tt.want == 1 {
				// Anchore's hash id for this message, seen in the wild.
				if fs[0].TriggerID != "deb3f1afb4ea0ddf587e6c62c341c6fa" {
					t.Errorf("trigger id = %s", fs[0].TriggerID)
				}
			}
		})
	}
}

func TestVulnerabilityDataUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		md      buildgate.Metadata
		pkgs    []buildgate.Package
		distros []string
		want    string
	}{
		{"covered", buildgate.Metadata{Distro: "debian", DistroVersion: "12"}, nil, []string{"debian:12", "alpine:3.18"}, ""},
		{"covered by shorter version", buildgate.Metadata{Distro: "alpine", DistroVersion: "3.18.4"}, nil, []string{"alpine:3.18"}, ""},
		{"covered case-insensitively", buildgate.Metadata{Distro: "Ubuntu", DistroVersion: "22.04"}, nil, []string{"ubuntu:22.04"}, ""},
		{"covered through like distro", buildgate.Metadata{Distro: "rocky", DistroVersion: "9.3", LikeDistro: []string{"rhel", "centos"}}, nil, []string{"rhel:9"}, ""},
		{"not covered", buildgate.Metadata{Distro: "debian", DistroVersion: "13"}, nil, []string{"debian:12"},
			"Distro-specific feed data not found for distro namespace: debian:13. Cannot perform CVE scan OS/distro packages"},
		{"db lists nothing", buildgate.Metadata{Distro: "debian", DistroVersion: "12"}, nil, nil,
			"Distro-specific feed data not found for distro namespace: debian:12. Cannot perform CVE scan OS/distro packages"},
		{"no distro, no os packages", buildgate.Metadata{}, []buildgate.Package{{Name: "x", Type: "go-module"}}, []string{"debian:12"}, ""},
		{"no distro but os packages", buildgate.Metadata{}, []buildgate.Package{{Name: "x", Type: "deb"}}, []string{"debian:12"},
			"Distro-specific feed data not found for distro namespace: unknown. Cannot perform CVE scan OS/distro packages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Facts: buildgate.Facts{Metadata: tt.md, Packages: tt.pkgs}, DB: buildgate.DBInfo{Distros: tt.distros}}
			got := messages(fire(t, "vulnerabilities", "vulnerability_data_unavailable", nil, in))
			want := []string{}
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("messages = %q, want %q", got, want)
			}
		})
	}
}

func TestVulnerabilityBlacklist(t *testing.T) {
	in := withMatches(
		vm("CVE-2021-44228", "log4j-core", "java-archive", buildgate.SeverityCritical),
		vm("GHSA-jfh8-c2jp-5v3q", "log4j-api", "java-archive", buildgate.SeverityCritical, func(m *buildgate.Match) { m.RelatedIDs = []string{"CVE-2021-44228"} }),
		vm("CVE-2014-0160", "openssl", "deb", buildgate.SeverityHigh, wontFix),
		vm("CVE-9999-0001", "other", "deb", buildgate.SeverityHigh),
	)
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"by id and alias", kv("vulnerability_ids", "cve-2021-44228"),
			[]string{"CVE-2021-44228+/app/lib/log4j-core.jar", "GHSA-jfh8-c2jp-5v3q+/app/lib/log4j-api.jar"}},
		{"vendor_only skips wont-fix", kv("vulnerability_ids", "CVE-2014-0160, CVE-0000-0000"), []string{}},
		{"vendor_only false", kv("vulnerability_ids", "CVE-2014-0160", "vendor_only", "false"), []string{"CVE-2014-0160+openssl"}},
		{"nothing listed found", kv("vulnerability_ids", "CVE-1999-0001"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := triggerIDs(fire(t, "vulnerabilities", "blacklist", tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("trigger ids = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKnownExploited(t *testing.T) {
	kev := func(m *buildgate.Match) { m.KEV = true }
	in := withMatches(
		vm("CVE-1", "a", "deb", buildgate.SeverityHigh, kev, fixed("2")),
		vm("CVE-2", "b", "deb", buildgate.SeverityLow, kev),
		vm("CVE-3", "c", "deb", buildgate.SeverityCritical),
	)
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"all kev", nil, []string{"CVE-1+a", "CVE-2+b"}},
		{"kev with fix", kv("fix_available", "true"), []string{"CVE-1+a"}},
		{"kev without fix", kv("fix_available", "false"), []string{"CVE-2+b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := triggerIDs(fire(t, "vulnerabilities", "known_exploited", tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("trigger ids = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEPSS(t *testing.T) {
	epss := func(v float64) func(*buildgate.Match) { return func(m *buildgate.Match) { m.EPSS = f64(v) } }
	in := withMatches(
		vm("CVE-hi", "a", "deb", buildgate.SeverityHigh, epss(0.97)),
		vm("CVE-eq", "b", "deb", buildgate.SeverityHigh, epss(0.5)),
		vm("CVE-lo", "c", "deb", buildgate.SeverityHigh, epss(0.01)),
		vm("CVE-none", "d", "deb", buildgate.SeverityHigh),
	)
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"default >=", kv("threshold", "0.5"), []string{"CVE-hi+a", "CVE-eq+b"}},
		{">", kv("threshold", "0.5", "comparison", ">"), []string{"CVE-hi+a"}},
		{"<, missing never fires", kv("threshold", "0.5", "comparison", "<"), []string{"CVE-lo+c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := triggerIDs(fire(t, "vulnerabilities", "epss", tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("trigger ids = %q, want %q", got, tt.want)
			}
		})
	}
}
