package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

// e2eTool returns the path of a runner tool for an end-to-end test: the
// test is skipped unless BUILDGATE_E2E=1, and fails when the tool is
// missing then (CI installs it).
func e2eTool(t *testing.T, name string) string {
	t.Helper()
	if os.Getenv("BUILDGATE_E2E") != "1" {
		t.Skip("set BUILDGATE_E2E=1 to run the workflow in a real runner")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("BUILDGATE_E2E=1 but %s is not on PATH (.ci/run installs it)", name)
	}
	return p
}

// workTree copies the module's work tree (tracked and untracked files
// that git does not ignore) into a new git repository with one commit
// and an origin on GitHub, as a runner's checkout would see it.
func workTree(t *testing.T) string {
	t.Helper()
	root, err := steptest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "repo")
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dst
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "e2e")
	git("remote", "add", "origin", "https://github.com/buildgate/buildgate.git")
	return dst
}

// actLine is one line of act's --json log.
type actLine struct {
	Msg        string            `json:"msg"`
	Level      string            `json:"level"`
	JobID      string            `json:"jobID"`
	StepID     []string          `json:"stepID"`
	Step       string            `json:"step"`
	Command    string            `json:"command"`
	Name       string            `json:"name"`
	Arg        string            `json:"arg"`
	Content    string            `json:"content"`
	KVPairs    map[string]string `json:"kvPairs"`
	JobResult  string            `json:"jobResult"`
	StepResult string            `json:"stepResult"`
}

// actRun is what one act run printed, by job.
type actRun struct {
	// shown is what act shows of the run (the messages of its JSON log):
	// the JSON also holds an add-mask command's argument.
	shown     string
	jobResult map[string]string
	// outputs are the gate step's outputs; summary its job summary;
	// annotations its error and warning commands; stepResults the result
	// of each step by name; lines what the steps printed.
	outputs     map[string]map[string]string
	summary     map[string]string
	annotations map[string][]actLine
	stepResults map[string]map[string]string
	lines       map[string][]string
}

func parseAct(t *testing.T, log []byte) actRun {
	t.Helper()
	r := actRun{
		jobResult: map[string]string{}, outputs: map[string]map[string]string{},
		summary: map[string]string{}, annotations: map[string][]actLine{},
		stepResults: map[string]map[string]string{}, lines: map[string][]string{},
	}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var shown strings.Builder
	for sc.Scan() {
		var l actLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			shown.WriteString(sc.Text() + "\n")
			continue
		}
		shown.WriteString(l.Msg + "\n")
		if l.JobID == "" {
			continue
		}
		job := l.JobID
		if r.outputs[job] == nil {
			r.outputs[job], r.stepResults[job] = map[string]string{}, map[string]string{}
		}
		gate := len(l.StepID) > 0 && l.StepID[0] == "gate"
		switch {
		case l.JobResult != "":
			r.jobResult[job] = l.JobResult
		case l.StepResult != "" && len(l.StepID) == 1:
			r.stepResults[job][l.Step] = l.StepResult
		case gate && l.Command == "set-output" && len(l.StepID) == 1:
			r.outputs[job][l.Name] = l.Arg
		case gate && l.Command == "summary" && len(l.StepID) == 1:
			r.summary[job] = l.Content
		case gate && (l.Command == "error" || l.Command == "warning") && len(l.StepID) == 2:
			r.annotations[job] = append(r.annotations[job], l)
		case l.Command == "":
			r.lines[job] = append(r.lines[job], strings.TrimRight(l.Msg, "\n"))
		}
	}
	r.shown = shown.String()
	return r
}

// actRunner runs workflows of a copy of the work tree under act, on
// pull request 7 of buildgate/buildgate into main.
type actRunner struct {
	t                   *testing.T
	act, repo, event    string
	cache, actCache     string
	gocache, gomodcache string
}

func newActRunner(t *testing.T, act string) *actRunner {
	t.Helper()
	a := &actRunner{t: t, act: act, repo: workTree(t), event: filepath.Join(t.TempDir(), "event.json"),
		cache: filepath.Join(t.TempDir(), "action-cache"), actCache: t.TempDir()}
	os.WriteFile(a.event, []byte(`{"number": 7, "pull_request": {"number": 7, "head": {"ref": "feature", "sha": "0123456789abcdef0123456789abcdef01234567"}, "base": {"ref": "main"}}}`), 0o644)
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	a.gocache, a.gomodcache, _ = strings.Cut(strings.TrimSpace(string(goenv)), "\n")
	return a
}

// run runs a workflow, which must fail (each has a job meant to end red),
// and checks that no secret shows in act's log.
func (a *actRunner) run(name, workflow string, secrets []string, args ...string) actRun {
	t := a.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args = append([]string{"pull_request",
		"--eventpath", a.event,
		"--workflows", workflow,
		"--platform", "ubuntu-latest=-self-hosted",
		"--action-offline-mode", "--json",
		"--action-cache-path", a.actCache, "--no-cache-server", "--container-daemon-socket", "-",
		"--env", "BUILDGATE_ACTION_CACHE=" + a.cache,
		"--env", "GOCACHE=" + a.gocache,
		"--env", "GOMODCACHE=" + a.gomodcache,
	}, args...)
	cmd := exec.CommandContext(ctx, a.act, args...)
	cmd.Dir = a.repo
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("act run %s: %s, %v", name, time.Since(start).Round(time.Millisecond), err)
	logFile := filepath.Join(t.TempDir(), "act-"+name+".log")
	os.WriteFile(logFile, out, 0o644)
	if ctx.Err() != nil {
		t.Fatalf("act did not finish in time; log in %s", logFile)
	}
	if err == nil {
		t.Errorf("act exited 0; a job must fail it")
	}
	r := parseAct(t, out)
	for _, tok := range secrets {
		if strings.Contains(r.shown, tok) {
			t.Errorf("a token shows in act's log %s", logFile)
		}
	}
	if t.Failed() {
		t.Logf("act log:\n%s", out)
	}
	return r
}

// TestWorkflowUnderAct runs .github/workflows/action-selftest.yml under
// nektos/act, with the jobs on this host, against a real gate, a
// registry holding a clean and a vulnerable image, and a fake GitHub API:
// the job of the clean image passes, the job of the vulnerable one fails
// on the policy's STOP, each with its outputs, job summary, annotations
// and one pull-request comment; a second run updates both comments.
func TestWorkflowUnderAct(t *testing.T) {
	act := e2eTool(t, "act")
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	clean := reg.Push(t, "team/clean:1", img)
	vulnerable := reg.Push(t, "team/vulnerable:1", steptest.SharedImage(t, "bullseye-dpkgonly"))
	const ghToken = "ghs_act_e2e_token_5d1f0a9c"
	gh := newFakeGitHub(t, ghToken)

	a := newActRunner(t, act)
	runAct := func(name string) actRun {
		t.Helper()
		return a.run(name, ".github/workflows/action-selftest.yml", []string{g.CIToken, ghToken},
			"--var", "BUILDGATE_GATE_URL="+g.URL,
			"--var", "BUILDGATE_CLEAN_IMAGE="+clean,
			"--var", "BUILDGATE_VULNERABLE_IMAGE="+vulnerable,
			"--secret", "BUILDGATE_TOKEN="+g.CIToken,
			"--secret", "GITHUB_TOKEN="+ghToken,
			"--env", "GITHUB_API_URL="+gh.API,
		)
	}

	first := runAct("1")
	check := func(r actRun) {
		t.Helper()
		if r.jobResult["pass"] != "success" || r.jobResult["fail"] != "failure" {
			t.Fatalf("job results %v, want pass success and fail failure", r.jobResult)
		}
		if got := r.stepResults["pass"]["Check the outputs"]; got != "success" {
			t.Errorf("the pass job's check step: %q", got)
		}
		if got := r.stepResults["fail"]["Check that the gate failed the job for the policy's STOP"]; got != "success" {
			t.Errorf("the fail job's check step: %q", got)
		}
		if o := r.outputs["pass"]; o["verdict"] != "warn" || o["stop-count"] != "0" || o["sarif-file"] != "selftest/clean.sarif" {
			t.Errorf("pass outputs %v", o)
		}
		if o := r.outputs["fail"]; o["verdict"] != "stop" || o["stop-count"] == "0" || o["junit-file"] != "selftest/vulnerable.junit.xml" || !strings.HasPrefix(o["report-url"], g.URL+"/v1/images/sha256:") {
			t.Errorf("fail outputs %v", o)
		}
		if s := r.summary["pass"]; !strings.HasPrefix(s, report.MarkdownMarker+"\n## buildgate: **WARN**") || !strings.Contains(s, clean) {
			t.Errorf("pass job summary:\n%s", s)
		}
		if s := r.summary["fail"]; !strings.HasPrefix(s, report.MarkdownMarker+"\n## buildgate: **STOP**") || !strings.Contains(s, "`test/e2e/Dockerfile`") {
			t.Errorf("fail job summary:\n%s", s)
		}
		var onDockerfile int
		for _, a := range r.annotations["fail"] {
			if a.Command == "error" && a.KVPairs["file"] == "test/e2e/Dockerfile" && slices.Contains([]string{"3", "5"}, a.KVPairs["line"]) {
				onDockerfile++
			}
		}
		if onDockerfile != maxAnnotations {
			t.Errorf("%d error annotations on the Dockerfile's FROM and EXPOSE lines, want %d: %+v", onDockerfile, maxAnnotations, r.annotations["fail"])
		}
	}
	check(first)
	// Each job built its own gate-action: no binary is taken from a
	// directory another job could have written.
	if !containsLine(first.lines["pass"], "buildgate: built gate-action ") || !containsLine(first.lines["fail"], "buildgate: built gate-action ") ||
		containsLine(first.lines["pass"], "buildgate: gate-action ") || containsLine(first.lines["fail"], "buildgate: gate-action ") {
		t.Errorf("gate-action was not built by each job:\npass: %q\nfail: %q", grep(first.lines["pass"], "gate-action"), grep(first.lines["fail"], "gate-action"))
	}
	comments := gh.Comments("buildgate/buildgate#7")
	if len(comments) != 2 || !strings.Contains(comments[0].Body, "**WARN**") || !strings.Contains(comments[1].Body, "**STOP**") {
		t.Fatalf("comments after the first run: %+v", comments)
	}

	second := runAct("2")
	check(second)
	again := gh.Comments("buildgate/buildgate#7")
	if len(again) != 2 || again[0].ID != comments[0].ID || again[1].ID != comments[1].ID {
		t.Errorf("comments after the second run: %+v; want the same two updated", again)
	}
	var patches int
	for _, r := range gh.Requests() {
		if strings.HasPrefix(r, "PATCH ") {
			patches++
		}
	}
	if patches != 2 {
		t.Errorf("%d comment updates, want 2", patches)
	}
}

// TestBaselineUnderAct gates the base branch's image as a push to main
// would, then runs .github/workflows/action-baseline-selftest.yml on a
// pull request into main with `baseline: auto` and `fail-on: new`: the
// image that only adds a file passes on its inherited STOP findings, the
// one that adds lodash fails on lodash's; the log table marks both.
func TestBaselineUnderAct(t *testing.T) {
	act := e2eTool(t, "act")
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	base, err := mutate.AppendLayers(steptest.SharedImage(t, "bullseye-dpkgonly"), steptest.Layer(t, map[string]string{"etc/build": "main"}))
	if err != nil {
		t.Fatal(err)
	}
	same, _ := mutate.AppendLayers(base, steptest.Layer(t, map[string]string{"etc/build": "pr-7"}))
	added, _ := mutate.AppendLayers(base, steptest.Layer(t, map[string]string{
		"app/node_modules/lodash/package.json": `{"name": "lodash", "version": "4.17.15"}`,
	}))
	mainRef := reg.Push(t, "team/app:main", base)

	// The base branch's build, as the action on a push to main stores it.
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image, cfg.OutDir = g.URL, step.Token(g.CIToken), mainRef, t.TempDir()
	cfg.FailOn = report.FailOnNone
	cfg.Annotations = map[string]string{"github.repository": "buildgate/buildgate", "github.ref": "refs/heads/main"}
	var log bytes.Buffer
	if r := step.Execute(context.Background(), cfg, &log); r.Err != nil {
		t.Fatalf("gating main's image: %v\n%s", r.Err, log.String())
	}

	a := newActRunner(t, act)
	r := a.run("baseline", ".github/workflows/action-baseline-selftest.yml", []string{g.CIToken},
		"--var", "BUILDGATE_GATE_URL="+g.URL,
		"--var", "BUILDGATE_SAME_IMAGE="+reg.Push(t, "team/app:pr-7-same", same),
		"--var", "BUILDGATE_ADDED_IMAGE="+reg.Push(t, "team/app:pr-7-added", added),
		"--secret", "BUILDGATE_TOKEN="+g.CIToken,
	)
	if r.jobResult["same"] != "success" || r.jobResult["added"] != "failure" {
		t.Fatalf("job results %v, want same success and added failure", r.jobResult)
	}
	if got := r.stepResults["same"]["Check that only inherited STOP findings passed"]; got != "success" {
		t.Errorf("the same job's check step: %q", got)
	}
	if got := r.stepResults["added"]["Check that the gate failed the job for the added package"]; got != "success" {
		t.Errorf("the added job's check step: %q", got)
	}
	if !containsLine(r.lines["same"], "buildgate: baseline auto: main: sha256:") {
		t.Errorf("the same job does not say which baseline auto found:\n%s", strings.Join(r.lines["same"], "\n"))
	}
	if rows := grep(r.lines["added"], " lodash "); len(rows) == 0 || !strings.Contains(rows[0], " new ") || !strings.HasSuffix(rows[0], " STOP") {
		t.Errorf("the added job's log table has no new lodash STOP row: %q", rows)
	}
	if len(grep(r.lines["added"], "inherited  not counted (STOP)")) == 0 {
		t.Errorf("the added job's log table shows no inherited STOP row:\n%s", strings.Join(r.lines["added"], "\n"))
	}
}

func containsLine(lines []string, prefix string) bool {
	return len(grep(lines, prefix)) > 0
}

func grep(lines []string, s string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
