package policy

import (
	"fmt"
	"testing"

	"github.com/buildgate/buildgate"
)

// benchInput is synthetic facts: 1,000 packages and 500 matches.
func benchInput() Input {
	in := Input{
		Tag: "registry.example.com/team/app:1.0",
		Facts: buildgate.Facts{
			Digest:     "sha256:bench",
			Dockerfile: "FROM debian:12\nRUN apt-get update\nUSER app\nEXPOSE 8080\n",
			Metadata:   buildgate.Metadata{Distro: "debian", DistroVersion: "12", Size: 500_000_000, LayerCount: 9},
		},
		DB: buildgate.DBInfo{Built: *daysAgo(1), Distros: []string{"debian:12"}},
	}
	types := []string{"deb", "npm", "java-archive", "go-module", "python"}
	for i := 0; i < 1000; i++ {
		in.Facts.Packages = append(in.Facts.Packages, buildgate.Package{
			ID: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("pkg-%d", i), Version: fmt.Sprintf("1.%d.0", i%17),
			Type: types[i%len(types)], Path: fmt.Sprintf("/usr/lib/pkg-%d", i), Licenses: []string{"MIT", "GPL-2.0-only"}[i%2 : i%2+1],
		})
	}
	for i := 0; i < 500; i++ {
		p := in.Facts.Packages[i*2]
		m := buildgate.Match{
			VulnerabilityID: fmt.Sprintf("CVE-2024-%05d", i), Severity: buildgate.Severity(i % 6),
			PackageID: p.ID, PackageName: p.Name, PackageVersion: p.Version, PackageType: p.Type,
			FixState: []buildgate.FixState{buildgate.FixStateFixed, buildgate.FixStateNotFixed, buildgate.FixStateWontFix}[i%3],
			URLs:     []string{"https://example.test/" + p.Name},
			CVSS:     []buildgate.CVSS{{Version: "3.1", Source: "nvd@nist.gov", BaseScore: float64(i%100) / 10, ExploitabilityScore: 3.9, ImpactScore: 5.9}},
			KEV:      i%50 == 0, EPSS: f64(float64(i%100) / 100),
			PublishedAt: daysAgo(float64(i % 400)),
		}
		if !p.IsOS() {
			m.PackagePath = p.Path
		}
		if m.FixState == buildgate.FixStateFixed {
			m.FixVersions = []string{"9.9"}
			m.FixedAt = daysAgo(float64(i % 90))
		}
		in.Facts.Matches = append(in.Facts.Matches, m)
	}
	return in
}

// benchBundle is a bundle of 20 rules with a 100-item allowlist.
func benchBundle() *Bundle {
	b := oneRuleBundle(
		Rule{Gate: "vulnerabilities", Trigger: "package", Action: "STOP", Params: kv("package_type", "all", "severity", "high")},
		Rule{Gate: "vulnerabilities", Trigger: "package", Action: "WARN", Params: kv("package_type", "all", "severity_comparison", "=", "severity", "medium")},
		Rule{Gate: "vulnerabilities", Trigger: "package", Action: "WARN", Params: kv("package_type", "non-os", "cvss_v3_base_score", "7", "package_path_exclude", ".*test.*")},
		Rule{Gate: "vulnerabilities", Trigger: "package", Action: "STOP", Params: kv("package_type", "os", "fix_available", "true", "max_days_since_fix", "30")},
		Rule{Gate: "vulnerabilities", Trigger: "package", Action: "WARN", Params: kv("package_type", "all", "max_days_since_creation", "180")},
		Rule{Gate: "vulnerabilities", Trigger: "stale_feed_data", Action: "WARN", Params: kv("max_days_since_sync", "2")},
		Rule{Gate: "vulnerabilities", Trigger: "vulnerability_data_unavailable", Action: "WARN"},
		Rule{Gate: "vulnerabilities", Trigger: "blacklist", Action: "STOP", Params: kv("vulnerability_ids", "CVE-2024-00001,CVE-2024-00499")},
		Rule{Gate: "vulnerabilities", Trigger: "known_exploited", Action: "STOP"},
		Rule{Gate: "vulnerabilities", Trigger: "epss", Action: "WARN", Params: kv("threshold", "0.5")},
		Rule{Gate: "dockerfile", Trigger: "exposed_ports", Action: "STOP", Params: kv("ports", "22", "type", "blacklist")},
		Rule{Gate: "dockerfile", Trigger: "instruction", Action: "WARN", Params: kv("instruction", "HEALTHCHECK", "check", "not_exists")},
		Rule{Gate: "dockerfile", Trigger: "effective_user", Action: "WARN", Params: kv("users", "root", "type", "blacklist")},
		Rule{Gate: "packages", Trigger: "blacklist", Action: "STOP", Params: kv("name", "pkg-999")},
		Rule{Gate: "packages", Trigger: "required_package", Action: "WARN", Params: kv("name", "pkg-1", "version", "1.0", "version_match_type", "minimum")},
		Rule{Gate: "licenses", Trigger: "blacklist_partial_match", Action: "WARN", Params: kv("licenses", "GPL")},
		Rule{Gate: "secret_scans", Trigger: "content_regex_checks", Action: "STOP"},
		Rule{Gate: "files", Trigger: "suid_or_guid_set", Action: "WARN"},
		Rule{Gate: "metadata", Trigger: "attribute", Action: "WARN", Params: kv("attribute", "size", "check", ">", "value", "1GB")},
		Rule{Gate: "always", Trigger: "always", Action: "GO"},
	)
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("CVE-2024-%05d+*", i*3)
		if i%2 == 0 {
			id = fmt.Sprintf("CVE-2024-%05d+pkg-%d", i*3, i*6)
		}
		b.Allowlists[0].Items = append(b.Allowlists[0].Items, AllowlistItem{ID: fmt.Sprintf("i%d", i), Gate: "vulnerabilities", TriggerID: id, ExpiresOn: "2026-12-31T00:00:00Z"})
	}
	b.Allowlists[0].Items = append(b.Allowlists[0].Items, AllowlistItem{ID: "wild", Gate: "vulnerabilities", TriggerID: "CVE-2024-004*+*"})
	return b
}

func BenchmarkEvaluate(b *testing.B) {
	bundle, in := benchBundle(), benchInput()
	if len(bundle.Policies[0].Rules) != 20 {
		b.Fatalf("bundle has %d rules", len(bundle.Policies[0].Rules))
	}
	ev, err := Evaluate(bundle, in, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(ev.Findings)), "findings")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Evaluate(bundle, in, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchmarkFixtureIsValid(t *testing.T) {
	ev, err := Evaluate(benchBundle(), benchInput(), now)
	if err != nil {
		t.Fatal(err)
	}
	if c := ev.Counts(); c.Stop == 0 || c.Warn == 0 || c.Allowlisted == 0 {
		t.Errorf("benchmark fixture exercises too little: %+v", c)
	}
}
