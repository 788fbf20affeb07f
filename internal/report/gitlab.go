package report

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// GitLabSchemaVersion is the version of GitLab's container-scanning
// report schema the report conforms to.
const GitLabSchemaVersion = "15.2.4"

const gitlabSchemaURI = "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v" +
	GitLabSchemaVersion + "/dist/container-scanning-report-format.json"

// gitlabNamespace is the UUID namespace of vulnerability ids, a fixed
// random UUID: changing it changes every id GitLab tracks.
var gitlabNamespace = [16]byte{0x5c, 0x2e, 0x7b, 0x9d, 0x1a, 0x4f, 0x5e, 0x83, 0x9b, 0x61, 0x0d, 0x3c, 0x8a, 0x27, 0xf4, 0x10}

type gitlabReport struct {
	Schema          string       `json:"schema"`
	Version         string       `json:"version"`
	Scan            gitlabScan   `json:"scan"`
	Vulnerabilities []gitlabVuln `json:"vulnerabilities"`
}

type gitlabScan struct {
	Analyzer  gitlabTool      `json:"analyzer"`
	Scanner   gitlabTool      `json:"scanner"`
	Type      string          `json:"type"`
	Status    string          `json:"status"`
	StartTime string          `json:"start_time"`
	EndTime   string          `json:"end_time"`
	Messages  []gitlabMessage `json:"messages,omitempty"`
}

type gitlabTool struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	URL     string       `json:"url,omitempty"`
	Version string       `json:"version"`
	Vendor  gitlabVendor `json:"vendor"`
}

type gitlabVendor struct {
	Name string `json:"name"`
}

type gitlabMessage struct {
	Level string `json:"level"`
	Value string `json:"value"`
}

type gitlabVuln struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Severity    string             `json:"severity"`
	Solution    string             `json:"solution,omitempty"`
	Identifiers []gitlabIdentifier `json:"identifiers"`
	CVSSVectors []gitlabCVSS       `json:"cvss_vectors,omitempty"`
	Links       []gitlabLink       `json:"links,omitempty"`
	// Details holds "baseline": whether the vulnerability is new or
	// inherited, when the evaluation has a baseline and a rule fired on
	// it.
	Details  map[string]gitlabDetail `json:"details,omitempty"`
	Location gitlabLocation          `json:"location"`
	Flags    []gitlabFlag            `json:"flags,omitempty"`
}

// gitlabDetail is a named text field of a vulnerability's details.
type gitlabDetail struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// gitlabFlag marks a vulnerability the evaluation waived (an allowlist
// item or a not_affected or fixed VEX statement), so GitLab shows it as
// likely false positive with the reason.
type gitlabFlag struct {
	Type        string `json:"type"`
	Origin      string `json:"origin"`
	Description string `json:"description"`
}

type gitlabIdentifier struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
	URL   string `json:"url,omitempty"`
}

type gitlabCVSS struct {
	Vendor string `json:"vendor"`
	Vector string `json:"vector"`
}

type gitlabLink struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url"`
}

type gitlabLocation struct {
	Dependency      gitlabDependency `json:"dependency"`
	OperatingSystem string           `json:"operating_system"`
	Image           string           `json:"image"`
}

type gitlabDependency struct {
	Package gitlabPackage `json:"package"`
	Version string        `json:"version"`
}

type gitlabPackage struct {
	Name string `json:"name"`
}

// cvss3VectorRE is the schema's pattern for CVSS 3.x vectors.
var cvss3VectorRE = regexp.MustCompile(`^CVSS:3[.][01]/((AV:[NALP]|AC:[LH]|PR:[NLH]|UI:[NR]|S:[UC]|[CIA]:[NLH]|E:[XUPFH]|RL:[XOTWU]|RC:[XURC]|[CIA]R:[XLMH]|MAV:[XNALP]|MAC:[XLH]|MPR:[XNLH]|MUI:[XNR]|MS:[XUC]|M[CIA]:[XNLH])/)*(AV:[NALP]|AC:[LH]|PR:[NLH]|UI:[NR]|S:[UC]|[CIA]:[NLH]|E:[XUPFH]|RL:[XOTWU]|RC:[XURC]|[CIA]R:[XLMH]|MAV:[XNALP]|MAC:[XLH]|MPR:[XNLH]|MUI:[XNR]|MS:[XUC]|M[CIA]:[XNLH])$`)

// GitLab writes GitLab's container-scanning security report (schema
// 15.2.4) listing every match of Input.Matches, sorted by descending
// severity, id and package; exact duplicates are listed once.
//
// The scan status is "success" when the input has an evaluation, else
// "failure" (the analysis did not finish), so a failed analysis still
// yields a valid report. Times come from Input.Scanner, falling back to
// the evaluation time. Severities map one to one and Negligible to Low:
// it is still a vulnerability, and GitLab keeps Info for findings that
// are not. Each vulnerability's id is a version 5 UUID of its id, package
// name, version and path, so it is stable across runs.
func GitLab(w io.Writer, in Input) error {
	tool := gitlabTool{
		ID:      strings.ToLower(in.scannerName()),
		Name:    in.scannerName(),
		Version: cmp.Or(in.scannerVersion(), "unknown"),
		Vendor:  gitlabVendor{Name: in.scannerVendor()},
	}
	tool.URL = in.scannerURL()
	var fallback time.Time
	if in.Evaluation != nil {
		fallback = in.Evaluation.EvaluatedAt
	}
	doc := gitlabReport{
		Schema:  gitlabSchemaURI,
		Version: GitLabSchemaVersion,
		Scan: gitlabScan{
			Analyzer:  tool,
			Scanner:   tool,
			Type:      "container_scanning",
			Status:    "success",
			StartTime: gitlabTime(cmpTime(in.Scanner.StartTime, in.Scanner.EndTime, fallback)),
			EndTime:   gitlabTime(cmpTime(in.Scanner.EndTime, in.Scanner.StartTime, fallback)),
		},
		Vulnerabilities: []gitlabVuln{},
	}
	if in.Evaluation == nil {
		doc.Scan.Status = "failure"
		doc.Scan.Messages = []gitlabMessage{{Level: "fatal", Value: "the image was not evaluated"}}
	}

	osName := cmp.Or(in.operatingSystem(), "unknown")
	imageRef := cmp.Or(in.ref(), "unknown")
	waived := waivedMatches(in.Evaluation, in.FailOn)
	seen := map[string]bool{}
	baseline := gitlabBaseline(in.Evaluation)
	for _, m := range sortedMatches(in.Matches) {
		id := gitlabID(m)
		if seen[id] {
			continue
		}
		seen[id] = true
		v := gitlabVulnOf(m, id, osName, imageRef)
		if w := baseline[matchKey{m.VulnerabilityID, m.PackageName, m.PackageType}]; w != "" {
			v.Details = map[string]gitlabDetail{"baseline": {Name: "Baseline", Type: "text", Value: w + " (baseline " + in.Evaluation.Baseline.Name() + ")"}}
		}
		if why, ok := waived[id]; ok {
			v.Flags = []gitlabFlag{{Type: "flagged-as-likely-false-positive", Origin: tool.Name, Description: truncate(why, 1<<16)}}
		}
		doc.Vulnerabilities = append(doc.Vulnerabilities, v)
	}
	if e := in.Evaluation; e != nil && e.Baseline != nil {
		n := countNew(e)
		doc.Scan.Messages = append(doc.Scan.Messages, gitlabMessage{Level: "info",
			Value: fmt.Sprintf("compared with the baseline %s: %d new, %d inherited findings", e.Baseline.Name(), n, len(e.Findings)-n)})
	}
	data, err := marshalJSON(doc, "encoding gitlab report")
	if err != nil {
		return err
	}
	return write(w, data, FormatGitLab)
}

// matchKey is what a baseline compares vulnerabilities by.
type matchKey struct{ id, name, typ string }

// gitlabBaseline says for each vulnerability a rule fired on whether it
// is "new" or "inherited"; nil without a baseline. A vulnerability with a
// new finding is new.
func gitlabBaseline(e *policy.Evaluation) map[matchKey]string {
	if e == nil || e.Baseline == nil {
		return nil
	}
	out := map[matchKey]string{}
	for i := range e.Findings {
		f := &e.Findings[i]
		v := f.Vulnerability
		if v == nil {
			continue
		}
		k := matchKey{v.VulnerabilityID, v.PackageName, v.PackageType}
		if out[k] != "new" {
			out[k] = baselineWord(e, f)
		}
	}
	return out
}

// waivedMatches maps the GitLab id of each vulnerability a finding of the
// evaluation waived to why; a match waived by one finding and failing
// another is not waived.
func waivedMatches(e *policy.Evaluation, failOn policy.Action) map[string]string {
	out := map[string]string{}
	if e == nil {
		return out
	}
	failing := map[string]bool{}
	for i := range e.Findings {
		f := &e.Findings[i]
		if f.Vulnerability == nil {
			continue
		}
		id := gitlabID(f.Vulnerability)
		switch outcomeOf(e, failOn, f) {
		case outAllowlisted:
			if _, ok := out[id]; !ok {
				out[id] = "allowlisted by " + allowlistText(f.Allowlisted)
			}
		case outStop, outWarn, outInherited:
			failing[id] = true
		}
	}
	for id := range failing {
		delete(out, id)
	}
	return out
}

func gitlabVulnOf(m *buildgate.Match, id, osName, imageRef string) gitlabVuln {
	pkg := cmp.Or(m.PackageName, "unknown")
	v := gitlabVuln{
		ID:          id,
		Name:        truncate(m.VulnerabilityID+" in "+pkg, 255),
		Description: truncate(cmp.Or(strings.TrimSpace(m.Description), m.VulnerabilityID+" affects "+pkg+" "+m.PackageVersion+"."), 1<<20),
		Severity:    gitlabSeverity(m.Severity),
		Identifiers: gitlabIdentifiers(m),
		Location: gitlabLocation{
			Dependency:      gitlabDependency{Package: gitlabPackage{Name: pkg}, Version: m.PackageVersion},
			OperatingSystem: osName,
			Image:           imageRef,
		},
	}
	if fv := fixVersions(m); len(fv) > 0 {
		v.Solution = truncate("Upgrade "+pkg+" to "+fv[0], 7000)
	}
	var links []string
	for _, u := range m.URLs {
		if u = strings.TrimSpace(u); isWebURL(u) && !slices.Contains(links, u) {
			links = append(links, u)
		}
	}
	for _, u := range links {
		v.Links = append(v.Links, gitlabLink{URL: u})
	}
	for _, c := range m.CVSS {
		if len(v.CVSSVectors) < 10 && cvss3VectorRE.MatchString(c.Vector) {
			v.CVSSVectors = append(v.CVSSVectors, gitlabCVSS{Vendor: cmp.Or(c.Source, "unknown"), Vector: c.Vector})
		}
	}
	return v
}

// gitlabIdentifiers are the match's id then its aliases, each typed.
func gitlabIdentifiers(m *buildgate.Match) []gitlabIdentifier {
	var out []gitlabIdentifier
	seen := map[string]bool{}
	add := func(id, u string) {
		id = strings.TrimSpace(id)
		if id == "" || seen[strings.ToUpper(id)] {
			return
		}
		seen[strings.ToUpper(id)] = true
		ident := gitlabIdentifier{Type: idType(id), Name: id, Value: id}
		if isWebURL(u) {
			ident.URL = u
		}
		out = append(out, ident)
	}
	primaryURL := idURL(m.VulnerabilityID)
	if primaryURL == "" {
		primaryURL = vulnURL(m)
	}
	add(m.VulnerabilityID, primaryURL)
	related := sortedUnique(m.RelatedIDs)
	for _, r := range related {
		add(r, idURL(r))
	}
	if len(out) == 0 {
		out = append(out, gitlabIdentifier{Type: "other", Name: "unknown", Value: "unknown"})
	}
	return out
}

// gitlabSeverity maps a severity to GitLab's names; Negligible is Low.
func gitlabSeverity(s buildgate.Severity) string {
	switch s {
	case buildgate.SeverityCritical, buildgate.SeverityHigh, buildgate.SeverityMedium, buildgate.SeverityLow:
		return s.String()
	case buildgate.SeverityNegligible:
		return "Low"
	}
	return "Unknown"
}

// gitlabID is a version 5 UUID of the match's id, package, version and
// path.
func gitlabID(m *buildgate.Match) string {
	h := sha1.New()
	h.Write(gitlabNamespace[:])
	h.Write([]byte(m.VulnerabilityID + "\x00" + m.PackageName + "\x00" + m.PackageVersion + "\x00" + m.PackagePath))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// sortedMatches returns pointers to the matches by descending severity,
// then id, package, version, path and type.
func sortedMatches(ms []buildgate.Match) []*buildgate.Match {
	out := make([]*buildgate.Match, len(ms))
	for i := range ms {
		out[i] = &ms[i]
	}
	slices.SortStableFunc(out, func(a, b *buildgate.Match) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.VulnerabilityID, b.VulnerabilityID),
			cmp.Compare(a.PackageName, b.PackageName),
			cmp.Compare(a.PackageVersion, b.PackageVersion),
			cmp.Compare(a.PackagePath, b.PackagePath),
			cmp.Compare(a.PackageType, b.PackageType),
		)
	})
	return out
}

// cmpTime returns the first non-zero time.
func cmpTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// gitlabTime writes YYYY-MM-DDTHH:MM:SS in UTC, as the schema requires.
func gitlabTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }
