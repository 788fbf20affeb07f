// Package step is the vendor-neutral CI flow that the step binaries
// (jenkins/, actions/, gitlab-ci/) wrap: submit an image (a registry
// reference, a local archive or daemon image streamed to the gate, or an
// SBOM), wait for its analysis with progress lines, fetch the verdict and
// the findings, render every report with internal/report into one
// directory, and turn the verdict into an exit code: 0 pass, 1 policy
// STOP, 2 error.
//
// The step fails closed: every error is exit 2 unless the user asked for
// --on-error pass, and even then it says why in one line. The token is a
// Token, whose String redacts it, and every line the step writes goes
// through a writer that blanks it out.
//
// The package imports the gate's client, its wire types and the report
// renderers, and nothing that speaks syft, grype, SQLite or echo, so the
// step binaries stay small and start fast.
package step

import (
	"fmt"
	"net/http"
	"time"

	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
)

// Exit codes of a step.
const (
	ExitPass  = report.ExitPass  // the image passes
	ExitFail  = report.ExitFail  // the policy stops the image
	ExitError = report.ExitError // no verdict: the step could not get one
)

// Verdicts of a Result.
const (
	VerdictGo    = "go"
	VerdictWarn  = "warn"
	VerdictStop  = "stop"
	VerdictError = "error"
)

// Token is an API token. Printing it with any fmt verb shows a
// placeholder, never the token.
type Token string

const redacted = "[redacted]"

// String returns a placeholder, or "" for an empty token.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString returns a placeholder, so %#v of a Config does not show it.
func (t Token) GoString() string { return fmt.Sprintf("%q", t.String()) }

// Format prints a placeholder whatever the verb.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, t.GoString())
		return
	}
	fmt.Fprint(f, t.String())
}

// Config is what one step run needs. Flags fill it (RegisterFlags), then
// GATE_* environment variables for flags not given (ParseFlags).
type Config struct {
	// GateURL is the gate's base URL, e.g. https://gate.example.
	GateURL string
	// Token authenticates to the gate (role ci or admin).
	Token Token
	// Image is what to gate: a registry reference (the gate pulls it), or
	// docker-archive:PATH, oci-archive:PATH, oci-dir:PATH or docker:NAME,
	// which the step streams to the gate.
	Image string
	// Dockerfile is the path of the image's Dockerfile, optional. Its text
	// goes to the gate (for the dockerfile gate) and its path into SARIF
	// locations.
	Dockerfile string
	// Policy is the id of the bundle to evaluate with; empty: the active
	// one.
	Policy string
	// Platform picks the image of an index, "os/architecture[/variant]";
	// empty: the gate's default, linux/amd64. Registry references only.
	Platform string
	// RegistryAuth are pull credentials for this submission alone (a
	// registry reference's registry only); none: the gate's stored ones.
	// An adapter sets its CI's defaults (ApplyRegistryAuthDefaults).
	RegistryAuth RegistryAuth
	// RegistryAuthDefaults are the CI job's own pull credentials by
	// registry host (the action's github-token for ghcr.io, GitLab's
	// CI_REGISTRY_USER for $CI_REGISTRY), used when --registry-auth is
	// not given.
	RegistryAuthDefaults map[string]RegistryAuth
	// DockerConfig is the docker config directory ($DOCKER_CONFIG, else
	// ~/.docker) whose config.json gives pull credentials when neither
	// --registry-auth nor a CI default does.
	DockerConfig string
	// VEX is the path of an OpenVEX or CycloneDX VEX document the gate
	// applies to this one evaluation, optional.
	VEX string
	// Tag is the repo:tag the image stands for in policy mappings; for a
	// registry reference, the reference when empty.
	Tag string
	// Annotations are stored with the image on the gate.
	Annotations map[string]string
	// Timeout bounds the whole step: submit, analysis and reports.
	Timeout time.Duration
	// FailOn is the least severe verdict that fails the build: STOP (the
	// default) or WARN; report.FailOnNone fails on no verdict (errors still
	// fail unless PassOnError).
	FailOn policy.Action
	// PassOnError makes errors exit 0 (--on-error pass). The ERROR line is
	// still printed.
	PassOnError bool
	// OutDir is where the reports are written.
	OutDir string
	// SBOM is the path of an SBOM document (syft JSON, CycloneDX, SPDX) to
	// evaluate instead of an image.
	SBOM string
	// Baseline is what the findings are compared with: "auto", "none"
	// (or empty), an image reference or a digest. The gate analyses a
	// baseline it has not analysed yet first.
	Baseline string
	// Force makes the gate analyse the image again even when it has it.
	Force bool
	// Subscribe subscribes the image's tag to tag updates on the gate
	// (alerts when the tag moves), as Anchore's autoSubscribeTagUpdates
	// did; it needs a token of role admin, else the step says so and goes
	// on.
	Subscribe bool
	// CACert is a PEM file of CA certificates the gate's TLS certificate
	// may chain to, besides the system's.
	CACert string
	// CycloneDX also writes the image's CycloneDX SBOM, as the gate made
	// it, to CycloneDXFile in OutDir (GitLab's `reports: cyclonedx`).
	CycloneDX bool
	// Target is the pull or merge request's target branch, which
	// --baseline auto looks up; nil outside a pull or merge request. The
	// step binaries fill it from their CI's environment.
	Target *Target

	// DockerHost is the Docker daemon for docker:NAME images
	// ($DOCKER_HOST): unix:///path or tcp://host:port. Empty:
	// unix:///var/run/docker.sock.
	DockerHost string
	// ProgressInterval is the longest time between two progress lines.
	ProgressInterval time.Duration
	// HTTPClient, when set, sends every request to the gate; its Timeout
	// should be zero, since uploads may take long (Timeout bounds them).
	HTTPClient *http.Client
	// Version is the step binary's version, written into the reports.
	Version string
}

// DefaultConfig returns the defaults of every step binary.
func DefaultConfig() Config {
	return Config{
		Timeout:          15 * time.Minute,
		FailOn:           policy.ActionStop,
		OutDir:           "buildgate-reports",
		ProgressInterval: 10 * time.Second,
	}
}

// Result is the outcome of one step run, for the adapters to turn into
// their CI's outputs (annotations, job summaries, outputs).
type Result struct {
	// Image is the image (or SBOM path) as the user gave it.
	Image string
	// Digest is the image's digest on the gate, "" when the step failed
	// before the gate answered.
	Digest string
	// Verdict is "go", "warn", "stop" or "error".
	Verdict string
	// ExitCode is what the step exits with: ExitPass, ExitFail or
	// ExitError (ExitPass for an error with PassOnError).
	ExitCode int
	// StopCount and WarnCount count the STOP and WARN findings that count
	// towards the verdict; AllowlistedCount the allowlisted ones;
	// NewStopCount the STOP findings the baseline does not have (all of
	// them without a baseline).
	StopCount        int
	NewStopCount     int
	WarnCount        int
	AllowlistedCount int
	// Vulnerabilities counts every vulnerability match of the image.
	Vulnerabilities int
	// Baseline names the image the findings were compared with, "" when
	// none.
	Baseline string
	// Bundle names the policy bundle, BundleVersion its version.
	Bundle        string
	BundleVersion int
	// Evaluation is the gate's verdict, nil on error.
	Evaluation *policy.Verdict
	// Files are the reports written, in report.Formats() order, then the
	// CycloneDX SBOM when asked for.
	Files []string
	// ReportURL is the markdown report on the gate's API, for machines
	// with a token: <gate>/v1/images/<digest>/report?format=markdown.
	ReportURL string
	// ImageURL is the image's page in the gate's console, for people:
	// <gate>/ui/images/<digest>. The reports link there.
	ImageURL string
	// Err is why the step failed, nil when it has a verdict.
	Err error

	passErr  bool
	failOn   policy.Action
	markdown string
	// problem is an error after a failing verdict: it is shown, the
	// verdict's exit code stays.
	problem string
}

// Outcome is the word the step's line starts with: "PASS", "FAIL" or
// "ERROR".
func (r *Result) Outcome() string {
	switch {
	case r.Err != nil:
		return "ERROR"
	case r.ExitCode == ExitPass:
		return "PASS"
	}
	return "FAIL"
}

// Summary says why in a few words, without the outcome: "policy STOP: 12
// stop findings (bundle Default bundle v1) — see buildgate-reports/buildgate.md".
func (r *Result) Summary() string {
	if r.Err != nil {
		s := r.Err.Error()
		if r.passErr {
			s += " (--on-error pass: not failing the build)"
		}
		return s
	}
	var s string
	switch r.Verdict {
	case VerdictStop:
		s = "policy STOP: " + r.stopWhy()
		if r.ExitCode == ExitPass {
			s += " (--fail-on " + (*failOnValue)(&r.failOn).String() + ": not failing the build)"
		}
	case VerdictWarn:
		s = fmt.Sprintf("policy WARN: %s", plural(r.WarnCount, "warn finding"))
		if r.ExitCode == ExitFail {
			s += " (--fail-on warn)"
		}
	default:
		s = "policy GO"
		if r.Evaluation != nil && r.Evaluation.Reason == policy.ReasonAllowlistedImage {
			s += ": the image is allowlisted"
		}
	}
	if r.Bundle != "" {
		s += fmt.Sprintf(" (bundle %s v%d)", r.Bundle, r.BundleVersion)
	}
	switch {
	case r.problem != "":
		s += " — no reports: " + r.problem
	case r.markdown != "":
		s += " — see " + r.markdown
	}
	return s
}

func (r *Result) stopWhy() string {
	if r.Evaluation != nil && r.Evaluation.Reason == policy.ReasonDenylistedImage {
		return "the image is denylisted"
	}
	s := plural(r.StopCount, "stop finding")
	if r.Baseline != "" {
		s += fmt.Sprintf(", %d new against the baseline %s", r.NewStopCount, r.Baseline)
	}
	return s
}

// Line is the one line the step prints on stderr:
// "buildgate: FAIL: policy STOP: ...".
func (r *Result) Line() string {
	return "buildgate: " + r.Outcome() + ": " + r.Summary()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
