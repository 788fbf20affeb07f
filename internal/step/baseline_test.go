package step_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

// withLodash is base plus one layer that adds lodash 4.17.15, an npm
// package with HIGH vulnerabilities (STOP in the default bundle).
func withLodash(t *testing.T, base v1.Image) v1.Image {
	t.Helper()
	layer := steptest.Layer(t, map[string]string{
		"app/node_modules/lodash/package.json": `{"name": "lodash", "version": "4.17.15", "license": "MIT"}`,
		"app/package.json":                     `{"name": "app", "version": "1.0.0", "dependencies": {"lodash": "4.17.15"}}`,
	})
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestBaseline gates bullseye-minbase plus a layer adding lodash with the
// base image as baseline: under --fail-on new only lodash's STOP findings
// fail the build, in the exit code, the line, the log table and every
// report; the base's own STOP findings are shown as inherited.
func TestBaseline(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	// A digest of its own, so that this test analyses it whatever the
	// other tests of the shared gate did before.
	baseImg := labelled(t, steptest.SharedImage(t, "bullseye-minbase"), "baseline-test")
	base := reg.Push(t, "team/base:11", baseImg)
	app := reg.Push(t, "team/app:1", withLodash(t, baseImg))

	t.Run("the base as baseline", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", base, "--fail-on", "new")
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ", "new against the baseline "+base+" (sha256:")
		checkReports(t, r)
		if !strings.Contains(r.stdout, "the baseline "+base) || !strings.Contains(r.stdout, "analysing it first") {
			t.Errorf("the log does not show the baseline's analysis:\n%s", r.stdout)
		}
		failures := junitFailures(t, r)
		if len(failures) == 0 {
			t.Fatal("no JUnit failure")
		}
		for _, f := range failures {
			if !strings.Contains(f, " in lodash ") {
				t.Errorf("JUnit failure %q is not lodash's", f)
			}
		}
		sarif := sarifResults(t, r)
		var errs, inherited int
		for _, res := range sarif {
			switch {
			case res.Level == "error":
				errs++
				if res.Properties.PackageName != "lodash" || res.BaselineState != "new" {
					t.Errorf("SARIF error %s in %s (%s)", res.RuleID, res.Properties.PackageName, res.BaselineState)
				}
			case res.Properties.Outcome == "inherited":
				inherited++
				if res.Properties.PackageName == "lodash" || res.BaselineState != "unchanged" || len(res.Suppressions) != 1 {
					t.Errorf("SARIF inherited result %s in %s (%s)", res.RuleID, res.Properties.PackageName, res.BaselineState)
				}
			}
		}
		if errs != len(failures) || inherited == 0 {
			t.Errorf("SARIF: %d errors (JUnit %d failures), %d inherited", errs, len(failures), inherited)
		}
		md := readReport(t, r, report.FormatMarkdown)
		newAt, inheritedAt := strings.Index(md, "### New STOP findings"), strings.Index(md, "### Inherited STOP findings")
		inheritedTable := md[max(inheritedAt, 0):]
		if end := strings.Index(inheritedTable[3:], "###"); end >= 0 {
			inheritedTable = inheritedTable[:end+3]
		}
		if !strings.Contains(md, "## buildgate: **STOP** — build fails (--fail-on new)") || newAt < 0 || inheritedAt < newAt ||
			strings.Contains(inheritedTable, " in lodash ") || !strings.Contains(md, "- **Baseline:** `"+base+" (sha256:") {
			t.Errorf("the markdown does not lead with lodash's new STOP findings:\n%s", md)
		}
		newTable := md[newAt:inheritedAt]
		if strings.Count(newTable, "| vulnerabilities | package |") != strings.Count(newTable, " in lodash ") {
			t.Errorf("the new STOP table holds other packages than lodash:\n%s", newTable)
		}
		var gl struct {
			Vulnerabilities []struct {
				Location struct {
					Dependency struct {
						Package struct{ Name string } `json:"package"`
					} `json:"dependency"`
				} `json:"location"`
				Details map[string]struct{ Value string } `json:"details"`
			} `json:"vulnerabilities"`
		}
		if err := json.Unmarshal([]byte(readReport(t, r, report.FormatGitLab)), &gl); err != nil {
			t.Fatal(err)
		}
		marked := 0
		for _, v := range gl.Vulnerabilities {
			d, ok := v.Details["baseline"]
			if !ok {
				continue
			}
			marked++
			if isLodash := v.Location.Dependency.Package.Name == "lodash"; isLodash != strings.HasPrefix(d.Value, "new ") {
				t.Errorf("GitLab marks %s %q", v.Location.Dependency.Package.Name, d.Value)
			}
		}
		if marked == 0 {
			t.Error("GitLab marks no vulnerability new or inherited")
		}
		// The log table: lodash's STOP rows first, then the inherited ones.
		_, table, _ := strings.Cut(r.stdout, "\n  SEVERITY  VULNERABILITY  ")
		rows := strings.Split(table, "\n")[1:]
		if len(rows) == 0 || !strings.Contains(rows[0], " lodash ") || !strings.Contains(rows[0], " new ") || !strings.HasSuffix(rows[0], " STOP") {
			t.Errorf("the log table does not start with lodash's new STOP finding:\n%s", r.stdout)
		}
		if !strings.Contains(table, " inherited  not counted (STOP)") {
			t.Errorf("the log table shows no inherited STOP finding:\n%s", r.stdout)
		}
	})

	t.Run("the image as its own baseline passes", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", app, "--fail-on", "new")
		wantLine(t, r, step.ExitPass, "buildgate: PASS: policy STOP: ", ", 0 new against the baseline ", "(--fail-on new: not failing the build)")
		checkReports(t, r)
		if n := len(junitFailures(t, r)); n != 0 {
			t.Errorf("%d JUnit failures", n)
		}
		if md := readReport(t, r, report.FormatMarkdown); !strings.Contains(md, "**STOP** — build passes (--fail-on new: no new STOP finding)") {
			t.Errorf("markdown headline:\n%.400s", md)
		}
	})

	t.Run("a baseline without --fail-on new only marks", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", base)
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
		checkReports(t, r)
		others := 0
		for _, f := range junitFailures(t, r) {
			if !strings.Contains(f, " in lodash ") {
				others++
			}
		}
		if others == 0 {
			t.Error("--fail-on stop with a baseline: the inherited STOP findings do not fail")
		}
	})

	t.Run("auto takes the Dockerfile's FROM", func(t *testing.T) {
		df := filepath.Join(t.TempDir(), "Dockerfile")
		os.WriteFile(df, []byte("FROM golang:1.22 AS build\nFROM "+base+" AS run\nCOPY app /app\n"), 0o644)
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", "auto", "--fail-on", "new", "--dockerfile", df)
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ", "new against the baseline auto: FROM "+base)
	})

	t.Run("auto without a baseline judges everything", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", "auto", "--fail-on", "new")
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
		if !strings.Contains(r.stdout, "no baseline found (not a pull or merge request; no Dockerfile): every finding is judged") {
			t.Errorf("the log does not say that no baseline was found:\n%s", r.stdout)
		}
		if strings.Contains(r.stderr, "against the baseline") {
			t.Errorf("the line names a baseline: %s", r.stderr)
		}
	})

	t.Run("a baseline that does not resolve", func(t *testing.T) {
		missing := reg.Host + "/team/base:nope"
		r := runStep(t, gateEnv(g), "--image", app, "--baseline", missing, "--fail-on", "new")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: resolving the baseline "+missing+": ")
		env := gateEnv(g)
		env["GATE_ON_ERROR"] = "pass"
		r = runStep(t, env, "--image", app, "--baseline", missing)
		wantLine(t, r, step.ExitPass, "buildgate: ERROR: resolving the baseline "+missing+": ", "(--on-error pass: not failing the build)")
		unknown := "sha256:" + strings.Repeat("ab", 32)
		r = runStep(t, gateEnv(g), "--image", app, "--baseline", unknown)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: the baseline "+unknown+" is not known to the gate")
	})
}

// TestBaselineAutoTarget records an image of the target branch first, as
// a build of main would, then gates a pull request's image with
// --baseline auto: the branch's image is the baseline.
func TestBaselineAutoTarget(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	mainImage := reg.Push(t, "team/svc:main", dpkgOnly(t, "auto-target-main"))
	pr := reg.Push(t, "team/svc:pr-1", dpkgOnly(t, "auto-target-pr"))
	branch := map[string]string{"ci.repository": "team/svc-" + t.Name(), "ci.ref": "refs/heads/main"}
	var args []string
	for k, v := range branch {
		args = append(args, "--annotation", k+"="+v)
	}
	r := runStep(t, gateEnv(g), append([]string{"--image", mainImage}, args...)...)
	if r.code != step.ExitFail {
		t.Fatalf("the main build exits %d", r.code)
	}
	digest := strings.TrimSpace(between(r.stdout, "submitted "+mainImage+" as ", " ("))

	r = runTarget(t, gateEnv(g), &step.Target{Branch: "main", Annotations: branch}, "--image", pr, "--baseline", "auto", "--fail-on", "new")
	wantLine(t, r, step.ExitPass, "buildgate: PASS: policy STOP: ", ", 0 new against the baseline auto: main ("+digest+")")

	other := map[string]string{"ci.repository": "team/svc-" + t.Name(), "ci.ref": "refs/heads/release"}
	r = runTarget(t, gateEnv(g), &step.Target{Branch: "release", Annotations: other}, "--image", pr, "--baseline", "auto", "--fail-on", "new")
	wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
	if !strings.Contains(r.stdout, "no baseline found (no analysed image of the target branch release; no Dockerfile)") {
		t.Errorf("the log does not say that the target branch has no image:\n%s", r.stdout)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	out, _, _ := strings.Cut(rest, to)
	return out
}

func readReport(t *testing.T, r stepRun, format string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.out, report.FileName(format)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// junitFailures returns the names of the failing JUnit test cases.
func junitFailures(t *testing.T, r stepRun) []string {
	t.Helper()
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(readReport(t, r, report.FormatJUnit)), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

type sarifResult struct {
	RuleID        string `json:"ruleId"`
	Level         string `json:"level"`
	BaselineState string `json:"baselineState"`
	Suppressions  []any  `json:"suppressions"`
	Properties    struct {
		Outcome     string `json:"outcome"`
		PackageName string `json:"packageName"`
	} `json:"properties"`
}

func sarifResults(t *testing.T, r stepRun) []sarifResult {
	t.Helper()
	var doc struct {
		Runs []struct {
			Results []sarifResult `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(readReport(t, r, report.FormatSARIF)), &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("SARIF: %v", err)
	}
	return doc.Runs[0].Results
}
