package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	steptest.Cleanup()
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// gatectl runs the CLI in process with the given environment and stdin.
func gatectl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func want(t *testing.T, r result, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r.stdout)
	}
	return v
}

// TestAgainstGate drives a real gate (a `gate serve` subprocess) and an
// in-process registry: add and wait, vulnerabilities, a STOP check (exit
// 1), a policy added and activated, a GO check, registry credentials and
// subscriptions.
func TestAgainstGate(t *testing.T) {
	g := steptest.Shared(t)
	g.RestoreActivePolicy(t)
	reg := steptest.NewRegistry(t)
	vulnerable := reg.Push(t, "team/vulnerable:1", steptest.SharedImage(t, "bullseye-dpkgonly"))
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	clean := reg.Push(t, "team/clean:1", img)
	admin := map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": steptest.AdminToken}
	ci := map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": g.CIToken}

	r := gatectl(t, ci, "", "image", "add", vulnerable, "--wait")
	want(t, r, exitOK, "analyzed", "sha256:", reg.Host+"/team/vulnerable:1")

	r = gatectl(t, ci, "", "--json", "image", "get", vulnerable)
	want(t, r, exitOK)
	got := decode[api.Image](t, r)
	if got.Status != api.StatusAnalyzed {
		t.Fatalf("image get: status %q", got.Status)
	}
	r = gatectl(t, ci, "", "image", "list", "--status", "analyzed")
	want(t, r, exitOK, got.Digest)

	r = gatectl(t, ci, "", "image", "vuln", vulnerable, "os", "--json")
	want(t, r, exitOK)
	vulns := decode[api.VulnerabilityList](t, r)
	if len(vulns.Vulnerabilities) == 0 {
		t.Fatal("image vuln os: no vulnerabilities in bullseye-dpkgonly")
	}
	r = gatectl(t, ci, "", "image", "vuln", got.Digest, "all")
	want(t, r, exitOK, "VULNERABILITY", vulns.Vulnerabilities[0].ID)
	want(t, gatectl(t, ci, "", "image", "vuln", got.Digest, "binary"), exitError, `unknown vulnerability type "binary"`)

	// The default bundle stops the vulnerable image: exit 1.
	r = gatectl(t, ci, "", "evaluate", "check", vulnerable, "--detail")
	want(t, r, exitStop, "STOP", "Default bundle", "vulnerabilities")

	// A policy added and activated: the clean image gets GO.
	dir := t.TempDir()
	bundle, _ := json.Marshal(steptest.PassingBundle("gatectl-pass"))
	file := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(file, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, gatectl(t, ci, "", "policy", "add", file), exitError, "403", "use an admin token")
	r = gatectl(t, admin, "", "policy", "add", file, "--json")
	want(t, r, exitOK)
	p := decode[api.Policy](t, r)
	if p.ID != "gatectl-pass" || p.Active {
		t.Fatalf("policy add: %+v", p)
	}
	want(t, gatectl(t, admin, "", "policy", "activate", p.ID), exitOK, "gatectl-pass", "true")
	r = gatectl(t, admin, "", "policy", "list", "--json")
	want(t, r, exitOK)
	for _, x := range decode[api.PolicyList](t, r).Policies {
		if x.Active != (x.ID == p.ID) {
			t.Errorf("after activate, policy %s active=%v", x.ID, x.Active)
		}
	}
	want(t, gatectl(t, admin, "", "policy", "get", p.ID, "--json"), exitOK, `"bundle"`, "severity_comparison")

	want(t, gatectl(t, ci, "", "image", "add", clean, "--wait"), exitOK, "analyzed")
	want(t, gatectl(t, ci, "", "evaluate", "check", clean), exitOK, "GO", "gatectl-pass")
	r = gatectl(t, ci, "", "evaluate", "check", vulnerable, "--json")
	want(t, r, exitStop)
	if v := decode[api.Verdict](t, r); v.FinalAction != "stop" || v.BundleID != "gatectl-pass" {
		t.Errorf("check --json: %+v", v)
	}

	// Registry credentials: the password comes from stdin and is never printed.
	const password = "gatectl-registry-pw-9d1f"
	host := "registry.gatectl.test"
	want(t, gatectl(t, admin, "", "registry", "add", host, "ci"), exitError, "--password-stdin")
	r = gatectl(t, admin, password+"\n", "registry", "add", host, "ci", "--password-stdin", "--skip-validate")
	want(t, r, exitOK, host, "ci")
	r = gatectl(t, admin, "", "registry", "list", "--json")
	want(t, r, exitOK, host)
	if strings.Contains(r.stdout, password) {
		t.Error("registry list prints the password")
	}
	want(t, gatectl(t, admin, "", "registry", "del", host), exitOK, "deleted "+host)
	r = gatectl(t, admin, "", "registry", "list")
	want(t, r, exitOK)
	if strings.Contains(r.stdout, host) {
		t.Errorf("registry still listed after del:\n%s", r.stdout)
	}

	// Subscriptions: activate adds, deactivate flips.
	want(t, gatectl(t, admin, "", "subscription", "activate", "vuln_update", vulnerable), exitOK, "vuln_update", "true")
	want(t, gatectl(t, admin, "", "subscription", "deactivate", "vuln_update", vulnerable), exitOK, "false")
	r = gatectl(t, ci, "", "subscription", "list", "--json")
	want(t, r, exitOK)
	found := false
	for _, s := range decode[api.SubscriptionList](t, r).Subscriptions {
		if s.Type == "vuln_update" && s.Key == reg.Host+"/team/vulnerable:1" {
			found = !s.Active
		}
	}
	if !found {
		t.Errorf("subscription list lacks the deactivated vuln_update subscription:\n%s", r.stdout)
	}

	want(t, gatectl(t, ci, "", "system", "status"), exitOK, "DB READY", "true", "debian")

	// Errors exit 2 and say what was wrong.
	want(t, gatectl(t, ci, "", "image", "get", reg.Host+"/team/none:1"), exitError, "no image tagged")
	want(t, gatectl(t, map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": "bg_wrong"}, "", "image", "list"), exitError, "401", "invalid token")
	want(t, gatectl(t, map[string]string{"GATE_TOKEN": "x"}, "", "image", "list"), exitError, "GATE_URL")
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "unknown command", args: []string{"image", "push"}, code: exitError, want: `unknown command "image push"`},
		{name: "missing argument", args: []string{"image", "vuln", "x"}, code: exitError, want: "want arguments REF|DIGEST all|os|non-os, got 1"},
		{name: "bad URL", args: []string{"--url", "gate:8080", "image", "list"}, code: exitError, want: `invalid gate URL "gate:8080"`},
		{name: "no token", args: []string{"--url", "http://127.0.0.1:1", "image", "list"}, code: exitError, want: "GATE_TOKEN"},
		{name: "help", args: []string{"--help"}, code: exitOK, want: "subscription activate TYPE KEY"},
		{name: "unknown shell", args: []string{"completion", "tcsh"}, code: exitError, want: `unknown shell "tcsh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, gatectl(t, map[string]string{}, "", tc.args...), tc.code, tc.want)
		})
	}
}

func TestNormalizeTag(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{name: "official", in: "debian", want: "docker.io/library/debian:latest"},
		{name: "hub user", in: "team/app:1", want: "docker.io/team/app:1"},
		{name: "host with port", in: "127.0.0.1:5000/team/app", want: "127.0.0.1:5000/team/app:latest"},
		{name: "host", in: "ghcr.io/o/app:v2", want: "ghcr.io/o/app:v2"},
		{name: "localhost", in: "localhost/app:1", want: "localhost/app:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeTag(tc.in); got != tc.want {
				t.Errorf("normalizeTag(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestCompletionScripts checks each script parses in its shell (.ci/run
// installs zsh and fish; outside CI a missing shell is skipped).
func TestCompletionScripts(t *testing.T) {
	for _, sh := range []struct{ shell, check string }{{"bash", "-n"}, {"zsh", "-n"}, {"fish", "--no-execute"}} {
		t.Run(sh.shell, func(t *testing.T) {
			r := gatectl(t, nil, "", "completion", sh.shell)
			want(t, r, exitOK, "gatectl", "image", "vuln", "activate")
			path, err := exec.LookPath(sh.shell)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is missing: .ci/run installs it", sh.shell)
				}
				t.Skipf("%s is not installed", sh.shell)
			}
			cmd := exec.Command(path, sh.check)
			cmd.Stdin = strings.NewReader(r.stdout)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s\n%s", sh.shell, sh.check, err, out, r.stdout)
			}
		})
	}
}
