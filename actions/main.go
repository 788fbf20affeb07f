// Command gate-action is buildgate's GitHub Action (action.yml at the
// repository root builds and runs it): it gates one image against a
// buildgate gate and turns the verdict into what a GitHub workflow shows.
//
// It reads the action's inputs (INPUT_* variables, see action.yml), then
// GATE_* variables for inputs not given, runs the vendor-neutral step
// (internal/step), and then:
//   - sets the outputs verdict, stop-count, warn-count, sarif-file,
//     junit-file, markdown-file, report-url, image-url and digest
//     ($GITHUB_OUTPUT);
//   - appends the Markdown report to the job summary ($GITHUB_STEP_SUMMARY);
//   - annotates the verdict and the STOP and WARN findings, on the
//     Dockerfile's lines when a Dockerfile was given;
//   - gives the SARIF file a category per image
//     (runs[].automationDetails.id) for github/codeql-action/upload-sarif;
//   - on pull_request events, creates or updates one comment on the pull
//     request with the report, found again by a hidden marker, through the
//     REST API at $GITHUB_API_URL (GitHub Enterprise Server works). A
//     token that may not comment (403, as for pull requests from forks) is
//     a warning, never a failure.
//
// Tokens are masked (::add-mask::) before anything else is printed. The
// GitHub context (repository, commit, ref, run URL, workflow, pull
// request) is stored with the image on the gate as annotations.
//
// It exits 0 when the image passes, 1 when the policy stops it, 2 on an
// error (0 with on-error: pass).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/buildgate/buildgate/internal/buildinfo"
	"github.com/buildgate/buildgate/internal/step"
)

// version is the stamped release version (internal/buildinfo).
var version = buildinfo.Version

func main() {
	// The action takes its inputs from the environment; --version is its
	// one argument.
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println(buildinfo.String("gate-action"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Getenv, os.Stdout, os.Stderr, &http.Client{Timeout: 30 * time.Second})
	stop()
	os.Exit(code)
}

// run is the whole action, testable: it returns the exit code. hc talks
// to the GitHub API.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, hc *http.Client) int {
	// Mask the tokens before anything else can print them.
	raw := githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout))
	for _, t := range []string{raw.GetInput("gate-token"), raw.GetInput("github-token"), getenv("GATE_TOKEN")} {
		if t != "" {
			raw.AddMask(t)
		}
	}

	in, err := readInputs(raw, getenv)
	redact := func(w io.Writer) io.Writer {
		return step.Redact(step.Redact(w, in.cfg.Token), step.Token(in.githubToken))
	}
	out := redact(stdout)
	a := &action{
		gh:     githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(out)),
		in:     in,
		getenv: getenv,
		http:   hc,
	}
	var r *step.Result
	if err != nil {
		r = &step.Result{Image: in.cfg.Image, Verdict: step.VerdictError, ExitCode: step.ExitError, Err: fmt.Errorf("bad inputs: %w", err)}
	} else {
		in.cfg.Version = version
		r = step.Execute(ctx, in.cfg, out)
	}
	a.finish(ctx, r)
	fmt.Fprintln(redact(stderr), r.Line())
	return r.ExitCode
}
