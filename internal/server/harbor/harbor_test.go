package harbor

import (
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/server"
)

func TestAccepts(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", mimeVulnReport},
		{"*/*", mimeVulnReport},
		{mimeVulnReport, mimeVulnReport},
		{"application/vnd.security.vulnerability.report;version=1.1", mimeVulnReport},
		{mimeHarborVulnReport, mimeHarborVulnReport},
		{"application/vnd.security.vulnerability.report; version=1.0", ""},
		{"application/vnd.scanner.adapter.vuln.report.raw", ""},
		{"application/json, " + mimeSBOMReport, mimeSBOMReport},
	}
	for _, tc := range tests {
		if got := accepts(tc.header, produces...); got != tc.want {
			t.Errorf("accepts(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func validScan() *scanRequest {
	var r scanRequest
	r.Registry.URL = "https://core.harbor.domain"
	r.Registry.Authorization = "Basic cm9ib3Q6c2VjcmV0"
	r.Artifact = artifact{Repository: "library/mongo", Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}
	return &r
}

func TestCheckScan(t *testing.T) {
	got, err := checkScan(validScan())
	if err != nil {
		t.Fatal(err)
	}
	if got.PullRef != "core.harbor.domain/library/mongo@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b" ||
		got.Auth.Host != "core.harbor.domain" || got.Auth.PlainHTTP || string(got.Auth.Authorization) != "Basic cm9ib3Q6c2VjcmV0" {
		t.Errorf("checkScan = %+v", got)
	}
	tests := []struct {
		name   string
		change func(r *scanRequest)
		status int
		want   string
	}{
		{"no url", func(r *scanRequest) { r.Registry.URL = "" }, 422, "registry.url"},
		{"url with a path", func(r *scanRequest) { r.Registry.URL = "https://h.example/v2/" }, 422, "registry.url"},
		{"url with credentials", func(r *scanRequest) { r.Registry.URL = "https://u:hunter22@h.example" }, 422, "registry.url"},
		{"ftp", func(r *scanRequest) { r.Registry.URL = "ftp://h.example" }, 422, "registry.url"},
		{"host a path could be", func(r *scanRequest) { r.Registry.URL = "http://harbor-core" }, 422, "dot or a port"},
		{"no authorization", func(r *scanRequest) { r.Registry.Authorization = "" }, 422, "registry.authorization"},
		{"empty basic", func(r *scanRequest) { r.Registry.Authorization = "Basic " }, 422, "registry.authorization"},
		{"uppercase repository", func(r *scanRequest) { r.Artifact.Repository = "Library/Mongo" }, 422, "artifact.repository"},
		{"dot segment", func(r *scanRequest) { r.Artifact.Repository = "team-a/../team-b" }, 422, "artifact.repository"},
		{"short digest", func(r *scanRequest) { r.Artifact.Digest = "sha256:6c3c" }, 422, "artifact.digest"},
		{"index", func(r *scanRequest) { r.Artifact.MimeType = "application/vnd.oci.image.index.v1+json" }, 501, "image manifests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := validScan()
			tc.change(r)
			_, err := checkScan(r)
			se, ok := err.(*server.StatusError)
			if !ok || se.Status != tc.status || !strings.Contains(se.Msg, tc.want) {
				t.Fatalf("checkScan = %v, want %d naming %q", err, tc.status, tc.want)
			}
			if strings.Contains(se.Msg, "cm9ib3Q6c2VjcmV0") || strings.Contains(se.Msg, "hunter22") {
				t.Errorf("the refusal quotes a credential: %s", se.Msg)
			}
		})
	}
	r := validScan()
	r.Registry.URL = "http://127.0.0.1:5000/"
	if got, err := checkScan(r); err != nil || !got.Auth.PlainHTTP || got.Auth.Host != "127.0.0.1:5000" {
		t.Errorf("plain HTTP registry: %+v %v", got, err)
	}
}

func TestVulnerabilityReport(t *testing.T) {
	matched := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	a := &buildgate.Analysis{
		Facts: buildgate.Facts{
			Packages: []buildgate.Package{{ID: "p1", Name: "openssl", Version: "1.1.1n-0+deb11u3", Type: "deb", PURL: "pkg:deb/debian/openssl@1.1.1n-0+deb11u3?distro=debian-11"}},
			Matches: []buildgate.Match{
				{VulnerabilityID: "CVE-2023-0286", Severity: buildgate.SeverityHigh, PackageID: "p1", PackageName: "openssl", PackageVersion: "1.1.1n-0+deb11u3", PackageType: "deb",
					FixState: buildgate.FixStateFixed, FixVersions: []string{"1.1.1n-0+deb11u4"},
					URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2023-0286", "not a link"},
					CVSS: []buildgate.CVSS{
						{Version: "3.0", Vector: "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H", Source: "other@example", Type: "Secondary", BaseScore: 5.9},
						{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H", Source: "nvd@nist.gov", Type: "Primary", BaseScore: 7.4},
						{Version: "2.0", Vector: "AV:N/AC:M/Au:N/C:P/I:N/A:P", Source: "nvd@nist.gov", Type: "Primary", BaseScore: 5.8},
					}},
				{VulnerabilityID: "CVE-2024-0001", Severity: buildgate.SeverityNegligible, PackageID: "p1", PackageName: "openssl", PackageVersion: "1.1.1n-0+deb11u3", PackageType: "deb",
					FixState: buildgate.FixStateWontFix, FixVersions: []string{"9"}},
			},
		},
		MatchedAt: matched,
	}
	r := vulnerabilityReport(a, artifact{Digest: "sha256:x"}, scanner{Name: "buildgate"})
	if r.Severity != "High" || !r.GeneratedAt.Equal(matched) || len(r.Vulnerabilities) != 2 {
		t.Fatalf("report = %+v", r)
	}
	v := r.Vulnerabilities[0]
	if v.FixVersion != "1.1.1n-0+deb11u4" || v.Severity != "High" || len(v.Links) != 1 || v.VendorAttributes["purl"] != a.Packages[0].PURL {
		t.Errorf("item = %+v", v)
	}
	if p := v.PreferredCVSS; p == nil || *p.ScoreV3 != 7.4 || p.VectorV3 != "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H" || *p.ScoreV2 != 5.8 {
		t.Errorf("preferred_cvss = %+v, want the primary source's", v.PreferredCVSS)
	}
	cvss := v.VendorAttributes["CVSS"].(map[string]*vendorCVSS)
	if cvss["other@example"] == nil || *cvss["other@example"].V3Score != 5.9 || *cvss["nvd@nist.gov"].V2Score != 5.8 {
		t.Errorf("vendor CVSS = %+v", cvss)
	}
	if w := r.Vulnerabilities[1]; w.FixVersion != "" || w.Severity != "Negligible" || w.PreferredCVSS != nil {
		t.Errorf("a match without a fix = %+v", w)
	}
	if empty := vulnerabilityReport(&buildgate.Analysis{}, artifact{}, scanner{}); empty.Severity != "" || empty.Vulnerabilities == nil {
		t.Errorf("a report without vulnerabilities = %+v", empty)
	}
}
