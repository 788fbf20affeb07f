package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/buildgate/buildgate/internal/step"
)

// inputs are the action's inputs: the step's configuration and what the
// action does with the result.
type inputs struct {
	cfg step.Config
	// sarifFile and junitFile, when set, receive a copy of the report.
	sarifFile, junitFile string
	// category is the SARIF category (runAutomationDetails.id) and tells
	// this image's pull-request comment from other images' ones.
	category string
	// summary appends the report to the job summary; comment comments on
	// pull requests with githubToken.
	summary, comment bool
	githubToken      string
	// pr is the pull request of a pull_request event, zero on other
	// events.
	pr pullRequestInfo
}

// pullRequestInfo is the pull request an event is about.
type pullRequestInfo struct {
	Number  int
	HeadSHA string
}

// stepInputs maps the action's inputs to the step's flags.
var stepInputs = []struct{ input, flag string }{
	{"gate-url", "gate"},
	{"gate-token", "token"},
	{"image", "image"},
	{"dockerfile", "dockerfile"},
	{"policy", "policy"},
	{"vex", "vex"},
	{"platform", "platform"},
	{"registry-auth", "registry-auth"},
	{"tag", "tag"},
	{"fail-on", "fail-on"},
	{"baseline", "baseline"},
	{"on-error", "on-error"},
	{"timeout", "timeout"},
	{"out-dir", "out"},
}

// readInputs reads the inputs, then GATE_* variables for the step's
// settings no input gave. On an error it returns what it read so far
// (the tokens, to redact them).
func readInputs(gh *githubactions.Action, getenv func(string) string) (inputs, error) {
	in := inputs{cfg: step.DefaultConfig(), summary: true, comment: true}
	in.githubToken = gh.GetInput("github-token")
	fs := flag.NewFlagSet("gate-action", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	in.cfg.RegisterFlags(fs)
	for _, m := range stepInputs {
		v := gh.GetInput(m.input)
		if v == "" {
			continue
		}
		if m.input == "timeout" {
			v = minutes(v)
		}
		if err := fs.Set(m.flag, v); err != nil {
			if m.flag == "token" {
				return in, fmt.Errorf("input %s: invalid value", m.input)
			}
			return in, fmt.Errorf("input %s: invalid value %q: %v", m.input, v, err)
		}
	}
	for _, line := range strings.Split(gh.GetInput("annotations"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fs.Set("annotation", line); err != nil {
			return in, fmt.Errorf("input annotations: %v", err)
		}
	}
	// GATE_* variables fill what no input gave.
	if err := in.cfg.ParseFlags(fs, nil, getenv); err != nil {
		return in, err
	}
	// The workflow's token pulls from ghcr.io unless registry-auth says
	// otherwise (the package must grant the workflow read access).
	if in.githubToken != "" {
		in.cfg.RegistryAuthDefaults = map[string]step.RegistryAuth{
			"ghcr.io": {Username: cmp.Or(getenv("GITHUB_ACTOR"), "x-access-token"), Password: step.Token(in.githubToken)},
		}
	}

	var err error
	if in.summary, err = boolInput(gh, "summary", true); err != nil {
		return in, err
	}
	if in.comment, err = boolInput(gh, "comment", true); err != nil {
		return in, err
	}
	in.sarifFile = gh.GetInput("sarif-file")
	in.junitFile = gh.GetInput("junit-file")
	in.category = gh.GetInput("category")
	if in.category == "" {
		in.category = "buildgate/" + step.ImageKey(in.cfg)
	}
	in.pr, err = pullRequest(getenv)
	if err != nil {
		return in, err
	}
	in.cfg.Target = target(getenv, in.pr)
	for k, v := range contextAnnotations(getenv, in.pr) {
		if in.cfg.Annotations == nil {
			in.cfg.Annotations = map[string]string{}
		}
		if _, given := in.cfg.Annotations[k]; !given {
			in.cfg.Annotations[k] = v
		}
	}
	return in, nil
}

// boolInput reads a boolean input the way @actions/core does: true, True,
// TRUE, false, False or FALSE; empty is the default.
func boolInput(gh *githubactions.Action, name string, def bool) (bool, error) {
	switch v := gh.GetInput(name); v {
	case "":
		return def, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	default:
		return def, fmt.Errorf("input %s: invalid value %q: want true or false", name, v)
	}
}

// minutes reads a bare number as minutes ("10" is "10m"), anything else
// as a Go duration.
func minutes(v string) string {
	if _, err := strconv.Atoi(v); err == nil {
		return v + "m"
	}
	return v
}

// pullRequest reads the pull request of pull_request and
// pull_request_target events from the event payload; zero on other
// events.
func pullRequest(getenv func(string) string) (pullRequestInfo, error) {
	switch getenv("GITHUB_EVENT_NAME") {
	case "pull_request", "pull_request_target":
	default:
		return pullRequestInfo{}, nil
	}
	p := getenv("GITHUB_EVENT_PATH")
	if p == "" {
		return pullRequestInfo{}, errors.New("a pull_request event without $GITHUB_EVENT_PATH")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return pullRequestInfo{}, fmt.Errorf("reading the event payload: %w", err)
	}
	var ev struct {
		Number      int `json:"number"`
		PullRequest struct {
			Number int `json:"number"`
			Head   struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return pullRequestInfo{}, fmt.Errorf("reading the event payload %s: %w", p, err)
	}
	pr := pullRequestInfo{Number: cmp.Or(ev.PullRequest.Number, ev.Number), HeadSHA: ev.PullRequest.Head.SHA}
	if pr.Number <= 0 {
		return pullRequestInfo{}, errors.New("the pull_request event payload has no pull request number")
	}
	return pr, nil
}

// target is the pull request's base branch for --baseline auto: the
// images stored with the repository and the branch's ref (as a push to
// it records them); nil outside a pull request.
func target(getenv func(string) string, pr pullRequestInfo) *step.Target {
	base, repo := getenv("GITHUB_BASE_REF"), getenv("GITHUB_REPOSITORY")
	if pr.Number <= 0 || base == "" || repo == "" {
		return nil
	}
	return &step.Target{Branch: base, Annotations: map[string]string{"github.repository": repo, "github.ref": "refs/heads/" + base}}
}

// contextAnnotations are the GitHub context stored with the image.
func contextAnnotations(getenv func(string) string, pr pullRequestInfo) map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	repo := getenv("GITHUB_REPOSITORY")
	set("github.repository", repo)
	set("github.sha", getenv("GITHUB_SHA"))
	set("github.ref", getenv("GITHUB_REF"))
	set("github.workflow", getenv("GITHUB_WORKFLOW"))
	if server, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_RUN_ID"); server != "" && repo != "" && id != "" {
		set("github.run_url", strings.TrimRight(server, "/")+"/"+repo+"/actions/runs/"+id)
	}
	if pr.Number > 0 {
		set("github.pull_request", strconv.Itoa(pr.Number))
		set("github.head_sha", pr.HeadSHA)
	}
	return m
}
