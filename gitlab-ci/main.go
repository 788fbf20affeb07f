// Command gate-gitlab is buildgate's GitLab CI step: it gates one image
// against a buildgate gate and leaves the reports GitLab reads in the
// project directory (gate.gitlab-ci.yml, the includable job template,
// runs it):
//
//	buildgate-reports/gl-container-scanning-report.json  artifacts:reports:container_scanning
//	buildgate-reports/buildgate.junit.xml                artifacts:reports:junit
//	buildgate-reports/buildgate.sarif, buildgate.md, buildgate.json
//
// It takes the flags of every step binary (internal/step); flags not given
// come from BUILDGATE_* variables (BUILDGATE_URL, BUILDGATE_TOKEN,
// BUILDGATE_IMAGE, BUILDGATE_DOCKERFILE, BUILDGATE_POLICY, BUILDGATE_VEX,
// BUILDGATE_FAIL_ON, BUILDGATE_TAG, BUILDGATE_TIMEOUT, BUILDGATE_ON_ERROR,
// BUILDGATE_OUT), then GATE_* ones. The image defaults to
// $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA, the reports go to buildgate-reports
// in the working directory (GitLab starts jobs in $CI_PROJECT_DIR, where
// artifacts paths are), and the pipeline's CI_* context is stored with the
// image on the gate as annotations.
//
// On merge request pipelines with $BUILDGATE_GITLAB_TOKEN (a project or
// personal access token with the api scope) it creates or updates one
// note on the merge request with the Markdown report, found again by a
// hidden marker, through the API at $CI_API_V4_URL. A token that may not
// comment (403) is a warning, never a failure.
//
// It exits 0 when the image passes, 1 when the policy stops it, 2 on an
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/buildgate/buildgate/internal/buildinfo"
	"github.com/buildgate/buildgate/internal/step"
)

// version is the stamped release version (internal/buildinfo).
var version = buildinfo.Version

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, &http.Client{Timeout: 30 * time.Second})
	stop()
	os.Exit(code)
}

// buildgateVars maps the step's flags to the template's variables.
var buildgateVars = map[string]string{
	"gate":          "BUILDGATE_URL",
	"token":         "BUILDGATE_TOKEN",
	"image":         "BUILDGATE_IMAGE",
	"dockerfile":    "BUILDGATE_DOCKERFILE",
	"policy":        "BUILDGATE_POLICY",
	"vex":           "BUILDGATE_VEX",
	"platform":      "BUILDGATE_PLATFORM",
	"registry-auth": "BUILDGATE_REGISTRY_AUTH",
	"fail-on":       "BUILDGATE_FAIL_ON",
	"baseline":      "BUILDGATE_BASELINE",
	"tag":           "BUILDGATE_TAG",
	"timeout":       "BUILDGATE_TIMEOUT",
	"on-error":      "BUILDGATE_ON_ERROR",
	"out":           "BUILDGATE_OUT",
}

// gitlabAnnotations maps the pipeline's variables to the annotations
// stored with the image.
var gitlabAnnotations = map[string]string{
	"CI_PROJECT_PATH":      "gitlab.project",
	"CI_COMMIT_SHA":        "gitlab.commit_sha",
	"CI_COMMIT_REF_NAME":   "gitlab.ref",
	"CI_PIPELINE_URL":      "gitlab.pipeline_url",
	"CI_JOB_URL":           "gitlab.job_url",
	"CI_MERGE_REQUEST_IID": "gitlab.merge_request_iid",
}

const usage = `usage: gate-gitlab [flags]

Gates a container image against a buildgate gate and writes reports to
buildgate-reports (--out) in the working directory. Settings come from flags, then
BUILDGATE_* variables (BUILDGATE_URL, BUILDGATE_TOKEN, BUILDGATE_IMAGE,
BUILDGATE_DOCKERFILE, BUILDGATE_POLICY, BUILDGATE_FAIL_ON, BUILDGATE_BASELINE,
...), then GATE_*. In a merge request pipeline, --baseline auto compares
with the last image gated on the target branch.
On merge request pipelines, $BUILDGATE_GITLAB_TOKEN lets it keep one note
with the report on the merge request.
Exit status: 0 pass, 1 policy STOP (or WARN with --fail-on warn; only new
STOP findings with --fail-on new; never with --fail-on none), 2 error.

`

// run is the whole command, testable: it returns the exit code. hc talks
// to the GitLab API.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hc *http.Client) int {
	cfg := step.DefaultConfig()
	cfg.Version = version
	fs := flag.NewFlagSet("gate-gitlab", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	err := configure(&cfg, fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return step.ExitPass
	}
	glToken := getenv("BUILDGATE_GITLAB_TOKEN")
	redact := func(w io.Writer) io.Writer {
		return step.Redact(step.Redact(step.Redact(w, cfg.Token), step.Token(glToken)), step.Token(getenv("CI_REGISTRY_PASSWORD")))
	}
	out, errw := redact(stdout), redact(stderr)
	if err != nil {
		fmt.Fprintln(errw, "buildgate: ERROR: bad flags: "+err.Error()+" (gate-gitlab -h for help)")
		return step.ExitError
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.String("gate-gitlab"))
		return step.ExitPass
	}

	r := step.Execute(ctx, cfg, out)
	n := &noter{getenv: getenv, token: glToken, http: hc, out: out}
	n.note(ctx, step.ImageKey(cfg), markdownOf(r))
	fmt.Fprintln(errw, r.Line())
	return r.ExitCode
}

// configure fills cfg from the flags, then BUILDGATE_* variables, then
// GATE_* ones, then the pipeline's CI_* variables.
func configure(cfg *step.Config, fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := step.SetFromEnv(fs, buildgateVars, getenv); err != nil {
		return err
	}
	if err := cfg.ParseFlags(fs, nil, getenv); err != nil {
		return err
	}

	if cfg.Image == "" && cfg.SBOM == "" && getenv("CI_REGISTRY_IMAGE") != "" && getenv("CI_COMMIT_SHA") != "" {
		cfg.Image = getenv("CI_REGISTRY_IMAGE") + ":" + getenv("CI_COMMIT_SHA")
	}
	cfg.AnnotateFromEnv(gitlabAnnotations, getenv)
	cfg.Target = target(getenv)
	// The template keeps it as the job's `reports: cyclonedx`.
	cfg.CycloneDX = true
	// The job's own pull credentials for the project's registry.
	if reg, user, pass := getenv("CI_REGISTRY"), getenv("CI_REGISTRY_USER"), getenv("CI_REGISTRY_PASSWORD"); reg != "" && user != "" && pass != "" {
		cfg.RegistryAuthDefaults = map[string]step.RegistryAuth{reg: {Username: user, Password: step.Token(pass)}}
	}
	return nil
}

// target is the merge request's target branch for --baseline auto: the
// project's images a pipeline of that branch stored; nil outside a merge
// request pipeline.
func target(getenv func(string) string) *step.Target {
	branch, project := getenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"), getenv("CI_PROJECT_PATH")
	if branch == "" || project == "" {
		return nil
	}
	return &step.Target{Branch: branch, Annotations: map[string]string{"gitlab.project": project, "gitlab.ref": branch}}
}
