package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// MarkdownMarker is the hidden comment that starts every Markdown report,
// so a CI step can find its earlier pull-request comment and update it.
const MarkdownMarker = "<!-- buildgate-report -->"

// markdownMaxRows caps each findings table.
const markdownMaxRows = 50

// Headlines of the Markdown report, by verdict.
var headlines = map[policy.Action]string{
	policy.ActionStop: "**STOP** — build fails",
	policy.ActionWarn: "**WARN** — build passes with warnings",
	policy.ActionGo:   "**GO** — build passes",
}

// headline is the Markdown headline: the verdict and what it does to the
// build under failOn, as ExitCode decides.
func headline(e *policy.Evaluation, failOn policy.Action) string {
	a := clampAction(e.FinalAction)
	fails := ExitCode(e, failOn) == ExitFail
	switch {
	case fails && failOn == FailOnNew:
		return "**STOP** — build fails (--fail-on new)"
	case fails == (a == policy.ActionStop):
		return headlines[a]
	case fails:
		return "**" + actionWord(a) + "** — build fails (--fail-on " + failOnWord(failOn) + ")"
	case failOn == FailOnNew:
		return "**STOP** — build passes (--fail-on new: no new STOP finding)"
	}
	return "**STOP** — build passes (--fail-on " + failOnWord(failOn) + ": report only)"
}

// failOnWord names a failOn of ExitCode as the step's flag takes it.
func failOnWord(failOn policy.Action) string {
	switch failOn {
	case FailOnNone:
		return "none"
	case FailOnNew:
		return "new"
	}
	return failOn.String()
}

// Markdown writes a summary for a pull-request comment or a CI job
// summary: the marker comment, a headline with the verdict, the image,
// bundle and DB, counts by action and by severity, tables of STOP and WARN
// findings (at most 50 rows each, then "and N more"), allowlisted findings
// with reason and expiry, findings whose allowlist item expired, and a link
// to the image on the gate.
//
// Findings are grouped as Evaluation.Counts counts them: by their rule's
// action, allowlisted ones apart. The severity table counts findings with
// a vulnerability, and every match of the image in its last column.
func Markdown(w io.Writer, in Input) error {
	e := in.Evaluation
	if e == nil {
		return errNoEvaluation(FormatMarkdown)
	}
	var b strings.Builder
	b.WriteString(MarkdownMarker + "\n")
	fmt.Fprintf(&b, "## buildgate: %s\n\n", headline(e, in.FailOn))

	switch e.Reason {
	case policy.ReasonDenylistedImage:
		if ExitCode(e, in.FailOn) == ExitFail {
			b.WriteString(upperFirst(imageFailure(e, in.FailOn)) + ": the build fails whatever the findings.\n\n")
		} else {
			b.WriteString(upperFirst(imageFailure(e, in.FailOn)) + ": the verdict is STOP whatever the findings.\n\n")
		}
	case policy.ReasonAllowlistedImage:
		b.WriteString(upperFirst(waiver(e)) + ": the build passes whatever the findings; they are listed for information.\n\n")
	}

	fmt.Fprintf(&b, "- **Image:** %s\n", mdCode(in.ref()))
	if d := in.digest(); d != "" && d != in.ref() {
		fmt.Fprintf(&b, "- **Digest:** %s\n", mdCode(d))
	}
	if p := platform(&in); p != "" {
		fmt.Fprintf(&b, "- **Platform:** %s\n", mdText(p))
	}
	bundle := mdText(cmp.Or(e.BundleName, e.BundleID, "none"))
	if e.BundleID != "" && e.BundleName != "" {
		bundle += " (" + mdCode(e.BundleID) + ")"
	}
	if e.MappingID != "" {
		bundle += ", mapping " + mdText(cmp.Or(e.MappingName, e.MappingID))
	} else {
		bundle += ", no mapping matched"
	}
	fmt.Fprintf(&b, "- **Bundle:** %s\n", bundle)
	fmt.Fprintf(&b, "- **Vulnerability DB built:** %s\n", mdTime(in.DB.Built))
	fmt.Fprintf(&b, "- **Evaluated:** %s\n", mdTime(e.EvaluatedAt))
	if in.Image.Dockerfile != "" {
		fmt.Fprintf(&b, "- **Dockerfile:** %s\n", mdCode(cmp.Or(in.Image.DockerfilePath, "Dockerfile")))
	}
	if bl := e.Baseline; bl != nil {
		n := countNew(e)
		fmt.Fprintf(&b, "- **Baseline:** %s — %d new, %d inherited findings\n", mdCode(bl.Name()), n, len(e.Findings)-n)
	}
	b.WriteString("\n")

	c := e.Counts()
	b.WriteString("### Findings by action\n\n")
	b.WriteString("| Action | Findings |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| STOP | %d |\n| WARN | %d |\n| GO | %d |\n| Allowlisted | %d |\n", c.Stop, c.Warn, c.Go, c.Allowlisted)
	fmt.Fprintf(&b, "| Total | %d |\n\n", len(e.Findings))

	var stop, warn, gos, allow severityCounts
	var stopF, inheritedF, warnF, allowF, expiredF []*policy.Finding
	for i := range e.Findings {
		f := &e.Findings[i]
		var sc *severityCounts
		switch {
		case f.Allowlisted != nil:
			sc, allowF = &allow, append(allowF, f)
		case f.Action == policy.ActionStop && !e.IsNew(f):
			sc, inheritedF = &stop, append(inheritedF, f)
		case f.Action == policy.ActionStop:
			sc, stopF = &stop, append(stopF, f)
		case f.Action == policy.ActionWarn:
			sc, warnF = &warn, append(warnF, f)
		default:
			sc = &gos
		}
		if f.Vulnerability != nil {
			sc.add(f.Vulnerability.Severity)
		}
		if f.Expired != nil && f.Allowlisted == nil {
			expiredF = append(expiredF, f)
		}
	}
	inImage := matchCounts(in.Matches)
	b.WriteString("### Vulnerabilities by severity\n\n")
	b.WriteString("| Severity | STOP | WARN | GO | Allowlisted | In image |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	sevs := buildgate.Severities()
	slices.Reverse(sevs)
	for _, s := range sevs {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", s, stop[s], warn[s], gos[s], allow[s], inImage[s])
	}
	fmt.Fprintf(&b, "| Total | %d | %d | %d | %d | %d |\n\n", stop.total(), warn.total(), gos.total(), allow.total(), inImage.total())

	notApplied := ""
	if e.Reason == policy.ReasonAllowlistedImage {
		notApplied = " — not applied, the image is allowlisted"
	}
	stopTitle, inheritedNote := "STOP findings", notApplied
	if e.Baseline != nil {
		stopTitle = "New STOP findings"
		if in.FailOn == FailOnNew && notApplied == "" {
			inheritedNote = " — not counted under --fail-on new"
		}
	}
	findingsTable(&b, &in, stopTitle, notApplied, stopF)
	findingsTable(&b, &in, "Inherited STOP findings", inheritedNote, inheritedF)
	findingsTable(&b, &in, "WARN findings", notApplied, warnF)
	allowlistTable(&b, &in, "Allowlisted findings", "allowlisted findings", "Expires", allowF, func(f *policy.Finding) *policy.AllowlistMatch { return f.Allowlisted })
	allowlistTable(&b, &in, "Findings whose allowlist item expired", "such findings", "Expired", expiredF, func(f *policy.Finding) *policy.AllowlistMatch { return f.Expired })

	if in.GateURL != "" {
		fmt.Fprintf(&b, "[View the image on the gate](%s)\n\n", mdURL(in.GateURL))
	}
	gen := in.scannerName()
	if v := in.scannerVersion(); v != "" {
		gen += " " + v
	}
	fmt.Fprintf(&b, "<sub>Generated by %s.</sub>\n", mdText(gen))
	return write(w, []byte(b.String()), FormatMarkdown)
}

// findingsTable writes a capped table of findings.
func findingsTable(b *strings.Builder, in *Input, title, note string, fs []*policy.Finding) {
	if len(fs) == 0 {
		return
	}
	slices.SortStableFunc(fs, compareFindings)
	fmt.Fprintf(b, "### %s (%d)%s\n\n", title, len(fs), note)
	e := in.Evaluation
	if e.Baseline != nil {
		b.WriteString("| Gate | Trigger | Severity | Finding | Fixed in | Baseline |\n| --- | --- | --- | --- | --- | --- |\n")
	} else {
		b.WriteString("| Gate | Trigger | Severity | Finding | Fixed in |\n| --- | --- | --- | --- | --- |\n")
	}
	for _, f := range fs[:min(len(fs), markdownMaxRows)] {
		sev, fix := "", ""
		if v := f.Vulnerability; v != nil {
			sev = v.Severity.String()
			fix = strings.Join(fixVersions(v), ", ")
		}
		finding := mdFinding(f)
		if f.Expired != nil {
			finding += "<br>" + mdCell("allowlist "+expiredText(f.Expired))
		}
		if n := vexNote(f); n != "" {
			finding += "<br>" + mdCell(n)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |", mdCell(f.Gate), mdCell(f.Trigger), mdCell(sev), finding, mdCell(fix))
		if w := baselineWord(e, f); w != "" {
			fmt.Fprintf(b, " %s |", w)
		}
		b.WriteString("\n")
	}
	moreRows(b, in, len(fs), title)
	b.WriteString("\n")
}

// allowlistTable writes a capped table of findings with their allowlist
// item.
func allowlistTable(b *strings.Builder, in *Input, title, what, when string, fs []*policy.Finding, item func(*policy.Finding) *policy.AllowlistMatch) {
	if len(fs) == 0 {
		return
	}
	slices.SortStableFunc(fs, compareFindings)
	fmt.Fprintf(b, "### %s (%d)\n\n", mdText(title), len(fs))
	fmt.Fprintf(b, "| Gate | Trigger | Action | Finding | Allowlist item | Reason | %s |\n| --- | --- | --- | --- | --- | --- | --- |\n", when)
	for _, f := range fs[:min(len(fs), markdownMaxRows)] {
		m := item(f)
		exp := "never"
		if m.ExpiresOn != nil {
			exp = m.ExpiresOn.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n",
			mdCell(f.Gate), mdCell(f.Trigger), actionWord(f.Action), mdFinding(f),
			mdCell(cmp.Or(m.AllowlistName, m.AllowlistID)+" / "+m.ItemID), mdCell(m.Reason), exp)
	}
	moreRows(b, in, len(fs), what)
	b.WriteString("\n")
}

func moreRows(b *strings.Builder, in *Input, n int, what string) {
	if n <= markdownMaxRows {
		return
	}
	fmt.Fprintf(b, "\n…and %d more %s", n-markdownMaxRows, what)
	if in.GateURL != "" {
		fmt.Fprintf(b, ": see [the gate](%s)", mdURL(in.GateURL))
	}
	b.WriteString(".\n")
}

// mdFinding is a table cell naming a finding: the vulnerability (linked)
// and its package, else the message.
func mdFinding(f *policy.Finding) string {
	v := f.Vulnerability
	if v == nil {
		return mdCell(cmp.Or(f.Message, f.TriggerID))
	}
	id := mdCell(v.VulnerabilityID)
	if u := vulnURL(v); u != "" {
		id = "[" + id + "](" + mdURL(u) + ")"
	}
	return id + " in " + mdCell(packageLabel(v))
}

// clampAction maps out-of-range actions to STOP, as Action.String does.
func clampAction(a policy.Action) policy.Action {
	if a < policy.ActionStop || a > policy.ActionGo {
		return policy.ActionStop
	}
	return a
}

func platform(in *Input) string {
	var parts []string
	if in.Image.OS != "" || in.Image.Arch != "" {
		parts = append(parts, strings.Trim(in.Image.OS+"/"+in.Image.Arch, "/"))
	}
	if d := strings.TrimSpace(in.Image.Distro + " " + in.Image.DistroVersion); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, ", ")
}

func mdTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// mdCell escapes text for a table cell: pipes, newlines and HTML.
func mdCell(s string) string {
	s = mdText(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "<br>")
}

// mdText escapes the characters that would start HTML.
func mdText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// mdCode writes s as a code span, one line, with a fence longer than any
// run of backticks in it.
func mdCode(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`).Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || len(fence) > 1 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// mdURL makes a URL safe inside a Markdown link in a table.
func mdURL(u string) string {
	return strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "|", "%7C", "<", "%3C", ">", "%3E").Replace(strings.TrimSpace(u))
}
