package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
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

type gitlabRun struct {
	code           int
	stdout, stderr string
}

func runGitLab(t *testing.T, env map[string]string, args ...string) gitlabRun {
	t.Helper()
	var so, se bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &so, &se, http.DefaultClient)
	r := gitlabRun{code: code, stdout: so.String(), stderr: se.String()}
	t.Logf("exit %d\nstdout:\n%sstderr:\n%s", code, r.stdout, r.stderr)
	for _, tok := range []string{env["BUILDGATE_TOKEN"], env["BUILDGATE_GITLAB_TOKEN"]} {
		if tok != "" && (strings.Contains(r.stdout, tok) || strings.Contains(r.stderr, tok)) {
			t.Error("a token appears in the output")
		}
	}
	return r
}

// pipelineEnv is a GitLab pipeline's environment with the template's
// variables.
func pipelineEnv(t *testing.T, g *steptest.Gate) map[string]string {
	return map[string]string{
		"BUILDGATE_URL":      g.URL,
		"BUILDGATE_TOKEN":    g.CIToken,
		"BUILDGATE_OUT":      filepath.Join(t.TempDir(), "buildgate-reports"),
		"CI_PROJECT_ID":      "42",
		"CI_PROJECT_PATH":    "group/app",
		"CI_COMMIT_SHA":      "89abcdef0123456789abcdef0123456789abcdef",
		"CI_COMMIT_REF_NAME": "main",
		"CI_PIPELINE_URL":    "https://gitlab.example/group/app/-/pipelines/9",
		"CI_JOB_URL":         "https://gitlab.example/group/app/-/jobs/99",
		"CI_API_V4_URL":      "https://gitlab.example/api/v4",
	}
}

func uniqueImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func archive(t *testing.T, img v1.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("build/app:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

var digestRE = regexp.MustCompile(`as (sha256:[0-9a-f]{64})`)

func TestDefaultImageAndReports(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	env := pipelineEnv(t, g)
	// The image the build job pushed: $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA.
	env["CI_REGISTRY_IMAGE"] = reg.Host + "/group/app"
	reg.Push(t, "group/app:"+env["CI_COMMIT_SHA"], uniqueImage(t))
	r := runGitLab(t, env, "--annotation", "team=payments")
	if r.code != step.ExitPass || !strings.HasPrefix(r.stderr, "buildgate: PASS: policy WARN") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "submitted "+env["CI_REGISTRY_IMAGE"]+":"+env["CI_COMMIT_SHA"]+" as ") {
		t.Errorf("the default image was not submitted:\n%s", r.stdout)
	}
	dir := env["BUILDGATE_OUT"]
	for _, f := range report.Formats() {
		if _, err := os.Stat(filepath.Join(dir, report.FileName(f))); err != nil {
			t.Errorf("report not in $BUILDGATE_OUT: %v", err)
		}
	}
	var gl struct {
		Version string `json:"version"`
		Scan    struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"scan"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "gl-container-scanning-report.json"))
	if err := json.Unmarshal(b, &gl); err != nil || gl.Version != report.GitLabSchemaVersion || gl.Scan.Type != "container_scanning" || gl.Scan.Status != "success" {
		t.Errorf("container scanning report: %v %+v", err, gl)
	}

	var bom struct {
		BOMFormat string `json:"bomFormat"`
	}
	b, _ = os.ReadFile(filepath.Join(dir, step.CycloneDXFile))
	if err := json.Unmarshal(b, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		t.Errorf("the CycloneDX SBOM for reports: cyclonedx: %v %+v", err, bom)
	}

	m := digestRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no digest in\n%s", r.stdout)
	}
	want := map[string]string{
		"team":                "payments",
		"gitlab.project":      "group/app",
		"gitlab.commit_sha":   env["CI_COMMIT_SHA"],
		"gitlab.ref":          "main",
		"gitlab.pipeline_url": "https://gitlab.example/group/app/-/pipelines/9",
		"gitlab.job_url":      "https://gitlab.example/group/app/-/jobs/99",
	}
	if got := g.Image(t, m[1]).Annotations; !reflect.DeepEqual(got, want) {
		t.Errorf("annotations on the gate:\n%v\nwant\n%v", got, want)
	}
}

func TestBuildgateVariables(t *testing.T) {
	// Not parallel: the gate loses one of two concurrent uploads of the
	// same image (bullseye-dpkgonly), see internal/analysis submitLayout.
	g := steptest.Shared(t)
	env := pipelineEnv(t, g)
	env["BUILDGATE_IMAGE"] = "docker-archive:" + steptest.SharedImagePath(t, "bullseye-dpkgonly")
	dockerfile := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(dockerfile, []byte("FROM debian:bullseye\nEXPOSE 22\n"), 0o644)
	env["BUILDGATE_DOCKERFILE"] = dockerfile
	env["GATE_OUT"] = "ignored: BUILDGATE_OUT wins"
	r := runGitLab(t, env)
	if r.code != step.ExitFail || !strings.HasPrefix(r.stderr, "buildgate: FAIL: policy STOP") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	md, err := os.ReadFile(filepath.Join(env["BUILDGATE_OUT"], "buildgate.md"))
	if err != nil || !bytes.Contains(md, []byte("exposes port (22)")) {
		t.Errorf("the Dockerfile did not reach the gate, or the report is elsewhere: %v\n%s", err, md)
	}

	t.Run("fail-on warn", func(t *testing.T) {
		env := pipelineEnv(t, g)
		env["BUILDGATE_IMAGE"] = "docker-archive:" + archive(t, uniqueImage(t))
		env["BUILDGATE_FAIL_ON"] = "warn"
		if r := runGitLab(t, env); r.code != step.ExitFail || !strings.Contains(r.stderr, "(--fail-on warn)") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("a flag wins", func(t *testing.T) {
		env := pipelineEnv(t, g)
		env["BUILDGATE_IMAGE"] = "docker-archive:/nonexistent.tar"
		env["BUILDGATE_FAIL_ON"] = "warn"
		if r := runGitLab(t, env, "--image", "docker-archive:"+archive(t, uniqueImage(t)), "--fail-on", "stop"); r.code != step.ExitPass {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestDefaults(t *testing.T) {
	cfg := step.DefaultConfig()
	fs := flag.NewFlagSet("gate-gitlab", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	env := map[string]string{"CI_REGISTRY_IMAGE": "registry.gitlab.example/group/app", "CI_COMMIT_SHA": "89abcdef", "CI_PROJECT_DIR": "/builds/group/app"}
	if err := configure(&cfg, fs, nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Image != "registry.gitlab.example/group/app:89abcdef" || cfg.OutDir != "buildgate-reports" {
		t.Errorf("image %q, out %q", cfg.Image, cfg.OutDir)
	}
}

// TestMergeRequestTarget: in a merge request pipeline, --baseline auto
// looks for the project's images of the target branch, which branch
// pipelines annotate with gitlab.project and gitlab.ref.
func TestMergeRequestTarget(t *testing.T) {
	configured := func(env map[string]string) step.Config {
		t.Helper()
		cfg := step.DefaultConfig()
		fs := flag.NewFlagSet("gate-gitlab", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := configure(&cfg, fs, nil, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	env := map[string]string{
		"BUILDGATE_IMAGE": "registry.gitlab.example/group/app:1", "BUILDGATE_BASELINE": "auto", "BUILDGATE_FAIL_ON": "new",
		"CI_PROJECT_PATH": "group/app", "CI_COMMIT_REF_NAME": "feature", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
	}
	cfg := configured(env)
	want := &step.Target{Branch: "main", Annotations: map[string]string{"gitlab.project": "group/app", "gitlab.ref": "main"}}
	if cfg.Baseline != "auto" || cfg.FailOn != report.FailOnNew || !reflect.DeepEqual(cfg.Target, want) || !cfg.CycloneDX {
		t.Errorf("baseline %q, fail-on %v, target %+v, CycloneDX %v", cfg.Baseline, cfg.FailOn, cfg.Target, cfg.CycloneDX)
	}
	if cfg.Annotations["gitlab.ref"] != "feature" {
		t.Errorf("the merge request's image is annotated %v", cfg.Annotations)
	}
	delete(env, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
	if cfg := configured(env); cfg.Target != nil {
		t.Errorf("a branch pipeline has a target %+v", cfg.Target)
	}
}

func TestBadVariables(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad fail-on", map[string]string{"BUILDGATE_URL": "http://127.0.0.1:1", "BUILDGATE_TOKEN": "bg_secret", "BUILDGATE_FAIL_ON": "never"}, nil,
			`buildgate: ERROR: bad flags: $BUILDGATE_FAIL_ON: invalid value "never": want stop, warn, new or none (gate-gitlab -h for help)`},
		{"no gate", map[string]string{"BUILDGATE_TOKEN": "bg_secret", "BUILDGATE_IMAGE": "app:1"}, nil,
			"buildgate: ERROR: bad flags: --gate (or $GATE_URL) is required"},
		{"no image outside a pipeline", map[string]string{"BUILDGATE_URL": "http://127.0.0.1:1", "BUILDGATE_TOKEN": "bg_secret"}, nil,
			"--image (or $GATE_IMAGE) or --sbom is required"},
		{"argument", nil, []string{"app:1"}, `unexpected argument "app:1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runGitLab(t, tt.env, tt.args...)
			if r.code != step.ExitError || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		r := runGitLab(t, nil, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "BUILDGATE_GITLAB_TOKEN") || r.stderr != "" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func TestMergeRequestNote(t *testing.T) {
	// Not parallel: the gate loses one of two concurrent uploads of the
	// same image (bullseye-dpkgonly), see internal/analysis submitLayout.
	g := steptest.Shared(t)
	const glToken = "glpat-fake-token-0123456789"
	gl := newFakeGitLab(t, glToken)
	env := pipelineEnv(t, g)
	env["CI_API_V4_URL"] = gl.API
	env["CI_MERGE_REQUEST_IID"] = "3"
	env["CI_MERGE_REQUEST_PROJECT_ID"] = "42"
	env["BUILDGATE_GITLAB_TOKEN"] = glToken
	env["BUILDGATE_IMAGE"] = "docker-archive:" + archive(t, uniqueImage(t))
	for range 110 {
		gl.add("42!3", "reviewer", "looks good", false)
	}
	gl.add("42!3", "reviewer", report.MarkdownMarker+"\n<!-- buildgate-image: other -->\n", false)
	gl.add("42!3", "system", "added 1 commit "+report.MarkdownMarker, true)

	first := runGitLab(t, env)
	if first.code != step.ExitPass || !strings.Contains(first.stdout, "buildgate: created note ") {
		t.Fatalf("first run: exit %d", first.code)
	}
	notes := gl.Notes("42!3")
	if len(notes) != 113 {
		t.Fatalf("%d notes, want 113", len(notes))
	}
	ours := notes[112]
	if !strings.HasPrefix(ours.Body, report.MarkdownMarker+"\n<!-- buildgate-image: "+env["BUILDGATE_IMAGE"]+" -->\n## buildgate: **WARN**") {
		t.Errorf("note body:\n%s", ours.Body)
	}
	if reqs := gl.Requests(); !reflect.DeepEqual(reqs, []string{
		"GET /api/v4/projects/42/merge_requests/3/notes",
		"GET /api/v4/projects/42/merge_requests/3/notes",
		"POST /api/v4/projects/42/merge_requests/3/notes",
	}) {
		t.Errorf("requests %q", reqs)
	}

	second := runGitLab(t, env)
	notes = gl.Notes("42!3")
	if second.code != step.ExitPass || !strings.Contains(second.stdout, "buildgate: updated note ") || len(notes) != 113 || notes[112].ID != ours.ID {
		t.Errorf("second run: exit %d, %d notes; want note %d updated", second.code, len(notes), ours.ID)
	}
	if reqs := gl.Requests(); reqs[len(reqs)-1] != "PUT /api/v4/projects/42/merge_requests/3/notes/"+itoa(ours.ID) {
		t.Errorf("requests %q", reqs)
	}

	other := clone(env)
	other["BUILDGATE_IMAGE"] = "docker-archive:" + steptest.SharedImagePath(t, "bullseye-dpkgonly")
	third := runGitLab(t, other)
	notes = gl.Notes("42!3")
	if third.code != step.ExitFail || len(notes) != 114 || !strings.Contains(notes[113].Body, "**STOP**") {
		t.Errorf("another image: exit %d, %d notes", third.code, len(notes))
	}

	gl.setForbid(true)
	forbidden := runGitLab(t, other)
	if forbidden.code != step.ExitFail || !strings.Contains(forbidden.stdout, "buildgate: WARNING: the token may not comment on merge request !3 (403: 403 Forbidden)") {
		t.Errorf("a read-only token: exit %d, want 1 and a warning", forbidden.code)
	}
	gl.setForbid(false)

	t.Run("no token", func(t *testing.T) {
		env := clone(env)
		delete(env, "BUILDGATE_GITLAB_TOKEN")
		gl.Requests()
		r := runGitLab(t, env)
		if r.code != step.ExitPass || !strings.Contains(r.stdout, "no $BUILDGATE_GITLAB_TOKEN: not commenting on merge request !3") || len(gl.Requests()) != 0 {
			t.Errorf("exit %d", r.code)
		}
	})
	t.Run("not a merge request pipeline", func(t *testing.T) {
		env := clone(env)
		delete(env, "CI_MERGE_REQUEST_IID")
		gl.Requests()
		if r := runGitLab(t, env); r.code != step.ExitPass || len(gl.Requests()) != 0 {
			t.Errorf("exit %d", r.code)
		}
	})
	t.Run("gate down: the note says so", func(t *testing.T) {
		env := clone(env)
		env["BUILDGATE_URL"] = "http://127.0.0.1:1"
		r := runGitLab(t, env)
		notes := gl.Notes("42!3")
		if r.code != step.ExitError || notes[112].ID != ours.ID || !strings.Contains(notes[112].Body, "**ERROR**") || !strings.Contains(notes[112].Body, "gate unreachable") {
			t.Errorf("exit %d, note:\n%s", r.code, notes[112].Body)
		}
	})
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestImageKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  step.Config
		want string
	}{
		{"commit tag", step.Config{Image: "registry.gitlab.example/group/app:89abcdef"}, "registry.gitlab.example/group/app"},
		{"digest", step.Config{Image: "registry.gitlab.example/group/app@sha256:abcd"}, "registry.gitlab.example/group/app"},
		{"port", step.Config{Image: "127.0.0.1:5000/group/app"}, "127.0.0.1:5000/group/app"},
		{"--tag wins", step.Config{Image: "oci-dir:build/layout", Tag: "registry.example/app:9"}, "registry.example/app"},
		{"archive", step.Config{Image: "docker-archive:build/app.tar"}, "docker-archive:build/app.tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := step.ImageKey(tt.cfg); got != tt.want {
				t.Errorf("imageKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errw strings.Builder
	code := run(context.Background(), []string{"--version"}, func(string) string { return "" }, &out, &errw, http.DefaultClient)
	if code != 0 || !strings.HasPrefix(out.String(), "gate-gitlab dev (commit ") || !strings.Contains(out.String(), ", built ") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want exit 0 and \"gate-gitlab dev (commit ..., built ...)\"", code, out.String(), errw.String())
	}
}
