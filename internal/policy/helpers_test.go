package policy

import (
	"flag"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
)

var update = flag.Bool("update", false, "rewrite golden files and examples/policies/default.json")

// now is the time every test evaluates at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(n float64) *time.Time {
	t := now.Add(-time.Duration(n * float64(24*time.Hour)))
	return &t
}

func f64(v float64) *float64 { return &v }

// kv turns "name", "value", ... into params.
func kv(pairs ...string) []Param {
	ps := []Param{}
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, Param{Name: pairs[i], Value: pairs[i+1]})
	}
	return ps
}

// oneRuleBundle is a valid bundle with one policy "p1" holding rules,
// mapped to every image with the (empty) allowlist "wl1".
func oneRuleBundle(rules ...Rule) *Bundle {
	for i := range rules {
		if rules[i].ID == "" {
			rules[i].ID = "r" + string(rune('1'+i))
		}
		if rules[i].Action == "" {
			rules[i].Action = "STOP"
		}
	}
	b := &Bundle{
		ID: "b1", Name: "test", Version: BundleVersion,
		Policies:   []Policy{{ID: "p1", Name: "policy one", Version: BundleVersion, Rules: rules}},
		Allowlists: []Allowlist{{ID: "wl1", Name: "allow one", Version: BundleVersion}},
		Mappings: []Mapping{{ID: "m1", Name: "all", Registry: "*", Repository: "*",
			Image: ImageSelector{Type: "tag", Value: "*"}, PolicyID: "p1", AllowlistIDs: []string{"wl1"}}},
	}
	b.normalize()
	return b
}

// fire evaluates one rule of gate/trigger with params against in and
// returns its findings.
func fire(t *testing.T, gate, trigger string, params []Param, in Input) []Finding {
	t.Helper()
	if in.Tag == "" {
		in.Tag = "docker.io/library/app:1.0"
	}
	b := oneRuleBundle(Rule{Gate: gate, Trigger: trigger, Params: params})
	ev, err := Evaluate(b, in, now)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return ev.Findings
}

func messages(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Message)
	}
	return out
}

func triggerIDs(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.TriggerID)
	}
	return out
}

// vm makes a match; opts adjust it.
func vm(id, pkg, typ string, sev buildgate.Severity, opts ...func(*buildgate.Match)) buildgate.Match {
	m := buildgate.Match{
		VulnerabilityID: id, Severity: sev,
		PackageName: pkg, PackageVersion: "1.0", PackageType: typ,
		FixState: buildgate.FixStateNotFixed,
		URLs:     []string{"https://example.test/" + id},
	}
	if !buildgate.IsOSType(typ) {
		m.PackagePath = "/app/lib/" + pkg + ".jar"
	}
	for _, o := range opts {
		o(&m)
	}
	return m
}

func fixed(versions ...string) func(*buildgate.Match) {
	return func(m *buildgate.Match) { m.FixState, m.FixVersions = buildgate.FixStateFixed, versions }
}

func wontFix(m *buildgate.Match) { m.FixState = buildgate.FixStateWontFix }

func published(t *time.Time) func(*buildgate.Match) {
	return func(m *buildgate.Match) { m.PublishedAt = t }
}

func fixedAt(t *time.Time) func(*buildgate.Match) { return func(m *buildgate.Match) { m.FixedAt = t } }

func cvss(entries ...buildgate.CVSS) func(*buildgate.Match) {
	return func(m *buildgate.Match) { m.CVSS = append(m.CVSS, entries...) }
}

func withMatches(ms ...buildgate.Match) Input {
	return Input{Facts: buildgate.Facts{Digest: "sha256:aaa", Matches: ms}}
}
