package report

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// bigEvaluation is a STOP evaluation with n findings: a third STOP, a
// third WARN, a third allowlisted, each on its own vulnerability id,
// interleaved so truncation must reorder them.
func bigEvaluation(t testing.TB, n int) Input {
	in := stopCase(t)
	e := *in.Evaluation
	e.Findings = make([]policy.Finding, 0, n)
	e.FinalAction, e.PolicyFinalAction, e.Reason = policy.ActionStop, policy.ActionStop, policy.ReasonPolicyEvaluation
	for i := range n {
		m := buildgate.Match{
			VulnerabilityID: fmt.Sprintf("CVE-2025-%05d", i), Severity: buildgate.Severity(i % 6),
			Description: "A synthetic vulnerability used to test truncation of large reports.",
			PackageName: fmt.Sprintf("pkg%d", i%500), PackageVersion: "1.0", PackageType: "deb",
			FixState: buildgate.FixStateFixed, FixVersions: []string{"1.1"},
		}
		f := policy.Finding{
			TriggerID: m.VulnerabilityID + "+" + m.PackageName, Gate: "vulnerabilities", Trigger: "package",
			Message:  "HIGH Vulnerability found in os package type (dpkg) - " + m.PackageName + " (" + m.VulnerabilityID + ")",
			PolicyID: "p", RuleID: "r", Vulnerability: &m,
		}
		switch i % 3 {
		case 0:
			f.Action = policy.ActionWarn
		case 1:
			f.Action = policy.ActionStop
			f.Allowlisted = &policy.AllowlistMatch{AllowlistID: "wl", ItemID: "i", Reason: "accepted"}
		default:
			f.Action = policy.ActionStop
		}
		e.Findings = append(e.Findings, f)
	}
	in.Evaluation = &e
	in.Matches = nil
	return in
}

func TestSARIFTruncation(t *testing.T) {
	const n = 30000
	in := bigEvaluation(t, n)
	data := render(t, FormatSARIF, in)
	validateSARIF(t, data)
	d := parseSARIF(t, data)
	run := d.Runs[0]
	p := run.Properties
	if !p.Truncated || p.ResultsTotal != n || p.ResultsKept != sarifMaxResults || p.ResultsDropped != n-sarifMaxResults {
		t.Fatalf("run properties: truncated %v, total %d, kept %d, dropped %d", p.Truncated, p.ResultsTotal, p.ResultsKept, p.ResultsDropped)
	}
	if len(run.Results) != sarifMaxResults {
		t.Fatalf("%d results, want %d", len(run.Results), sarifMaxResults)
	}
	levels := d.levels()
	if levels["error"] != n/3 || levels["warning"] != n/3 || levels["note"] != sarifMaxResults-2*n/3 {
		t.Errorf("kept levels %v: want every STOP and WARN, then allowlisted", levels)
	}
	// Priority order: all errors, then warnings, then notes.
	rank := map[string]int{"error": 0, "warning": 1, "note": 2}
	for i := 1; i < len(run.Results); i++ {
		if rank[run.Results[i].Level] < rank[run.Results[i-1].Level] {
			t.Fatalf("result %d (%s) after a %s", i, run.Results[i].Level, run.Results[i-1].Level)
		}
	}
	// Rules are those of the kept results only.
	used := map[string]bool{}
	for _, r := range run.Results {
		used[r.RuleID] = true
	}
	if len(run.Tool.Driver.Rules) != len(used) {
		t.Errorf("%d rules for %d used rule ids", len(run.Tool.Driver.Rules), len(used))
	}
	if size := gzipped(t, data); size >= sarifMaxGzipBytes {
		t.Errorf("gzipped SARIF is %d bytes, limit %d", size, sarifMaxGzipBytes)
	}
}

// TestSARIFGzipLimit lowers the gzip limit so the size, not the count,
// forces truncation.
func TestSARIFGzipLimit(t *testing.T) {
	defer func(n int) { sarifMaxGzipBytes = n }(sarifMaxGzipBytes)
	sarifMaxGzipBytes = 200_000
	in := bigEvaluation(t, 3000)
	data := render(t, FormatSARIF, in)
	validateSARIF(t, data)
	if size := gzipped(t, data); size > sarifMaxGzipBytes {
		t.Fatalf("gzipped SARIF is %d bytes, limit %d", size, sarifMaxGzipBytes)
	}
	d := parseSARIF(t, data)
	p := d.Runs[0].Properties
	if !p.Truncated || p.ResultsKept >= 3000 || p.ResultsKept+p.ResultsDropped != 3000 {
		t.Fatalf("run properties: truncated %v, kept %d, dropped %d", p.Truncated, p.ResultsKept, p.ResultsDropped)
	}
	if lv := d.levels(); lv["error"] == 0 || (lv["note"] > 0 && lv["warning"] < 1000) || (lv["warning"] > 0 && lv["error"] < 1000) {
		t.Errorf("kept levels %v: STOP must be kept first, then WARN", lv)
	}
}

func gzipped(t *testing.T, data []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}
