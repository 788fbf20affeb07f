package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	steptest.Cleanup()
	os.Exit(code)
}

// actionRun is what one run of the action left.
type actionRun struct {
	code           int
	stdout, stderr string
	outputs        map[string]string
	summary        string
}

// runAction runs the action with env as its whole environment, adding
// $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY files and a report directory
// unless env has them.
func runAction(t *testing.T, env map[string]string) actionRun {
	t.Helper()
	dir := t.TempDir()
	env = clone(env)
	for k, v := range map[string]string{
		"GITHUB_OUTPUT":       filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary.md"),
		"INPUT_OUT-DIR":       filepath.Join(dir, "reports"),
	} {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	var so, se bytes.Buffer
	code := run(context.Background(), func(k string) string { return env[k] }, &so, &se, http.DefaultClient)
	r := actionRun{code: code, stdout: so.String(), stderr: se.String(), outputs: map[string]string{}}
	t.Logf("exit %d\nstdout:\n%sstderr:\n%s", code, r.stdout, r.stderr)
	if b, err := os.ReadFile(env["GITHUB_OUTPUT"]); err == nil {
		r.outputs = parseOutputs(t, string(b))
	}
	if b, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"]); err == nil {
		r.summary = string(b)
	}
	for _, tok := range []string{env["INPUT_GATE-TOKEN"], env["INPUT_GITHUB-TOKEN"]} {
		if tok == "" {
			continue
		}
		masked := strings.Replace(r.stdout, "::add-mask::"+tok+"\n", "", 1)
		if !strings.HasPrefix(r.stdout, "::add-mask::") || strings.Contains(masked, tok) || strings.Contains(r.stderr, tok) || strings.Contains(r.summary, tok) {
			t.Errorf("token %.6s… is not masked first, or shows in the output", tok)
		}
	}
	return r
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseOutputs reads a $GITHUB_OUTPUT file: name<<DELIMITER, value lines,
// DELIMITER.
func parseOutputs(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, delim, ok := strings.Cut(sc.Text(), "<<")
		if !ok {
			t.Fatalf("output file line %q", sc.Text())
		}
		var lines []string
		for sc.Scan() && sc.Text() != delim {
			lines = append(lines, sc.Text())
		}
		out[name] = strings.Join(lines, "\n")
	}
	return out
}

// actionEnv is a push build's environment with the gate's inputs.
func actionEnv(g *steptest.Gate) map[string]string {
	return map[string]string{
		"INPUT_GATE-URL":    g.URL,
		"INPUT_GATE-TOKEN":  g.CIToken,
		"INPUT_SUMMARY":     "true",
		"INPUT_COMMENT":     "true",
		"GITHUB_ACTIONS":    "true",
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_REPOSITORY": "octo/app",
		"GITHUB_SHA":        "0123456789abcdef0123456789abcdef01234567",
		"GITHUB_REF":        "refs/heads/main",
		"GITHUB_WORKFLOW":   "build",
		"GITHUB_SERVER_URL": "https://github.example",
		"GITHUB_RUN_ID":     "777",
	}
}

func uniqueArchive(t *testing.T) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return writeArchive(t, img)
}

func writeArchive(t *testing.T, img v1.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("build/app:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

var digestRE = regexp.MustCompile(`as (sha256:[0-9a-f]{64})`)

// annotations returns the workflow commands of a kind (error, warning,
// notice) in the output: their properties and message.
func annotations(stdout, kind string) []string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "::"+kind+" ") || strings.HasPrefix(l, "::"+kind+"::") {
			out = append(out, strings.TrimPrefix(l, "::"+kind))
		}
	}
	return out
}

func TestPassingImage(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	env := actionEnv(g)
	path := uniqueArchive(t)
	env["INPUT_IMAGE"] = "docker-archive:" + path
	env["INPUT_ANNOTATIONS"] = "team=payments\n\n# a comment\ngithub.workflow=override\n"
	r := runAction(t, env)
	if r.code != step.ExitPass || !strings.HasPrefix(r.stderr, "buildgate: PASS: policy WARN") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want := map[string]string{"verdict": "warn", "stop-count": "0"}
	for k, v := range want {
		if r.outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, r.outputs[k], v)
		}
	}
	for _, k := range []string{"sarif-file", "junit-file", "markdown-file"} {
		if _, err := os.Stat(r.outputs[k]); err != nil {
			t.Errorf("output %s: %v", k, err)
		}
	}
	m := digestRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no digest in\n%s", r.stdout)
	}
	if r.outputs["digest"] != m[1] || r.outputs["report-url"] != g.URL+"/v1/images/"+m[1]+"/report?format=markdown" || r.outputs["image-url"] != g.URL+"/ui/images/"+m[1] {
		t.Errorf("digest %q, report-url %q, image-url %q", r.outputs["digest"], r.outputs["report-url"], r.outputs["image-url"])
	}
	if !strings.Contains(r.summary, "("+g.URL+"/ui/images/"+m[1]+")") || strings.Contains(r.summary, g.URL+"/v1/") {
		t.Errorf("the job summary does not link the console's image page:\n%s", r.summary)
	}
	if !strings.HasPrefix(r.summary, report.MarkdownMarker+"\n## buildgate: **WARN**") {
		t.Errorf("job summary:\n%s", r.summary)
	}
	if n := annotations(r.stdout, "warning"); len(n) == 0 || !strings.HasPrefix(n[0], " title=buildgate%3A PASS::policy WARN") {
		t.Errorf("warning annotations %q", n)
	}
	if e := annotations(r.stdout, "error"); len(e) != 0 {
		t.Errorf("error annotations on a pass: %q", e)
	}

	// The GitHub context is stored with the image; a given annotation wins.
	img := g.Image(t, m[1])
	wantAnn := map[string]string{
		"team":              "payments",
		"github.workflow":   "override",
		"github.repository": "octo/app",
		"github.sha":        "0123456789abcdef0123456789abcdef01234567",
		"github.ref":        "refs/heads/main",
		"github.run_url":    "https://github.example/octo/app/actions/runs/777",
	}
	if !reflect.DeepEqual(img.Annotations, wantAnn) {
		t.Errorf("annotations on the gate:\n%v\nwant\n%v", img.Annotations, wantAnn)
	}

	// The SARIF file carries the image's category.
	if id := automationID(t, r.outputs["sarif-file"]); id != "buildgate/docker-archive:"+path+"/" {
		t.Errorf("automationDetails.id = %q", id)
	}
}

func automationID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			AutomationDetails struct {
				ID string `json:"id"`
			} `json:"automationDetails"`
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Runs) != 1 || doc.Version != "2.1.0" {
		t.Fatalf("SARIF %s: %v\n%s", path, err, b)
	}
	return doc.Runs[0].AutomationDetails.ID
}

func TestStopAnnotatesTheDockerfile(t *testing.T) {
	// Not parallel: the gate loses one of two concurrent uploads of the
	// same image (bullseye-dpkgonly), see internal/analysis submitLayout.
	g := steptest.Shared(t)
	env := actionEnv(g)
	env["INPUT_IMAGE"] = "docker-archive:" + steptest.SharedImagePath(t, "bullseye-dpkgonly")
	env["INPUT_DOCKERFILE"] = "testdata/Dockerfile"
	env["INPUT_TAG"] = "registry.example/team/app:1.2"
	sarifCopy := filepath.Join(t.TempDir(), "sarif", "app.sarif")
	env["INPUT_SARIF-FILE"] = sarifCopy
	r := runAction(t, env)
	if r.code != step.ExitFail || !strings.HasPrefix(r.stderr, "buildgate: FAIL: policy STOP") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.outputs["verdict"] != "stop" || r.outputs["stop-count"] == "0" || r.outputs["sarif-file"] != sarifCopy {
		t.Errorf("outputs %v", r.outputs)
	}
	if id := automationID(t, sarifCopy); id != "buildgate/registry.example/team/app/" {
		t.Errorf("automationDetails.id = %q", id)
	}
	errs := annotations(r.stdout, "error")
	if len(errs) != 1+maxAnnotations {
		t.Fatalf("%d error annotations, want the verdict and %d findings:\n%s", len(errs), maxAnnotations, strings.Join(errs, "\n"))
	}
	if !strings.HasPrefix(errs[0], " title=buildgate%3A FAIL::policy STOP: ") || !strings.Contains(errs[0], "more findings than annotated") {
		t.Errorf("verdict annotation %q", errs[0])
	}
	// Vulnerability findings point at the final FROM (line 2), the
	// exposed port at its EXPOSE (line 4).
	if errs[1] != " file=testdata/Dockerfile,line=4,title=buildgate STOP%3A dockerfile/exposed_ports::Dockerfile exposes port (22) which is in policy file DENIEDPORTS list" {
		t.Errorf("first finding annotation %q", errs[1])
	}
	for _, e := range errs[2:] {
		if !strings.HasPrefix(e, " file=testdata/Dockerfile,line=2,title=buildgate STOP%3A CVE-") {
			t.Errorf("finding annotation %q", e)
		}
	}
	if w := annotations(r.stdout, "warning"); len(w) != maxAnnotations || !strings.HasPrefix(w[0], " file=testdata/Dockerfile,line=2,title=buildgate WARN%3A ") {
		t.Errorf("warning annotations %q", w)
	}
	if !strings.Contains(r.summary, "**STOP**") || !strings.Contains(r.summary, "`testdata/Dockerfile`") {
		t.Errorf("job summary:\n%s", r.summary)
	}
}

func TestPullRequestComment(t *testing.T) {
	// Not parallel: the gate loses one of two concurrent uploads of the
	// same image (bullseye-dpkgonly), see internal/analysis submitLayout.
	g := steptest.Shared(t)
	const ghToken = "ghs_fake_github_token_0123456789"
	gh := newFakeGitHub(t, ghToken)
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	os.WriteFile(event, []byte(`{"number": 12, "pull_request": {"number": 12, "head": {"sha": "feedfacefeedfacefeedfacefeedfacefeedface"}}}`), 0o644)
	env := actionEnv(g)
	env["GITHUB_EVENT_NAME"] = "pull_request"
	env["GITHUB_EVENT_PATH"] = event
	env["GITHUB_API_URL"] = gh.API
	env["INPUT_GITHUB-TOKEN"] = ghToken
	clean := uniqueArchive(t)
	env["INPUT_IMAGE"] = "docker-archive:" + clean
	// Someone else's comments fill the first page.
	for range 120 {
		gh.add("octo/app#12", "someone", "LGTM")
	}
	gh.add("octo/app#12", "someone", report.MarkdownMarker+"\n<!-- buildgate-image: buildgate/other -->\nnot ours")

	first := runAction(t, env)
	if first.code != step.ExitPass || !strings.Contains(first.stdout, "buildgate: created comment ") {
		t.Fatalf("first run: exit %d", first.code)
	}
	got := gh.Comments("octo/app#12")
	if len(got) != 122 {
		t.Fatalf("%d comments after the first run, want 122", len(got))
	}
	ours := got[121]
	if !strings.HasPrefix(ours.Body, report.MarkdownMarker+"\n<!-- buildgate-image: buildgate/docker-archive:"+clean+" -->\n## buildgate: **WARN**") {
		t.Errorf("comment body:\n%s", ours.Body)
	}
	if reqs := gh.Requests(); !reflect.DeepEqual(reqs, []string{
		"GET /api/v3/repos/octo/app/issues/12/comments",
		"GET /api/v3/repos/octo/app/issues/12/comments",
		"POST /api/v3/repos/octo/app/issues/12/comments",
	}) {
		t.Errorf("requests %q", reqs)
	}

	// The second run (the same image rebuilt) updates the same comment.
	env["INPUT_IMAGE"] = "docker-archive:" + clean
	second := runAction(t, env)
	if second.code != step.ExitPass || !strings.Contains(second.stdout, "buildgate: updated comment ") {
		t.Fatalf("second run: exit %d", second.code)
	}
	got = gh.Comments("octo/app#12")
	if len(got) != 122 || got[121].ID != ours.ID {
		t.Errorf("%d comments, last %d; want 122 and the same comment %d updated", len(got), got[121].ID, ours.ID)
	}
	if reqs := gh.Requests(); reqs[len(reqs)-1] != "PATCH /api/v3/repos/octo/app/issues/comments/"+strconv.FormatInt(ours.ID, 10) {
		t.Errorf("requests %q", reqs)
	}

	// Another image of the pull request gets its own comment.
	other := clone(env)
	other["INPUT_IMAGE"] = "docker-archive:" + steptest.SharedImagePath(t, "bullseye-dpkgonly")
	third := runAction(t, other)
	got = gh.Comments("octo/app#12")
	if third.code != step.ExitFail || len(got) != 123 || !strings.Contains(got[122].Body, "**STOP**") {
		t.Errorf("another image: exit %d, %d comments", third.code, len(got))
	}

	// A token that may not comment (a fork's) is a warning, not a failure.
	gh.setForbid(true)
	forbidden := runAction(t, env)
	if forbidden.code != step.ExitPass {
		t.Errorf("exit %d with a read-only token, want 0", forbidden.code)
	}
	w := annotations(forbidden.stdout, "warning")
	if len(w) == 0 || !strings.Contains(w[len(w)-1], "the token may not comment on pull request #12 (403: Resource not accessible by integration)") {
		t.Errorf("warnings %q", w)
	}
	failing := runAction(t, other)
	if failing.code != step.ExitFail {
		t.Errorf("a STOP with a read-only token exits %d, want 1", failing.code)
	}

	// comment: false leaves the pull request alone.
	gh.setForbid(false)
	gh.Requests()
	env["INPUT_COMMENT"] = "false"
	runAction(t, env)
	if reqs := gh.Requests(); len(reqs) != 0 {
		t.Errorf("comment: false sent %q", reqs)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	t.Run("bad input", func(t *testing.T) {
		env := actionEnv(g)
		env["INPUT_IMAGE"] = "app:1"
		env["INPUT_FAIL-ON"] = "never"
		r := runAction(t, env)
		if r.code != step.ExitError || r.stderr != "buildgate: ERROR: bad inputs: input fail-on: invalid value \"never\": want stop, warn, new or none\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if r.outputs["verdict"] != "error" || r.outputs["sarif-file"] != "" {
			t.Errorf("outputs %v", r.outputs)
		}
		if e := annotations(r.stdout, "error"); len(e) != 1 || !strings.Contains(e[0], "input fail-on") {
			t.Errorf("error annotations %q", e)
		}
		if !strings.Contains(r.summary, "**ERROR**") {
			t.Errorf("summary:\n%s", r.summary)
		}
	})
	t.Run("gate down, on-error pass", func(t *testing.T) {
		env := actionEnv(g)
		env["INPUT_GATE-URL"] = "http://127.0.0.1:1"
		env["INPUT_IMAGE"] = "docker-archive:" + uniqueArchive(t)
		env["INPUT_ON-ERROR"] = "pass"
		env["INPUT_TIMEOUT"] = "1"
		r := runAction(t, env)
		if r.code != step.ExitPass || !strings.Contains(r.stderr, "gate unreachable at http://127.0.0.1:1") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if w := annotations(r.stdout, "warning"); len(w) != 1 || !strings.Contains(w[0], "on-error pass") {
			t.Errorf("warning annotations %q", w)
		}
		if r.outputs["verdict"] != "error" {
			t.Errorf("outputs %v", r.outputs)
		}
	})
	t.Run("the token from GATE_TOKEN is masked too", func(t *testing.T) {
		env := actionEnv(g)
		delete(env, "INPUT_GATE-TOKEN")
		env["GATE_TOKEN"] = "bg_only_in_the_environment"
		env["INPUT_IMAGE"] = "docker-archive:/nonexistent/bg_only_in_the_environment.tar"
		r := runAction(t, env)
		if r.code != step.ExitError || !strings.HasPrefix(r.stdout, "::add-mask::bg_only_in_the_environment\n") ||
			strings.Count(r.stdout+r.stderr, "bg_only_in_the_environment") != 1 {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("outside Actions", func(t *testing.T) {
		env := actionEnv(g)
		env["INPUT_IMAGE"] = "docker-archive:" + uniqueArchive(t)
		env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"] = "", ""
		if r := runAction(t, env); r.code != step.ExitPass || strings.Contains(r.stdout, "::warning::buildgate: writing") {
			t.Errorf("exit %d\n%s", r.code, r.stdout)
		}
	})
}

func TestImageKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  step.Config
		want string
	}{
		{"tag", step.Config{Image: "ghcr.io/octo/app:0123abc"}, "ghcr.io/octo/app"},
		{"digest", step.Config{Image: "ghcr.io/octo/app@sha256:abcd"}, "ghcr.io/octo/app"},
		{"tag and digest", step.Config{Image: "ghcr.io/octo/app:1@sha256:abcd"}, "ghcr.io/octo/app"},
		{"port", step.Config{Image: "127.0.0.1:5000/team/app:1"}, "127.0.0.1:5000/team/app"},
		{"port without tag", step.Config{Image: "127.0.0.1:5000/team/app"}, "127.0.0.1:5000/team/app"},
		{"--tag wins", step.Config{Image: "docker-archive:build/app.tar", Tag: "registry.example/app:9"}, "registry.example/app"},
		{"archive", step.Config{Image: "docker-archive:build/app.tar"}, "docker-archive:build/app.tar"},
		{"daemon", step.Config{Image: "docker:app:dev"}, "app"},
		{"sbom", step.Config{SBOM: "sbom.json"}, "sbom.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := step.ImageKey(tt.cfg); got != tt.want {
				t.Errorf("imageKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCommentBody(t *testing.T) {
	md := report.MarkdownMarker + "\n## buildgate: **GO**\n"
	if got, want := commentBody(md, "buildgate/a-->b"), report.MarkdownMarker+"\n<!-- buildgate-image: buildgate/a-b -->\n## buildgate: **GO**\n"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	long := md + strings.Repeat("| row | row |\n", 10000)
	got := commentBody(long, "k")
	if len(got) > maxCommentBytes || !strings.HasSuffix(got, "| row | row |\n\n… the report is cut here: the job summary and the SARIF file have all of it.\n") || !step.IsImageReport(got, "k") {
		t.Errorf("cut body: %d bytes, ends %q", len(got), got[len(got)-120:])
	}
}
