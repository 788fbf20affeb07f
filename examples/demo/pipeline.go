package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
)

// acceptedID is the bundle the second build is gated with: the active
// bundle plus an allowlist of the first build's STOP findings.
const acceptedID = "demo-accepted"

// pipeline gates the image as the main job of a Jenkins pipeline would:
// gate-jenkins with a CI token and Jenkins' environment, which fails on
// the active bundle's STOP; then, once the team has accepted those
// findings in an allowlist, passes.
func pipeline(ctx context.Context, c *client.Client, jenkins, base, ref, workspace string) error {
	var tok api.CreatedToken
	if err := c.Do(ctx, http.MethodPost, "/v1/tokens", api.CreateTokenRequest{Name: "jenkins", Role: "ci"}, &tok); err != nil {
		return fmt.Errorf("creating a CI token: %w", err)
	}
	env := append(os.Environ(), "GATE_URL="+base, "GATE_TOKEN="+tok.Secret, "WORKSPACE="+workspace,
		"JOB_NAME=demo/main", "BUILD_URL=http://jenkins.example/job/demo/job/main/1/")

	step("Jenkins build #1: gate-jenkins --image %s", ref)
	code, err := gateJenkins(jenkins, append(env, "BUILD_NUMBER=1"), "--image", ref)
	if err != nil {
		return err
	}
	reports := filepath.Join(workspace, "buildgate-reports")
	step("gate-jenkins exited %d; the reports it wrote in %s:", code, reports)
	if err := listReports(reports); err != nil {
		return err
	}
	if code != report.ExitFail {
		return fmt.Errorf("build #1 exited %d, want %d (the policy's STOP)", code, report.ExitFail)
	}

	summary, err := readSummary(filepath.Join(reports, report.FileName(report.FormatJSON)))
	if err != nil {
		return err
	}
	n, err := acceptStops(ctx, c, summary.Evaluation)
	if err != nil {
		return err
	}
	step("the team accepts the %d STOP findings: bundle %q is the active one plus an allowlist of them", n, acceptedID)

	step("Jenkins build #2: gate-jenkins --image %s --policy %s", ref, acceptedID)
	code, err = gateJenkins(jenkins, append(env, "BUILD_NUMBER=2"), "--image", ref, "--policy", acceptedID)
	if err != nil {
		return err
	}
	step("gate-jenkins exited %d; the reports it wrote in %s:", code, reports)
	if err := listReports(reports); err != nil {
		return err
	}
	if code != report.ExitPass {
		return fmt.Errorf("build #2 exited %d, want %d", code, report.ExitPass)
	}
	step("console page of the image: %s", report.ImageURL(base, summary.Image.Digest))
	return nil
}

// gateJenkins runs the step binary and returns its exit code; an error
// is a binary that could not run.
func gateJenkins(bin string, env []string, args ...string) (int, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout // one stream, in order
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	case err != nil:
		return 0, fmt.Errorf("running %s: %w", bin, err)
	}
	return 0, nil
}

func listReports(dir string) error {
	for _, f := range report.Formats() {
		p := filepath.Join(dir, report.FileName(f))
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("report %s: %w", f, err)
		}
		fmt.Printf("    %-34s %7d bytes\n", report.FileName(f), fi.Size())
	}
	return nil
}

func readSummary(path string) (*report.Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil || s.Evaluation == nil {
		return nil, fmt.Errorf("reading %s: not a buildgate JSON summary (%v)", path, err)
	}
	return &s, nil
}

// acceptStops stores the active bundle as acceptedID with an allowlist
// item for each STOP finding of ev that no item waives yet, on every
// mapping, and returns how many items it added.
func acceptStops(ctx context.Context, c *client.Client, ev *policy.Evaluation) (int, error) {
	var list api.PolicyList
	if err := c.Do(ctx, http.MethodGet, "/v1/policies", nil, &list); err != nil {
		return 0, err
	}
	var active *api.Policy
	for i := range list.Policies {
		if list.Policies[i].Active {
			active = &list.Policies[i]
		}
	}
	if active == nil {
		return 0, errors.New("the gate has no active policy bundle")
	}
	var full api.Policy
	if err := c.Do(ctx, http.MethodGet, "/v1/policies/"+active.ID, nil, &full); err != nil {
		return 0, err
	}
	var bundle map[string]any
	if err := json.Unmarshal(full.Bundle, &bundle); err != nil {
		return 0, fmt.Errorf("reading bundle %s: %w", active.ID, err)
	}
	var items []any
	for _, f := range ev.Findings {
		if f.Action != policy.ActionStop || f.Allowlisted != nil {
			continue
		}
		items = append(items, map[string]any{
			"id": fmt.Sprintf("demo-%d", len(items)+1), "gate": f.Gate, "trigger_id": f.TriggerID,
			"reason": "risk accepted for the demo",
		})
	}
	if len(items) == 0 {
		return 0, errors.New("build #1 has no STOP finding to allowlist")
	}
	bundle["id"], bundle["name"] = acceptedID, "demo: "+active.Name+" with accepted findings"
	whitelists, _ := bundle["whitelists"].([]any)
	bundle["whitelists"] = append(whitelists, map[string]any{
		"id": acceptedID, "name": "accepted in the demo", "version": "1_0", "items": items,
	})
	mappings, _ := bundle["mappings"].([]any)
	for _, m := range mappings {
		if m, ok := m.(map[string]any); ok {
			ids, _ := m["whitelist_ids"].([]any)
			m["whitelist_ids"] = append(ids, acceptedID)
		}
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/policies", bundle, nil); err != nil {
		return 0, fmt.Errorf("storing bundle %s: %w", acceptedID, err)
	}
	return len(items), nil
}
