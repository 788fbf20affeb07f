package report

import (
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// now is the time every fixture is evaluated at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(days float64) *time.Time {
	t := now.Add(time.Duration(days * float64(24*time.Hour)))
	return &t
}

func kv(pairs ...string) []policy.Param {
	ps := []policy.Param{}
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, policy.Param{Name: pairs[i], Value: pairs[i+1]})
	}
	return ps
}

var scanner = ScannerInfo{
	Name: "buildgate", Version: "1.4.0", Vendor: "buildgate",
	StartTime: now.Add(-90 * time.Second), EndTime: now,
}

func freshDB() buildgate.DBInfo {
	return buildgate.DBInfo{SchemaVersion: "v6.0.2", Built: now.Add(-20 * time.Hour), Distros: []string{"debian:12", "alpine:3.19"}}
}

// evaluate evaluates a bundle against facts at now, failing the test on
// error.
func evaluate(t testing.TB, b *policy.Bundle, facts buildgate.Facts, tag string, db buildgate.DBInfo) *policy.Evaluation {
	t.Helper()
	if err := b.Validate(); err != nil {
		t.Fatalf("fixture bundle: %v", err)
	}
	ev, err := policy.Evaluate(b, policy.Input{Facts: facts, Tag: tag, DB: db}, now)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return ev
}

// inputFor builds the report input of an evaluation of facts.
func inputFor(ev *policy.Evaluation, facts buildgate.Facts, ref, dockerfilePath string, db buildgate.DBInfo) Input {
	return Input{
		Evaluation: ev,
		Image: ImageInfo{
			Digest: facts.Digest, Ref: ref, Tags: facts.Tags,
			Distro: facts.Metadata.Distro, DistroVersion: facts.Metadata.DistroVersion,
			OS: facts.Metadata.OS, Arch: facts.Metadata.Arch,
			DockerfilePath: dockerfilePath, Dockerfile: facts.Dockerfile,
		},
		Matches:  facts.Matches,
		Packages: facts.Packages,
		GateURL:  "https://gate.example/ui/images/" + facts.Digest,
		DB:       db,
		Scanner:  scanner,
	}
}

func debian12() buildgate.Metadata {
	return buildgate.Metadata{Distro: "debian", DistroVersion: "12", OS: "linux", Arch: "amd64", User: "app"}
}

// cleanCase: the default bundle, a Dockerfile with a HEALTHCHECK and no
// vulnerabilities: GO without findings.
func cleanCase(t testing.TB) Input {
	facts := buildgate.Facts{
		Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		Tags:   []string{"registry.example/team/api:1.0.0"},
		Dockerfile: "FROM debian:12-slim\n" +
			"COPY api /usr/local/bin/api\n" +
			"EXPOSE 8080\n" +
			"HEALTHCHECK CMD [\"/usr/local/bin/api\", \"health\"]\n" +
			"USER app\n" +
			"ENTRYPOINT [\"/usr/local/bin/api\"]\n",
		Metadata: debian12(),
		Packages: []buildgate.Package{{ID: "p1", Name: "base-files", Version: "12.4", Type: "deb", Path: "/var/lib/dpkg/status"}},
	}
	db := freshDB()
	ev := evaluate(t, policy.DefaultBundle(), facts, facts.Tags[0], db)
	return inputFor(ev, facts, facts.Tags[0], "Dockerfile", db)
}

// warnCase: the default bundle, a medium vulnerability, no HEALTHCHECK
// and a DB three days old: WARN.
func warnCase(t testing.TB) Input {
	facts := buildgate.Facts{
		Digest:     "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		Tags:       []string{"registry.example/team/worker:2.3"},
		Dockerfile: "FROM debian:12-slim\nRUN apt-get update && apt-get install -y curl\nUSER app\nCMD [\"worker\"]\n",
		Metadata:   debian12(),
		Packages: []buildgate.Package{
			{ID: "p-curl", Name: "curl", Version: "7.88.1-10+deb12u5", Type: "deb", Path: "/var/lib/dpkg/status"},
		},
		Matches: []buildgate.Match{{
			VulnerabilityID: "CVE-2024-2398", Severity: buildgate.SeverityMedium,
			Description: "When an application tells libcurl it wants to allow HTTP/2 server push, and the amount of received headers for the push request exceeds the maximum allowed limit (1000), libcurl aborts the server push.",
			Namespace:   "debian:distro:debian:12", URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2024-2398"},
			PackageID: "p-curl", PackageName: "curl", PackageVersion: "7.88.1-10+deb12u5", PackageType: "deb",
			FixState: buildgate.FixStateFixed, FixVersions: []string{"7.88.1-10+deb12u6"},
			CVSS: []buildgate.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", Source: "nvd@nist.gov", Type: "Primary", BaseScore: 5.3}},
		}},
	}
	db := freshDB()
	db.Built = now.Add(-3 * 24 * time.Hour)
	ev := evaluate(t, policy.DefaultBundle(), facts, facts.Tags[0], db)
	return inputFor(ev, facts, facts.Tags[0], "./build/worker.Dockerfile", db)
}

// stopDockerfile is the STOP case's multi-stage Dockerfile: the final
// FROM is line 7, EXPOSE line 12, USER line 13.
const stopDockerfile = `# syntax=docker/dockerfile:1
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app ./cmd/app

FROM debian:12-slim
RUN apt-get update && \
    apt-get install -y --no-install-recommends ca-certificates openssl telnet && \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /out/app /usr/local/bin/app
EXPOSE 8080 22
USER root
ENTRYPOINT ["/usr/local/bin/app"]
`

// stopBundle stops on high vulnerabilities, port 22 and root, warns on
// medium and known-exploited vulnerabilities, telnet and a missing
// HEALTHCHECK, and records low ones as GO. Its allowlist waives a GHSA
// until June and has an item for zlib that expired in January.
func stopBundle() *policy.Bundle {
	b := &policy.Bundle{
		ID: "bundle-strict", Name: "Strict production", Version: policy.BundleVersion,
		Policies: []policy.Policy{{
			ID: "pol-prod", Name: "production", Version: policy.BundleVersion,
			Rules: []policy.Rule{
				{ID: "r-vuln-high", Gate: "vulnerabilities", Trigger: "package", Action: "STOP",
					Params: kv("package_type", "all", "severity_comparison", ">=", "severity", "high")},
				{ID: "r-vuln-medium", Gate: "vulnerabilities", Trigger: "package", Action: "WARN",
					Params: kv("package_type", "all", "severity_comparison", "=", "severity", "medium")},
				{ID: "r-vuln-low", Gate: "vulnerabilities", Trigger: "package", Action: "GO",
					Params: kv("package_type", "all", "severity_comparison", "<=", "severity", "low")},
				{ID: "r-kev", Gate: "vulnerabilities", Trigger: "known_exploited", Action: "WARN", Params: kv()},
				{ID: "r-ssh", Gate: "dockerfile", Trigger: "exposed_ports", Action: "STOP",
					Params: kv("ports", "22", "type", "blacklist")},
				{ID: "r-root", Gate: "dockerfile", Trigger: "effective_user", Action: "STOP",
					Params: kv("users", "root", "type", "blacklist")},
				{ID: "r-health", Gate: "dockerfile", Trigger: "instruction", Action: "WARN",
					Params: kv("instruction", "HEALTHCHECK", "check", "not_exists")},
				{ID: "r-telnet", Gate: "packages", Trigger: "blacklist", Action: "WARN",
					Params: kv("name", "telnet")},
			},
		}},
		Allowlists: []policy.Allowlist{{
			ID: "wl-prod", Name: "Production exceptions", Version: policy.BundleVersion,
			Items: []policy.AllowlistItem{
				{ID: "ex-ghsa", Gate: "vulnerabilities", TriggerID: "GHSA-4v7x-pqxf-cx7m+/usr/local/bin/app",
					Reason: "Not reachable: we never call ParseMultipart | tracked in SEC-42", ExpiresOn: "2026-06-30T00:00:00Z"},
				{ID: "ex-zlib", Gate: "vulnerabilities", TriggerID: "CVE-2023-45853+zlib1g",
					Reason: "Waiting for Debian's fix", ExpiresOn: "2026-01-31T00:00:00Z"},
			},
		}},
		Mappings: []policy.Mapping{{
			ID: "map-prod", Name: "production", Registry: "*", Repository: "*",
			Image: policy.ImageSelector{Type: "tag", Value: "*"}, PolicyIDs: []string{"pol-prod"}, AllowlistIDs: []string{"wl-prod"},
		}},
	}
	return b
}

func stopMatches() []buildgate.Match {
	nvd := func(score float64, vector string) []buildgate.CVSS {
		return []buildgate.CVSS{{Version: "3.1", Vector: vector, Source: "nvd@nist.gov", Type: "Primary", BaseScore: score}}
	}
	return []buildgate.Match{
		{
			VulnerabilityID: "CVE-2024-5535", Severity: buildgate.SeverityCritical, KEV: true,
			Description: "Calling the OpenSSL API function SSL_select_next_proto with an empty supported client protocols buffer may cause a crash or memory contents to be sent to the peer.\nSecond line | with a pipe.",
			URLs:        []string{"https://security-tracker.debian.org/tracker/CVE-2024-5535", "https://www.openssl.org/news/secadv/20240627.txt"},
			PackageID:   "p-openssl", PackageName: "openssl", PackageVersion: "3.0.11-1~deb12u2", PackageType: "deb",
			FixState: buildgate.FixStateNotFixed,
			CVSS:     nvd(9.1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H"),
		},
		{
			VulnerabilityID: "CVE-2023-45853", Severity: buildgate.SeverityCritical,
			Description: "MiniZip in zlib through 1.3 has an integer overflow and resultant heap-based buffer overflow in zipOpenNewFileInZip4_64.",
			PackageID:   "p-zlib", PackageName: "zlib1g", PackageVersion: "1:1.2.13.dfsg-1", PackageType: "deb",
			FixState: buildgate.FixStateFixed, FixVersions: []string{"1:1.2.13.dfsg-1+deb12u1"},
		},
		{
			VulnerabilityID: "GHSA-4v7x-pqxf-cx7m", Severity: buildgate.SeverityHigh, RelatedIDs: []string{"CVE-2024-24786"},
			Description: "Infinite loop in JSON unmarshaling in google.golang.org/protobuf.",
			URLs:        []string{"https://github.com/advisories/GHSA-4v7x-pqxf-cx7m"},
			PackageName: "google.golang.org/protobuf", PackageVersion: "v1.32.0", PackageType: "go-module", PackagePath: "/usr/local/bin/app",
			FixState: buildgate.FixStateFixed, FixVersions: []string{"1.33.0"},
			CVSS: []buildgate.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Source: "github", BaseScore: 7.5}},
		},
		{
			VulnerabilityID: "GO-2024-2687", Severity: buildgate.SeverityMedium, RelatedIDs: []string{"CVE-2023-45288"},
			Description: "HTTP/2 CONTINUATION flood in net/http.",
			PackageName: "stdlib", PackageVersion: "go1.22.0", PackageType: "go-module", PackagePath: "/usr/local/bin/app",
			FixState: buildgate.FixStateFixed, FixVersions: []string{"1.22.2", "1.21.9"},
		},
		{
			VulnerabilityID: "CVE-2023-4039", Severity: buildgate.SeverityLow,
			PackageID: "p-gcc", PackageName: "gcc-12-base", PackageVersion: "12.2.0-14", PackageType: "deb",
			FixState: buildgate.FixStateNotFixed,
		},
		{
			VulnerabilityID: "CVE-2011-3374", Severity: buildgate.SeverityNegligible,
			Description: "It was found that apt-key in apt does not correctly validate gpg keys with the master keyring.",
			PackageID:   "p-apt", PackageName: "apt", PackageVersion: "2.6.1", PackageType: "deb",
			FixState: buildgate.FixStateWontFix,
		},
		{
			VulnerabilityID: "TEMP-0841856-B18BAF", Severity: buildgate.SeverityUnknown,
			PackageID: "p-bash", PackageName: "bash", PackageVersion: "5.2.15-2+b7", PackageType: "deb",
			FixState: buildgate.FixStateNotFixed,
		},
		{
			VulnerabilityID: "CVE-2023-31484", Severity: buildgate.SeverityHigh,
			Description: "CPAN.pm before 2.35 does not verify TLS certificates when downloading distributions over HTTPS.",
			PackageID:   "p-perl", PackageName: "perl-base", PackageVersion: "5.36.0-7+deb12u1", PackageType: "deb",
			FixState: buildgate.FixStateWontFix,
			CVSS:     nvd(8.1, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"),
		},
	}
}

// stopCase: vulnerabilities, dockerfile findings with a Dockerfile,
// allowlisted findings and an expired allowlist item: STOP.
func stopCase(t testing.TB) Input {
	facts := buildgate.Facts{
		Digest:     "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		Tags:       []string{"registry.example/team/app:3.1.4"},
		Dockerfile: stopDockerfile,
		Metadata:   debian12(),
		Packages: []buildgate.Package{
			{ID: "p-openssl", Name: "openssl", Version: "3.0.11-1~deb12u2", Type: "deb", Path: "/var/lib/dpkg/status"},
			{ID: "p-zlib", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Type: "deb", Path: "/var/lib/dpkg/status"},
			{ID: "p-telnet", Name: "telnet", Version: "0.17+2.4-2", Type: "deb", Path: "/var/lib/dpkg/status"},
		},
		Matches: stopMatches(),
	}
	facts.Metadata.User = "root"
	db := freshDB()
	ev := evaluate(t, stopBundle(), facts, facts.Tags[0], db)
	return inputFor(ev, facts, facts.Tags[0], "Dockerfile", db)
}

// denylistCase: an image the bundle denylists, with only a WARN finding
// and no Dockerfile: STOP because of the denylist.
func denylistCase(t testing.TB) Input {
	b := policy.DefaultBundle()
	b.DenylistedImages = []policy.ImageRef{{
		ID: "deny-legacy", Name: "legacy images", Registry: "*", Repository: "legacy/*",
		Image: policy.ImageSelector{Type: "tag", Value: "*"},
	}}
	facts := buildgate.Facts{
		Digest:   "sha256:4444444444444444444444444444444444444444444444444444444444444444",
		Tags:     []string{"registry.example/legacy/billing:0.9"},
		Metadata: buildgate.Metadata{Distro: "alpine", DistroVersion: "3.19.1", OS: "linux", Arch: "arm64"},
		Packages: []buildgate.Package{{ID: "p-node", Name: "lodash", Version: "4.17.20", Type: "npm", Path: "/app/node_modules/lodash/package.json"}},
		Matches: []buildgate.Match{{
			VulnerabilityID: "GHSA-35jh-r3h4-6jhm", Severity: buildgate.SeverityMedium, RelatedIDs: []string{"CVE-2021-23337"},
			Description: "Command Injection in lodash",
			URLs:        []string{"https://github.com/advisories/GHSA-35jh-r3h4-6jhm"},
			PackageID:   "p-node", PackageName: "lodash", PackageVersion: "4.17.20", PackageType: "npm",
			PackagePath: "/app/node_modules/lodash/package.json",
			FixState:    buildgate.FixStateFixed, FixVersions: []string{"4.17.21"},
			CVSS: []buildgate.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", Source: "github", BaseScore: 7.2}},
		}},
	}
	db := freshDB()
	ev := evaluate(t, b, facts, facts.Tags[0], db)
	in := inputFor(ev, facts, facts.Tags[0], "", db)
	in.GateURL = ""
	return in
}

// allowlistedImageCase: an image the bundle allowlists, with a STOP
// finding: GO because of the allowlist.
func allowlistedImageCase(t testing.TB) Input {
	b := policy.DefaultBundle()
	b.AllowlistedImages = []policy.ImageRef{{
		ID: "allow-base", Name: "vendored base images", Registry: "*", Repository: "vendor/*",
		Image: policy.ImageSelector{Type: "tag", Value: "*"},
	}}
	facts := buildgate.Facts{
		Digest:   "sha256:5555555555555555555555555555555555555555555555555555555555555555",
		Tags:     []string{"registry.example/vendor/base:2024.1"},
		Metadata: debian12(),
		Matches:  stopMatches()[:1],
	}
	db := freshDB()
	ev := evaluate(t, b, facts, facts.Tags[0], db)
	return inputFor(ev, facts, "", "", db)
}

// goldenCases are the inputs every format has a golden file for.
func goldenCases(t testing.TB) []struct {
	name string
	in   Input
	want policy.Action
} {
	return []struct {
		name string
		in   Input
		want policy.Action
	}{
		{"clean", cleanCase(t), policy.ActionGo},
		{"warn", warnCase(t), policy.ActionWarn},
		{"stop", stopCase(t), policy.ActionStop},
		{"denylisted", denylistCase(t), policy.ActionStop},
		{"allowlisted-image", allowlistedImageCase(t), policy.ActionGo},
	}
}
