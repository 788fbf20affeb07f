package report

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// goldenExt is each format's golden file extension.
var goldenExt = map[string]string{
	FormatJUnit:    "junit.xml",
	FormatSARIF:    "sarif",
	FormatGitLab:   "gitlab.json",
	FormatMarkdown: "md",
	FormatJSON:     "json",
}

func TestGolden(t *testing.T) {
	linted := false
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Evaluation.FinalAction; got != tc.want {
				t.Fatalf("fixture verdict is %v, want %v", got, tc.want)
			}
			out := checkAll(t, tc.in, false)
			linted = xmllint(t, out[FormatJUnit]) || linted
			for _, f := range Formats() {
				path := filepath.Join("testdata", "golden", tc.name+"."+goldenExt[f])
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, out[f], 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("reading golden file (run go test ./internal/report -update): %v", err)
				}
				if !bytes.Equal(out[f], want) {
					t.Errorf("%s differs from %s (run go test ./internal/report -update to refresh):\n%s", f, path, firstDiff(string(want), string(out[f])))
				}
			}
		})
	}
	if !linted {
		t.Log("xmllint not installed (apt-get install libxml2-utils): JUnit checked structurally only")
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + w + "\n  got: " + g
		}
	}
	return "(same lines)"
}

func TestXMLLint(t *testing.T) {
	for _, tc := range goldenCases(t) {
		if !xmllint(t, render(t, FormatJUnit, tc.in)) {
			t.Skip("xmllint not installed (apt-get install libxml2-utils)")
		}
	}
}

func TestGoldenSemantics(t *testing.T) {
	stop := stopCase(t)
	out := checkAll(t, stop, false)
	d := parseSARIF(t, out[FormatSARIF])
	run := d.Runs[0]

	// Locations in the Dockerfile: final FROM (line 7), EXPOSE (12), USER (13).
	lines := map[string]int{}
	for _, r := range run.Results {
		loc := r.Locations[0].PhysicalLocation
		if loc == nil || loc.ArtifactLocation.URI != "Dockerfile" || loc.Region == nil {
			t.Fatalf("result %s has no Dockerfile location", r.RuleID)
		}
		lines[r.RuleID] = loc.Region.StartLine
	}
	for rule, want := range map[string]int{
		"dockerfile/exposed_ports":  12,
		"dockerfile/effective_user": 13,
		"dockerfile/instruction":    7,
		"CVE-2024-5535":             7,
		"packages/blacklist":        7,
	} {
		if lines[rule] != want {
			t.Errorf("%s points at line %d, want %d", rule, lines[rule], want)
		}
	}

	// The KEV WARN and the package STOP of CVE-2024-5535 are one error result.
	n := 0
	for _, r := range run.Results {
		if r.RuleID == "CVE-2024-5535" {
			n++
			if r.Level != "error" {
				t.Errorf("CVE-2024-5535 is %s, want error", r.Level)
			}
		}
		if r.RuleID == "GHSA-4v7x-pqxf-cx7m" {
			if r.Level != "note" || len(r.Suppressions) != 1 || r.Suppressions[0].Kind != "external" ||
				r.Suppressions[0].Status != "accepted" || !strings.Contains(r.Suppressions[0].Justification, "Not reachable") {
				t.Errorf("allowlisted GHSA result: level %s, suppressions %+v", r.Level, r.Suppressions)
			}
		}
		if strings.HasPrefix(r.RuleID, "CVE-2023-4039") {
			t.Errorf("GO finding %s is in the SARIF", r.RuleID)
		}
	}
	if n != 1 {
		t.Errorf("CVE-2024-5535 has %d results, want 1 (merged)", n)
	}
	for _, r := range run.Tool.Driver.Rules {
		switch r.ID {
		case "CVE-2024-5535":
			if r.Properties.SecuritySeverity != "9.1" {
				t.Errorf("security-severity of CVE-2024-5535 = %q, want 9.1", r.Properties.SecuritySeverity)
			}
		case "CVE-2023-45853":
			if r.Properties.SecuritySeverity != "9.5" {
				t.Errorf("security-severity of CVE-2023-45853 (no CVSS) = %q, want 9.5", r.Properties.SecuritySeverity)
			}
		}
	}

	md := string(out[FormatMarkdown])
	for _, want := range []string{
		MarkdownMarker + "\n## buildgate: **STOP** — build fails",
		`Not reachable: we never call ParseMultipart \| tracked in SEC-42`,
		"Waiting for Debian's fix",
		"2026-06-30",
		"2026-01-31",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	junit := string(out[FormatJUnit])
	for _, want := range []string{
		`<failure type="STOP" message="Dockerfile exposes port (22) which is in policy file DENIEDPORTS list">`,
		`allowlisted by item "ex-ghsa"`,
		"expires 2026-06-30T00:00:00Z",
		`expired allowlist: item "ex-zlib"`,
	} {
		if !strings.Contains(junit, want) {
			t.Errorf("junit lacks %q", want)
		}
	}

	deny := checkAll(t, denylistCase(t), false)
	if !strings.Contains(string(deny[FormatJUnit]), `<failure type="STOP" message="image is denylisted by &#34;legacy images&#34;`) {
		t.Errorf("denylisted image test case does not fail saying so:\n%s", deny[FormatJUnit])
	}
	dd := parseSARIF(t, deny[FormatSARIF])
	if r := dd.Runs[0].Results[0]; r.RuleID != RuleDenylistedImage || r.Level != "error" {
		t.Errorf("first denylisted result is %s/%s", r.RuleID, r.Level)
	}
	// No Dockerfile: the npm package's path, relative.
	if loc := dd.Runs[0].Results[1].Locations[0].PhysicalLocation; loc == nil || loc.ArtifactLocation.URI != "app/node_modules/lodash/package.json" {
		t.Errorf("npm result location = %+v", loc)
	}
}

func TestRenderFormats(t *testing.T) {
	in := cleanCase(t)
	tests := []struct {
		name, format, contentType, fileName string
		wantErr                             bool
	}{
		{"junit", "junit", "application/xml", "buildgate.junit.xml", false},
		{"sarif", "sarif", "application/sarif+json", "buildgate.sarif", false},
		{"gitlab", "gitlab", "application/json", "gl-container-scanning-report.json", false},
		{"markdown", "markdown", "text/markdown; charset=utf-8", "buildgate.md", false},
		{"json", "json", "application/json", "buildgate.json", false},
		{"upper case", "SARIF", "application/sarif+json", "buildgate.sarif", false},
		{"unknown", "html", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Render(tt.format, &buf, in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Render(%q) error = %v, want error %v", tt.format, err, tt.wantErr)
			}
			if err != nil {
				for _, f := range Formats() {
					if !strings.Contains(err.Error(), f) {
						t.Errorf("error %q does not name %s", err, f)
					}
				}
			} else if buf.Len() == 0 {
				t.Error("empty output")
			}
			if got := ContentType(tt.format); got != tt.contentType {
				t.Errorf("ContentType(%q) = %q, want %q", tt.format, got, tt.contentType)
			}
			if got := FileName(tt.format); got != tt.fileName {
				t.Errorf("FileName(%q) = %q, want %q", tt.format, got, tt.fileName)
			}
		})
	}
}

func TestNoEvaluation(t *testing.T) {
	in := cleanCase(t)
	in.Evaluation = nil
	for _, f := range Formats() {
		t.Run(f, func(t *testing.T) {
			var buf bytes.Buffer
			err := Render(f, &buf, in)
			if f == FormatGitLab {
				if err != nil {
					t.Fatal(err)
				}
				validateGitLab(t, buf.Bytes())
				if d := parseGitLab(t, buf.Bytes()); d.Scan.Status != "failure" {
					t.Errorf("scan status = %q, want failure", d.Scan.Status)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "no evaluation") {
				t.Errorf("error = %v, want one saying there is no evaluation", err)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		final  policy.Action
		failOn policy.Action
		nilEv  bool
		want   int
	}{
		{"go passes", policy.ActionGo, policy.ActionStop, false, 0},
		{"warn passes", policy.ActionWarn, policy.ActionStop, false, 0},
		{"stop fails", policy.ActionStop, policy.ActionStop, false, 1},
		{"warn fails on warn", policy.ActionWarn, policy.ActionWarn, false, 1},
		{"go passes on warn", policy.ActionGo, policy.ActionWarn, false, 0},
		{"stop fails on warn", policy.ActionStop, policy.ActionWarn, false, 1},
		{"go fails on go", policy.ActionGo, policy.ActionGo, false, 1},
		{"stop passes on none", policy.ActionStop, FailOnNone, false, 0},
		{"warn passes on none", policy.ActionWarn, FailOnNone, false, 0},
		{"go passes on none", policy.ActionGo, FailOnNone, false, 0},
		{"no evaluation", policy.ActionGo, policy.ActionStop, true, 2},
		{"no evaluation on none", policy.ActionStop, FailOnNone, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &policy.Evaluation{FinalAction: tt.final}
			if tt.nilEv {
				e = nil
			}
			if got := ExitCode(e, tt.failOn); got != tt.want {
				t.Errorf("ExitCode(%v, %v) = %d, want %d", tt.final, tt.failOn, got, tt.want)
			}
		})
	}
}

// TestDeterministic renders each case twice, the second time with
// findings, matches and packages shuffled, and wants the same bytes.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			first := map[string][]byte{}
			for _, f := range Formats() {
				first[f] = render(t, f, tc.in)
			}
			ev := *tc.in.Evaluation
			ev.Findings = slices.Clone(ev.Findings)
			rng.Shuffle(len(ev.Findings), func(i, j int) { ev.Findings[i], ev.Findings[j] = ev.Findings[j], ev.Findings[i] })
			in := tc.in
			in.Evaluation = &ev
			in.Matches = slices.Clone(in.Matches)
			rng.Shuffle(len(in.Matches), func(i, j int) { in.Matches[i], in.Matches[j] = in.Matches[j], in.Matches[i] })
			for _, f := range Formats() {
				if got := render(t, f, in); !bytes.Equal(got, first[f]) {
					t.Errorf("%s output depends on input order:\n%s", f, firstDiff(string(first[f]), string(got)))
				}
			}
		})
	}
}

func TestMarkdownEscapes(t *testing.T) {
	in := cleanCase(t)
	ev := *in.Evaluation
	ev.FinalAction, ev.PolicyFinalAction = policy.ActionStop, policy.ActionStop
	ev.Findings = []policy.Finding{{
		TriggerID: "x", Gate: "metadata", Trigger: "attribute", Action: policy.ActionStop,
		Message: "value 'a|b'\nsecond line <script>",
	}}
	in.Evaluation = &ev
	md := string(render(t, FormatMarkdown, in))
	want := `| metadata | attribute |  | value 'a\|b'<br>second line &lt;script&gt; |  |`
	if !strings.Contains(md, want) {
		t.Errorf("markdown lacks the escaped row %q:\n%s", want, md)
	}
}

func TestMarkdownCaps(t *testing.T) {
	in := cleanCase(t)
	ev := *in.Evaluation
	ev.FinalAction, ev.PolicyFinalAction = policy.ActionStop, policy.ActionStop
	ev.Findings = nil
	for i := range 120 {
		ev.Findings = append(ev.Findings, policy.Finding{
			TriggerID: "t" + strconv.Itoa(i), Gate: "always", Trigger: "always",
			Action: []policy.Action{policy.ActionStop, policy.ActionWarn}[i%2], Message: "finding " + strconv.Itoa(i),
		})
	}
	in.Evaluation = &ev
	md := string(render(t, FormatMarkdown, in))
	for _, want := range []string{"### STOP findings (60)", "…and 10 more STOP findings: see [the gate](", "### WARN findings (60)", "…and 10 more WARN findings"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if n := strings.Count(md, "| always | always |"); n != 100 {
		t.Errorf("markdown has %d finding rows, want 100", n)
	}
}

func TestDockerfileLines(t *testing.T) {
	df := parseDockerfile(stopDockerfile)
	tests := []struct {
		name    string
		finding policy.Finding
		want    int
	}{
		{"vulnerability at final FROM", policy.Finding{Gate: "vulnerabilities", Trigger: "package"}, 7},
		{"exposed port", policy.Finding{Gate: "dockerfile", Trigger: "exposed_ports", Message: "Dockerfile exposes port (22) which is in policy file DENIEDPORTS list"}, 12},
		{"any port", policy.Finding{Gate: "dockerfile", Trigger: "exposed_ports", Message: "Dockerfile exposes network ports but policy sets DENIEDPORTS=0: ['8080', '22']"}, 12},
		{"effective user", policy.Finding{Gate: "dockerfile", Trigger: "effective_user", Message: "User root found as effective user"}, 13},
		{"instruction", policy.Finding{Gate: "dockerfile", Trigger: "instruction", Message: "Dockerfile directive 'RUN' check 'like' matched against 'apt-get' for line 'apt-get update && apt-get install -y --no-install-recommends ca-certificates openssl telnet && rm -rf /var/lib/apt/lists/*'"}, 8},
		{"instruction in build stage", policy.Finding{Gate: "dockerfile", Trigger: "instruction", Message: "Dockerfile directive 'WORKDIR' check 'exists' matched against '' for line '/src'"}, 3},
		{"instruction missing", policy.Finding{Gate: "dockerfile", Trigger: "instruction", Message: "Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"}, 7},
		{"package", policy.Finding{Gate: "packages", Trigger: "blacklist"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := df.lineOf(&tt.finding); got != tt.want {
				t.Errorf("lineOf = %d, want %d", got, tt.want)
			}
		})
	}
	if got := parseDockerfile("").fromLine(); got != 1 {
		t.Errorf("empty Dockerfile points at line %d, want 1", got)
	}
	heredoc := "FROM alpine\nRUN <<EOF\necho hi\nEOF\nUSER nobody\n"
	if got := parseDockerfile(heredoc).lineOf(&policy.Finding{Gate: "dockerfile", Trigger: "effective_user"}); got != 5 {
		t.Errorf("USER after a here-document at line %d, want 5", got)
	}
}

func TestSARIFLocations(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{"default", "", "Dockerfile"},
		{"dot slash", "./build/app.Dockerfile", "build/app.Dockerfile"},
		{"windows", `build\Dockerfile`, "build/Dockerfile"},
		{"space", "my dir/Dockerfile", "my%20dir/Dockerfile"},
		{"absolute", "/src/Dockerfile", "file:///src/Dockerfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Image: ImageInfo{DockerfilePath: tt.path}}
			if got := dockerfileLocation(&in, 3).PhysicalLocation.ArtifactLocation.URI; got != tt.want {
				t.Errorf("uri = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprintSurvivesRebuild(t *testing.T) {
	a := stopCase(t)
	b := stopCase(t)
	b.Image.Digest = "sha256:9999999999999999999999999999999999999999999999999999999999999999"
	b.Image.Ref = "registry.example/team/app:3.1.5"
	fa := parseSARIF(t, render(t, FormatSARIF, a))
	fb := parseSARIF(t, render(t, FormatSARIF, b))
	for i, r := range fa.Runs[0].Results {
		if got := fb.Runs[0].Results[i].PartialFingerprints[FingerprintKey]; got != r.PartialFingerprints[FingerprintKey] || got == "" {
			t.Errorf("fingerprint of %s changed across a rebuild", r.RuleID)
		}
	}
}

func TestGitLabIdentifiers(t *testing.T) {
	tests := []struct {
		name, id, wantType, wantURL string
	}{
		{"cve", "CVE-2024-1", "cve", "https://nvd.nist.gov/vuln/detail/CVE-2024-1"},
		{"ghsa", "GHSA-aaaa-bbbb-cccc", "ghsa", "https://github.com/advisories/GHSA-aaaa-bbbb-cccc"},
		{"go", "GO-2024-1", "go", "https://pkg.go.dev/vuln/GO-2024-1"},
		{"other", "DSA-5555-1", "other", "https://example.test/DSA-5555-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildgate.Match{VulnerabilityID: tt.id, URLs: []string{"https://example.test/" + tt.id}}
			ids := gitlabIdentifiers(&m)
			if ids[0].Type != tt.wantType || ids[0].URL != tt.wantURL || ids[0].Value != tt.id {
				t.Errorf("identifier = %+v, want type %s url %s", ids[0], tt.wantType, tt.wantURL)
			}
		})
	}
	m := buildgate.Match{VulnerabilityID: "CVE-2024-1", PackageName: "a", PackageVersion: "1"}
	if a, b := gitlabID(&m), gitlabID(&m); a != b || len(a) != 36 || a[14] != '5' {
		t.Errorf("gitlabID = %q, %q: want a stable version 5 UUID", a, b)
	}
}

// TestSchemasMatchShared checks the schema copies under testdata against
// the shared contracts, when those are present.
func TestSchemasMatchShared(t *testing.T) {
	dir := os.Getenv("BUILDGATE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	dir = filepath.Join(dir, "contracts", "schemas")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared schemas not found at %s", dir)
	}
	for _, name := range []string{"sarif-schema-2.1.0.json", "gitlab-container-scanning-report-format.json", "junit.xsd"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(schemaDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/schemas/%s differs from %s", name, filepath.Join(dir, name))
		}
	}
}

func TestMarkdownHeadlineFollowsFailOn(t *testing.T) {
	tests := []struct {
		final  policy.Action
		failOn policy.Action
		want   string
	}{
		{policy.ActionStop, policy.ActionStop, "**STOP** — build fails"},
		{policy.ActionStop, FailOnNone, "**STOP** — build passes (--fail-on none: report only)"},
		{policy.ActionWarn, policy.ActionStop, "**WARN** — build passes with warnings"},
		{policy.ActionWarn, policy.ActionWarn, "**WARN** — build fails (--fail-on warn)"},
		{policy.ActionWarn, FailOnNone, "**WARN** — build passes with warnings"},
		{policy.ActionGo, FailOnNone, "**GO** — build passes"},
	}
	for _, tt := range tests {
		in := Input{Evaluation: &policy.Evaluation{FinalAction: tt.final, Reason: policy.ReasonPolicyEvaluation, ImageDigest: "sha256:abc"}, FailOn: tt.failOn}
		var buf strings.Builder
		if err := Markdown(&buf, in); err != nil {
			t.Fatal(err)
		}
		if want := MarkdownMarker + "\n## buildgate: " + tt.want + "\n"; !strings.HasPrefix(buf.String(), want) {
			t.Errorf("verdict %v, failOn %d: markdown starts\n%.120s\nwant %q", tt.final, tt.failOn, buf.String(), want)
		}
	}
}

func TestImageURL(t *testing.T) {
	for _, base := range []string{"https://gate.example", "https://gate.example/"} {
		if got, want := ImageURL(base, "sha256:abc"), "https://gate.example/ui/images/sha256:abc"; got != want {
			t.Errorf("ImageURL(%q) = %q, want %q", base, got, want)
		}
	}
	if got := ImageURL("https://gate.example/prefix", "a/b c"); got != "https://gate.example/prefix/ui/images/a%2Fb%20c" {
		t.Errorf("ImageURL escapes to %q", got)
	}
}
