package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/buildgate/buildgate"
)

const examplesDir = "../../examples/policies"

func loadExample(t testing.TB, name string) *Bundle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBundle(data)
	if err != nil {
		t.Fatalf("ParseBundle(%s): %v", name, err)
	}
	return b
}

// paymentsFacts is a Debian 12 service image with a handful of
// vulnerabilities, an actual Dockerfile and no HEALTHCHECK.
func paymentsFacts(digest string) Input {
	nvd := func(s float64) []buildgate.CVSS {
		return []buildgate.CVSS{{Version: "3.1", Source: "nvd@nist.gov", Type: "Primary", BaseScore: s, ExploitabilityScore: 3.9, ImpactScore: 5.9}}
	}
	return Input{
		Facts: buildgate.Facts{
			Digest:     digest,
			Dockerfile: "FROM registry.acme.io/base/debian:12-approved-2026\nRUN apt-get update && \\\n    apt-get install -y ca-certificates\nUSER app\nEXPOSE 8080\nCMD [\"/app/api\"]\n",
			Metadata: buildgate.Metadata{
				Distro: "debian", DistroVersion: "12", OS: "linux", Arch: "amd64", Size: 300_000_000, LayerCount: 5, User: "app",
			},
			Packages: []buildgate.Package{
				{ID: "p-tar", Name: "tar", Version: "1.34+dfsg-1.2+deb12u1", Type: "deb", Licenses: []string{"GPL-3.0-or-later"}},
				{ID: "p-apt", Name: "apt", Version: "2.6.1", Type: "deb", Licenses: []string{"GPL-2.0-or-later"}},
				{ID: "p-zlib", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Type: "deb", Licenses: []string{"Zlib"}},
				{ID: "p-h2", Name: "libnghttp2-14", Version: "1.52.0-1", Type: "deb", Licenses: []string{"MIT"}},
				{ID: "p-yaml", Name: "snakeyaml", Version: "1.33", Type: "java-archive", Path: "/app/lib/test/snakeyaml-1.33.jar", Licenses: []string{"Apache-2.0"}},
			},
			Matches: []buildgate.Match{
				{VulnerabilityID: "CVE-2005-2541", Severity: buildgate.SeverityHigh, PackageID: "p-tar", PackageName: "tar", PackageVersion: "1.34+dfsg-1.2+deb12u1", PackageType: "deb",
					FixState: buildgate.FixStateNotFixed, URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2005-2541"}},
				{VulnerabilityID: "CVE-2011-3374", Severity: buildgate.SeverityLow, PackageID: "p-apt", PackageName: "apt", PackageVersion: "2.6.1", PackageType: "deb",
					FixState: buildgate.FixStateNotFixed, URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2011-3374"}},
				{VulnerabilityID: "CVE-2023-45853", Severity: buildgate.SeverityMedium, PackageID: "p-zlib", PackageName: "zlib1g", PackageVersion: "1:1.2.13.dfsg-1", PackageType: "deb",
					FixState: buildgate.FixStateNotFixed, URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2023-45853"}},
				{VulnerabilityID: "CVE-2023-44487", Severity: buildgate.SeverityHigh, PackageID: "p-h2", PackageName: "libnghttp2-14", PackageVersion: "1.52.0-1", PackageType: "deb",
					FixState: buildgate.FixStateFixed, FixVersions: []string{"1.52.0-1+deb12u1"}, URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2023-44487"}, CVSS: nvd(7.5)},
				{VulnerabilityID: "CVE-2022-1471", Severity: buildgate.SeverityCritical, PackageID: "p-yaml", PackageName: "snakeyaml", PackageVersion: "1.33", PackageType: "java-archive",
					PackagePath: "/app/lib/test/snakeyaml-1.33.jar", FixState: buildgate.FixStateNotFixed, URLs: []string{"https://nvd.nist.gov/vuln/detail/CVE-2022-1471"}, CVSS: nvd(9.8)},
			},
		},
		DB: buildgate.DBInfo{Built: *daysAgo(1), Distros: []string{"debian:11", "debian:12", "alpine:3.19"}},
	}
}

func TestWildBundle(t *testing.T) {
	b := loadExample(t, "anchore-wild.json")
	const good, bad = "sha256:1111111111111111111111111111111111111111111111111111111111111111", "sha256:0badc0de00000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name, tag, digest string
		mapping           string
		policies          []string
		final, policy     Action
		reason            Reason
	}{
		{"payments: allowlists waive the stops", "registry.acme.io/payments/api:v2.3.1", good,
			"map-payments", []string{"acme-security", "acme-hygiene", "acme-prod-extra"}, ActionWarn, ActionWarn, ReasonPolicyEvaluation},
		{"payments latest is denylisted", "registry.acme.io/payments/api:latest", good,
			"map-payments", []string{"acme-security", "acme-hygiene", "acme-prod-extra"}, ActionStop, ActionWarn, ReasonDenylistedImage},
		{"release builds elsewhere stop on a fixable high", "registry.acme.io/orders/api:v1.0.0", good,
			"map-releases", []string{"acme-security", "acme-hygiene"}, ActionStop, ActionStop, ReasonPolicyEvaluation},
		{"a release candidate falls through to the default", "registry.acme.io/orders/api:v1.0.0-rc1", good,
			"map-default", []string{"acme-security"}, ActionStop, ActionStop, ReasonPolicyEvaluation},
		{"sandbox only warns", "docker.io/sandbox/tool:dev", good,
			"map-sandbox", []string{"acme-sandbox"}, ActionWarn, ActionWarn, ReasonPolicyEvaluation},
		{"sandbox short name normalises to docker.io", "sandbox/tool", good,
			"map-sandbox", []string{"acme-sandbox"}, ActionWarn, ActionWarn, ReasonPolicyEvaluation},
		{"approved base images are allowlisted", "registry.acme.io/base/debian:12-approved-2026", good,
			"map-default", []string{"acme-security"}, ActionGo, ActionStop, ReasonAllowlistedImage},
		{"a compromised digest stops under any tag", "registry.acme.io/base/debian:12-approved-2026", bad,
			"map-default", []string{"acme-security"}, ActionStop, ActionStop, ReasonDenylistedImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := paymentsFacts(tt.digest)
			in.Tag = tt.tag
			ev, err := Evaluate(b, in, now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.MappingID != tt.mapping || !slices.Equal(ev.PolicyIDs, tt.policies) {
				t.Errorf("mapping %q policies %q; want %q %q", ev.MappingID, ev.PolicyIDs, tt.mapping, tt.policies)
			}
			if ev.FinalAction != tt.final || ev.PolicyFinalAction != tt.policy || ev.Reason != tt.reason {
				t.Errorf("final %v policy %v reason %v; want %v %v %v\n%s", ev.FinalAction, ev.PolicyFinalAction, ev.Reason,
					tt.final, tt.policy, tt.reason, summarize(ev))
			}
		})
	}
}

func summarize(ev *Evaluation) string {
	var buf bytes.Buffer
	for _, f := range ev.Findings {
		state := ""
		if f.Allowlisted != nil {
			state = " [allowlisted " + f.Allowlisted.ItemID + "]"
		} else if f.Expired != nil {
			state = " [expired " + f.Expired.ItemID + "]"
		}
		buf.WriteString(f.PolicyID + "/" + f.RuleID + " " + f.Action.String() + " " + f.TriggerID + state + "\n")
	}
	return buf.String()
}

func TestWildBundlePaymentsFindings(t *testing.T) {
	in := paymentsFacts("sha256:1111111111111111111111111111111111111111111111111111111111111111")
	in.Tag = "registry.acme.io/payments/api:v2.3.1"
	ev, err := Evaluate(loadExample(t, "anchore-wild.json"), in, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "acme-security/sec-high-fixed stop CVE-2023-44487+libnghttp2-14 [allowlisted pay-http2]\n" +
		"acme-security/sec-high-unfixed warn CVE-2005-2541+tar [allowlisted wl-tar]\n" +
		"acme-security/sec-high-unfixed warn CVE-2022-1471+/app/lib/test/snakeyaml-1.33.jar\n" +
		"acme-security/sec-medium warn CVE-2023-45853+zlib1g [expired wl-zlib]\n" +
		"acme-hygiene/hyg-healthcheck warn 41cb7cdf04850e33a11f80c42bf660b3 [allowlisted pay-healthcheck]\n"
	if got := summarize(ev); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	if c := ev.Counts(); c != (Counts{Warn: 2, Allowlisted: 3}) {
		t.Errorf("counts = %+v", c)
	}

	got, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/wild-payments.golden.json", append(got, '\n'))
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./internal/policy -update if the change is intended):\n%s", path, got)
	}
}

func TestDefaultBundleExample(t *testing.T) {
	got, err := json.MarshalIndent(DefaultBundle(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(examplesDir, "default.json"), append(got, '\n'))

	b := loadExample(t, "default.json")
	d := DefaultBundle()
	if b.ID != d.ID || len(b.Policies) != 1 || len(b.Mappings) != 1 || len(b.Allowlists) != 1 {
		t.Fatalf("default.json = %+v", b)
	}
	m := b.Mappings[0]
	if m.Registry != "*" || m.Repository != "*" || m.Image != (ImageSelector{Type: "tag", Value: "*"}) ||
		m.PolicyID != b.Policies[0].ID || !slices.Equal(m.AllowlistIDs, []string{b.Allowlists[0].ID}) || len(b.Allowlists[0].Items) != 0 {
		t.Errorf("default mapping = %+v", m)
	}
}

func TestDefaultBundleEvaluation(t *testing.T) {
	in := paymentsFacts("sha256:1")
	in.Tag = "nginx"
	in.Facts.Dockerfile = "FROM debian:12\nEXPOSE 22 80\n"
	ev, err := Evaluate(DefaultBundle(), in, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "48e6f7d6-1765-11e8-b5f9-8b6f228548b6/ce7b8000-829b-4c27-8122-69cd59018400 stop " + hashTriggerID("dockerfile", "exposed_ports", "Dockerfile exposes port (22) which is in policy file DENIEDPORTS list") + "\n" +
		"48e6f7d6-1765-11e8-b5f9-8b6f228548b6/312d9e41-1c05-4e2f-ad89-b7d34b0855bb warn 41cb7cdf04850e33a11f80c42bf660b3\n" +
		"48e6f7d6-1765-11e8-b5f9-8b6f228548b6/6063fdde-b1c5-46af-973a-915739451ac4 warn CVE-2023-45853+zlib1g\n" +
		"48e6f7d6-1765-11e8-b5f9-8b6f228548b6/b30e8abc-444f-45b1-8a37-55be1b8c8bb5 stop CVE-2005-2541+tar\n" +
		"48e6f7d6-1765-11e8-b5f9-8b6f228548b6/b30e8abc-444f-45b1-8a37-55be1b8c8bb5 stop CVE-2023-44487+libnghttp2-14\n" +
		"48e6f7d6-1765-11e8-b5f9-8b6f228548b6/b30e8abc-444f-45b1-8a37-55be1b8c8bb5 stop CVE-2022-1471+/app/lib/test/snakeyaml-1.33.jar\n"
	if got := summarize(ev); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	if ev.FinalAction != ActionStop || ev.MappingID != "c4f9bf74-dc38-4ddf-b5cf-00e9c0074611" {
		t.Errorf("final %v mapping %q", ev.FinalAction, ev.MappingID)
	}
}
