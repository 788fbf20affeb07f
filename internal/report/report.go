// Package report renders a policy evaluation for the tools CI systems
// read: JUnit XML (Jenkins, GitLab and most CI test views), SARIF 2.1.0
// (GitHub code scanning), GitLab's container-scanning report (schema
// 15.2.4), a Markdown summary for pull-request comments, and a JSON summary
// (buildgate.json) for machines.
//
// Every renderer is pure: it reads only its Input, writes deterministic
// output (sorted, no map-order randomness, timestamps only from Input) and
// imports nothing but the standard library, the domain package buildgate
// and internal/policy.
//
// What a finding did to the verdict decides how each format shows it:
//   - a finding whose rule says STOP, not allowlisted, fails the build: a
//     JUnit <failure>, a SARIF "error" result, a row of the STOP table;
//   - a WARN finding warns: a passing JUnit test case with the message in
//     <system-out>, a SARIF "warning";
//   - an allowlisted finding passes and carries the allowlist item's
//     reason and expiry; SARIF gives it a suppression and level "note";
//   - when the image itself is allowlisted (the verdict is GO whatever the
//     findings), STOP and WARN findings are shown as waived in the same
//     way, so a report never fails while the verdict passes;
//   - a GO finding passes in JUnit and is left out of SARIF, which holds
//     exactly the findings the verdict used (STOP, WARN and waived ones).
//
// A STOP verdict that no failing finding explains (a denylisted image) is
// reported as a failure of its own: the JUnit test case "image analysed and
// evaluated" and a SARIF result of rule buildgate/denylisted_image.
package report

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// Input is what every renderer reads.
type Input struct {
	// Evaluation is the verdict and its findings. Every format but GitLab
	// requires it; GitLab renders a report with scan status "failure"
	// without it.
	Evaluation *policy.Evaluation
	// Image describes the evaluated image.
	Image ImageInfo
	// Matches are all vulnerabilities of the image, whether or not a rule
	// fired on them (GitLab's report lists every one).
	Matches []buildgate.Match
	// Packages are the image's packages; optional, used to find a matched
	// package's path when the match has none.
	Packages []buildgate.Package
	// GateURL links to the image's page in the gate's console (ImageURL),
	// e.g. https://gate.example/ui/images/sha256:...; the reports' links
	// for people go there, never to the token-only API.
	GateURL string
	// DB describes the vulnerability data the matches were made with.
	DB buildgate.DBInfo
	// FailOn is the step's --fail-on: the least severe verdict that fails
	// the build (see ExitCode), for the reports that say whether the build
	// fails. The zero value is STOP, the default.
	FailOn policy.Action
	// Scanner describes the tool that produced the evaluation.
	Scanner ScannerInfo
}

// ImageInfo describes the image a report is about.
type ImageInfo struct {
	// Digest is the image's manifest digest, "sha256:...". When empty the
	// evaluation's digest is used.
	Digest string
	// Ref is the reference the image was submitted as, e.g.
	// "registry.example/team/app:1.2". When empty the evaluation's tag,
	// then the first of Tags, then the digest is used.
	Ref string
	// Tags are the tags the image is known by.
	Tags []string
	// Distro and DistroVersion are the os-release ID and VERSION_ID:
	// "debian" and "11".
	Distro        string
	DistroVersion string
	// OS and Arch are the image's platform: "linux", "amd64".
	OS   string
	Arch string
	// DockerfilePath is the Dockerfile's path as the user gave it,
	// relative to the repository root ("Dockerfile" when empty).
	DockerfilePath string
	// Dockerfile is the Dockerfile's text, "" when none was given. With a
	// Dockerfile, SARIF results point at its lines.
	Dockerfile string
}

// ScannerInfo describes the tool that produced the report.
type ScannerInfo struct {
	// Name is the tool's name; "buildgate" when empty.
	Name string
	// Version is the tool's version, e.g. "1.4.0".
	Version string
	// Vendor is the tool's vendor; "buildgate" when empty.
	Vendor string
	// URL is the tool's home page; DefaultInformationURI when empty.
	URL string
	// StartTime and EndTime bound the scan; zero when unknown.
	StartTime time.Time
	EndTime   time.Time
}

// DefaultInformationURI is the tool's home page when ScannerInfo.URL is
// empty.
const DefaultInformationURI = "https://github.com/buildgate/buildgate"

// Formats accepted by Render, ContentType and FileName.
const (
	FormatJUnit    = "junit"
	FormatSARIF    = "sarif"
	FormatGitLab   = "gitlab"
	FormatMarkdown = "markdown"
	FormatJSON     = "json"
)

// Formats returns the accepted format names in a stable order.
func Formats() []string {
	return []string{FormatJUnit, FormatSARIF, FormatGitLab, FormatMarkdown, FormatJSON}
}

type format struct {
	render      func(io.Writer, Input) error
	contentType string
	fileName    string
}

var formats = map[string]format{
	FormatJUnit:    {JUnit, "application/xml", "buildgate.junit.xml"},
	FormatSARIF:    {SARIF, "application/sarif+json", "buildgate.sarif"},
	FormatGitLab:   {GitLab, "application/json", "gl-container-scanning-report.json"},
	FormatMarkdown: {Markdown, "text/markdown; charset=utf-8", "buildgate.md"},
	FormatJSON:     {JSON, "application/json", "buildgate.json"},
}

func lookupFormat(name string) (format, bool) {
	f, ok := formats[strings.ToLower(strings.TrimSpace(name))]
	return f, ok
}

// Render writes the report in the named format (any case): junit, sarif,
// gitlab, markdown or json. An unknown format is an error naming the
// accepted ones.
func Render(format string, w io.Writer, in Input) error {
	f, ok := lookupFormat(format)
	if !ok {
		return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats(), ", "))
	}
	return f.render(w, in)
}

// ContentType returns the media type of a format, "" for unknown formats.
func ContentType(format string) string {
	f, _ := lookupFormat(format)
	return f.contentType
}

// FileName returns the conventional file name of a format's report
// (buildgate.junit.xml, buildgate.sarif, gl-container-scanning-report.json,
// buildgate.md, buildgate.json), "" for unknown formats.
func FileName(format string) string {
	f, _ := lookupFormat(format)
	return f.fileName
}

// ImageURL is the image's page in the gate's console at base
// (https://gate.example): <base>/ui/images/<digest>.
func ImageURL(base, digest string) string {
	return strings.TrimRight(base, "/") + "/ui/images/" + url.PathEscape(digest)
}

// Exit codes of a CI step.
const (
	ExitPass  = 0 // the image passes
	ExitFail  = 1 // the verdict fails the build
	ExitError = 2 // no verdict: the analysis or evaluation failed
)

// FailOnNone is the failOn of ExitCode under which no verdict fails the
// build: the step reports and exits 0 (--fail-on none). It is below every
// action, so no final action is FailOnNone or worse.
const FailOnNone policy.Action = -1

// FailOnNew is the failOn of ExitCode under which a STOP verdict fails the
// build only for its new STOP findings, those the evaluation's baseline
// does not have (--fail-on new); inherited STOP findings are shown and
// do not count. Without a baseline every finding is new. A denylisted
// image fails whatever its baseline.
const FailOnNew policy.Action = -2

// ExitCode returns the exit code of a CI step for an evaluation: ExitFail
// when the final action is failOn or worse, else ExitPass. With failOn
// STOP (the default) only a STOP verdict fails; with WARN, WARN fails too;
// with GO every verdict fails; with FailOnNone none does; with FailOnNew
// a STOP verdict fails when a new finding or the image itself explains
// it. A nil evaluation is ExitError whatever failOn is: no verdict is not
// a pass.
func ExitCode(e *policy.Evaluation, failOn policy.Action) int {
	if e == nil {
		return ExitError
	}
	if failOn == FailOnNew {
		if e.FinalAction == policy.ActionStop && (imageFailure(e, failOn) != "" || countOutcome(e, failOn, outStop) > 0) {
			return ExitFail
		}
		return ExitPass
	}
	if e.FinalAction <= failOn {
		return ExitFail
	}
	return ExitPass
}

// countOutcome counts the findings of one outcome.
func countOutcome(e *policy.Evaluation, failOn policy.Action, o outcome) int {
	n := 0
	for i := range e.Findings {
		if outcomeOf(e, failOn, &e.Findings[i]) == o {
			n++
		}
	}
	return n
}

// write writes a rendered report to w.
func write(w io.Writer, data []byte, format string) error {
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("writing %s report: %w", format, err)
	}
	return nil
}

// errNoEvaluation is returned by renderers that need a verdict.
func errNoEvaluation(format string) error {
	return fmt.Errorf("rendering %s report: input has no evaluation", format)
}

// digest returns the image digest.
func (in *Input) digest() string {
	if in.Image.Digest != "" {
		return in.Image.Digest
	}
	if in.Evaluation != nil {
		return in.Evaluation.ImageDigest
	}
	return ""
}

// tag returns the tag the image was evaluated for, "" if none.
func (in *Input) tag() string {
	if in.Evaluation != nil && in.Evaluation.Tag != "" {
		return in.Evaluation.Tag
	}
	if len(in.Image.Tags) > 0 {
		return in.Image.Tags[0]
	}
	return ""
}

// ref returns the image reference to show: the submitted ref, else the
// evaluated tag, else the digest.
func (in *Input) ref() string {
	switch {
	case in.Image.Ref != "":
		return in.Image.Ref
	case in.tag() != "":
		return in.tag()
	}
	return in.digest()
}

// repository returns registry/repository of the image, without tag or
// digest, "" when the image has no name. It is what stays the same across
// rebuilds.
func (in *Input) repository() string {
	r := in.Image.Ref
	if r == "" || strings.HasPrefix(r, "sha256:") {
		r = in.tag()
	}
	if r == "" || strings.HasPrefix(r, "sha256:") {
		return ""
	}
	reg, repo, _ := policy.ParseTag(r)
	return reg + "/" + repo
}

// operatingSystem returns "debian:11", or what is known of it.
func (in *Input) operatingSystem() string {
	d := strings.ToLower(in.Image.Distro)
	switch {
	case d != "" && in.Image.DistroVersion != "":
		return d + ":" + in.Image.DistroVersion
	case d != "":
		return d
	}
	return in.Image.OS
}

func (in *Input) scannerName() string   { return cmp.Or(in.Scanner.Name, "buildgate") }
func (in *Input) scannerVendor() string { return cmp.Or(in.Scanner.Vendor, "buildgate") }

// scannerURL is the tool's home page, DefaultInformationURI unless
// Scanner.URL is an http(s) URL.
func (in *Input) scannerURL() string {
	if isWebURL(in.Scanner.URL) {
		return strings.TrimSpace(in.Scanner.URL)
	}
	return DefaultInformationURI
}
func (in *Input) scannerVersion() string { return in.Scanner.Version }

// outcome is what a finding did to the verdict.
type outcome int

const (
	outStop        outcome = iota // failed the build
	outInherited                  // STOP the baseline has too, under --fail-on new
	outWarn                       // warned
	outAllowlisted                // waived by an allowlist item
	outWaived                     // STOP or WARN that the verdict did not apply (allowlisted image)
	outGo                         // the rule's action is GO
)

// outcomeOf classifies a finding under the step's failOn. A STOP finding
// fails only when the verdict is STOP, and then, under FailOnNew, only
// when it is new; a WARN finding warns only when the image is not
// allowlisted, so the reports agree with the verdict and the exit code
// whatever the input.
func outcomeOf(e *policy.Evaluation, failOn policy.Action, f *policy.Finding) outcome {
	switch {
	case f.Allowlisted != nil:
		return outAllowlisted
	case f.Action == policy.ActionGo:
		return outGo
	case e.Reason == policy.ReasonAllowlistedImage:
		return outWaived
	case f.Action == policy.ActionStop && e.FinalAction != policy.ActionStop:
		return outWaived
	case f.Action == policy.ActionStop && failOn == FailOnNew && !e.IsNew(f):
		return outInherited
	case f.Action == policy.ActionStop:
		return outStop
	}
	return outWarn
}

// baselineWord says whether a finding is "new" or "inherited", "" when
// the evaluation has no baseline.
func baselineWord(e *policy.Evaluation, f *policy.Finding) string {
	switch {
	case e.Baseline == nil:
		return ""
	case f.Inherited:
		return "inherited"
	}
	return "new"
}

// countNew counts the findings the baseline does not have.
func countNew(e *policy.Evaluation) int {
	n := 0
	for i := range e.Findings {
		if e.IsNew(&e.Findings[i]) {
			n++
		}
	}
	return n
}

// inheritance says why an inherited STOP finding did not count.
func inheritance(e *policy.Evaluation) string {
	return "inherited from the baseline " + e.Baseline.Name() + " (--fail-on new)"
}

// waiver says why a waived finding did not count.
func waiver(e *policy.Evaluation) string {
	if e.Reason == policy.ReasonAllowlistedImage {
		return "image is allowlisted" + imageRefName(e.AllowlistedImage)
	}
	return "not applied: the final action is " + strings.ToUpper(e.FinalAction.String())
}

// imageRefName returns " by <name>" for an image-list entry.
func imageRefName(r *policy.ImageRef) string {
	if r == nil {
		return ""
	}
	name := cmp.Or(r.Name, r.ID)
	if name == "" {
		return ""
	}
	return " by " + quote(name)
}

func quote(s string) string { return "\"" + s + "\"" }

// imageFailure returns why the image itself fails, "" when it does not:
// the verdict is STOP and either the image is denylisted or no finding
// explains the STOP (under FailOnNew an inherited one explains it).
func imageFailure(e *policy.Evaluation, failOn policy.Action) string {
	if e.FinalAction != policy.ActionStop {
		return ""
	}
	if e.Reason == policy.ReasonDenylistedImage {
		msg := "image is denylisted" + imageRefName(e.DenylistedImage)
		if e.DenylistedImage != nil {
			msg += " (" + describeSelector(e.DenylistedImage) + ")"
		}
		return msg
	}
	for i := range e.Findings {
		if o := outcomeOf(e, failOn, &e.Findings[i]); o == outStop || o == outInherited {
			return ""
		}
	}
	return "final action is STOP (" + string(e.Reason) + ") but no finding explains it"
}

func describeSelector(r *policy.ImageRef) string {
	return fmt.Sprintf("registry=%s repository=%s %s=%s", r.Registry, r.Repository, cmp.Or(r.Image.Type, "tag"), r.Image.Value)
}

// sortedFindings returns pointers to the evaluation's findings in report
// order: by outcome (STOP, inherited STOP, WARN, allowlisted, waived, GO),
// new before inherited, then findings without a vulnerability (gate,
// trigger, message), then vulnerabilities by descending severity, id and
// package.
func sortedFindings(e *policy.Evaluation, failOn policy.Action) []*policy.Finding {
	out := make([]*policy.Finding, len(e.Findings))
	for i := range e.Findings {
		out[i] = &e.Findings[i]
	}
	slices.SortStableFunc(out, func(a, b *policy.Finding) int {
		return cmp.Or(
			cmp.Compare(outcomeOf(e, failOn, a), outcomeOf(e, failOn, b)),
			cmp.Compare(boolInt(!e.IsNew(a)), boolInt(!e.IsNew(b))),
			compareFindings(a, b),
		)
	})
	return out
}

// compareFindings orders findings within one outcome.
func compareFindings(a, b *policy.Finding) int {
	va, vb := a.Vulnerability, b.Vulnerability
	if c := cmp.Compare(boolInt(va != nil), boolInt(vb != nil)); c != 0 {
		return c
	}
	if va != nil {
		if c := cmp.Or(
			cmp.Compare(vb.Severity, va.Severity),
			cmp.Compare(va.VulnerabilityID, vb.VulnerabilityID),
			cmp.Compare(va.PackageName, vb.PackageName),
			cmp.Compare(va.PackageVersion, vb.PackageVersion),
			cmp.Compare(va.PackagePath, vb.PackagePath),
		); c != 0 {
			return c
		}
	}
	return cmp.Or(
		cmp.Compare(a.Gate, b.Gate),
		cmp.Compare(a.Trigger, b.Trigger),
		cmp.Compare(a.Action, b.Action),
		cmp.Compare(a.Message, b.Message),
		cmp.Compare(a.TriggerID, b.TriggerID),
		cmp.Compare(a.PolicyID, b.PolicyID),
		cmp.Compare(a.RuleID, b.RuleID),
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// actionWord is an action in upper case: "STOP".
func actionWord(a policy.Action) string { return strings.ToUpper(a.String()) }

// allowlistText describes an allowlist item that waived (or would have
// waived) a finding.
func allowlistText(m *policy.AllowlistMatch) string {
	if m.VEX {
		return "VEX statement for " + m.ItemID + " of " + m.AllowlistName + ": " + m.Reason
	}
	var sb strings.Builder
	sb.WriteString("item " + quote(m.ItemID) + " of allowlist " + quote(cmp.Or(m.AllowlistName, m.AllowlistID)))
	if m.Reason != "" {
		sb.WriteString(": " + m.Reason)
	}
	if m.ExpiresOn != nil {
		sb.WriteString(" (expires " + formatTime(*m.ExpiresOn) + ")")
	}
	return sb.String()
}

// vexNote shows a VEX statement that applies to a finding without
// waiving it (under_investigation, affected); "" otherwise.
func vexNote(f *policy.Finding) string {
	if f.VEX == nil || (f.Allowlisted != nil && f.Allowlisted.VEX) {
		return ""
	}
	return "VEX " + f.VEX.Text() + " (" + f.VEX.Source + ")"
}

// expiredText describes an expired allowlist item.
func expiredText(m *policy.AllowlistMatch) string {
	s := "item " + quote(m.ItemID) + " of allowlist " + quote(cmp.Or(m.AllowlistName, m.AllowlistID))
	if m.ExpiresOn != nil {
		s += " expired " + formatTime(*m.ExpiresOn)
	} else {
		s += " expired"
	}
	if m.Reason != "" {
		s += " (reason: " + m.Reason + ")"
	}
	return s
}

// formatTime writes a time in UTC as RFC 3339, "unknown" when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// packageLabel names a match's package: "openssl 1.1.1n" and, for non-OS
// packages with a path, the path.
func packageLabel(m *buildgate.Match) string {
	s := m.PackageName
	if m.PackageVersion != "" {
		s += " " + m.PackageVersion
	}
	if !m.IsOS() && m.PackagePath != "" {
		s += " (" + m.PackagePath + ")"
	}
	return s
}

// fixVersions returns the versions that fix a match, nil when none is
// known.
func fixVersions(m *buildgate.Match) []string {
	if m.FixState != buildgate.FixStateFixed {
		return nil
	}
	var out []string
	for _, v := range m.FixVersions {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// vulnURL returns a match's first absolute http(s) URL, else a well-known
// page for its id, else "".
func vulnURL(m *buildgate.Match) string {
	for _, u := range m.URLs {
		if isWebURL(u) {
			return strings.TrimSpace(u)
		}
	}
	return idURL(m.VulnerabilityID)
}

// idURL returns a well-known page for a vulnerability id, "" if none.
func idURL(id string) string {
	switch idType(id) {
	case "cve":
		return "https://nvd.nist.gov/vuln/detail/" + id
	case "ghsa":
		return "https://github.com/advisories/" + id
	case "go":
		return "https://pkg.go.dev/vuln/" + id
	}
	return ""
}

// idType classifies a vulnerability id: cve, ghsa, go or other.
func idType(id string) string {
	u := strings.ToUpper(id)
	switch {
	case strings.HasPrefix(u, "CVE-"):
		return "cve"
	case strings.HasPrefix(u, "GHSA-"):
		return "ghsa"
	case strings.HasPrefix(u, "GO-"):
		return "go"
	}
	return "other"
}

// isWebURL reports whether s is an absolute http or https URL without
// spaces.
func isWebURL(s string) bool {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "http://")
	}
	return ok && rest != "" && !strings.ContainsAny(s, " \t\r\n\"<>\\^`{|}")
}

// packagePath returns the path of a finding's package inside the image,
// "" when unknown.
func (in *Input) packagePath(f *policy.Finding) string {
	if v := f.Vulnerability; v != nil {
		if v.PackagePath != "" {
			return v.PackagePath
		}
		if v.PackageID != "" {
			for i := range in.Packages {
				if in.Packages[i].ID == v.PackageID && in.Packages[i].Path != "" {
					return in.Packages[i].Path
				}
			}
		}
	}
	if f.Package != nil && f.Package.Path != "" {
		return f.Package.Path
	}
	return fileFromMessage(f)
}

// fileFromMessage reads the image path a files or secret_scans finding
// names in its message ("... file=/etc/shadow regexp=...",
// "SUID or SGID found set on file /usr/bin/su. Mode: ...").
func fileFromMessage(f *policy.Finding) string {
	if f.Gate != "files" && f.Gate != "secret_scans" {
		return ""
	}
	if _, rest, ok := strings.Cut(f.Message, " file="); ok {
		p, _, _ := strings.Cut(rest, " ")
		return p
	}
	if _, rest, ok := strings.Cut(f.Message, " set on file "); ok {
		p, _, _ := strings.Cut(rest, ". Mode:")
		return p
	}
	return ""
}

// severityCounts counts by severity, indexed by buildgate.Severity.
type severityCounts [buildgate.SeverityCritical + 1]int

func (c *severityCounts) add(s buildgate.Severity) {
	if s < 0 || s > buildgate.SeverityCritical {
		s = buildgate.SeverityUnknown
	}
	c[s]++
}

func (c *severityCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// matchCounts counts the image's matches by severity.
func matchCounts(ms []buildgate.Match) severityCounts {
	var c severityCounts
	for i := range ms {
		c.add(ms[i].Severity)
	}
	return c
}

// truncate cuts s to at most n bytes on a rune boundary, ending it with
// "…" when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
