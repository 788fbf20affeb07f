package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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
	removeBuilt()
	os.Exit(code)
}

func TestParseImages(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []imageEntry
		wantErr string
	}{
		{name: "image and Dockerfile", in: "registry.example/app:1 /ws/Dockerfile\n",
			want: []imageEntry{{Image: "registry.example/app:1", Dockerfile: "/ws/Dockerfile", Line: 1}}},
		{name: "image alone", in: "app:1", want: []imageEntry{{Image: "app:1", Line: 1}}},
		{name: "blank lines, comments, tabs and CRLF",
			in: "# images of this build\n\n  app:1\tDockerfile  \r\n\t\n# app:2\nregistry.example:5000/team/api@sha256:abc # pinned\n",
			want: []imageEntry{
				{Image: "app:1", Dockerfile: "Dockerfile", Line: 3},
				{Image: "registry.example:5000/team/api@sha256:abc", Line: 6},
			}},
		{name: "local sources", in: "docker-archive:build/app.tar build/Dockerfile\noci-dir:build/layout\n",
			want: []imageEntry{
				{Image: "docker-archive:build/app.tar", Dockerfile: "build/Dockerfile", Line: 1},
				{Image: "oci-dir:build/layout", Line: 2},
			}},
		{name: "three words", in: "app:1\napp:2 Dockerfile extra\n", wantErr: "line 2: want IMAGE [DOCKERFILE], got 3 words"},
		{name: "empty", in: "\n# nothing\n", wantErr: "no images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseImages(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReportDirs(t *testing.T) {
	long := "registry.example/" + strings.Repeat("very-long-name/", 10) + "app:1"
	got := reportDirs([]imageEntry{
		{Image: "registry.example:5000/team/app:1.2"},
		{Image: "docker-archive:/ws/build/app.tar"},
		{Image: "registry.example:5000/team/app:1.2"},
		{Image: "registry.example_5000_team_app_1.2-2"},
		{Image: "../../etc"},
		{Image: long},
	})
	want := []string{
		"registry.example_5000_team_app_1.2",
		"docker-archive__ws_build_app.tar",
		"registry.example_5000_team_app_1.2-2",
		"registry.example_5000_team_app_1.2-2-2",
		"etc",
	}
	if !reflect.DeepEqual(got[:5], want) {
		t.Errorf("got %q\nwant %q", got[:5], want)
	}
	if len(got[5]) != maxDirName || !regexp.MustCompile(`^registry\.example_very-long-name.*-[0-9a-f]{12}$`).MatchString(got[5]) {
		t.Errorf("long name %q", got[5])
	}
}

func TestWorse(t *testing.T) {
	for _, tt := range []struct{ a, b, want int }{{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 2, 2}, {2, 1, 2}, {2, 0, 2}} {
		if got := worse(tt.a, tt.b); got != tt.want {
			t.Errorf("worse(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// jenkinsRun runs the command with a Jenkins build's environment.
type jenkinsRun struct {
	code           int
	stdout, stderr string
}

func runJenkins(t *testing.T, env map[string]string, args ...string) jenkinsRun {
	t.Helper()
	var so, se bytes.Buffer
	ws := t.TempDir()
	getenv := func(k string) string {
		if k == "WORKSPACE" && env[k] == "" {
			return ws // never the package directory: reports land in the workspace
		}
		return env[k]
	}
	code := run(context.Background(), args, getenv, &so, &se)
	r := jenkinsRun{code: code, stdout: so.String(), stderr: se.String()}
	t.Logf("exit %d\nstdout:\n%sstderr:\n%s", code, r.stdout, r.stderr)
	for _, tok := range []string{env["GATE_TOKEN"], steptest.AdminToken} {
		if tok != "" && (strings.Contains(r.stdout, tok) || strings.Contains(r.stderr, tok)) {
			t.Error("the token appears in the output")
		}
	}
	return r
}

func jenkinsEnv(t *testing.T, g *steptest.Gate) map[string]string {
	return map[string]string{
		"GATE_URL": g.URL, "GATE_TOKEN": g.CIToken,
		"WORKSPACE":    t.TempDir(),
		"BUILD_URL":    "https://jenkins.example/job/app/42/",
		"JOB_NAME":     "team/app/main",
		"BUILD_NUMBER": "42",
		"GIT_COMMIT":   "0123456789abcdef0123456789abcdef01234567",
		"CHANGE_ID":    "17",
	}
}

// archive writes an image as a docker-archive and returns its path.
func archive(t *testing.T, dir string, img v1.Image) string {
	t.Helper()
	path := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("build/app:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

func uniqueImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var digestRE = regexp.MustCompile(`as (sha256:[0-9a-f]{64})`)

func TestJenkinsEnvironmentBecomesAnnotations(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	env := jenkinsEnv(t, g)
	path := archive(t, env["WORKSPACE"], uniqueImage(t))
	r := runJenkins(t, env, "--image", "docker-archive:"+path, "--annotation", "team=payments", "--annotation", "jenkins.job_name=override")
	if r.code != step.ExitPass || !strings.HasPrefix(r.stderr, "buildgate: PASS: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	m := digestRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no digest in %s", r.stdout)
	}
	img := g.Image(t, m[1])
	want := map[string]string{
		"jenkins.build_url":    "https://jenkins.example/job/app/42/",
		"jenkins.job_name":     "override",
		"jenkins.build_number": "42",
		"jenkins.git_commit":   "0123456789abcdef0123456789abcdef01234567",
		"jenkins.change_id":    "17",
		"team":                 "payments",
	}
	if !reflect.DeepEqual(img.Annotations, want) {
		t.Errorf("annotations on the gate:\n%v\nwant\n%v", img.Annotations, want)
	}
	for _, f := range report.Formats() {
		if _, err := os.Stat(filepath.Join(env["WORKSPACE"], "buildgate-reports", report.FileName(f))); err != nil {
			t.Errorf("report not in $WORKSPACE/buildgate-reports: %v", err)
		}
	}
	res := readResult(t, filepath.Join(env["WORKSPACE"], "buildgate-reports"))
	if res.ExitCode != step.ExitPass || res.Verdict != "warn" || len(res.Images) != 1 || res.Images[0].Digest != m[1] ||
		res.Reports["junit"] != filepath.Join(env["WORKSPACE"], "buildgate-reports", "buildgate.junit.xml") || len(res.Reports) != len(report.Formats()) {
		t.Errorf("result %+v", res)
	}
}

// readResult reads the result file gateScan returns as a map.
func readResult(t *testing.T, dir string) result {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, resultFile))
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMultibranchTarget: a pull request build of a multibranch project
// looks for --baseline auto among the images its target branch's builds
// stored, which carry the project and the branch.
func TestMultibranchTarget(t *testing.T) {
	configured := func(env map[string]string) step.Config {
		t.Helper()
		cfg := step.DefaultConfig()
		fs := flag.NewFlagSet("gate-jenkins", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := cfg.ParseFlags(fs, []string{"--image", "registry.example/app:1", "--baseline", "auto"}, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		if err := jenkinsConfig(&cfg, fs, func(k string) string { return env[k] }, ""); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := configured(map[string]string{"JOB_NAME": "team/app/PR-17", "BRANCH_NAME": "PR-17", "CHANGE_ID": "17", "CHANGE_TARGET": "main"})
	want := &step.Target{Branch: "main", Annotations: map[string]string{"jenkins.project": "team/app", "jenkins.branch": "main"}}
	if !reflect.DeepEqual(cfg.Target, want) || cfg.Annotations["jenkins.project"] != "team/app" || cfg.Annotations["jenkins.branch"] != "PR-17" {
		t.Errorf("target %+v, annotations %v", cfg.Target, cfg.Annotations)
	}
	// A branch build stores what the pull request looks for.
	cfg = configured(map[string]string{"JOB_NAME": "team/app/feature%2Fx", "BRANCH_NAME": "feature/x"})
	if cfg.Target != nil || cfg.Annotations["jenkins.project"] != "team/app" || cfg.Annotations["jenkins.branch"] != "feature/x" {
		t.Errorf("branch build: target %+v, annotations %v", cfg.Target, cfg.Annotations)
	}
	if cfg := configured(map[string]string{"JOB_NAME": "app"}); cfg.Target != nil || cfg.Annotations["jenkins.project"] != "" {
		t.Errorf("not a multibranch build: target %+v, annotations %v", cfg.Target, cfg.Annotations)
	}
}

// TestGroovyFlags: every flag vars/gateScan.groovy passes is one of
// gate-jenkins', and it reads the result file gate-jenkins writes.
func TestGroovyFlags(t *testing.T) {
	b, err := os.ReadFile("vars/gateScan.groovy")
	if err != nil {
		t.Fatal(err)
	}
	cfg := step.DefaultConfig()
	fs := flag.NewFlagSet("gate-jenkins", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.String("images-file", "", "")
	flags := regexp.MustCompile(`'--([a-z-]+)'`).FindAllStringSubmatch(string(b), -1)
	if len(flags) < 10 {
		t.Fatalf("only %d flags found in gateScan.groovy", len(flags))
	}
	for _, f := range flags {
		if fs.Lookup(f[1]) == nil {
			t.Errorf("gateScan.groovy passes --%s, which gate-jenkins does not have", f[1])
		}
	}
	for _, p := range []string{"args.baseline", "args.forceAnalyze", "args.autoSubscribe", "args.caCert", "/" + resultFile} {
		if !bytes.Contains(b, []byte(p)) {
			t.Errorf("gateScan.groovy does not use %s", p)
		}
	}
}

func TestImagesFile(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	env := jenkinsEnv(t, g)
	ws := env["WORKSPACE"]
	os.MkdirAll(filepath.Join(ws, "clean"), 0o755)
	clean := archive(t, filepath.Join(ws, "clean"), uniqueImage(t))
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM debian:bullseye\nHEALTHCHECK CMD true\n"), 0o644)
	vulnerable := steptest.SharedImagePath(t, "bullseye-dpkgonly")

	write := func(lines ...string) string {
		p := filepath.Join(ws, "anchore_images")
		os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return p
	}
	dirOf := func(image string) string { return filepath.Join(ws, "buildgate-reports", sanitise(image)) }

	t.Run("worst is STOP", func(t *testing.T) {
		file := write("# built by this job", "docker-archive:"+clean, "docker-archive:"+vulnerable+" Dockerfile")
		r := runJenkins(t, env, "--images-file", file)
		if r.code != step.ExitFail {
			t.Errorf("exit %d, want 1", r.code)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "buildgate: PASS: docker-archive:"+clean+": policy WARN") ||
			!strings.HasPrefix(lines[1], "buildgate: FAIL: docker-archive:"+vulnerable+": policy STOP") ||
			!strings.HasPrefix(lines[2], "buildgate: FAIL: 1 of 2 images did not pass") {
			t.Errorf("stderr lines:\n%s", r.stderr)
		}
		for _, image := range []string{"docker-archive:" + clean, "docker-archive:" + vulnerable} {
			for _, f := range report.Formats() {
				if _, err := os.Stat(filepath.Join(dirOf(image), report.FileName(f))); err != nil {
					t.Errorf("%s: %v", image, err)
				}
			}
		}
		res := readResult(t, filepath.Join(ws, "buildgate-reports"))
		if res.Verdict != "stop" || res.ExitCode != step.ExitFail || len(res.Images) != 2 || res.Reports != nil ||
			res.StopCount != res.Images[1].StopCount || res.StopCount == 0 ||
			res.Images[1].Reports["sarif"] != filepath.Join(dirOf("docker-archive:"+vulnerable), "buildgate.sarif") {
			t.Errorf("result %+v", res)
		}
		md, _ := os.ReadFile(filepath.Join(dirOf("docker-archive:"+vulnerable), "buildgate.md"))
		if bytes.Contains(md, []byte("HEALTHCHECK")) {
			t.Errorf("the workspace Dockerfile (with a HEALTHCHECK) did not reach the gate:\n%s", md)
		}
	})
	t.Run("worst is an error", func(t *testing.T) {
		file := write("docker-archive:"+vulnerable, "docker-archive:"+filepath.Join(ws, "missing.tar"), "docker-archive:"+clean)
		r := runJenkins(t, env, "--images-file", file)
		if r.code != step.ExitError {
			t.Errorf("exit %d, want 2", r.code)
		}
		if !strings.Contains(r.stderr, "buildgate: ERROR: docker-archive:"+filepath.Join(ws, "missing.tar")+": uploading") ||
			!strings.Contains(r.stderr, "buildgate: ERROR: 2 of 3 images did not pass") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
	})
	t.Run("all pass", func(t *testing.T) {
		r := runJenkins(t, env, "--images-file", write("docker-archive:"+clean))
		if r.code != step.ExitPass || !strings.Contains(r.stderr, "buildgate: PASS: 0 of 1 images did not pass") {
			t.Errorf("exit %d, stderr %s", r.code, r.stderr)
		}
		// The earlier builds' reports of images no longer listed are gone,
		// so Jenkins' <out>/**/buildgate.junit.xml finds only this build's.
		old, _ := filepath.Glob(filepath.Join(ws, "buildgate-reports", "*", "buildgate.*"))
		for _, f := range old {
			if !strings.HasPrefix(f, dirOf("docker-archive:"+clean)+string(filepath.Separator)) {
				t.Errorf("an earlier build's report is still there: %s", f)
			}
		}
	})
}

func TestBadFlags(t *testing.T) {
	env := map[string]string{"GATE_URL": "http://127.0.0.1:1", "GATE_TOKEN": "bg_secret_token"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad fail-on", env, []string{"--image", "app:1", "--fail-on", "never"}, `buildgate: ERROR: bad flags: invalid value "never" for flag -fail-on: want stop, warn, new or none`},
		{"bad env", map[string]string{"GATE_URL": "x", "GATE_TOKEN": "bg_secret_token", "GATE_ON_ERROR": "ignore"}, []string{"--image", "app:1"}, `buildgate: ERROR: bad flags: $GATE_ON_ERROR: invalid value "ignore": want fail or pass`},
		{"image with images file", env, []string{"--image", "app:1", "--images-file", "anchore_images"}, "--image does not go with --images-file"},
		{"no image", env, nil, "--image (or $GATE_IMAGE) or --sbom is required"},
		{"missing images file", env, []string{"--images-file", "/nonexistent/anchore_images"}, "buildgate: ERROR: bad input: reading the images file"},
		{"on-error pass does not pass bad flags", map[string]string{"GATE_TOKEN": "bg_secret_token", "GATE_ON_ERROR": "pass"}, []string{"--image", "app:1"}, "--gate (or $GATE_URL) is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runJenkins(t, tt.env, tt.args...)
			if r.code != step.ExitError || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		r := runJenkins(t, nil, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "-images-file") || r.stderr != "" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func TestVersionFlag(t *testing.T) {
	var out, errw strings.Builder
	code := run(context.Background(), []string{"--version"}, func(string) string { return "" }, &out, &errw)
	if code != 0 || !strings.HasPrefix(out.String(), "gate-jenkins dev (commit ") || !strings.Contains(out.String(), ", built ") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want exit 0 and \"gate-jenkins dev (commit ..., built ...)\"", code, out.String(), errw.String())
	}
}
