package report

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// FindingsTable writes an evaluation's findings for people reading a CI
// job log, one a row in columns aligned with text/tabwriter: severity,
// vulnerability id, package, installed version, fixed-in versions, "new"
// or "inherited" when the evaluation has a baseline, and the action under
// failOn (the step's --fail-on). Rows come in report order: STOP, then
// inherited STOP (under --fail-on new), WARN, allowlisted, waived and GO
// findings, new before inherited, by descending severity within each. A finding
// without a vulnerability shows its gate and trigger as its id. At most
// max rows are written (all when max <= 0); FindingsTable returns how
// many findings it left out. The table is written with one Write, so that
// lines of concurrent steps do not cut through it. An evaluation without
// findings writes nothing.
func FindingsTable(w io.Writer, e *policy.Evaluation, failOn policy.Action, max int) (left int, err error) {
	fs := sortedFindings(e, failOn)
	if len(fs) == 0 {
		return 0, nil
	}
	if max > 0 && len(fs) > max {
		left = len(fs) - max
		fs = fs[:max]
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	header := []string{"SEVERITY", "VULNERABILITY", "PACKAGE", "INSTALLED", "FIXED IN", "ACTION"}
	if e.Baseline != nil {
		header = slices.Insert(header, 5, "BASELINE")
	}
	fmt.Fprint(tw, "  "+strings.Join(header, "\t")+"\n")
	for _, f := range fs {
		cells := []string{"-", f.Gate + "/" + f.Trigger, "-", "-", "-", tableAction(e, failOn, f)}
		if v := f.Vulnerability; v != nil {
			cells[0] = v.Severity.String()
			cells[1] = v.VulnerabilityID
			cells[2] = v.PackageName
			cells[3] = v.PackageVersion
			cells[4] = fixedIn(v)
		} else if p := f.Package; p != nil {
			cells[2], cells[3] = p.Name, p.Version
		}
		if w := baselineWord(e, f); w != "" {
			cells = slices.Insert(cells, 5, w)
		}
		for i, c := range cells {
			cells[i] = tableCell(c)
		}
		fmt.Fprint(tw, "  "+strings.Join(cells, "\t")+"\n")
	}
	tw.Flush()
	_, err = w.Write(buf.Bytes())
	return left, err
}

// tableAction is a finding's action column: STOP, WARN or GO, or what
// kept it from counting.
func tableAction(e *policy.Evaluation, failOn policy.Action, f *policy.Finding) string {
	switch outcomeOf(e, failOn, f) {
	case outInherited:
		return "not counted (STOP)"
	case outAllowlisted:
		return "allowlisted"
	case outWaived:
		return "waived (" + actionWord(f.Action) + ")"
	}
	return actionWord(f.Action)
}

// fixedIn says which versions fix a match, or that none does.
func fixedIn(m *buildgate.Match) string {
	switch m.FixState {
	case buildgate.FixStateFixed:
		if vs := fixVersions(m); len(vs) > 0 {
			return strings.Join(vs, ", ")
		}
	case buildgate.FixStateNotFixed:
		return "not fixed"
	case buildgate.FixStateWontFix:
		return "won't fix"
	}
	return "-"
}

// tableCell makes a value one cell: control characters (tabs, line
// ends) become spaces, an empty value "-", and a long one is cut.
func tableCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if s == "" {
		return "-"
	}
	return truncate(s, 60)
}
