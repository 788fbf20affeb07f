package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

// TestTemplateUnderGitLabCILocal runs test/e2e/gitlab-ci.yml, which
// extends gate.gitlab-ci.yml's .buildgate-scan, under gitlab-ci-local with
// the shell executor against a real gate, a registry and a fake GitLab
// API: gate-pass passes and gate-fail fails on the policy's STOP, both
// with their artifacts, and each keeps one note on the merge request.
func TestTemplateUnderGitLabCILocal(t *testing.T) {
	gcl := newGCL(t)
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	clean := reg.Push(t, "group/clean:1", uniqueImage(t))
	vulnerable := reg.Push(t, "group/vulnerable:1", steptest.SharedImage(t, "bullseye-dpkgonly"))
	const glToken = "glpat-e2e-token-77aa0c"
	gl := newFakeGitLab(t, glToken)

	runJob := func(job string) (int, string) {
		t.Helper()
		return gcl.run(job, []string{g.CIToken, glToken},
			"BUILDGATE_URL="+g.URL,
			"BUILDGATE_TOKEN="+g.CIToken,
			"E2E_CLEAN_IMAGE="+clean,
			"E2E_VULNERABLE_IMAGE="+vulnerable,
			"CI_API_V4_URL="+gl.API,
			"CI_PROJECT_ID=42",
			"CI_MERGE_REQUEST_IID=5",
			"BUILDGATE_GITLAB_TOKEN="+glToken,
		)
	}
	artifact := gcl.artifact
	type junit struct {
		Failures int `xml:"failures,attr"`
	}
	type glReport struct {
		Version string `json:"version"`
		Scan    struct {
			Status string `json:"status"`
		} `json:"scan"`
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}

	code, out := runJob("gate-pass")
	if code != 0 || !strings.Contains(out, "PASS  gate-pass") || !strings.Contains(out, "buildgate: PASS: policy WARN") {
		t.Fatalf("gate-pass: exit %d\n%s", code, out)
	}
	var j junit
	if err := xml.Unmarshal(artifact("gate-pass", "buildgate.junit.xml"), &j); err != nil || j.Failures != 0 {
		t.Errorf("gate-pass JUnit: %v, %d failures", err, j.Failures)
	}
	var gr glReport
	if err := json.Unmarshal(artifact("gate-pass", "gl-container-scanning-report.json"), &gr); err != nil || gr.Version != report.GitLabSchemaVersion || gr.Scan.Status != "success" {
		t.Errorf("gate-pass container scanning report: %v %+v", err, gr)
	}
	if md := artifact("gate-pass", "buildgate.md"); !strings.HasPrefix(string(md), report.MarkdownMarker+"\n## buildgate: **WARN**") {
		t.Errorf("gate-pass markdown:\n%s", md)
	}
	artifact("gate-pass", "buildgate.sarif")

	code, out = runJob("gate-fail")
	if code == 0 || !strings.Contains(out, "FAIL  gate-fail") || !strings.Contains(out, "buildgate: FAIL: policy STOP") {
		t.Fatalf("gate-fail: exit %d\n%s", code, out)
	}
	if err := xml.Unmarshal(artifact("gate-fail", "buildgate.junit.xml"), &j); err != nil || j.Failures == 0 {
		t.Errorf("gate-fail JUnit: %v, %d failures", err, j.Failures)
	}
	gr = glReport{}
	if err := json.Unmarshal(artifact("gate-fail", "gl-container-scanning-report.json"), &gr); err != nil || gr.Scan.Status != "success" || len(gr.Vulnerabilities) == 0 {
		t.Errorf("gate-fail container scanning report: %v, %d vulnerabilities", err, len(gr.Vulnerabilities))
	}
	if md := artifact("gate-fail", "buildgate.md"); !strings.Contains(string(md), "**STOP**") || !strings.Contains(string(md), "`test/e2e/Dockerfile`") {
		t.Errorf("gate-fail markdown:\n%s", md)
	}
	if sarif := artifact("gate-fail", "buildgate.sarif"); !strings.Contains(string(sarif), `"uri": "test/e2e/Dockerfile"`) {
		t.Errorf("gate-fail SARIF does not point at the Dockerfile")
	}

	notes := gl.Notes("42!5")
	if len(notes) != 2 || !strings.Contains(notes[0].Body, "**WARN**") || !strings.Contains(notes[1].Body, "**STOP**") {
		t.Fatalf("notes after both jobs: %v", notes)
	}
	// The job again (a new pipeline of the merge request) updates its note.
	if code, out := runJob("gate-pass"); code != 0 || !strings.Contains(out, "buildgate: updated note ") {
		t.Errorf("gate-pass again: exit %d\n%s", code, out)
	}
	if again := gl.Notes("42!5"); len(again) != 2 || again[0].ID != notes[0].ID {
		t.Errorf("notes after the second run: %v", again)
	}
}

// gclRunner runs jobs of test/e2e/gitlab-ci.yml, which includes the
// template, under gitlab-ci-local in a repository of group/app whose
// gate-gitlab is built from this checkout.
type gclRunner struct {
	t                   *testing.T
	gcl, root, repo     string
	gocache, gomodcache string
}

// newGCL skips the test unless BUILDGATE_E2E=1 and sets up the
// repository.
func newGCL(t *testing.T) *gclRunner {
	t.Helper()
	if os.Getenv("BUILDGATE_E2E") != "1" {
		t.Skip("set BUILDGATE_E2E=1 to run the template in a real runner")
	}
	gcl, err := exec.LookPath("gitlab-ci-local")
	if err != nil {
		t.Fatal("BUILDGATE_E2E=1 but gitlab-ci-local is not on PATH (.ci/run installs it)")
	}
	root, err := steptest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	for src, dst := range map[string]string{
		"gitlab-ci/gate.gitlab-ci.yml": "gitlab-ci/gate.gitlab-ci.yml",
		"test/e2e/gitlab-ci.yml":       ".gitlab-ci.yml",
		"test/e2e/Dockerfile":          "test/e2e/Dockerfile",
	} {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(repo, dst)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "e2e")
	git("remote", "add", "origin", "https://gitlab.example.com/group/app.git")
	git("update-ref", "refs/remotes/origin/main", "HEAD")
	git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")

	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	r := &gclRunner{t: t, gcl: gcl, root: root, repo: repo}
	r.gocache, r.gomodcache, _ = strings.Cut(strings.TrimSpace(string(goenv)), "\n")
	return r
}

// run runs one job with the variables vars (NAME=value) and returns its
// exit code and output, checking that no secret shows in it.
func (r *gclRunner) run(job string, secrets []string, vars ...string) (int, string) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The template's job has an image (golang); there is no Docker
	// here, so every job runs in the shell executor, on this host.
	// A CI_* variable given wins over gitlab-ci-local's own.
	predefined := []string{"CI_API_V4_URL", "CI_PROJECT_ID"}
	for _, v := range vars {
		if name, _, _ := strings.Cut(v, "="); strings.HasPrefix(name, "CI_") && !slices.Contains(predefined, name) {
			predefined = append(predefined, name)
		}
	}
	args := []string{"--shell-executor-no-image", "--force-shell-executor", "--ignore-predefined-vars", strings.Join(predefined, ",")}
	for _, v := range append([]string{"BUILDGATE_SOURCE=" + r.root, "GOCACHE=" + r.gocache, "GOMODCACHE=" + r.gomodcache}, vars...) {
		args = append(args, "--variable", v)
	}
	cmd := exec.CommandContext(ctx, r.gcl, append(args, job)...)
	cmd.Dir = r.repo
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("gitlab-ci-local %s: %s, %v", job, time.Since(start).Round(time.Millisecond), err)
	if ctx.Err() != nil {
		t.Fatalf("gitlab-ci-local did not finish in time:\n%s", out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	for _, tok := range secrets {
		if strings.Contains(string(out), tok) {
			t.Errorf("a token shows in gitlab-ci-local's output")
		}
	}
	return code, string(out)
}

// artifact reads a report a job left in its artifacts.
func (r *gclRunner) artifact(job, name string) []byte {
	t := r.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.repo, ".gitlab-ci-local", "artifacts", job, "buildgate-reports", name))
	if err != nil {
		t.Errorf("artifact of %s: %v", job, err)
		filepath.Walk(filepath.Join(r.repo, ".gitlab-ci-local"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !strings.Contains(p, "/.docker/") {
				t.Log(p)
			}
			return nil
		})
	}
	return b
}

// TestBaselineUnderGitLabCILocal gates the target branch's image as a
// pipeline of main would, then runs the merge request's jobs with
// BUILDGATE_BASELINE auto and BUILDGATE_FAIL_ON new: the image that only
// adds a file passes on its inherited STOP findings, the one that adds
// lodash fails on lodash's; both keep their CycloneDX SBOM.
func TestBaselineUnderGitLabCILocal(t *testing.T) {
	gcl := newGCL(t)
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	base, err := mutate.AppendLayers(steptest.SharedImage(t, "bullseye-dpkgonly"), steptest.Layer(t, map[string]string{"etc/build": "gitlab-main"}))
	if err != nil {
		t.Fatal(err)
	}
	same, _ := mutate.AppendLayers(base, steptest.Layer(t, map[string]string{"etc/build": "mr-5"}))
	added, _ := mutate.AppendLayers(base, steptest.Layer(t, map[string]string{
		"app/node_modules/lodash/package.json": `{"name": "lodash", "version": "4.17.15"}`,
	}))
	mainRef := reg.Push(t, "group/app:main", base)

	// The target branch's pipeline, as the template on main stores it.
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image, cfg.OutDir = g.URL, step.Token(g.CIToken), mainRef, t.TempDir()
	cfg.FailOn = report.FailOnNone
	cfg.Annotations = map[string]string{"gitlab.project": "group/app", "gitlab.ref": "main"}
	var log strings.Builder
	if r := step.Execute(context.Background(), cfg, &log); r.Err != nil {
		t.Fatalf("gating main's image: %v\n%s", r.Err, log.String())
	}

	vars := []string{
		"BUILDGATE_URL=" + g.URL,
		"BUILDGATE_TOKEN=" + g.CIToken,
		"E2E_SAME_IMAGE=" + reg.Push(t, "group/app:mr-5-same", same),
		"E2E_ADDED_IMAGE=" + reg.Push(t, "group/app:mr-5-added", added),
		// A merge request pipeline: the source branch's ref.
		"CI_COMMIT_REF_NAME=feature",
		"CI_MERGE_REQUEST_IID=5",
		"CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
	}
	code, out := gcl.run("gate-baseline-same", []string{g.CIToken}, vars...)
	if code != 0 || !strings.Contains(out, "buildgate: baseline auto: main: sha256:") ||
		!strings.Contains(out, "(--fail-on new: not failing the build)") || !strings.Contains(out, "inherited  not counted (STOP)") {
		t.Fatalf("gate-baseline-same: exit %d\n%s", code, out)
	}
	code, out = gcl.run("gate-baseline-added", []string{g.CIToken}, vars...)
	if code == 0 || !strings.Contains(out, "buildgate: FAIL: policy STOP: ") || !strings.Contains(out, " new against the baseline auto: main (sha256:") {
		t.Fatalf("gate-baseline-added: exit %d\n%s", code, out)
	}
	var gl struct {
		Scan struct {
			Messages []struct{ Value string } `json:"messages"`
		} `json:"scan"`
		Vulnerabilities []struct {
			Location struct {
				Dependency struct {
					Package struct{ Name string } `json:"package"`
				} `json:"dependency"`
			} `json:"location"`
			Details map[string]struct{ Value string } `json:"details"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(gcl.artifact("gate-baseline-added", "gl-container-scanning-report.json"), &gl); err != nil {
		t.Fatal(err)
	}
	newOnes := 0
	for _, v := range gl.Vulnerabilities {
		if strings.HasPrefix(v.Details["baseline"].Value, "new ") {
			newOnes++
			if v.Location.Dependency.Package.Name != "lodash" {
				t.Errorf("GitLab report: %s is new", v.Location.Dependency.Package.Name)
			}
		}
	}
	if newOnes == 0 || len(gl.Scan.Messages) != 1 || !strings.Contains(gl.Scan.Messages[0].Value, "compared with the baseline auto: main") {
		t.Errorf("GitLab report: %d new vulnerabilities, messages %+v", newOnes, gl.Scan.Messages)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(gcl.artifact("gate-baseline-added", step.CycloneDXFile), &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		t.Errorf("the job's CycloneDX SBOM: %v %+v", err, bom)
	}
}
