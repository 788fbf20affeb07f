// Command gate-jenkins is buildgate's Jenkins step: it gates the images a
// build made against a buildgate gate and leaves JUnit, SARIF, GitLab,
// Markdown and JSON reports in the workspace for the junit,
// recordIssues and archiveArtifacts steps (vars/gateScan.groovy runs it).
//
// It takes the flags of every step binary (see internal/step), reads the
// Jenkins build's environment into annotations stored with the image,
// writes reports to $WORKSPACE/buildgate-reports by default, and gates
// several images at once from an Anchore plugin anchore_images file
// (--images-file). It exits 0 when every image passes, 1 when the policy
// stops one, 2 on an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/buildgate/buildgate/internal/buildinfo"
	"github.com/buildgate/buildgate/internal/step"
)

// version is the stamped release version (internal/buildinfo).
var version = buildinfo.Version

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// jenkinsAnnotations maps Jenkins' environment variables to the
// annotations the step stores with each image.
var jenkinsAnnotations = map[string]string{
	"BUILD_URL":    "jenkins.build_url",
	"JOB_NAME":     "jenkins.job_name",
	"BUILD_NUMBER": "jenkins.build_number",
	"GIT_COMMIT":   "jenkins.git_commit",
	"CHANGE_ID":    "jenkins.change_id",
	"BRANCH_NAME":  "jenkins.branch",
}

// maxParallel bounds the images gated at once from an images file.
const maxParallel = 4

const usage = `usage: gate-jenkins --gate URL --image IMAGE [flags]
       gate-jenkins --gate URL --images-file anchore_images [flags]

Gates container images against a buildgate gate and writes reports to
$WORKSPACE/buildgate-reports (--out), with buildgate-result.json (the
verdict, counts and report paths) for the pipeline. The token comes from
$GATE_TOKEN. In a multibranch pull request build, --baseline auto compares
with the last image gated on $CHANGE_TARGET.
Exit status: 0 pass, 1 policy STOP (or WARN with --fail-on warn; only new
STOP findings with --fail-on new; never with --fail-on none), 2 error.

`

// run is the whole command, testable: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg := step.DefaultConfig()
	cfg.Version = version
	fs := flag.NewFlagSet("gate-jenkins", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	imagesFile := fs.String("images-file", "", "`file` of images to gate, one \"IMAGE [DOCKERFILE]\" a line (the Anchore plugin's anchore_images)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	err := cfg.ParseFlags(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return step.ExitPass
	}
	if err == nil {
		err = jenkinsConfig(&cfg, fs, getenv, *imagesFile)
	}
	if err != nil {
		fmt.Fprintln(step.Redact(stderr, cfg.Token), "buildgate: ERROR: bad flags: "+err.Error()+" (gate-jenkins -h for help)")
		return step.ExitError
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.String("gate-jenkins"))
		return step.ExitPass
	}
	if err := removeOldReports(cfg.OutDir); err != nil {
		fmt.Fprintln(step.Redact(stderr, cfg.Token), "buildgate: ERROR: "+err.Error())
		return step.ExitError
	}
	if *imagesFile == "" {
		r := step.Execute(ctx, cfg, stdout)
		fmt.Fprintln(step.Redact(stderr, cfg.Token), r.Line())
		writeResult(cfg, []*step.Result{r}, r.ExitCode, stdout)
		return r.ExitCode
	}
	entries, err := readImagesFile(*imagesFile)
	if err != nil {
		fmt.Fprintln(step.Redact(stderr, cfg.Token), "buildgate: ERROR: bad input: "+err.Error())
		return step.ExitError
	}
	return runMany(ctx, cfg, entries, getenv("WORKSPACE"), stdout, stderr)
}

// writeResult writes resultFile in the report directory. The pipeline
// falls back to the exit code without it, so a failure is a line in the
// log, not an error.
func writeResult(cfg step.Config, rs []*step.Result, code int, stdout io.Writer) {
	path := filepath.Join(cfg.OutDir, resultFile)
	b, err := newResult(rs, code).marshal()
	if err == nil {
		if err = os.MkdirAll(cfg.OutDir, 0o755); err == nil {
			err = os.WriteFile(path, append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(step.Redact(stdout, cfg.Token), "buildgate: could not write %s: %v\n", path, err)
	}
}

// jenkinsConfig adds what Jenkins' environment says to the configuration:
// annotations, the report directory in the workspace, and checks the flags
// that do not go with an images file.
func jenkinsConfig(cfg *step.Config, fs *flag.FlagSet, getenv func(string) string, imagesFile string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.AnnotateFromEnv(jenkinsAnnotations, getenv)
	if p := project(getenv); p != "" {
		if _, given := cfg.Annotations["jenkins.project"]; !given {
			cfg.Annotations["jenkins.project"] = p
		}
		if t := getenv("CHANGE_TARGET"); t != "" {
			cfg.Target = &step.Target{Branch: t, Annotations: map[string]string{"jenkins.project": p, "jenkins.branch": t}}
		}
	}
	if ws := getenv("WORKSPACE"); ws != "" && !set["out"] {
		cfg.OutDir = filepath.Join(ws, "buildgate-reports")
	}
	if imagesFile != "" {
		for _, name := range []string{"image", "sbom", "dockerfile", "tag"} {
			if set[name] {
				return fmt.Errorf("--%s does not go with --images-file (give each image and its Dockerfile in the file)", name)
			}
		}
	}
	return nil
}

// project is a multibranch build's project: $JOB_NAME without the
// branch's job ("team/app" of "team/app/PR-17"), "" outside a multibranch
// project.
func project(getenv func(string) string) string {
	job, branch := getenv("JOB_NAME"), getenv("BRANCH_NAME")
	if branch == "" {
		return ""
	}
	p, ok := strings.CutSuffix(job, "/"+url.PathEscape(branch))
	if !ok || p == "" {
		return ""
	}
	return p
}

// runMany gates every image of an images file, at most maxParallel at
// once, each with its reports in <out>/<sanitised image>/, prints one line
// per image and a total, and returns the worst exit code (2 > 1 > 0).
func runMany(ctx context.Context, cfg step.Config, entries []imageEntry, workspace string, stdout, stderr io.Writer) int {
	out := &lockedWriter{w: stdout}
	dirs := reportDirs(entries)
	results := make([]*step.Result, len(entries))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, e := range entries {
		c := cfg
		c.Image = e.Image
		c.Dockerfile = resolveDockerfile(e.Dockerfile, workspace)
		c.OutDir = filepath.Join(cfg.OutDir, dirs[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = step.Execute(ctx, c, out)
		}()
	}
	wg.Wait()
	errw := step.Redact(stderr, cfg.Token)
	worst, failed := step.ExitPass, 0
	for _, r := range results {
		fmt.Fprintf(errw, "buildgate: %s: %s: %s\n", r.Outcome(), r.Image, r.Summary())
		worst = worse(worst, r.ExitCode)
		if r.Outcome() != "PASS" {
			failed++
		}
	}
	outcome := map[int]string{step.ExitPass: "PASS", step.ExitFail: "FAIL", step.ExitError: "ERROR"}[worst]
	fmt.Fprintf(errw, "buildgate: %s: %d of %d images did not pass — reports in %s\n", outcome, failed, len(results), cfg.OutDir)
	writeResult(cfg, results, worst, out)
	return worst
}

// removeOldReports deletes the result and the report files that earlier
// builds left in the report directory and its subdirectories (an images file's images),
// since Jenkins keeps the workspace and the junit step reads
// <out>/**/buildgate.junit.xml.
func removeOldReports(out string) error {
	if err := os.Remove(filepath.Join(out, resultFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the previous result: %w", err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil // nothing there yet, or the step will say why
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := step.RemoveReports(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// worse orders exit codes: 2 (error) over 1 (fail) over 0 (pass).
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case step.ExitError:
			return 2
		case step.ExitFail:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// resolveDockerfile makes a relative Dockerfile path of an images file
// relative to the workspace, as the Anchore plugin did.
func resolveDockerfile(p, workspace string) string {
	if p == "" || filepath.IsAbs(p) || workspace == "" {
		return p
	}
	return filepath.Join(workspace, p)
}

// lockedWriter serialises the writes of concurrent steps, which write
// whole lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
