package policy

import (
	"testing"

	"github.com/buildgate/buildgate"
)

func TestCompareBaseline(t *testing.T) {
	b := oneRuleBundle(
		Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "severity_comparison", ">=", "severity", "low")},
		Rule{Gate: "dockerfile", Trigger: "exposed_ports", Params: kv("ports", "22,80", "type", "blacklist")},
	)
	match := func(id, name, version, typ string) buildgate.Match {
		return buildgate.Match{VulnerabilityID: id, Severity: buildgate.SeverityHigh, PackageName: name, PackageVersion: version, PackageType: typ}
	}
	baseFacts := buildgate.Facts{
		Digest: "sha256:base", Tags: []string{"docker.io/library/debian:11"},
		Dockerfile: "FROM scratch\nEXPOSE 22\n",
		Matches:    []buildgate.Match{match("CVE-1", "libssl1.1", "1.1.1n", "deb"), match("CVE-2", "zlib1g", "1.2.11", "deb")},
	}
	facts := buildgate.Facts{
		Digest: "sha256:app", Tags: []string{"registry.example/app:1"},
		Dockerfile: "FROM debian:11\nEXPOSE 22\nEXPOSE 80\n",
		Matches: []buildgate.Match{
			match("CVE-1", "libssl1.1", "1.1.1w", "deb"), // upgraded, still vulnerable: inherited
			match("CVE-2", "zlib1g", "1.2.11", "npm"),    // same name, other type: new
			match("CVE-3", "curl", "7.74", "deb"),        // new
		},
	}
	base, err := Evaluate(b, Input{Facts: baseFacts}, now)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Evaluate(b, Input{Facts: facts}, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.Findings {
		if !e.IsNew(&e.Findings[i]) {
			t.Fatalf("finding %s is inherited before any comparison", e.Findings[i].TriggerID)
		}
	}
	e.CompareBaseline(Baseline{Digest: "sha256:base", Ref: "debian:11"}, baseFacts.Matches, base)
	got := map[string]bool{}
	for i := range e.Findings {
		f := &e.Findings[i]
		key := f.TriggerID
		if f.Vulnerability != nil {
			key += "/" + f.Vulnerability.PackageType
		} else {
			key = f.Message
		}
		got[key] = e.IsNew(f)
	}
	want := map[string]bool{
		"CVE-1+libssl1.1/deb": false,
		"CVE-2+zlib1g/npm":    true,
		"CVE-3+curl/deb":      true,
		"Dockerfile exposes port (22) which is in policy file DENIEDPORTS list": false,
		"Dockerfile exposes port (80) which is in policy file DENIEDPORTS list": true,
	}
	for k, v := range want {
		if isNew, ok := got[k]; !ok || isNew != v {
			t.Errorf("finding %q: new %v (present %v), want new %v; all: %v", k, isNew, ok, v, got)
		}
	}
	if e.Baseline == nil || e.Baseline.Name() != "debian:11 (sha256:base)" {
		t.Errorf("baseline %+v", e.Baseline)
	}
}
