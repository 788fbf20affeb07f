package vex

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// libssl is the package syft finds in ../shared/images/bullseye-minbase.
var libssl = &buildgate.Package{
	Name: "libssl1.1", Version: "1.1.1w-0+deb11u1", Type: "deb",
	PURL: "pkg:deb/debian/libssl1.1@1.1.1w-0%2Bdeb11u1?arch=amd64&distro=debian-11.11&upstream=openssl",
}

var target = buildgate.VEXTarget{
	Digest:       "sha256:9f0c8e3a7d1f3c9b5f6f1f2a7c9e4b1d3a5c7e9f0b2d4f6a8c0e2b4d6f8a0c2e",
	Repositories: []string{"registry.example/team/app"},
}

func mustParse(t *testing.T, doc string) *Document {
	t.Helper()
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openVEX is a one-statement OpenVEX document.
func openVEX(vuln, products, status, extra string) string {
	return `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1", "author": "t",
		"timestamp": "2026-11-01T10:00:00Z", "version": 1, "statements": [{"vulnerability": {"name": "` + vuln + `"},
		"products": ` + products + `, "status": "` + status + `"` + extra + `}]}`
}

func TestDecideMatchesPackagePurlsAndTheImage(t *testing.T) {
	m := &buildgate.Match{VulnerabilityID: "CVE-2024-5535", PackageName: "libssl1.1"}
	alias := &buildgate.Match{VulnerabilityID: "DSA-5000-1", RelatedIDs: []string{"CVE-2024-5535"}}
	other := &buildgate.Package{Name: "libssl3", PURL: "pkg:deb/debian/libssl3@3.0.11-1?arch=amd64"}
	notAffected := `, "justification": "vulnerable_code_not_present"`
	for _, tc := range []struct {
		name, products string
		m              *buildgate.Match
		p              *buildgate.Package
		want           string // the matched identifier, "" for none
	}{
		{"purl without qualifiers", `[{"@id": "pkg:deb/debian/libssl1.1@1.1.1w-0+deb11u1"}]`, m, libssl, libssl.PURL},
		{"purl without version", `[{"@id": "pkg:deb/debian/libssl1.1"}]`, m, libssl, libssl.PURL},
		{"purl as identifier", `[{"identifiers": {"purl": "pkg:deb/debian/libssl1.1"}}]`, m, libssl, libssl.PURL},
		{"alias of the finding", `[{"@id": "pkg:deb/debian/libssl1.1"}]`, alias, libssl, libssl.PURL},
		{"another version", `[{"@id": "pkg:deb/debian/libssl1.1@1.1.1n-0+deb11u5"}]`, m, libssl, ""},
		{"a qualifier the package lacks", `[{"@id": "pkg:deb/debian/libssl1.1?arch=arm64"}]`, m, libssl, ""},
		{"another package", `[{"@id": "pkg:deb/debian/libssl1.1"}]`, m, other, ""},
		{"repository, any tag", `[{"@id": "registry.example/team/app"}]`, m, libssl, "registry.example/team/app"},
		{"another repository", `[{"@id": "registry.example/team/other"}]`, m, libssl, ""},
		{"digest purl", `[{"@id": "pkg:oci/app@` + target.Digest + `"}]`, m, libssl, OCIPurl("registry.example/team/app", target.Digest)},
		{"digest purl of another repository", `[{"@id": "pkg:oci/app@` + target.Digest + `?repository_url=other.example/app"}]`, m, libssl, ""},
		{"another digest", `[{"@id": "pkg:oci/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"}]`, m, libssl, ""},
		{"image with the package as subcomponent", `[{"@id": "registry.example/team/app", "subcomponents": [{"@id": "pkg:deb/debian/libssl1.1"}]}]`, m, libssl, "registry.example/team/app"},
		{"image with another subcomponent", `[{"@id": "registry.example/team/app", "subcomponents": [{"@id": "pkg:deb/debian/zlib1g"}]}]`, m, libssl, ""},
		{"image, package without purl", `[{"@id": "registry.example/team/app"}]`, m, nil, "registry.example/team/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJudge(target, Source{Name: "doc", Doc: mustParse(t, openVEX("CVE-2024-5535", tc.products, "not_affected", notAffected))})
			d := j.Decide(tc.m, tc.p)
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("want no decision, got %+v", d)
			case tc.want != "" && d == nil:
				t.Fatal("want a decision, got none")
			case d != nil && (d.Product != tc.want || d.Status != buildgate.VEXNotAffected || d.Justification != "vulnerable_code_not_present" || d.Source != "doc"):
				t.Fatalf("decision %+v, want product %s, not_affected, vulnerable_code_not_present", d, tc.want)
			}
		})
	}
}

func TestDecideOrder(t *testing.T) {
	m := &buildgate.Match{VulnerabilityID: "CVE-2024-5535"}
	prod := `[{"@id": "pkg:deb/debian/libssl1.1"}]`
	run := Source{Name: "run", Doc: mustParse(t, openVEX("CVE-2024-5535", prod, "under_investigation", ""))}
	stored := Source{Name: "stored", Doc: mustParse(t, openVEX("CVE-2024-5535", prod, "fixed", ""))}
	if d := NewJudge(target, run, stored).Decide(m, libssl); d == nil || d.Source != "run" || d.Suppresses() {
		t.Fatalf("the first source decides: %+v", d)
	}
	// Within a document the latest statement wins.
	doc := `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "t", "timestamp": "2026-11-01T10:00:00Z", "version": 1, "statements": [
		{"vulnerability": {"name": "CVE-2024-5535"}, "products": ` + prod + `, "status": "fixed", "timestamp": "2026-11-03T00:00:00Z"},
		{"vulnerability": {"name": "CVE-2024-5535"}, "products": ` + prod + `, "status": "under_investigation", "timestamp": "2026-11-02T00:00:00Z"}]}`
	if d := NewJudge(target, Source{Name: "d", Doc: mustParse(t, doc)}).Decide(m, libssl); d == nil || d.Status != buildgate.VEXFixed {
		t.Fatalf("want the latest statement (fixed), got %+v", d)
	}
}

func TestCycloneDX(t *testing.T) {
	d := mustParse(t, readFile(t, "libssl.cdx.json"))
	if d.Format != FormatCycloneDX || d.Statements() != 1 {
		t.Fatalf("format %s, %d statements", d.Format, d.Statements())
	}
	got := NewJudge(target, Source{Name: "cdx", Doc: d}).Decide(&buildgate.Match{VulnerabilityID: "CVE-2024-5535"}, libssl)
	want := &buildgate.VEXDecision{
		Source: "cdx", Document: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", Vulnerability: "CVE-2024-5535",
		Product: libssl.PURL, Status: "not_affected", Justification: "vulnerable_code_not_in_execute_path",
		ImpactStatement: "no caller passes an empty ALPN list",
	}
	if got == nil || *got != *want {
		t.Fatalf("decision\n got %+v\nwant %+v", got, want)
	}
	if got.Text() != "not_affected (vulnerable_code_not_in_execute_path): no caller passes an empty ALPN list" {
		t.Fatalf("text %q", got.Text())
	}
	// States map onto OpenVEX statuses; a BOM-Link ref names the component.
	for state, status := range map[string]string{"resolved": "fixed", "in_triage": "under_investigation", "exploitable": "affected", "false_positive": "not_affected"} {
		doc := `{"bomFormat": "CycloneDX", "specVersion": "1.5", "vulnerabilities": [{"id": "CVE-2024-5535",
			"analysis": {"state": "` + state + `"}, "affects": [{"ref": "urn:cdx:3e671687/1#pkg:deb/debian/libssl1.1"}]}]}`
		got := NewJudge(target, Source{Name: "cdx", Doc: mustParse(t, doc)}).Decide(&buildgate.Match{VulnerabilityID: "CVE-2024-5535"}, libssl)
		if got == nil || got.Status != status {
			t.Errorf("state %s: decision %+v, want %s", state, got, status)
		}
	}
}

func TestParseRefusesBadDocuments(t *testing.T) {
	prod := `[{"@id": "pkg:deb/debian/libssl1.1"}]`
	for _, tc := range []struct{ name, doc, want string }{
		{"not JSON", `{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [`, "not JSON"},
		{"neither format", `{"statements": []}`, "neither OpenVEX"},
		{"OpenVEX that does not parse", `{"@context": "https://openvex.dev/ns/v0.2.0", "statements": {"a": 1}}`, "OpenVEX document does not parse"},
		{"no statement", `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "statements": []}`, "holds no VEX statement"},
		{"no product", openVEX("CVE-2024-5535", `[]`, "fixed", ""), "statement 1 (CVE-2024-5535) names no product"},
		{"empty product", openVEX("CVE-2024-5535", `[{}]`, "fixed", ""), "names no product"},
		{"no vulnerability", openVEX("", prod, "fixed", ""), "statement 1 names no vulnerability"},
		{"unknown status", openVEX("CVE-2024-5535", prod, "maybe", ""), `unknown status "maybe"`},
		{"not_affected without justification", openVEX("CVE-2024-5535", prod, "not_affected", ""), "either justification or impact statement must be defined"},
		{"CycloneDX that does not parse", `{"bomFormat": "CycloneDX", "vulnerabilities": {"id": 1}}`, "CycloneDX document does not parse"},
		{"CycloneDX without vulnerabilities", `{"bomFormat": "CycloneDX", "specVersion": "1.5"}`, "holds no vulnerabilities"},
		{"CycloneDX unknown state", `{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-1", "analysis": {"state": "fine"}, "affects": [{"ref": "pkg:npm/a"}]}]}`, `unknown analysis state "fine"`},
		{"CycloneDX without state", `{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-1", "affects": [{"ref": "pkg:npm/a"}]}]}`, "has no analysis state"},
		{"CycloneDX without affects", `{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-1", "analysis": {"state": "resolved"}}]}`, "statement 1 (CVE-1) names no product"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || buildgate.ErrorCode(err) != buildgate.EINVALID {
				t.Fatalf("Parse = %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

func TestExportRoundTrips(t *testing.T) {
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	zlib := &buildgate.Package{Name: "zlib1g", PURL: "pkg:deb/debian/zlib1g@1.2.11"}
	d := &buildgate.VEXDecision{Source: "VEX document openssl", Vulnerability: "CVE-2024-5535", Status: "not_affected", Justification: "vulnerable_code_not_present"}
	ev := &policy.Evaluation{EvaluatedAt: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Findings: []policy.Finding{
		{Vulnerability: &buildgate.Match{VulnerabilityID: "CVE-2024-5535"}, Package: libssl, VEX: d, Allowlisted: &policy.AllowlistMatch{VEX: true}},
		{Vulnerability: &buildgate.Match{VulnerabilityID: "CVE-2022-37434"}, Package: zlib,
			Allowlisted: &policy.AllowlistMatch{AllowlistName: "prod", ItemID: "item-1", Reason: "not built", ExpiresOn: &expires}},
		{Vulnerability: &buildgate.Match{VulnerabilityID: "CVE-2023-45853"}, Package: zlib}, // neither: left out
	}}
	out, err := Export(target, ev, time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(out)
	if err != nil {
		t.Fatalf("the export does not parse back: %v\n%s", err, out)
	}
	j := NewJudge(target, Source{Name: "export", Doc: doc})
	got := j.Decide(&buildgate.Match{VulnerabilityID: "CVE-2024-5535"}, libssl)
	if got == nil || got.Status != "not_affected" || got.Justification != "vulnerable_code_not_present" {
		t.Fatalf("exported VEX decision: %+v\n%s", got, out)
	}
	got = j.Decide(&buildgate.Match{VulnerabilityID: "CVE-2022-37434"}, zlib)
	if got == nil || got.Status != "not_affected" || got.ImpactStatement != `allowlisted by item "item-1" of allowlist "prod": not built (expires 2027-01-01T00:00:00Z)` {
		t.Fatalf("exported allowlist item: %+v\n%s", got, out)
	}
	if j.Decide(&buildgate.Match{VulnerabilityID: "CVE-2023-45853"}, zlib) != nil || doc.Statements() != 2 {
		t.Fatalf("a finding neither allowlisted nor VEXed was exported:\n%s", out)
	}
	// The product is the image's digest purl: another image is not covered.
	other := NewJudge(buildgate.VEXTarget{Digest: "sha256:00", Repositories: []string{"registry.example/team/app"}}, Source{Name: "export", Doc: doc})
	if d := other.Decide(&buildgate.Match{VulnerabilityID: "CVE-2024-5535"}, libssl); d != nil {
		t.Fatalf("the export covers another digest: %+v", d)
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil || raw["author"] != "buildgate" {
		t.Fatalf("export: %v %s", err, out)
	}
}
