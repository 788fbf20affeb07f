package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

func vulnFinding(action policy.Action, id string, sev buildgate.Severity, pkg, version string, fix ...string) policy.Finding {
	m := &buildgate.Match{VulnerabilityID: id, Severity: sev, PackageName: pkg, PackageVersion: version, PackageType: "deb", FixState: buildgate.FixStateNotFixed}
	if len(fix) > 0 {
		m.FixState, m.FixVersions = buildgate.FixStateFixed, fix
	}
	return policy.Finding{TriggerID: id + "+" + pkg, Gate: "vulnerabilities", Trigger: "package", Action: action, Vulnerability: m}
}

func TestFindingsTable(t *testing.T) {
	e := &policy.Evaluation{FinalAction: policy.ActionStop, Reason: policy.ReasonPolicyEvaluation, Findings: []policy.Finding{
		vulnFinding(policy.ActionGo, "CVE-2020-0001", buildgate.SeverityLow, "tar", "1.34+dfsg-1"),
		vulnFinding(policy.ActionWarn, "CVE-2022-0002", buildgate.SeverityMedium, "zlib1g", "1:1.2.11.dfsg-2", "1:1.2.11.dfsg-2+deb11u2"),
		vulnFinding(policy.ActionStop, "CVE-2024-5535", buildgate.SeverityCritical, "libssl1.1", "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u2"),
		vulnFinding(policy.ActionStop, "CVE-2023-0003", buildgate.SeverityHigh, "libc6", "2.31-13"),
		{TriggerID: "t1", Gate: "dockerfile", Trigger: "exposed_ports", Action: policy.ActionStop, Message: "port 22\tis exposed"},
	}}
	allowed := vulnFinding(policy.ActionStop, "CVE-2023-0004", buildgate.SeverityHigh, "bash\tx", "5.1-2")
	allowed.Allowlisted = &policy.AllowlistMatch{AllowlistID: "a", ItemID: "i"}
	e.Findings = append(e.Findings, allowed)

	var b strings.Builder
	left, err := FindingsTable(&b, e, policy.ActionStop, 0)
	if err != nil || left != 0 {
		t.Fatalf("left %d, err %v", left, err)
	}
	t.Logf("\n%s", b.String())
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := [][]string{
		{"SEVERITY", "VULNERABILITY", "PACKAGE", "INSTALLED", "FIXED IN", "ACTION"},
		{"-", "dockerfile/exposed_ports", "-", "-", "-", "STOP"},
		{"Critical", "CVE-2024-5535", "libssl1.1", "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u2", "STOP"},
		{"High", "CVE-2023-0003", "libc6", "2.31-13", "not fixed", "STOP"},
		{"Medium", "CVE-2022-0002", "zlib1g", "1:1.2.11.dfsg-2", "1:1.2.11.dfsg-2+deb11u2", "WARN"},
		{"High", "CVE-2023-0004", "bash x", "5.1-2", "not fixed", "allowlisted"},
		{"Low", "CVE-2020-0001", "tar", "1.34+dfsg-1", "not fixed", "GO"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	// Columns are aligned: each cell starts where the header's does.
	var starts []int
	for _, h := range want[0] {
		starts = append(starts, strings.Index(lines[0], h))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "  ") || strings.Contains(l, "\t") {
			t.Errorf("line %d %q is not indented or holds a tab", i, l)
		}
		for j, cell := range want[i] {
			if got := l[starts[j]:]; !strings.HasPrefix(got, cell) || (j > 0 && l[starts[j]-1] != ' ') {
				t.Errorf("line %d column %d: %q, want %q at offset %d", i, j, got, cell, starts[j])
			}
		}
	}

	// Cut at max rows: the first rows, the count of the rest.
	b.Reset()
	left, err = FindingsTable(&b, e, policy.ActionStop, 2)
	if err != nil || left != len(e.Findings)-2 {
		t.Fatalf("left %d, err %v; want %d", left, err, len(e.Findings)-2)
	}
	if n := strings.Count(b.String(), "\n"); n != 3 || !strings.Contains(b.String(), "CVE-2024-5535") || strings.Contains(b.String(), "CVE-2023-0003") {
		t.Errorf("cut table:\n%s", b.String())
	}
}

func TestFindingsTableWaivedAndEmpty(t *testing.T) {
	e := &policy.Evaluation{FinalAction: policy.ActionGo, Reason: policy.ReasonAllowlistedImage, Findings: []policy.Finding{
		vulnFinding(policy.ActionStop, "CVE-2024-5535", buildgate.SeverityCritical, "libssl1.1", "1.1.1n-0+deb11u5"),
	}}
	var b strings.Builder
	if _, err := FindingsTable(&b, e, policy.ActionStop, 50); err != nil || !strings.Contains(b.String(), "waived (STOP)") {
		t.Errorf("err %v, table:\n%s", err, b.String())
	}
	b.Reset()
	if left, err := FindingsTable(&b, &policy.Evaluation{}, policy.ActionStop, 50); left != 0 || err != nil || b.Len() != 0 {
		t.Errorf("no findings: left %d, err %v, %q", left, err, b.String())
	}
}

func TestFindingsTableOneWrite(t *testing.T) {
	e := &policy.Evaluation{FinalAction: policy.ActionStop}
	for i := range 120 {
		e.Findings = append(e.Findings, vulnFinding(policy.ActionStop, fmt.Sprintf("CVE-2024-%04d", i), buildgate.SeverityHigh, "pkg", "1"))
	}
	w := &countingWriter{}
	left, err := FindingsTable(w, e, policy.ActionStop, 50)
	if err != nil || left != 70 || w.writes != 1 {
		t.Errorf("left %d, err %v, %d writes; want 70 left in 1 write", left, err, w.writes)
	}
}

type countingWriter struct{ writes int }

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return len(p), nil }
