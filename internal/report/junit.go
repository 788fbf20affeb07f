package report

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate/internal/policy"
)

// ImageTestName is the JUnit test case every report holds, in the suite
// named "buildgate", so that a clean image is never an empty report. It
// fails when the image is denylisted.
const ImageTestName = "image analysed and evaluated"

// junitSuiteName is the suite of the image test case.
const junitSuiteName = "buildgate"

// The JUnit document, as junit-10.xsd (Jenkins xUnit) describes it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr,omitempty"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitSkipped marks a finding an allowlist item or VEX statement waived.
type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",innerxml"`
}

// junitText is element text escaped by xmlText, so line breaks stay
// readable instead of becoming &#xA;.
type junitText struct {
	Text string `xml:",innerxml"`
}

func systemOut(s string) *junitText { return &junitText{Text: xmlText(s)} }

// xmlText escapes text content: &, < and >, carriage returns, and
// characters XML 1.0 cannot hold (replaced by U+FFFD).
func xmlText(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			sb.WriteString("&amp;")
		case r == '<':
			sb.WriteString("&lt;")
		case r == '>':
			sb.WriteString("&gt;")
		case r == '\r':
			sb.WriteString("&#xD;")
		case r == '\n' || r == '\t':
			sb.WriteRune(r)
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			sb.WriteRune('\uFFFD')
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// JUnit writes the evaluation as JUnit XML: a <testsuites> holding the
// suite "buildgate" with the test case "image analysed and evaluated",
// then one suite per gate (sorted by name) with a test case per finding.
// A finding that fails the build is a <failure>; WARN, GO, allowlisted
// and waived findings pass, with their message and any allowlist reason
// and expiry in <system-out>.
func JUnit(w io.Writer, in Input) error {
	e := in.Evaluation
	if e == nil {
		return errNoEvaluation(FormatJUnit)
	}
	doc := junitSuites{Name: "buildgate"}
	if d := in.Scanner.EndTime.Sub(in.Scanner.StartTime); !in.Scanner.StartTime.IsZero() && !in.Scanner.EndTime.IsZero() && d >= 0 {
		doc.Time = strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	}
	stamp := ""
	if !e.EvaluatedAt.IsZero() {
		stamp = e.EvaluatedAt.UTC().Format("2006-01-02T15:04:05")
	}

	imageCase := junitCase{Name: ImageTestName, Classname: junitSuiteName, SystemOut: systemOut(imageSummary(&in))}
	if why := imageFailure(e, in.FailOn); why != "" {
		imageCase.Failure = &junitFailure{Type: "STOP", Message: why, Text: xmlText(imageSummary(&in))}
		imageCase.SystemOut = nil
	}
	suites := []junitSuite{{
		Name: junitSuiteName, Timestamp: stamp,
		Properties: &junitProperties{Props: junitProps(&in)},
		Cases:      []junitCase{imageCase},
	}}

	byGate := map[string][]junitCase{}
	for _, f := range sortedFindings(e, in.FailOn) {
		byGate[f.Gate] = append(byGate[f.Gate], junitFindingCase(&in, f))
	}
	gates := make([]string, 0, len(byGate))
	for g := range byGate {
		gates = append(gates, g)
	}
	slices.Sort(gates)
	for _, g := range gates {
		suites = append(suites, junitSuite{Name: cmp.Or(g, "(no gate)"), Timestamp: stamp, Cases: byGate[g]})
	}

	for i := range suites {
		s := &suites[i]
		s.Tests = len(s.Cases)
		for _, c := range s.Cases {
			if c.Failure != nil {
				s.Failures++
			}
			if c.Skipped != nil {
				s.Skipped++
			}
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
	}
	doc.Suites = suites

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding junit report: %w", err)
	}
	buf.WriteByte('\n')
	return write(w, buf.Bytes(), FormatJUnit)
}

// junitFindingCase is a finding's test case.
func junitFindingCase(in *Input, f *policy.Finding) junitCase {
	e := in.Evaluation
	c := junitCase{
		Name:      junitCaseName(f),
		Classname: "buildgate." + f.Gate + "." + f.Trigger,
	}
	details := findingDetails(f)
	if w := baselineWord(e, f); w != "" {
		details += "baseline: " + w + "\n"
	}
	switch outcomeOf(e, in.FailOn, f) {
	case outStop:
		c.Failure = &junitFailure{Type: "STOP", Message: f.Message, Text: xmlText(details)}
	case outWarn:
		c.SystemOut = systemOut("WARN: " + f.Message + "\n" + details)
	case outGo:
		c.SystemOut = systemOut("GO: " + f.Message + "\n" + details)
	case outInherited:
		c.SystemOut = systemOut("STOP " + inheritance(e) + ": " + f.Message + "\n" + details)
	case outAllowlisted:
		c.Skipped = &junitSkipped{Message: "allowlisted by " + allowlistText(f.Allowlisted)}
		c.SystemOut = systemOut("ALLOWLISTED (" + actionWord(f.Action) + " waived): " + f.Message + "\n" +
			"allowlisted by " + allowlistText(f.Allowlisted) + "\n" + details)
	case outWaived:
		c.SystemOut = systemOut(actionWord(f.Action) + " waived (" + waiver(e) + "): " + f.Message + "\n" + details)
	}
	return c
}

// junitCaseName names a finding's test case: the vulnerability and its
// package for vulnerability findings, else the message.
func junitCaseName(f *policy.Finding) string {
	if v := f.Vulnerability; v != nil {
		return v.VulnerabilityID + " in " + packageLabel(v)
	}
	return cmp.Or(f.Message, f.TriggerID)
}

// findingDetails lists a finding's facts, one per line.
func findingDetails(f *policy.Finding) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "gate: %s, trigger: %s, rule action: %s\n", f.Gate, f.Trigger, actionWord(f.Action))
	fmt.Fprintf(&sb, "policy: %s, rule: %s\n", f.PolicyID, f.RuleID)
	fmt.Fprintf(&sb, "trigger id: %s\n", f.TriggerID)
	if v := f.Vulnerability; v != nil {
		fmt.Fprintf(&sb, "vulnerability: %s (%s) in %s\n", v.VulnerabilityID, v.Severity, packageLabel(v))
		if fv := fixVersions(v); len(fv) > 0 {
			fmt.Fprintf(&sb, "fixed in: %s\n", strings.Join(fv, ", "))
		}
		if u := vulnURL(v); u != "" {
			fmt.Fprintf(&sb, "url: %s\n", u)
		}
	} else if p := f.Package; p != nil {
		fmt.Fprintf(&sb, "package: %s %s\n", p.Name, p.Version)
	}
	if f.Expired != nil {
		fmt.Fprintf(&sb, "expired allowlist: %s\n", expiredText(f.Expired))
	}
	if n := vexNote(f); n != "" {
		fmt.Fprintf(&sb, "%s\n", n)
	}
	return sb.String()
}

// imageSummary is the image test case's text.
func imageSummary(in *Input) string {
	e := in.Evaluation
	c := e.Counts()
	var sb strings.Builder
	fmt.Fprintf(&sb, "verdict: %s (%s)\n", actionWord(e.FinalAction), e.Reason)
	if e.Reason == policy.ReasonAllowlistedImage {
		fmt.Fprintf(&sb, "%s: findings did not affect the verdict\n", waiver(e))
	}
	fmt.Fprintf(&sb, "image: %s\n", in.ref())
	fmt.Fprintf(&sb, "digest: %s\n", in.digest())
	fmt.Fprintf(&sb, "bundle: %s (%s)\n", e.BundleName, e.BundleID)
	fmt.Fprintf(&sb, "findings: %d stop, %d warn, %d go, %d allowlisted\n", c.Stop, c.Warn, c.Go, c.Allowlisted)
	if e.Baseline != nil {
		fmt.Fprintf(&sb, "baseline: %s; %d of the findings are new\n", e.Baseline.Name(), countNew(e))
	}
	fmt.Fprintf(&sb, "vulnerabilities in image: %d\n", len(in.Matches))
	if in.GateURL != "" {
		fmt.Fprintf(&sb, "details: %s\n", in.GateURL)
	}
	return sb.String()
}

// junitProps are the buildgate suite's properties; empty ones are left
// out.
func junitProps(in *Input) []junitProperty {
	e := in.Evaluation
	var ps []junitProperty
	add := func(name, value string) {
		if value != "" {
			ps = append(ps, junitProperty{Name: name, Value: value})
		}
	}
	add("verdict", e.FinalAction.String())
	add("reason", string(e.Reason))
	add("status", e.Status())
	add("image.ref", in.ref())
	add("image.digest", in.digest())
	add("image.tag", e.Tag)
	add("bundle.id", e.BundleID)
	add("bundle.name", e.BundleName)
	add("mapping.id", e.MappingID)
	add("policy.ids", strings.Join(e.PolicyIDs, ","))
	add("allowlist.ids", strings.Join(e.AllowlistIDs, ","))
	add("dockerfile.mode", e.DockerfileMode)
	if b := e.Baseline; b != nil {
		add("baseline.digest", b.Digest)
		add("baseline.ref", b.Ref)
	}
	if !e.EvaluatedAt.IsZero() {
		add("evaluated_at", e.EvaluatedAt.UTC().Format(time.RFC3339))
	}
	if !in.DB.Built.IsZero() {
		add("db.built", in.DB.Built.UTC().Format(time.RFC3339))
	}
	add("db.schema", in.DB.SchemaVersion)
	add("scanner.version", in.Scanner.Version)
	add("gate_url", in.GateURL)
	return ps
}
