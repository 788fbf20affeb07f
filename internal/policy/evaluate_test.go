package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
)

func TestParseTag(t *testing.T) {
	tests := []struct {
		in, registry, repo, tag string
	}{
		{"nginx", "docker.io", "nginx", "latest"},
		{"library/nginx:1.25", "docker.io", "library/nginx", "1.25"},
		{"docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest"},
		{"index.docker.io/org/app", "docker.io", "org/app", "latest"},
		{"dockerhub/org/app:2", "docker.io", "org/app", "2"},
		{"localhost/app:dev", "localhost", "app", "dev"},
		{"localhost:5000/team/app", "localhost:5000", "team/app", "latest"},
		{"registry.example.com/prod/api:v1.2", "registry.example.com", "prod/api", "v1.2"},
		{"registry.example.com:8443/prod/api", "registry.example.com:8443", "prod/api", "latest"},
		{"ghcr.io/org/app:1@sha256:abc", "ghcr.io", "org/app", "1"},
		{"ghcr.io/org/app@sha256:abc", "ghcr.io", "org/app", ""},
		{"org/app", "docker.io", "org/app", "latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			reg, repo, tag := ParseTag(tt.in)
			if reg != tt.registry || repo != tt.repo || tag != tt.tag {
				t.Errorf("ParseTag(%q) = %q, %q, %q; want %q, %q, %q", tt.in, reg, repo, tag, tt.registry, tt.repo, tt.tag)
			}
		})
	}
	if got := FullTag("nginx"); got != "docker.io/nginx:latest" {
		t.Errorf("FullTag(nginx) = %q", got)
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "a/b/c", true},
		{"library/*", "library/nginx", true},
		{"library/*", "library/team/nginx", true}, // * matches / too, as in Anchore
		{"library/*", "other/nginx", false},
		{"*-alpine", "1.25-alpine", true},
		{"*-alpine", "1.25-alpine3.19", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"ab*ba", "aba", false},
		{"nginx", "nginx", true},
		{"nginx", "nginx2", false},
		{"?", "a", false}, // only * is special
		{"regexp:v[0-9]+\\.", "v12.3", true},
		{"regexp:v[0-9]+", "xv12", false}, // re.match anchors at the start
		{"regexp:(dev|test)-.*", "dev-1", true},
		{"CVE-2023-*+*", "CVE-2023-1234+openssl", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.s, func(t *testing.T) {
			p, err := compilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.match(tt.s); got != tt.want {
				t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}

func mappingBundle() *Bundle {
	b := &Bundle{
		ID: "b", Name: "mappings", Version: BundleVersion,
		Policies: []Policy{
			{ID: "strict", Version: BundleVersion, Rules: []Rule{{ID: "s1", Gate: "always", Trigger: "always", Action: "STOP"}}},
			{ID: "lenient", Version: BundleVersion, Rules: []Rule{{ID: "l1", Gate: "always", Trigger: "always", Action: "WARN"}}},
			{ID: "quiet", Version: BundleVersion, Rules: []Rule{{ID: "q1", Gate: "always", Trigger: "always", Action: "GO"}}},
		},
		Mappings: []Mapping{
			{ID: "prod", Registry: "registry.example.com", Repository: "prod/*", Image: ImageSelector{Type: "tag", Value: "*"}, PolicyIDs: []string{"strict", "lenient"}},
			{ID: "release", Registry: "*", Repository: "*", Image: ImageSelector{Type: "tag", Value: "regexp:v[0-9]+\\.[0-9]+"}, PolicyID: "lenient"},
			{ID: "pinned", Registry: "*", Repository: "*", Image: ImageSelector{Type: "digest", Value: "sha256:pinned"}, PolicyID: "quiet"},
			{ID: "by-id", Registry: "*", Repository: "*", Image: ImageSelector{Type: "id", Value: "feed"}, PolicyID: "quiet"},
			{ID: "dev", Registry: "docker.io", Repository: "team/*", Image: ImageSelector{Type: "tag", Value: "dev-*"}, PolicyID: "quiet"},
			{ID: "rest", Registry: "*", Repository: "*", Image: ImageSelector{Type: "tag", Value: "*"}, PolicyID: "strict"},
		},
	}
	b.normalize()
	return b
}

func TestMappings(t *testing.T) {
	tests := []struct {
		name, tag, digest string
		mapping           string
		policies          []string
		final             Action
	}{
		{"registry-specific first", "registry.example.com/prod/api:v1.2", "sha256:x", "prod", []string{"strict", "lenient"}, ActionStop},
		{"regexp tag", "docker.io/library/nginx:v1.25", "sha256:x", "release", []string{"lenient"}, ActionWarn},
		{"regexp anchors at start only", "nginx:v1.25-alpine", "sha256:x", "release", []string{"lenient"}, ActionWarn},
		{"digest", "nginx:latest", "sha256:pinned", "pinned", []string{"quiet"}, ActionGo},
		{"id without prefix", "nginx:latest", "sha256:feed", "by-id", []string{"quiet"}, ActionGo},
		{"glob tag, normalised registry", "team/app:dev-42", "sha256:x", "dev", []string{"quiet"}, ActionGo},
		{"no library/ inserted", "library/team/app:dev-1", "sha256:x", "rest", []string{"strict"}, ActionStop},
		{"catch-all last", "quay.io/other/app:1", "sha256:x", "rest", []string{"strict"}, ActionStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Evaluate(mappingBundle(), Input{Tag: tt.tag, Facts: buildgate.Facts{Digest: tt.digest}}, now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.MappingID != tt.mapping || !slices.Equal(ev.PolicyIDs, tt.policies) || ev.FinalAction != tt.final {
				t.Errorf("mapping %q policies %q final %v; want %q %q %v", ev.MappingID, ev.PolicyIDs, ev.FinalAction, tt.mapping, tt.policies, tt.final)
			}
		})
	}
}

func TestNoMappingIsGo(t *testing.T) {
	b := mappingBundle()
	b.Mappings = b.Mappings[:1]
	ev, err := Evaluate(b, Input{Tag: "nginx"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MappingID != "" || len(ev.PolicyIDs) != 0 || ev.FinalAction != ActionGo || ev.Reason != ReasonPolicyEvaluation || len(ev.Findings) != 0 {
		t.Errorf("evaluation = %+v", ev)
	}
	if ev.Tag != "docker.io/nginx:latest" {
		t.Errorf("tag = %q", ev.Tag)
	}
}

func TestTagFallsBackToFacts(t *testing.T) {
	ev, err := Evaluate(mappingBundle(), Input{Facts: buildgate.Facts{Tags: []string{"registry.example.com/prod/x:1"}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MappingID != "prod" {
		t.Errorf("mapping = %q", ev.MappingID)
	}
	// Without any tag only */* mappings can match.
	ev, err = Evaluate(mappingBundle(), Input{Facts: buildgate.Facts{Digest: "sha256:pinned"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MappingID != "pinned" {
		t.Errorf("mapping without a tag = %q", ev.MappingID)
	}
}

func TestImageLists(t *testing.T) {
	b := mappingBundle()
	b.AllowlistedImages = []ImageRef{
		{Name: "trusted", Registry: "*", Repository: "trusted/*", Image: ImageSelector{Type: "tag", Value: "*"}},
		{Name: "both", Registry: "*", Repository: "both", Image: ImageSelector{Type: "tag", Value: "*"}},
	}
	b.DenylistedImages = []ImageRef{
		{Name: "banned", Registry: "*", Repository: "banned", Image: ImageSelector{Type: "tag", Value: "*"}},
		{Name: "both", Registry: "*", Repository: "both", Image: ImageSelector{Type: "tag", Value: "*"}},
		{Name: "bad digest", Registry: "*", Repository: "*", Image: ImageSelector{Type: "digest", Value: "sha256:bad"}},
	}
	tests := []struct {
		name, tag, digest string
		final             Action
		policyFinal       Action
		reason            Reason
		anchore           string
	}{
		{"allowlisted image goes despite stop", "trusted/app:1", "sha256:x", ActionGo, ActionStop, ReasonAllowlistedImage, "whitelisted"},
		{"denylisted image stops despite go", "banned:1", "sha256:pinned", ActionStop, ActionGo, ReasonDenylistedImage, "blacklisted"},
		{"deny beats allow", "both:1", "sha256:x", ActionStop, ActionStop, ReasonDenylistedImage, "blacklisted"},
		{"by digest", "trusted/app:1", "sha256:bad", ActionStop, ActionStop, ReasonDenylistedImage, "blacklisted"},
		{"neither", "team/app:dev-1", "sha256:x", ActionGo, ActionGo, ReasonPolicyEvaluation, "policy_evaluation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Evaluate(b, Input{Tag: tt.tag, Facts: buildgate.Facts{Digest: tt.digest}}, now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.FinalAction != tt.final || ev.PolicyFinalAction != tt.policyFinal || ev.Reason != tt.reason || ev.Reason.Anchore() != tt.anchore {
				t.Errorf("final %v policy %v reason %v; want %v %v %v", ev.FinalAction, ev.PolicyFinalAction, ev.Reason, tt.final, tt.policyFinal, tt.reason)
			}
			if len(ev.Findings) == 0 {
				t.Error("findings are computed whatever the image lists say")
			}
		})
	}
}

func TestFinalAction(t *testing.T) {
	crit := vm("CVE-1", "a", "deb", buildgate.SeverityCritical)
	med := vm("CVE-2", "b", "deb", buildgate.SeverityMedium)
	tests := []struct {
		name    string
		matches []buildgate.Match
		final   Action
		counts  Counts
	}{
		{"nothing fires", nil, ActionGo, Counts{Go: 1}},
		{"warn only", []buildgate.Match{med}, ActionWarn, Counts{Warn: 1, Go: 1}},
		{"stop wins", []buildgate.Match{med, crit}, ActionStop, Counts{Stop: 1, Warn: 1, Go: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := oneRuleBundle(
				Rule{Gate: "vulnerabilities", Trigger: "package", Action: "WARN", Params: kv("package_type", "all", "severity_comparison", "=", "severity", "medium")},
				Rule{Gate: "vulnerabilities", Trigger: "package", Action: "stop", Params: kv("package_type", "all", "severity", "high")},
				Rule{Gate: "always", Trigger: "always", Action: "Go"},
			)
			ev, err := Evaluate(b, withMatches(tt.matches...), now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.FinalAction != tt.final || ev.Counts() != tt.counts {
				t.Errorf("final %v counts %+v; want %v %+v", ev.FinalAction, ev.Counts(), tt.final, tt.counts)
			}
			if ev.Passed() != (tt.final != ActionStop) || (ev.Status() == "pass") != ev.Passed() {
				t.Errorf("Passed() = %v for %v", ev.Passed(), ev.FinalAction)
			}
		})
	}
}

func TestAllowlists(t *testing.T) {
	expired := now.Add(-time.Hour).Format(time.RFC3339)
	future := now.Add(24 * time.Hour).Format(time.RFC3339)
	in := withMatches(
		vm("CVE-2023-0286", "openssl", "deb", buildgate.SeverityHigh),
		vm("CVE-2022-1", "log4j-core", "java-archive", buildgate.SeverityCritical, func(m *buildgate.Match) { m.PackagePath = "/app/lib/log4j-core-2.14.jar" }),
		vm("GHSA-aaaa", "lodash", "npm", buildgate.SeverityHigh, func(m *buildgate.Match) {
			m.PackagePath = "/app/node_modules/lodash/package.json"
			m.RelatedIDs = []string{"CVE-2021-23337"}
		}),
	)
	in.Facts.Dockerfile = "FROM x\n"
	tests := []struct {
		name  string
		items []AllowlistItem
		// want maps a trigger id prefix to "item id", "expired:<item id>" or "".
		want  map[string]string
		final Action
	}{
		{"nothing allowlisted", nil, map[string]string{"CVE-2023-0286": "", "CVE-2022-1": "", "GHSA-aaaa": ""}, ActionStop},
		{"os item as vuln+name", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2023-0286+openssl", Reason: "not reachable"}},
			map[string]string{"CVE-2023-0286": "i1", "CVE-2022-1": ""}, ActionStop},
		{"wildcard package", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2022-1+*"}},
			map[string]string{"CVE-2022-1": "i1"}, ActionStop},
		{"non-os by file name, Anchore's legacy form", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2022-1+log4j-core-2.14.jar"}},
			map[string]string{"CVE-2022-1": "i1"}, ActionStop},
		{"non-os by path", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2022-1+/app/lib/log4j-core-2.14.jar"}},
			map[string]string{"CVE-2022-1": "i1"}, ActionStop},
		{"npm by directory and alias", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2021-23337+lodash"}},
			map[string]string{"GHSA-aaaa": "i1"}, ActionStop},
		{"wildcard id", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-202*"}},
			map[string]string{"CVE-2023-0286": "i1", "CVE-2022-1": "i1", "GHSA-aaaa": ""}, ActionStop},
		{"regexp id", []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "regexp:(CVE|GHSA)-.*"}},
			map[string]string{"CVE-2023-0286": "i1", "CVE-2022-1": "i1", "GHSA-aaaa": "i1"}, ActionWarn},
		{"gate must match", []AllowlistItem{{ID: "i1", Gate: "dockerfile", TriggerID: "*"}},
			map[string]string{"CVE-2023-0286": ""}, ActionStop},
		{"gate is case-insensitive", []AllowlistItem{{ID: "i1", Gate: "Vulnerabilities", TriggerID: "*"}},
			map[string]string{"CVE-2023-0286": "i1", "CVE-2022-1": "i1", "GHSA-aaaa": "i1"}, ActionWarn},
		{"expired stops applying", []AllowlistItem{{ID: "old", Gate: "vulnerabilities", TriggerID: "*", ExpiresOn: expired}},
			map[string]string{"CVE-2023-0286": "expired:old"}, ActionStop},
		{"unexpired applies", []AllowlistItem{{ID: "new", Gate: "vulnerabilities", TriggerID: "*", ExpiresOn: future}},
			map[string]string{"CVE-2023-0286": "new"}, ActionWarn},
		{"unexpired wins over an earlier expired", []AllowlistItem{
			{ID: "old", Gate: "vulnerabilities", TriggerID: "CVE-2023-0286+openssl", ExpiresOn: expired},
			{ID: "new", Gate: "vulnerabilities", TriggerID: "CVE-2023-0286+*", ExpiresOn: future}},
			map[string]string{"CVE-2023-0286": "new"}, ActionStop},
		{"first item wins", []AllowlistItem{
			{ID: "a", Gate: "vulnerabilities", TriggerID: "*"},
			{ID: "b", Gate: "vulnerabilities", TriggerID: "CVE-2023-0286+openssl"}},
			map[string]string{"CVE-2023-0286": "a"}, ActionWarn},
		{"hash ids", []AllowlistItem{{ID: "hc", Gate: "dockerfile", TriggerID: "41cb7cdf04850e33a11f80c42bf660b3"}},
			map[string]string{"41cb7cdf04850e33a11f80c42bf660b3": "hc"}, ActionStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := oneRuleBundle(
				Rule{Gate: "vulnerabilities", Trigger: "package", Action: "STOP", Params: kv("package_type", "all")},
				Rule{Gate: "dockerfile", Trigger: "instruction", Action: "WARN", Params: kv("instruction", "HEALTHCHECK", "check", "not_exists")},
			)
			b.Allowlists[0].Items = tt.items
			ev, err := Evaluate(b, in, now)
			if err != nil {
				t.Fatal(err)
			}
			for prefix, want := range tt.want {
				var f *Finding
				for i := range ev.Findings {
					if strings.HasPrefix(ev.Findings[i].TriggerID, prefix) {
						f = &ev.Findings[i]
					}
				}
				if f == nil {
					t.Fatalf("no finding %s in %q", prefix, triggerIDs(ev.Findings))
				}
				got := ""
				switch {
				case f.Allowlisted != nil:
					got = f.Allowlisted.ItemID
					if f.Allowlisted.AllowlistID != "wl1" || f.Allowlisted.AllowlistName != "allow one" {
						t.Errorf("allowlist = %+v", f.Allowlisted)
					}
					if f.Effective() != ActionGo {
						t.Errorf("allowlisted finding is effective %v", f.Effective())
					}
				case f.Expired != nil:
					got = "expired:" + f.Expired.ItemID
					if f.Expired.ExpiresOn == nil {
						t.Error("expired item without its expiry")
					}
				}
				if got != want {
					t.Errorf("finding %s: allowlisted by %q, want %q", f.TriggerID, got, want)
				}
			}
			if ev.FinalAction != tt.final {
				t.Errorf("final = %v, want %v", ev.FinalAction, tt.final)
			}
		})
	}
}

func TestAllowlistReasonAndExpiryCarried(t *testing.T) {
	exp := now.Add(48 * time.Hour)
	b := oneRuleBundle(Rule{Gate: "always", Trigger: "always"})
	b.Allowlists[0].Items = []AllowlistItem{{ID: "i", Gate: "always", TriggerID: "always", Reason: "testing the gate", ExpiresOn: exp.Format(time.RFC3339)}}
	ev, err := Evaluate(b, Input{}, now)
	if err != nil {
		t.Fatal(err)
	}
	a := ev.Findings[0].Allowlisted
	if a == nil || a.Reason != "testing the gate" || a.ExpiresOn == nil || !a.ExpiresOn.Equal(exp) {
		t.Fatalf("allowlisted = %+v", a)
	}
	if ev.FinalAction != ActionGo || ev.Counts().Allowlisted != 1 {
		t.Errorf("final %v counts %+v", ev.FinalAction, ev.Counts())
	}
	// At the expiry instant the item no longer applies.
	ev, _ = Evaluate(b, Input{}, exp)
	if ev.Findings[0].Allowlisted != nil || ev.Findings[0].Expired == nil || ev.FinalAction != ActionStop {
		t.Errorf("at expiry: %+v", ev.Findings[0])
	}
}

func TestAllowlistsFromSeveralLists(t *testing.T) {
	b := oneRuleBundle(Rule{Gate: "always", Trigger: "always"})
	b.Allowlists = append(b.Allowlists,
		Allowlist{ID: "wl2", Name: "two", Version: BundleVersion, Items: []AllowlistItem{{ID: "x", Gate: "always", TriggerID: "*"}}})
	b.Mappings[0].AllowlistIDs = []string{"wl1", "wl2"}
	ev, err := Evaluate(b, Input{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if a := ev.Findings[0].Allowlisted; a == nil || a.AllowlistID != "wl2" {
		t.Fatalf("allowlisted = %+v", a)
	}
}

func TestEvaluateInvalidBundle(t *testing.T) {
	b := oneRuleBundle(Rule{Gate: "always", Trigger: "sometimes"})
	if _, err := Evaluate(b, Input{}, now); err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), "sometimes") {
		t.Fatalf("Evaluate(invalid) = %v", err)
	}
	if _, err := Evaluate(nil, Input{}, now); err == nil {
		t.Fatal("Evaluate(nil) succeeded")
	}
}

func TestEvaluationJSON(t *testing.T) {
	in := withMatches(vm("CVE-1", "openssl", "deb", buildgate.SeverityHigh))
	ev, err := Evaluate(oneRuleBundle(Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all")}), in, now)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"final_action":"stop"`, `"reason":"policy_evaluation"`, `"trigger_id":"CVE-1+openssl"`, `"gate":"vulnerabilities"`,
		`"trigger":"package"`, `"action":"stop"`, `"policy_id":"p1"`, `"rule_id":"r1"`, `"vulnerability":{`, `"message":"HIGH Vulnerability`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("evaluation JSON lacks %s: %s", want, out)
		}
	}
	var back Evaluation
	if err := json.Unmarshal(out, &back); err != nil || back.FinalAction != ActionStop {
		t.Errorf("evaluation does not read back: %v %v", err, back.FinalAction)
	}
}

func TestActions(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Action
	}{{"STOP", ActionStop}, {"warn", ActionWarn}, {" Go ", ActionGo}} {
		if got, err := ParseAction(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseAction(%q) = %v, %v", tt.in, got, err)
		}
	}
	if _, err := ParseAction("block"); err == nil {
		t.Error("ParseAction(block) succeeded")
	}
	if !(ActionStop < ActionWarn && ActionWarn < ActionGo) {
		t.Error("actions are not ordered STOP < WARN < GO")
	}
}

// vexByID is a policy.VEX deciding by vulnerability id.
type vexByID map[string]*buildgate.VEXDecision

func (v vexByID) Decide(m *buildgate.Match, _ *buildgate.Package) *buildgate.VEXDecision {
	return v[m.VulnerabilityID]
}

func TestVEX(t *testing.T) {
	in := withMatches(
		vm("CVE-2024-5535", "libssl1.1", "deb", buildgate.SeverityCritical),
		vm("CVE-2023-0286", "openssl", "deb", buildgate.SeverityHigh),
	)
	b := oneRuleBundle(Rule{Gate: "vulnerabilities", Trigger: "package", Action: "STOP", Params: kv("package_type", "all")})
	notAffected := &buildgate.VEXDecision{Source: "VEX document d", Vulnerability: "CVE-2024-5535", Status: buildgate.VEXNotAffected, Justification: "vulnerable_code_not_present"}
	investigating := &buildgate.VEXDecision{Source: "VEX document d", Vulnerability: "CVE-2023-0286", Status: buildgate.VEXUnderInvestigation}
	fixedIt := &buildgate.VEXDecision{Source: "VEX document d", Vulnerability: "CVE-2023-0286", Status: buildgate.VEXFixed}
	for _, tc := range []struct {
		name      string
		vex       vexByID
		waived    []string
		final     Action
		allowlist bool // an allowlist item covers CVE-2024-5535 too
	}{
		{"no statement", vexByID{}, nil, ActionStop, false},
		{"not_affected and under_investigation", vexByID{"CVE-2024-5535": notAffected, "CVE-2023-0286": investigating}, []string{"CVE-2024-5535"}, ActionStop, false},
		{"not_affected and fixed", vexByID{"CVE-2024-5535": notAffected, "CVE-2023-0286": fixedIt}, []string{"CVE-2024-5535", "CVE-2023-0286"}, ActionGo, false},
		{"the allowlist item comes first", vexByID{"CVE-2024-5535": notAffected}, []string{"CVE-2024-5535"}, ActionStop, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.Allowlists[0].Items = nil
			if tc.allowlist {
				b.Allowlists[0].Items = []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-2024-5535+libssl1.1"}}
			}
			in.VEX = tc.vex
			ev, err := Evaluate(b, in, now)
			if err != nil {
				t.Fatal(err)
			}
			var waived []string
			for _, f := range ev.Findings {
				if d := tc.vex[f.Vulnerability.VulnerabilityID]; f.VEX != d {
					t.Errorf("%s: VEX %+v, want %+v", f.TriggerID, f.VEX, d)
				}
				if a := f.Allowlisted; a != nil {
					waived = append(waived, f.Vulnerability.VulnerabilityID)
					if a.VEX != !tc.allowlist || (a.VEX && (a.Reason != f.VEX.Text() || a.AllowlistName != "VEX document d")) {
						t.Errorf("%s: allowlisted %+v", f.TriggerID, a)
					}
				}
			}
			slices.Sort(waived)
			slices.Sort(tc.waived)
			if !slices.Equal(waived, tc.waived) || ev.FinalAction != tc.final {
				t.Errorf("waived %v final %v, want %v %v", waived, ev.FinalAction, tc.waived, tc.final)
			}
		})
	}
}

// TestValidUntil checks that ValidUntil is the first instant at which
// evaluating the same input gives another result: a vulnerability or its
// fix becoming old enough, the DB becoming stale.
func TestValidUntil(t *testing.T) {
	fixed := buildgate.FixStateFixed
	in := Input{
		Facts: buildgate.Facts{Digest: "sha256:aa", Matches: []buildgate.Match{
			{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityOf("high"), PackageName: "a", PackageType: "deb", PublishedAt: daysAgo(9.5)},
			{VulnerabilityID: "CVE-2", Severity: buildgate.SeverityOf("high"), PackageName: "b", PackageType: "deb", PublishedAt: daysAgo(1), FixState: fixed, FixedAt: daysAgo(3.25)},
		}},
		DB: buildgate.DBInfo{Built: *daysAgo(6.75)},
	}
	for _, c := range []struct {
		name  string
		rule  Rule
		after time.Duration // from now
	}{
		{"max_days_since_creation", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "severity_comparison", ">=", "severity", "high", "max_days_since_creation", "10")}, 12 * time.Hour},
		{"max_days_since_fix", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "severity_comparison", ">=", "severity", "high", "fix_available", "true", "max_days_since_fix", "4")}, 18 * time.Hour},
		{"stale_feed_data", Rule{Gate: "vulnerabilities", Trigger: "stale_feed_data", Params: kv("max_days_since_sync", "7")}, 6*time.Hour + time.Nanosecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := oneRuleBundle(c.rule)
			e, err := Evaluate(b, in, now)
			if err != nil {
				t.Fatal(err)
			}
			until := e.ValidUntil()
			if want := now.Add(c.after); !until.Equal(want) {
				t.Fatalf("ValidUntil = %s, want %s", until, want)
			}
			before, err := Evaluate(b, in, until.Add(-time.Nanosecond))
			if err != nil {
				t.Fatal(err)
			}
			after, err := Evaluate(b, in, until)
			if err != nil {
				t.Fatal(err)
			}
			if len(before.Findings) != len(e.Findings) || len(after.Findings) == len(e.Findings) {
				t.Fatalf("findings: %d at the evaluation, %d just before ValidUntil, %d at it", len(e.Findings), len(before.Findings), len(after.Findings))
			}
		})
	}
}
