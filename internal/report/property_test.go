package report

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// TestConsistency renders hundreds of generated evaluations in every
// format and checks that the formats agree with the verdict and each
// other: JUnit failures ⇔ SARIF error results ⇔ verdict STOP ⇔ exit code
// 1 (0 whatever the verdict under --fail-on none; under --fail-on new
// only new STOP findings, or the image itself, fail); the Markdown
// headline and counts; the GitLab report lists every match; every format
// marks each finding new or inherited when there is a baseline; SARIF and
// GitLab validate against their schemas.
//
// Half of the evaluations are synthetic (random findings over every
// gate, actions, allowlisting, image allow and deny lists, the final
// action computed by the policy rules), half come from policy.Evaluate
// with random bundles and facts.
func TestConsistency(t *testing.T) {
	rng := rand.New(rand.NewSource(20260301))
	// failOn is drawn apart, so that the generators' sequence stays.
	failRNG := rand.New(rand.NewSource(17))
	baseRNG := rand.New(rand.NewSource(42))
	failOns := map[policy.Action]int{}
	baselines := 0
	const synthetic, evaluated = 300, 200
	verdicts := map[policy.Action]int{}
	reasons := map[policy.Reason]int{}
	for i := range synthetic + evaluated {
		var in Input
		if i < synthetic {
			in = syntheticInput(rng)
		} else {
			in = evaluatedInput(t, rng)
		}
		in.FailOn = pick(failRNG, []policy.Action{policy.ActionStop, policy.ActionStop, policy.ActionWarn, FailOnNone, FailOnNew, FailOnNew})
		failOns[in.FailOn]++
		if randomBaseline(baseRNG, in.Evaluation) {
			baselines++
		}
		verdicts[in.Evaluation.FinalAction]++
		reasons[in.Evaluation.Reason]++
		name := fmt.Sprintf("case%03d", i)
		ok := t.Run(name, func(t *testing.T) { checkConsistency(t, in, i%25 == 0) })
		if !ok {
			data, _ := json.MarshalIndent(in.Evaluation, "", "  ")
			t.Logf("%s evaluation:\n%s", name, data)
			t.FailNow()
		}
	}
	// The generators must cover every verdict and reason.
	for _, a := range []policy.Action{policy.ActionStop, policy.ActionWarn, policy.ActionGo} {
		if verdicts[a] < 20 {
			t.Errorf("only %d cases with verdict %v", verdicts[a], a)
		}
	}
	for _, r := range []policy.Reason{policy.ReasonPolicyEvaluation, policy.ReasonAllowlistedImage, policy.ReasonDenylistedImage} {
		if reasons[r] < 20 {
			t.Errorf("only %d cases with reason %s", reasons[r], r)
		}
	}
	for _, f := range []policy.Action{policy.ActionStop, policy.ActionWarn, FailOnNone, FailOnNew} {
		if failOns[f] < 50 {
			t.Errorf("only %d cases with failOn %d", failOns[f], f)
		}
	}
	if baselines < 100 {
		t.Errorf("only %d cases with a baseline", baselines)
	}
}

// randomBaseline gives half of the evaluations a baseline and marks a
// random part of their findings inherited; it reports whether it did.
func randomBaseline(rng *rand.Rand, e *policy.Evaluation) bool {
	if rng.Intn(2) == 0 {
		return false
	}
	e.Baseline = &policy.Baseline{Digest: fmt.Sprintf("sha256:%064x", rng.Int63()), Ref: pick(rng, []string{"", "debian:11", "auto: main"})}
	for i := range e.Findings {
		e.Findings[i].Inherited = rng.Intn(2) == 0
	}
	return true
}

var (
	headlineRE = regexp.MustCompile(`(?m)^## buildgate: (.*)$`)
	countRowRE = regexp.MustCompile(`(?m)^\| (STOP|WARN|GO|Allowlisted|Total) \| (\d+) \|$`)
)

func checkConsistency(t *testing.T, in Input, lint bool) {
	e := in.Evaluation
	out := checkAll(t, in, lint)
	stop := e.FinalAction == policy.ActionStop

	junit := checkJUnit(t, out[FormatJUnit])
	sarif := parseSARIF(t, out[FormatSARIF])
	errs := sarif.levels()["error"]
	exit := ExitCode(e, policy.ActionStop)
	if in.FailOn == FailOnNew {
		// Only what the baseline does not have fails, in every format.
		exit = ExitCode(e, FailOnNew)
		stop = newStop(e)
		if exit == 1 && !stop {
			t.Fatalf("exit code 1 under --fail-on new without a new STOP finding or a failing image")
		}
	}
	if (junit.failures > 0) != stop || (errs > 0) != stop || (exit == 1) != stop {
		t.Fatalf("verdict %v (%s) but JUnit failures %d, SARIF errors %d, exit code %d under failOn %d", e.FinalAction, e.Reason, junit.failures, errs, exit, in.FailOn)
	}
	checkBaselineMarks(t, in, out)
	if got := ExitCode(e, policy.ActionWarn) == 1; got != (e.FinalAction != policy.ActionGo) {
		t.Errorf("ExitCode(%v, warn) = %v", e.FinalAction, got)
	}
	// --fail-on none reports the same verdict and never fails the build.
	if got := ExitCode(e, FailOnNone); got != ExitPass {
		t.Errorf("ExitCode(%v, none) = %d, want %d", e.FinalAction, got, ExitPass)
	}
	if want := 1 + len(e.Findings); junit.tests != want {
		t.Errorf("JUnit has %d tests, want %d (image + findings)", junit.tests, want)
	}

	// SARIF: exactly the findings the verdict used, GO findings left out;
	// error results are STOP findings or the image itself.
	c := e.Counts()
	run := sarif.Runs[0]
	if run.Properties.Verdict != e.FinalAction.String() || run.Properties.Counts.Stop != c.Stop ||
		run.Properties.Counts.Warn != c.Warn || run.Properties.Counts.Go != c.Go || run.Properties.Counts.Allowlisted != c.Allowlisted {
		t.Errorf("SARIF run properties %+v disagree with the evaluation", run.Properties)
	}
	rules := run.Tool.Driver.Rules
	for _, r := range run.Results {
		if r.RuleIndex < 0 || r.RuleIndex >= len(rules) || rules[r.RuleIndex].ID != r.RuleID {
			t.Fatalf("result of %s has ruleIndex %d", r.RuleID, r.RuleIndex)
		}
		if r.PartialFingerprints[FingerprintKey] == "" || len(r.Locations) != 1 {
			t.Fatalf("result of %s lacks a fingerprint or location", r.RuleID)
		}
		switch r.Level {
		case "note":
			if len(r.Suppressions) != 1 || r.Suppressions[0].Justification == "" {
				t.Errorf("note result of %s has suppressions %+v", r.RuleID, r.Suppressions)
			}
		case "error", "warning":
			if len(r.Suppressions) != 0 {
				t.Errorf("%s result of %s is suppressed", r.Level, r.RuleID)
			}
		default:
			t.Errorf("result of %s has level %q", r.RuleID, r.Level)
		}
		if r.Properties.Outcome == "go" {
			t.Errorf("GO finding %s is in the SARIF", r.RuleID)
		}
	}
	if run.Properties.Truncated {
		t.Errorf("small evaluation truncated")
	}

	// Markdown: headline and counts.
	md := string(out[FormatMarkdown])
	if !strings.HasPrefix(md, MarkdownMarker+"\n") {
		t.Errorf("markdown does not start with the marker")
	}
	// The headline names the verdict and says the build fails exactly when
	// the step exits 1 under in.FailOn.
	m := headlineRE.FindStringSubmatch(md)
	switch {
	case m == nil:
		t.Errorf("markdown has no headline")
	case in.FailOn == policy.ActionStop && m[1] != headlines[e.FinalAction]:
		t.Errorf("markdown headline %q, want %q", m[1], headlines[e.FinalAction])
	case !strings.HasPrefix(m[1], "**"+strings.ToUpper(e.FinalAction.String())+"** — build "):
		t.Errorf("markdown headline %q does not name the verdict %v", m[1], e.FinalAction)
	case strings.Contains(m[1], "build fails") != (ExitCode(e, in.FailOn) == ExitFail):
		t.Errorf("markdown headline %q but exit code %d under failOn %d", m[1], ExitCode(e, in.FailOn), in.FailOn)
	}
	if fails := strings.Contains(md, "the build fails"); fails && ExitCode(e, in.FailOn) != ExitFail {
		t.Errorf("markdown says the build fails, exit code %d under failOn %d", ExitCode(e, in.FailOn), in.FailOn)
	}
	want := map[string]int{"STOP": c.Stop, "WARN": c.Warn, "GO": c.Go, "Allowlisted": c.Allowlisted, "Total": len(e.Findings)}
	got := map[string]int{}
	section, _, _ := strings.Cut(md, "### Vulnerabilities by severity")
	for _, row := range countRowRE.FindAllStringSubmatch(section, -1) {
		got[row[1]], _ = strconv.Atoi(row[2])
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("markdown counts %s = %d, want %d", k, got[k], v)
		}
	}

	// GitLab lists every match.
	gl := parseGitLab(t, out[FormatGitLab])
	ids := map[string]bool{}
	for _, v := range gl.Vulnerabilities {
		if ids[v.ID] {
			t.Errorf("GitLab id %s repeated", v.ID)
		}
		ids[v.ID] = true
	}
	for i := range in.Matches {
		if !ids[gitlabID(&in.Matches[i])] {
			t.Errorf("GitLab report lacks %s in %s", in.Matches[i].VulnerabilityID, in.Matches[i].PackageName)
		}
	}
	if gl.Version != GitLabSchemaVersion || gl.Scan.Status != "success" {
		t.Errorf("GitLab version %q status %q", gl.Version, gl.Scan.Status)
	}

	// JSON summary.
	var s Summary
	if err := json.Unmarshal(out[FormatJSON], &s); err != nil {
		t.Fatal(err)
	}
	if s.Verdict != e.FinalAction.String() || s.Counts != c || s.Passed != e.Passed() || len(s.Evaluation.Findings) != len(e.Findings) {
		t.Errorf("JSON summary disagrees with the evaluation")
	}
}

// newStop says whether a STOP verdict has a new STOP finding that
// counts, or no finding at all that explains it, computed from the
// evaluation alone.
func newStop(e *policy.Evaluation) bool {
	if e.FinalAction != policy.ActionStop {
		return false
	}
	if e.Reason == policy.ReasonDenylistedImage {
		return true
	}
	explained := false
	for _, f := range e.Findings {
		if f.Allowlisted != nil || f.Action != policy.ActionStop {
			continue
		}
		if e.Baseline == nil || !f.Inherited {
			return true
		}
		explained = true
	}
	return !explained
}

// checkBaselineMarks checks that each format marks every finding new or
// inherited exactly when the evaluation has a baseline, and names it.
func checkBaselineMarks(t *testing.T, in Input, out map[string][]byte) {
	t.Helper()
	e := in.Evaluation
	var newN, inheritedN int
	for _, f := range e.Findings {
		if f.Inherited {
			inheritedN++
		} else {
			newN++
		}
	}
	junit := string(out[FormatJUnit])
	marks := strings.Count(junit, "baseline: new") + strings.Count(junit, "baseline: inherited")
	sarif := parseSARIF(t, out[FormatSARIF])
	states := 0
	for _, r := range sarif.Runs[0].Results {
		if r.BaselineState != "" {
			states++
		}
	}
	if e.Baseline == nil {
		if marks != 0 || states != 0 || strings.Contains(string(out[FormatMarkdown]), "**Baseline:**") {
			t.Errorf("no baseline, but %d JUnit marks, %d SARIF baseline states", marks, states)
		}
		return
	}
	if marks != len(e.Findings) {
		t.Errorf("JUnit marks %d findings new or inherited, want %d", marks, len(e.Findings))
	}
	if junitNew := strings.Count(junit, "baseline: new"); junitNew != newN {
		t.Errorf("JUnit marks %d findings new, want %d", junitNew, newN)
	}
	if !strings.Contains(junit, `name="baseline.digest" value="`+e.Baseline.Digest+`"`) {
		t.Errorf("JUnit does not name the baseline %s", e.Baseline.Digest)
	}
	wantStates := 0
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID == RuleVerdict || r.RuleID == RuleDenylistedImage {
			continue
		}
		wantStates++
	}
	if states != wantStates {
		t.Errorf("SARIF: %d results with a baselineState, want %d", states, wantStates)
	}
	if sarif.Runs[0].Properties.Baseline == nil || sarif.Runs[0].Properties.Baseline.Digest != e.Baseline.Digest {
		t.Errorf("SARIF run does not name the baseline")
	}
	md := string(out[FormatMarkdown])
	if want := fmt.Sprintf("— %d new, %d inherited findings", newN, inheritedN); !strings.Contains(md, want) {
		t.Errorf("markdown lacks %q", want)
	}
	if in.FailOn == FailOnNew && ExitCode(e, FailOnNew) == ExitPass && e.FinalAction == policy.ActionStop && !strings.Contains(md, "no new STOP finding") {
		t.Errorf("markdown does not say the STOP verdict passes for want of new findings")
	}
	var table strings.Builder
	if _, err := FindingsTable(&table, e, in.FailOn, 0); err != nil {
		t.Fatal(err)
	}
	rows := strings.Count(table.String(), "  new  ") + strings.Count(table.String(), "  inherited  ")
	if len(e.Findings) > 0 && rows != len(e.Findings) {
		t.Errorf("the log table marks %d rows new or inherited, want %d:\n%s", rows, len(e.Findings), table.String())
	}
}

// Random pieces.

var (
	tricky = []string{"", "a|b", "line one\nline two", "<b>bold</b> & co", `"quoted" 'single'`, "tab\there", "ünïcödé ✓", "ctrl\x01char", "back`tick", "]]> cdata end"}
	gates  = []struct{ gate, trigger string }{
		{"vulnerabilities", "package"}, {"vulnerabilities", "known_exploited"}, {"vulnerabilities", "stale_feed_data"},
		{"dockerfile", "exposed_ports"}, {"dockerfile", "effective_user"}, {"dockerfile", "instruction"},
		{"packages", "blacklist"}, {"licenses", "blacklist_exact_match"}, {"secret_scans", "content_regex_checks"},
		{"files", "suid_or_guid_set"}, {"metadata", "attribute"}, {"always", "always"},
	}
	refs = []string{"registry.example/team/app:1.0", "docker.io/library/nginx:1.25", "ghcr.io/org/svc@sha256:abcd", "localhost:5000/x/y", ""}
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.Intn(len(s))] }

func randomAction(rng *rand.Rand) policy.Action {
	return []policy.Action{policy.ActionStop, policy.ActionWarn, policy.ActionGo}[rng.Intn(3)]
}

func randomMatch(rng *rand.Rand, i int) buildgate.Match {
	id := pick(rng, []string{"CVE-2024-%d", "GHSA-%04d-abcd-efgh", "GO-2024-%d", "DSA-%d-1", "TEMP-%d"})
	m := buildgate.Match{
		VulnerabilityID: fmt.Sprintf(id, 1000+rng.Intn(50)),
		Severity:        buildgate.Severity(rng.Intn(6)),
		Description:     pick(rng, tricky),
		PackageName:     pick(rng, []string{"openssl", "zlib1g", "lodash", "stdlib", "log4j-core"}),
		PackageVersion:  fmt.Sprintf("1.%d.%d", rng.Intn(3), rng.Intn(3)),
		PackageType:     pick(rng, []string{"deb", "npm", "go-module", "java-archive", "apk"}),
		FixState:        pick(rng, []buildgate.FixState{buildgate.FixStateFixed, buildgate.FixStateNotFixed, buildgate.FixStateWontFix, buildgate.FixStateUnknown}),
		KEV:             rng.Intn(5) == 0,
	}
	if !buildgate.IsOSType(m.PackageType) {
		m.PackagePath = pick(rng, []string{"/app/lib/x.jar", "/usr/local/bin/app", "/app/node_modules/" + m.PackageName + "/package.json", ""})
	}
	if m.FixState == buildgate.FixStateFixed {
		m.FixVersions = []string{"2.0.0", "1.9.9"}[:1+rng.Intn(2)]
	}
	if rng.Intn(2) == 0 {
		m.URLs = []string{pick(rng, []string{"https://example.test/" + m.VulnerabilityID, "not a url", "ftp://x", "https://e.test/a b"})}
	}
	if rng.Intn(2) == 0 {
		m.CVSS = []buildgate.CVSS{{Version: pick(rng, []string{"2.0", "3.1", "4.0"}), Vector: pick(rng, []string{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "bogus"}), BaseScore: float64(rng.Intn(101)) / 10}}
	}
	if rng.Intn(3) == 0 {
		m.RelatedIDs = []string{fmt.Sprintf("CVE-2023-%d", i)}
	}
	return m
}

func randomAllowlist(rng *rand.Rand, expired bool) *policy.AllowlistMatch {
	am := &policy.AllowlistMatch{AllowlistID: "wl" + strconv.Itoa(rng.Intn(3)), AllowlistName: pick(rng, tricky), ItemID: "item" + strconv.Itoa(rng.Intn(9)), Reason: pick(rng, tricky)}
	switch {
	case expired:
		am.ExpiresOn = at(-float64(1 + rng.Intn(90)))
	case rng.Intn(2) == 0:
		am.ExpiresOn = at(float64(1 + rng.Intn(90)))
	}
	return am
}

// randomVEX gives a vulnerability finding a VEX statement, which waives it
// as policy.Evaluate does when it is not_affected or fixed.
func randomVEX(rng *rand.Rand, f *policy.Finding) {
	d := &buildgate.VEXDecision{
		Source: pick(rng, tricky), Vulnerability: f.Vulnerability.VulnerabilityID, Product: "pkg:deb/debian/" + f.Vulnerability.PackageName,
		Status: pick(rng, []string{buildgate.VEXNotAffected, buildgate.VEXFixed, buildgate.VEXUnderInvestigation, buildgate.VEXAffected}),
	}
	switch d.Status {
	case buildgate.VEXNotAffected:
		d.Justification, d.ImpactStatement = "vulnerable_code_not_present", pick(rng, tricky)
	case buildgate.VEXAffected:
		d.ActionStatement = pick(rng, tricky)
	}
	f.VEX = d
	if d.Suppresses() {
		f.Allowlisted = &policy.AllowlistMatch{AllowlistID: d.Source, AllowlistName: d.Source, ItemID: d.Vulnerability, Reason: d.Text(), VEX: true}
	}
}

// syntheticInput builds a random evaluation whose final action follows
// the policy rules: the minimum action of the findings no allowlist
// waives (GO if none), then STOP for a denylisted image, else GO for an
// allowlisted one.
func syntheticInput(rng *rand.Rand) Input {
	var matches []buildgate.Match
	for i := range rng.Intn(12) {
		matches = append(matches, randomMatch(rng, i))
	}
	e := &policy.Evaluation{
		BundleID: "b" + strconv.Itoa(rng.Intn(3)), BundleName: pick(rng, tricky), MappingID: pick(rng, []string{"", "m1"}),
		PolicyIDs: []string{"p1"}, AllowlistIDs: []string{"wl0"}, Tag: pick(rng, refs),
		ImageDigest: fmt.Sprintf("sha256:%064x", rng.Int63()), DockerfileMode: pick(rng, []string{"actual", "guessed", "none"}),
		EvaluatedAt: pick(rng, []time.Time{now, {}}),
	}
	e.PolicyFinalAction = policy.ActionGo
	for range rng.Intn(20) {
		g := pick(rng, gates)
		f := policy.Finding{
			Gate: g.gate, Trigger: g.trigger, Action: randomAction(rng),
			Message: g.trigger + " fired: " + pick(rng, tricky), PolicyID: "p1", RuleID: "r" + strconv.Itoa(rng.Intn(5)),
			TriggerID: fmt.Sprintf("%032x", rng.Int63()),
		}
		if g.gate == "vulnerabilities" && len(matches) > 0 && g.trigger != "stale_feed_data" {
			m := matches[rng.Intn(len(matches))]
			f.Vulnerability = &m
			f.TriggerID = m.VulnerabilityID + "+" + m.PackageName
			f.Message = strings.ToUpper(m.Severity.String()) + " Vulnerability found - " + m.PackageName + " " + pick(rng, tricky)
		}
		if g.gate == "packages" {
			f.Package = &buildgate.Package{Name: "telnet", Version: "0.17", Type: "deb", Path: pick(rng, []string{"/var/lib/dpkg/status", ""})}
		}
		switch rng.Intn(6) {
		case 0, 1:
			f.Allowlisted = randomAllowlist(rng, false)
		case 2:
			f.Expired = randomAllowlist(rng, true)
		case 3:
			if f.Vulnerability != nil {
				randomVEX(rng, &f)
			}
		}
		if f.Allowlisted == nil && f.Action < e.PolicyFinalAction {
			e.PolicyFinalAction = f.Action
		}
		e.Findings = append(e.Findings, f)
	}
	e.FinalAction, e.Reason = e.PolicyFinalAction, policy.ReasonPolicyEvaluation
	switch rng.Intn(5) {
	case 0:
		e.FinalAction, e.Reason = policy.ActionStop, policy.ReasonDenylistedImage
		e.DenylistedImage = &policy.ImageRef{ID: "d1", Name: pick(rng, tricky), Registry: "*", Repository: "*", Image: policy.ImageSelector{Type: "tag", Value: "*"}}
	case 1:
		e.FinalAction, e.Reason = policy.ActionGo, policy.ReasonAllowlistedImage
		e.AllowlistedImage = &policy.ImageRef{ID: "a1", Name: pick(rng, tricky), Registry: "*", Repository: "*", Image: policy.ImageSelector{Type: "tag", Value: "*"}}
	}

	in := Input{
		Evaluation: e,
		Image: ImageInfo{
			Digest: pick(rng, []string{"", e.ImageDigest}), Ref: pick(rng, refs),
			Distro: pick(rng, []string{"", "debian", "alpine"}), DistroVersion: pick(rng, []string{"", "12", "3.19"}),
			OS: pick(rng, []string{"", "linux"}), Arch: pick(rng, []string{"", "amd64"}),
			DockerfilePath: pick(rng, []string{"", "Dockerfile", "./svc/Dockerfile", "/abs/Dockerfile", "dir with space/Dockerfile"}),
		},
		Matches: matches,
		GateURL: pick(rng, []string{"", "https://gate.example/ui/images/" + e.ImageDigest}),
		DB:      pick(rng, []buildgate.DBInfo{{}, freshDB()}),
		Scanner: pick(rng, []ScannerInfo{{}, scanner}),
	}
	if rng.Intn(2) == 0 {
		in.Image.Dockerfile = pick(rng, []string{stopDockerfile, "FROM scratch\n", "# only a comment\n", "FROM a\nEXPOSE 22\nUSER root\n"})
	}
	return in
}

// evaluatedInput evaluates a random bundle against random facts with
// policy.Evaluate.
func evaluatedInput(t testing.TB, rng *rand.Rand) Input {
	var matches []buildgate.Match
	for i := range rng.Intn(10) {
		m := randomMatch(rng, i)
		if rng.Intn(2) == 0 {
			m.PackageType, m.PackagePath = "deb", ""
		}
		matches = append(matches, m)
	}
	act := func() string { return strings.ToUpper(randomAction(rng).String()) }
	pool := []policy.Rule{
		{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "severity_comparison", pick(rng, []string{">=", "=", "<", ">"}), "severity", pick(rng, []string{"low", "medium", "high", "critical"}))},
		{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", pick(rng, []string{"os", "non-os"}), "severity_comparison", ">", "severity", "unknown")},
		{Gate: "vulnerabilities", Trigger: "known_exploited", Params: kv()},
		{Gate: "vulnerabilities", Trigger: "stale_feed_data", Params: kv("max_days_since_sync", "1")},
		{Gate: "dockerfile", Trigger: "exposed_ports", Params: kv("ports", "22", "type", "blacklist")},
		{Gate: "dockerfile", Trigger: "effective_user", Params: kv("users", "root", "type", "blacklist")},
		{Gate: "dockerfile", Trigger: "instruction", Params: kv("instruction", "HEALTHCHECK", "check", "not_exists")},
		{Gate: "packages", Trigger: "blacklist", Params: kv("name", "telnet")},
		{Gate: "always", Trigger: "always", Params: kv()},
	}
	var rules []policy.Rule
	for i, r := range pool {
		if rng.Intn(2) == 0 {
			r.ID, r.Action = "r"+strconv.Itoa(i), act()
			rules = append(rules, r)
		}
	}
	var items []policy.AllowlistItem
	for i, m := range matches {
		if rng.Intn(3) != 0 {
			continue
		}
		it := policy.AllowlistItem{ID: "i" + strconv.Itoa(i), Gate: "vulnerabilities", TriggerID: m.VulnerabilityID + "+*", Reason: pick(rng, tricky)}
		switch rng.Intn(3) {
		case 0:
			it.ExpiresOn = at(-10).Format(time.RFC3339)
		case 1:
			it.ExpiresOn = at(10).Format(time.RFC3339)
		}
		items = append(items, it)
	}
	if rng.Intn(4) == 0 {
		items = append(items, policy.AllowlistItem{ID: "all-docker", Gate: "dockerfile", TriggerID: "*", Reason: "dockerfile findings accepted"})
	}
	b := &policy.Bundle{
		ID: "bundle", Name: "random", Version: policy.BundleVersion,
		Policies:   []policy.Policy{{ID: "p", Name: "p", Version: policy.BundleVersion, Rules: rules}},
		Allowlists: []policy.Allowlist{{ID: "wl", Name: "wl", Version: policy.BundleVersion, Items: items}},
		Mappings: []policy.Mapping{{ID: "m", Name: "m", Registry: "*", Repository: "*",
			Image: policy.ImageSelector{Type: "tag", Value: "*"}, PolicyIDs: []string{"p"}, AllowlistIDs: []string{"wl"}}},
	}
	sel := func(repo string) policy.ImageRef {
		return policy.ImageRef{ID: "x-" + repo, Name: repo, Registry: "*", Repository: repo, Image: policy.ImageSelector{Type: "tag", Value: "*"}}
	}
	if rng.Intn(4) == 0 {
		b.DenylistedImages = []policy.ImageRef{sel(pick(rng, []string{"team/*", "other/*"}))}
	}
	if rng.Intn(4) == 0 {
		b.AllowlistedImages = []policy.ImageRef{sel(pick(rng, []string{"team/*", "other/*"}))}
	}
	tag := pick(rng, []string{"registry.example/team/app:1.0", "registry.example/other/app:2.0"})
	facts := buildgate.Facts{
		Digest:   fmt.Sprintf("sha256:%064x", rng.Int63()),
		Tags:     []string{tag},
		Metadata: debian12(),
		Packages: []buildgate.Package{{ID: "t", Name: "telnet", Version: "0.17", Type: "deb", Path: "/var/lib/dpkg/status"}},
		Matches:  matches,
	}
	if rng.Intn(3) > 0 {
		facts.Dockerfile = pick(rng, []string{stopDockerfile, "FROM debian:12\nHEALTHCHECK CMD true\nUSER app\n", "FROM debian:12\nEXPOSE 22\n"})
	}
	db := freshDB()
	if rng.Intn(3) == 0 {
		db.Built = now.Add(-72 * time.Hour)
	}
	ev := evaluate(t, b, facts, tag, db)
	return inputFor(ev, facts, tag, "Dockerfile", db)
}
