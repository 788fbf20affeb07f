package report

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// SARIF limits of GitHub code scanning: results per run and the size of
// the gzipped upload. Variables so tests can lower them.
var (
	sarifMaxResults   = 25000
	sarifMaxGzipBytes = 10_000_000
)

const (
	sarifSchemaURI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	sarifVersion   = "2.1.0"
	// FingerprintKey is the partialFingerprints key of SARIF results: the
	// hex SHA-256 of the finding's trigger id and the image repository
	// (not the digest), so a finding keeps its identity across rebuilds.
	FingerprintKey = "buildgate/v1"
)

// Rule ids of SARIF results about the image rather than a finding.
const (
	RuleDenylistedImage = "buildgate/denylisted_image"
	RuleVerdict         = "buildgate/verdict"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	Properties  sarifRunProps     `json:"properties"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	StartTimeUTC        string `json:"startTimeUtc,omitempty"`
	EndTimeUTC          string `json:"endTimeUtc,omitempty"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	Name             string         `json:"name,omitempty"`
	ShortDescription sarifText      `json:"shortDescription"`
	FullDescription  sarifText      `json:"fullDescription"`
	Help             sarifText      `json:"help"`
	HelpURI          string         `json:"helpUri,omitempty"`
	Properties       sarifRuleProps `json:"properties"`
}

type sarifRuleProps struct {
	SecuritySeverity string   `json:"security-severity,omitempty"`
	Tags             []string `json:"tags"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	// BaselineState is "new" or "unchanged" (inherited) when the
	// evaluation has a baseline.
	BaselineState string           `json:"baselineState,omitempty"`
	Properties    sarifResultProps `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
	Kind               string `json:"kind"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

type sarifResultProps struct {
	// Outcome is what the finding did: stop, warn, inherited,
	// allowlisted or waived.
	Outcome          string   `json:"outcome"`
	Gate             string   `json:"gate,omitempty"`
	Trigger          string   `json:"trigger,omitempty"`
	Action           string   `json:"action,omitempty"`
	PolicyID         string   `json:"policyId,omitempty"`
	PolicyRuleID     string   `json:"policyRuleId,omitempty"`
	TriggerID        string   `json:"triggerId,omitempty"`
	Severity         string   `json:"severity,omitempty"`
	PackageName      string   `json:"packageName,omitempty"`
	PackageVersion   string   `json:"packageVersion,omitempty"`
	PackagePath      string   `json:"packagePath,omitempty"`
	FixedIn          []string `json:"fixedIn,omitempty"`
	ExpiredAllowlist string   `json:"expiredAllowlist,omitempty"`
	// Also lists other findings merged into this result because they share
	// its rule and fingerprint: "gate/trigger ACTION".
	Also []string `json:"also,omitempty"`
}

type sarifRunProps struct {
	Verdict     string        `json:"verdict"`
	Reason      string        `json:"reason"`
	Status      string        `json:"status"`
	ImageRef    string        `json:"imageRef"`
	ImageDigest string        `json:"imageDigest"`
	ImageTag    string        `json:"imageTag"`
	BundleID    string        `json:"bundleId"`
	BundleName  string        `json:"bundleName"`
	GateURL     string        `json:"gateUrl,omitempty"`
	Counts      policy.Counts `json:"counts"`
	// Baseline is the image the findings were compared with.
	Baseline       *policy.Baseline `json:"baseline,omitempty"`
	Truncated      bool             `json:"truncated"`
	ResultsTotal   int              `json:"resultsTotal"`
	ResultsKept    int              `json:"resultsKept"`
	ResultsDropped int              `json:"resultsDropped"`
}

// sarifItem is a result being built, with what its rule needs.
type sarifItem struct {
	res      sarifResult
	ruleKey  string
	findings []*policy.Finding // merged findings, the first decides
}

// SARIF writes the evaluation as a SARIF 2.1.0 log with one run for
// GitHub code scanning.
//
// Results are exactly the findings the verdict used: STOP findings
// (level error), WARN findings (warning), and allowlisted or waived ones
// (note, with an accepted external suppression whose justification is the
// allowlist reason). GO findings are left out. A denylisted image adds an
// error result of rule buildgate/denylisted_image. Findings that share a
// rule and fingerprint (one vulnerability fired by several triggers) are
// one result, the most severe.
//
// Rules are one per vulnerability id, else one per gate/trigger. With a
// Dockerfile, results point at its lines (the final FROM for vulnerability
// and package findings, the matching instruction for dockerfile findings);
// without, at the package's path inside the image, else at the image by a
// logical location.
//
// Above GitHub's limits (25,000 results, 10 MB gzipped) STOP results are
// kept first, then WARN, then allowlisted; the run's properties say
// truncated, with the numbers kept and dropped.
func SARIF(w io.Writer, in Input) error {
	e := in.Evaluation
	if e == nil {
		return errNoEvaluation(FormatSARIF)
	}
	items := sarifItems(&in)
	keep := min(len(items), sarifMaxResults)
	for {
		data, err := sarifDocument(&in, items, keep)
		if err != nil {
			return err
		}
		if keep > 0 && len(data) > sarifMaxGzipBytes-4096 {
			n, err := gzipSize(data)
			if err != nil {
				return err
			}
			if n > sarifMaxGzipBytes {
				next := int(float64(keep) * float64(sarifMaxGzipBytes) / float64(n) * 0.95)
				keep = min(next, keep-1)
				continue
			}
		}
		return write(w, data, FormatSARIF)
	}
}

// sarifDocument renders the log with the first keep items.
func sarifDocument(in *Input, items []*sarifItem, keep int) ([]byte, error) {
	e := in.Evaluation
	kept := items[:keep]

	// Rules of the kept results, sorted by id.
	byRule := map[string][]*sarifItem{}
	for _, it := range kept {
		byRule[it.ruleKey] = append(byRule[it.ruleKey], it)
	}
	ids := make([]string, 0, len(byRule))
	for id := range byRule {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rules := make([]sarifRule, 0, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
		rules = append(rules, sarifRuleFor(in, id, byRule[id]))
	}
	results := make([]sarifResult, 0, keep)
	for _, it := range kept {
		r := it.res
		r.RuleIndex = index[it.ruleKey]
		results = append(results, r)
	}

	inv := sarifInvocation{ExecutionSuccessful: true}
	if !in.Scanner.StartTime.IsZero() {
		inv.StartTimeUTC = in.Scanner.StartTime.UTC().Format(time.RFC3339)
	}
	if !in.Scanner.EndTime.IsZero() {
		inv.EndTimeUTC = in.Scanner.EndTime.UTC().Format(time.RFC3339)
	}
	doc := sarifLog{
		Schema:  sarifSchemaURI,
		Version: sarifVersion,
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           in.scannerName(),
				Version:        in.scannerVersion(),
				InformationURI: in.scannerURL(),
				Rules:          rules,
			}},
			Invocations: []sarifInvocation{inv},
			Results:     results,
			Properties: sarifRunProps{
				Verdict:        e.FinalAction.String(),
				Reason:         string(e.Reason),
				Status:         e.Status(),
				ImageRef:       in.ref(),
				ImageDigest:    in.digest(),
				ImageTag:       in.tag(),
				BundleID:       e.BundleID,
				BundleName:     e.BundleName,
				GateURL:        in.GateURL,
				Counts:         e.Counts(),
				Baseline:       e.Baseline,
				Truncated:      keep < len(items),
				ResultsTotal:   len(items),
				ResultsKept:    keep,
				ResultsDropped: len(items) - keep,
			},
		}},
	}
	return marshalJSON(doc, "encoding sarif report")
}

// sarifItems builds the results in priority order: the image's own
// failure, then STOP, inherited STOP, WARN, allowlisted and waived findings.
func sarifItems(in *Input) []*sarifItem {
	e := in.Evaluation
	repo := in.repository()
	var df *dockerfile
	if in.Image.Dockerfile != "" {
		df = parseDockerfile(in.Image.Dockerfile)
	}
	var items []*sarifItem
	if why := imageFailure(e, in.FailOn); why != "" {
		rule := RuleVerdict
		if e.Reason == policy.ReasonDenylistedImage {
			rule = RuleDenylistedImage
		}
		loc := imageLocation(in)
		if df != nil {
			loc = dockerfileLocation(in, df.fromLine())
		}
		items = append(items, &sarifItem{
			ruleKey: rule,
			res: sarifResult{
				RuleID:              rule,
				Level:               "error",
				Message:             sarifText{Text: upperFirst(why)},
				Locations:           []sarifLocation{loc},
				PartialFingerprints: map[string]string{FingerprintKey: fingerprint(rule, repo)},
				Properties:          sarifResultProps{Outcome: "stop", Action: actionWord(policy.ActionStop)},
			},
		})
	}

	seen := map[string]*sarifItem{}
	for _, f := range sortedFindings(e, in.FailOn) {
		out := outcomeOf(e, in.FailOn, f)
		if out == outGo {
			continue
		}
		ruleKey := f.Gate + "/" + f.Trigger
		if f.Vulnerability != nil && f.Vulnerability.VulnerabilityID != "" {
			ruleKey = f.Vulnerability.VulnerabilityID
		}
		fp := fingerprint(f.TriggerID, repo)
		if it := seen[ruleKey+"\x00"+fp]; it != nil {
			it.findings = append(it.findings, f)
			it.res.Properties.Also = append(it.res.Properties.Also, f.Gate+"/"+f.Trigger+" "+outcomeWord(e, in.FailOn, f))
			continue
		}
		res := sarifResult{
			RuleID:              ruleKey,
			BaselineState:       sarifBaselineState(e, f),
			Message:             sarifText{Text: withVEXNote(cmp.Or(f.Message, f.TriggerID, ruleKey), f)},
			PartialFingerprints: map[string]string{FingerprintKey: fp},
			Properties: sarifResultProps{
				Outcome:      outcomeName(out),
				Gate:         f.Gate,
				Trigger:      f.Trigger,
				Action:       actionWord(f.Action),
				PolicyID:     f.PolicyID,
				PolicyRuleID: f.RuleID,
				TriggerID:    f.TriggerID,
			},
		}
		switch out {
		case outStop:
			res.Level = "error"
		case outWarn:
			res.Level = "warning"
		case outInherited:
			res.Level = "note"
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: upperFirst(inheritance(e))}}
		case outAllowlisted:
			res.Level = "note"
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: "allowlisted by " + allowlistText(f.Allowlisted)}}
		case outWaived:
			res.Level = "note"
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: waiver(e)}}
		}
		if v := f.Vulnerability; v != nil {
			res.Properties.Severity = v.Severity.String()
			res.Properties.PackageName = v.PackageName
			res.Properties.PackageVersion = v.PackageVersion
			res.Properties.FixedIn = fixVersions(v)
		} else if p := f.Package; p != nil {
			res.Properties.PackageName = p.Name
			res.Properties.PackageVersion = p.Version
		}
		pkgPath := in.packagePath(f)
		res.Properties.PackagePath = pkgPath
		if f.Expired != nil {
			res.Properties.ExpiredAllowlist = expiredText(f.Expired)
		}
		switch {
		case df != nil:
			res.Locations = []sarifLocation{dockerfileLocation(in, df.lineOf(f))}
		case pkgPath != "":
			loc := imageLocation(in)
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: relativeURI(pkgPath)}}
			res.Locations = []sarifLocation{loc}
		default:
			res.Locations = []sarifLocation{imageLocation(in)}
		}
		it := &sarifItem{res: res, ruleKey: ruleKey, findings: []*policy.Finding{f}}
		seen[ruleKey+"\x00"+fp] = it
		items = append(items, it)
	}
	return items
}

// withVEXNote appends the VEX statement that applies to a finding
// without waiving it.
func withVEXNote(msg string, f *policy.Finding) string {
	if n := vexNote(f); n != "" {
		return msg + " (" + n + ")"
	}
	return msg
}

func outcomeName(o outcome) string {
	switch o {
	case outStop:
		return "stop"
	case outWarn:
		return "warn"
	case outInherited:
		return "inherited"
	case outAllowlisted:
		return "allowlisted"
	case outWaived:
		return "waived"
	}
	return "go"
}

// sarifBaselineState is a result's baselineState: "new", "unchanged" for
// an inherited finding, "" without a baseline.
func sarifBaselineState(e *policy.Evaluation, f *policy.Finding) string {
	switch baselineWord(e, f) {
	case "new":
		return "new"
	case "inherited":
		return "unchanged"
	}
	return ""
}

func outcomeWord(e *policy.Evaluation, failOn policy.Action, f *policy.Finding) string {
	o := outcomeOf(e, failOn, f)
	if o == outStop || o == outWarn || o == outGo {
		return actionWord(f.Action)
	}
	return actionWord(f.Action) + " " + outcomeName(o)
}

// fingerprint is the hex SHA-256 of a trigger id and the repository.
func fingerprint(triggerID, repository string) string {
	sum := sha256.Sum256([]byte(triggerID + "\x00" + repository))
	return hex.EncodeToString(sum[:])
}

// dockerfileLocation points at a line of the Dockerfile.
func dockerfileLocation(in *Input, line int) sarifLocation {
	p := strings.ReplaceAll(cmp.Or(strings.TrimSpace(in.Image.DockerfilePath), "Dockerfile"), `\`, "/")
	var uri string
	if strings.HasPrefix(p, "/") {
		uri = (&url.URL{Scheme: "file", Path: path.Clean(p)}).String()
	} else {
		uri = relativeURI(p)
	}
	return sarifLocation{PhysicalLocation: &sarifPhysical{
		ArtifactLocation: sarifArtifact{URI: uri},
		Region:           &sarifRegion{StartLine: max(line, 1)},
	}}
}

// relativeURI turns a path into a relative URI reference without a
// leading slash or "./".
func relativeURI(p string) string {
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		p = "."
	}
	return (&url.URL{Path: p}).String()
}

// imageLocation names the image as a logical location.
func imageLocation(in *Input) sarifLocation {
	ref := in.ref()
	fq := ref
	if d := in.digest(); d != "" && !strings.Contains(ref, "@") && ref != d {
		fq = ref + "@" + d
	}
	return sarifLocation{LogicalLocations: []sarifLogical{{Name: cmp.Or(ref, "image"), FullyQualifiedName: fq, Kind: "module"}}}
}

// sarifRuleFor describes a rule from the results that use it.
func sarifRuleFor(in *Input, id string, items []*sarifItem) sarifRule {
	switch id {
	case RuleDenylistedImage:
		e := in.Evaluation
		text := "The policy bundle's denylisted images (blacklisted_images) name this image, so its final action is STOP whatever its findings."
		if e.DenylistedImage != nil {
			text += " Entry" + imageRefName(e.DenylistedImage) + ": " + describeSelector(e.DenylistedImage) + "."
		}
		return sarifRule{
			ID: id, Name: "DenylistedImage",
			ShortDescription: sarifText{Text: "Image is denylisted"},
			FullDescription:  sarifText{Text: text},
			Help:             sarifText{Text: text + " Remove the image from the bundle's denylist or use another image.", Markdown: text + "\n\nRemove the image from the bundle's denylist or use another image."},
			Properties:       sarifRuleProps{Tags: []string{"buildgate", "image", "policy"}},
		}
	case RuleVerdict:
		text := "The evaluation's final action is STOP."
		return sarifRule{
			ID: id, Name: "Verdict",
			ShortDescription: sarifText{Text: "Policy verdict is STOP"},
			FullDescription:  sarifText{Text: text},
			Help:             sarifText{Text: text, Markdown: text},
			Properties:       sarifRuleProps{Tags: []string{"buildgate", "policy"}},
		}
	}
	first := items[0].findings[0]
	if first.Vulnerability != nil && first.Vulnerability.VulnerabilityID == id {
		return sarifVulnRule(id, items)
	}
	return sarifTriggerRule(id, first)
}

// sarifVulnRule describes a vulnerability from its matches.
func sarifVulnRule(id string, items []*sarifItem) sarifRule {
	var (
		sev      buildgate.Severity
		desc     string
		helpURI  string
		pkgs     []string
		fixes    []string
		score    float64
		hasScore bool
		links    []string
	)
	for _, it := range items {
		for _, f := range it.findings {
			v := f.Vulnerability
			if v == nil {
				continue
			}
			sev = max(sev, v.Severity)
			if desc == "" {
				desc = strings.TrimSpace(v.Description)
			}
			if helpURI == "" {
				helpURI = vulnURL(v)
			}
			if s, ok := cvssScore(v); ok && (!hasScore || s > score) {
				score, hasScore = s, true
			}
			pkgs = append(pkgs, packageLabel(v))
			for _, fv := range fixVersions(v) {
				fixes = append(fixes, v.PackageName+" "+fv)
			}
			for _, u := range v.URLs {
				if isWebURL(u) {
					links = append(links, strings.TrimSpace(u))
				}
			}
		}
	}
	pkgs, fixes, links = sortedUnique(pkgs), sortedUnique(fixes), sortedUnique(links)
	if helpURI != "" && !slices.Contains(links, helpURI) {
		links = append([]string{helpURI}, links...)
	}

	names := make([]string, 0, 3)
	for _, p := range pkgs {
		n, _, _ := strings.Cut(p, " ")
		if !slices.Contains(names, n) && len(names) < 3 {
			names = append(names, n)
		}
	}
	short := id + ": " + sev.String() + " vulnerability"
	if len(names) > 0 {
		short += " in " + strings.Join(names, ", ")
	}
	full := cmp.Or(desc, short)

	head := id + " (" + sev.String()
	if hasScore {
		head += ", CVSS " + formatScore(score)
	}
	head += ")"
	var text, md strings.Builder
	text.WriteString(head + "\n\n")
	md.WriteString("**" + head + "**\n\n")
	if desc != "" {
		text.WriteString(desc + "\n\n")
		md.WriteString(desc + "\n\n")
	}
	text.WriteString("Affected packages: " + strings.Join(pkgs, "; ") + "\n")
	md.WriteString("| Affected package | Fixed in |\n| --- | --- |\n")
	for _, p := range pkgs {
		name, _, _ := strings.Cut(p, " ")
		var fv []string
		for _, x := range fixes {
			if n, v, _ := strings.Cut(x, " "); n == name {
				fv = append(fv, v)
			}
		}
		md.WriteString("| " + mdCell(p) + " | " + mdCell(cmp.Or(strings.Join(fv, ", "), "no fix known")) + " |\n")
	}
	if len(fixes) > 0 {
		text.WriteString("Fixed in: " + strings.Join(fixes, "; ") + "\n")
	} else {
		text.WriteString("No fix is known.\n")
	}
	if len(links) > 0 {
		text.WriteString("References: " + strings.Join(links, " ") + "\n")
		md.WriteString("\nReferences:\n")
		for _, l := range links {
			md.WriteString("- <" + l + ">\n")
		}
	}

	props := sarifRuleProps{Tags: []string{"security", "vulnerability", strings.ToLower(sev.String())}}
	switch {
	case hasScore:
		props.SecuritySeverity = formatScore(score)
	default:
		props.SecuritySeverity = severityScore(sev)
	}
	return sarifRule{
		ID:               id,
		ShortDescription: sarifText{Text: short},
		FullDescription:  sarifText{Text: full},
		Help:             sarifText{Text: text.String(), Markdown: md.String()},
		HelpURI:          helpURI,
		Properties:       props,
	}
}

// sarifTriggerRule describes a gate's trigger from the policy engine's
// definitions.
func sarifTriggerRule(id string, f *policy.Finding) sarifRule {
	gate, trig, ok := policy.LookupTrigger(f.Gate, f.Trigger)
	short := "buildgate " + f.Gate + " gate, " + f.Trigger + " trigger"
	full := short + "."
	if ok {
		full = strings.TrimSpace(trig.Description + " (" + f.Gate + " gate: " + gate.Description + ")")
	}
	text := full + "\n\nFindings of this rule come from a rule of the policy bundle with gate " +
		f.Gate + " and trigger " + f.Trigger + "; each result's message says what fired. " +
		"To accept a finding, add an allowlist item with its trigger id."
	md := "**" + f.Gate + " / " + f.Trigger + "**\n\n" + full + "\n\nFindings of this rule come from a rule of the policy bundle with gate `" +
		f.Gate + "` and trigger `" + f.Trigger + "`; each result's message says what fired. " +
		"To accept a finding, add an allowlist item with its trigger id."
	return sarifRule{
		ID:               id,
		ShortDescription: sarifText{Text: short},
		FullDescription:  sarifText{Text: full},
		Help:             sarifText{Text: text, Markdown: md},
		Properties:       sarifRuleProps{Tags: sortedUnique([]string{"buildgate", "policy", f.Gate})},
	}
}

// cvssScore returns a match's highest CVSS base score among v3 and v4
// entries, else among all entries; ok is false when it has none.
func cvssScore(m *buildgate.Match) (score float64, ok bool) {
	for _, modern := range []bool{true, false} {
		for _, c := range m.CVSS {
			if c.BaseScore <= 0 {
				continue
			}
			if modern && !strings.HasPrefix(c.Version, "3") && !strings.HasPrefix(c.Version, "4") {
				continue
			}
			if !ok || c.BaseScore > score {
				score, ok = c.BaseScore, true
			}
		}
		if ok {
			return score, ok
		}
	}
	return 0, false
}

// formatScore writes a score with one decimal: "9.8", "7.0".
func formatScore(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }

// severityScore maps a severity to a GitHub security-severity when no
// CVSS score is known: Critical 9.5, High 8.0, Medium 5.5, Low 3.0,
// Negligible 1.0, and "" (no security severity) for Unknown.
func severityScore(s buildgate.Severity) string {
	switch s {
	case buildgate.SeverityCritical:
		return "9.5"
	case buildgate.SeverityHigh:
		return "8.0"
	case buildgate.SeverityMedium:
		return "5.5"
	case buildgate.SeverityLow:
		return "3.0"
	case buildgate.SeverityNegligible:
		return "1.0"
	}
	return ""
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// gzipSize returns the size of data gzipped.
func gzipSize(data []byte) (int, error) {
	var c countWriter
	zw := gzip.NewWriter(&c)
	if _, err := zw.Write(data); err != nil {
		return 0, fmt.Errorf("measuring sarif report: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("measuring sarif report: %w", err)
	}
	return int(c), nil
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// marshalJSON encodes v with two-space indentation, without HTML
// escaping, ending with a newline.
func marshalJSON(v any, what string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return buf.Bytes(), nil
}
