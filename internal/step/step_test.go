package step_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
)

func parse(t *testing.T, env map[string]string, args ...string) (step.Config, error) {
	t.Helper()
	cfg := step.DefaultConfig()
	fs := flag.NewFlagSet("step", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	err := cfg.ParseFlags(fs, args, func(k string) string { return env[k] })
	return cfg, err
}

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(*testing.T, step.Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c step.Config) {
			if c.Timeout != 15*time.Minute || c.FailOn != policy.ActionStop || c.PassOnError || c.OutDir != "buildgate-reports" {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "environment", env: map[string]string{
			"GATE_URL": "https://gate.example", "GATE_TOKEN": "tok", "GATE_IMAGE": "app:1", "GATE_DOCKERFILE": "Dockerfile",
			"GATE_POLICY": "p1", "GATE_TAG": "r/app:1", "GATE_TIMEOUT": "2m", "GATE_FAIL_ON": "WARN", "GATE_ON_ERROR": "pass",
			"GATE_OUT": "out", "DOCKER_HOST": "unix:///d.sock",
		}, check: func(t *testing.T, c step.Config) {
			want := step.Config{GateURL: "https://gate.example", Token: "tok", Image: "app:1", Dockerfile: "Dockerfile", Policy: "p1",
				Tag: "r/app:1", Timeout: 2 * time.Minute, FailOn: policy.ActionWarn, PassOnError: true, OutDir: "out", DockerHost: "unix:///d.sock"}
			c.ProgressInterval = 0
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got %+v\nwant %+v", c, want)
			}
		}},
		{name: "flags win over the environment", env: map[string]string{"GATE_URL": "https://env.example", "GATE_FAIL_ON": "warn"},
			args: []string{"--gate", "https://flag.example", "--fail-on", "stop", "--annotation", "a=1", "--annotation", "b=x=y"},
			check: func(t *testing.T, c step.Config) {
				if c.GateURL != "https://flag.example" || c.FailOn != policy.ActionStop {
					t.Errorf("got %s %s", c.GateURL, c.FailOn)
				}
				if !reflect.DeepEqual(c.Annotations, map[string]string{"a": "1", "b": "x=y"}) {
					t.Errorf("annotations %v", c.Annotations)
				}
			}},
		{name: "sbom from the environment", env: map[string]string{"GATE_SBOM": "sbom.json"}, check: func(t *testing.T, c step.Config) {
			if c.SBOM != "sbom.json" {
				t.Errorf("SBOM %q", c.SBOM)
			}
		}},
		{name: "fail-on none from the environment", env: map[string]string{"GATE_FAIL_ON": "None"}, check: func(t *testing.T, c step.Config) {
			if c.FailOn != report.FailOnNone {
				t.Errorf("FailOn %v, want report.FailOnNone", c.FailOn)
			}
		}},
		{name: "baseline and fail-on new from the environment", env: map[string]string{"GATE_BASELINE": "auto", "GATE_FAIL_ON": "NEW"}, check: func(t *testing.T, c step.Config) {
			if c.Baseline != "auto" || c.FailOn != report.FailOnNew {
				t.Errorf("baseline %q, FailOn %v", c.Baseline, c.FailOn)
			}
		}},
		{name: "bad fail-on", args: []string{"--fail-on", "go"}, wantErr: "want stop, warn, new or none"},
		{name: "bad fail-on in the environment", env: map[string]string{"GATE_FAIL_ON": "never"}, wantErr: "$GATE_FAIL_ON: invalid value \"never\": want stop, warn, new or none"},
		{name: "bad on-error", args: []string{"--on-error", "maybe"}, wantErr: "want fail or pass"},
		{name: "bad annotation", args: []string{"--annotation", "novalue"}, wantErr: "want key=value"},
		{name: "bad timeout in the environment", env: map[string]string{"GATE_TIMEOUT": "soon"}, wantErr: "$GATE_TIMEOUT: invalid value \"soon\""},
		{name: "unknown flag", args: []string{"--gate-url", "x"}, wantErr: "flag provided but not defined"},
		{name: "positional argument", args: []string{"app:1"}, wantErr: "unexpected argument \"app:1\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.env, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func() step.Config {
		c := step.DefaultConfig()
		c.GateURL, c.Token, c.Image = "http://gate:8080", "tok", "registry.example/app:1"
		return c
	}
	tests := []struct {
		name    string
		modify  func(*step.Config)
		wantErr string
	}{
		{"valid", func(*step.Config) {}, ""},
		{"valid archive", func(c *step.Config) { c.Image = "docker-archive:img.tar" }, ""},
		{"valid SBOM", func(c *step.Config) { c.Image, c.SBOM = "", "sbom.json" }, ""},
		{"no gate", func(c *step.Config) { c.GateURL = "" }, "--gate (or $GATE_URL) is required"},
		{"gate not http", func(c *step.Config) { c.GateURL = "gate:8080" }, "want an http(s) URL"},
		{"gate URL with a password is not echoed", func(c *step.Config) { c.GateURL = "ftp://u:secretpw@gate" }, "ftp://gate"},
		{"no token", func(c *step.Config) { c.Token = "" }, "no token"},
		{"no image", func(c *step.Config) { c.Image = "" }, "--image (or $GATE_IMAGE) or --sbom is required"},
		{"image and SBOM", func(c *step.Config) { c.SBOM = "x" }, "exclusive"},
		{"archive without path", func(c *step.Config) { c.Image = "oci-dir:" }, "want oci-dir:PATH"},
		{"daemon without name", func(c *step.Config) { c.Image = "docker:" }, "want docker:NAME"},
		{"reference with a space", func(c *step.Config) { c.Image = "app 1" }, "no spaces"},
		{"zero timeout", func(c *step.Config) { c.Timeout = 0 }, "--timeout"},
		{"fail on go", func(c *step.Config) { c.FailOn = policy.ActionGo }, "--fail-on go: want stop, warn, new or none"},
		{"fail on none", func(c *step.Config) { c.FailOn = report.FailOnNone }, ""},
		{"fail on new", func(c *step.Config) { c.FailOn, c.Baseline = report.FailOnNew, "auto" }, ""},
		{"baseline digest", func(c *step.Config) { c.Baseline = "sha256:" + strings.Repeat("0a", 32) }, ""},
		{"baseline reference", func(c *step.Config) { c.Baseline = "registry.example/base:11" }, ""},
		{"baseline short digest", func(c *step.Config) { c.Baseline = "sha256:abc" }, `--baseline "sha256:abc": a digest is sha256: and 64 lower-case hex digits`},
		{"baseline URL", func(c *step.Config) { c.Baseline = "https://registry.example/base" }, "want auto, none, an image reference"},
		{"no out", func(c *step.Config) { c.OutDir = "" }, "--out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secretpw"):
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestBadConfigFailsEvenWithOnErrorPass(t *testing.T) {
	cfg := step.DefaultConfig()
	cfg.PassOnError = true
	var out, errw bytes.Buffer
	if code := step.Run(context.Background(), cfg, &out, &errw); code != step.ExitError {
		t.Errorf("exit %d, want %d", code, step.ExitError)
	}
	if want := "buildgate: ERROR: bad flags: --gate (or $GATE_URL) is required\n"; errw.String() != want {
		t.Errorf("stderr = %q, want %q", errw.String(), want)
	}
}

func TestTokenNeverPrints(t *testing.T) {
	const secret = "bg_secret_0123456789"
	cfg := step.DefaultConfig()
	cfg.Token = secret
	for _, s := range []string{
		fmt.Sprint(cfg.Token), fmt.Sprintf("%s %v %q %x %d %+v %#v", cfg.Token, cfg.Token, cfg.Token, cfg.Token, cfg.Token, cfg, cfg),
		fmt.Sprintf("%v", &cfg),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("printing the config shows the token: %s", s)
		}
	}
	var buf bytes.Buffer
	fmt.Fprintf(step.Redact(&buf, cfg.Token), "calling with %s\n", secret)
	if buf.String() != "calling with [redacted]\n" {
		t.Errorf("Redact wrote %q", buf.String())
	}
}

func TestMatchesConvertsEveryField(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	epss, pct := 0.42, 0.97
	v := api.Vulnerability{
		ID: "CVE-2024-1", Severity: "High", Description: "bad", PackageName: "openssl", PackageVersion: "1.1.1n-0",
		PackageType: "deb", PackagePath: "/var/lib/dpkg/status", FixState: "fixed", FixVersions: []string{"1.1.1n-1"},
		URLs: []string{"https://security-tracker.debian.org/tracker/CVE-2024-1"}, RelatedIDs: []string{"GHSA-x"},
		CVSS: []api.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N", Source: "nvd", Type: "Primary", BaseScore: 9.8, ExploitabilityScore: 3.9, ImpactScore: 5.9}},
		KEV:  true, EPSS: &epss, EPSSPercentile: &pct, DataSource: "https://nvd", Namespace: "debian:distro:debian:11",
		PublishedAt: &ts, FixedAt: &ts,
	}
	want := buildgate.Match{
		VulnerabilityID: "CVE-2024-1", Severity: buildgate.SeverityHigh, Description: "bad", Namespace: "debian:distro:debian:11",
		DataSource: "https://nvd", URLs: v.URLs, RelatedIDs: v.RelatedIDs, PackageName: "openssl", PackageVersion: "1.1.1n-0",
		PackageType: "deb", PackagePath: "/var/lib/dpkg/status", FixState: buildgate.FixStateFixed, FixVersions: v.FixVersions,
		FixedAt: &ts, PublishedAt: &ts,
		CVSS: []buildgate.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N", Source: "nvd", Type: "Primary", BaseScore: 9.8, ExploitabilityScore: 3.9, ImpactScore: 5.9}},
		KEV:  true, EPSS: &epss, EPSSPercentile: &pct,
	}
	got := step.Matches([]api.Vulnerability{v})
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Matches =\n%+v\nwant\n%+v", got, want)
	}
	// Every field of api.Vulnerability is set above; a new one must be
	// converted (and set here) too.
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("the test leaves api.Vulnerability.%s unset", rv.Type().Field(i).Name)
		}
	}
}

// fakeGate answers like a gate: the image is queued, analysing for
// analysis, then analysed with a GO verdict (STOP with stop).
type fakeGate struct {
	analysis time.Duration
	// submit429 makes the first submit answer 429 with Retry-After: 1,
	// poll503 the first poll 503 with Retry-After: 1.
	submit429, poll503 bool
	stop               bool
	// vulns adds that many STOP vulnerability findings to a STOP verdict.
	vulns int

	mu        sync.Mutex
	submitted time.Time
	polls     []time.Time
	submits   []time.Time
	auth      []string
}

func (f *fakeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	const digest = "sha256:abc"
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/images":
		f.submits = append(f.submits, time.Now())
		if f.submit429 && len(f.submits) == 1 {
			w.Header().Set("Retry-After", "1")
			reply(http.StatusTooManyRequests, api.ErrorResponse{Error: api.ErrorBody{Code: "busy", Message: "slow down"}})
			return
		}
		f.submitted = time.Now()
		reply(http.StatusAccepted, api.Image{Digest: digest, Status: api.StatusQueued})
	case r.URL.Path == "/v1/images/"+digest:
		f.polls = append(f.polls, time.Now())
		if f.poll503 && len(f.polls) == 1 {
			w.Header().Set("Retry-After", "1")
			reply(http.StatusServiceUnavailable, api.ErrorResponse{Error: api.ErrorBody{Code: "internal", Message: "restarting"}})
			return
		}
		status := api.StatusAnalyzing
		if time.Since(f.submitted) >= f.analysis {
			status = api.StatusAnalyzed
		}
		reply(http.StatusOK, api.Image{Digest: digest, Status: status})
	case r.URL.Path == "/v1/images/"+digest+"/check":
		ev := policy.Evaluation{
			FinalAction: policy.ActionGo, PolicyFinalAction: policy.ActionGo, Reason: policy.ReasonPolicyEvaluation,
			BundleID: "b1", BundleName: "fake bundle", ImageDigest: digest, Tag: r.URL.Query().Get("tag"), Findings: []policy.Finding{},
		}
		if f.stop {
			ev.FinalAction, ev.PolicyFinalAction = policy.ActionStop, policy.ActionStop
			ev.Findings = []policy.Finding{{TriggerID: "t1", Gate: "dockerfile", Trigger: "exposed_ports", Action: policy.ActionStop, Message: "port 22 exposed"}}
			for i := range f.vulns {
				id := fmt.Sprintf("CVE-2024-%04d", i)
				ev.Findings = append(ev.Findings, policy.Finding{TriggerID: id + "+openssl", Gate: "vulnerabilities", Trigger: "package", Action: policy.ActionStop,
					Vulnerability: &buildgate.Match{VulnerabilityID: id, Severity: buildgate.SeverityHigh, PackageName: "openssl", PackageVersion: "1.1.1n-0", FixState: buildgate.FixStateFixed, FixVersions: []string{"1.1.1w-0"}}})
			}
		}
		reply(http.StatusOK, policy.Verdict{Evaluation: ev, BundleVersion: 3})
	case r.URL.Path == "/v1/images/"+digest+"/vulnerabilities":
		reply(http.StatusOK, api.VulnerabilityList{Digest: digest, Vulnerabilities: []api.Vulnerability{}})
	case r.URL.Path == "/v1/images/"+digest+"/metadata":
		reply(http.StatusOK, api.Metadata{Digest: digest, Distro: "debian", DistroVersion: "12", OS: "linux", Arch: "amd64"})
	default:
		reply(http.StatusNotFound, api.ErrorResponse{Error: api.ErrorBody{Code: "not_found", Message: r.URL.Path}})
	}
}

func TestWaitPrintsProgressAndHonoursRetryAfter(t *testing.T) {
	f := &fakeGate{analysis: 2500 * time.Millisecond, submit429: true, poll503: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image = srv.URL, "tok", "registry.example/app:1"
	cfg.OutDir = filepath.Join(t.TempDir(), "out")
	cfg.ProgressInterval = 400 * time.Millisecond
	var out bytes.Buffer
	r := step.Execute(context.Background(), cfg, &out)
	t.Logf("%s", out.String())
	if r.Err != nil || r.ExitCode != step.ExitPass || r.Verdict != step.VerdictGo {
		t.Fatalf("result %+v", r)
	}
	if want := "buildgate: PASS: policy GO (bundle fake bundle v3) — see " + filepath.Join(cfg.OutDir, "buildgate.md"); r.Line() != want {
		t.Errorf("line %q, want %q", r.Line(), want)
	}
	if r.ReportURL != srv.URL+"/v1/images/sha256:abc/report?format=markdown" || len(r.Files) != 5 || r.Digest != "sha256:abc" {
		t.Errorf("result %+v", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.submits) != 2 || f.submits[1].Sub(f.submits[0]) < time.Second {
		t.Errorf("submit retried %d times, %v apart; want once, after Retry-After: 1", len(f.submits)-1, f.submits)
	}
	if len(f.polls) < 2 || f.polls[1].Sub(f.polls[0]) < time.Second {
		t.Errorf("the poll after a 503 with Retry-After: 1 came too soon: %v", f.polls)
	}
	for _, a := range f.auth {
		if a != "Bearer tok" {
			t.Errorf("Authorization %q", a)
		}
	}
	// A progress line at least every 400ms during 2.5s of analysis.
	var times []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "buildgate: analyzing sha256:abc (") || strings.HasPrefix(l, "buildgate: queued sha256:abc (") {
			times = append(times, l)
		}
	}
	if len(times) < 4 {
		t.Errorf("%d progress lines in 2.5s with a 400ms interval, want at least 4", len(times))
	}
	if !strings.Contains(out.String(), "; the gate answered 503)") {
		t.Errorf("no progress line mentions the 503")
	}
}

func TestEarlierReportsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "buildgate.junit.xml")
	os.WriteFile(stale, []byte("<testsuites/>"), 0o644)
	other := filepath.Join(dir, "keep.txt")
	os.WriteFile(other, []byte("x"), 0o644)
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image, cfg.OutDir = "http://127.0.0.1:1", "tok", "app:1", dir
	r := step.Execute(context.Background(), cfg, io.Discard)
	if r.ExitCode != step.ExitError {
		t.Fatalf("exit %d", r.ExitCode)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a report of an earlier run is still there after an error")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("a file that is not a report was removed")
	}
}

func TestReportsThatCannotBeWritten(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	tests := []struct {
		name     string
		stop     bool
		passErr  bool
		failOn   policy.Action
		wantCode int
		wantLine string
	}{
		{"GO is an error", false, false, policy.ActionStop, step.ExitError, "buildgate: ERROR: writing the reports: creating the report directory: "},
		{"GO with --on-error pass", false, true, policy.ActionStop, step.ExitPass, "buildgate: ERROR: writing the reports: creating the report directory: "},
		{"STOP stays a failure with --on-error pass", true, true, policy.ActionStop, step.ExitFail,
			"buildgate: FAIL: policy STOP: 1 stop finding (bundle fake bundle v3) — no reports: writing the reports: creating the report directory: "},
		// --fail-on none keeps the build green on a verdict, not on an error.
		{"STOP with --fail-on none is an error", true, false, report.FailOnNone, step.ExitError, "buildgate: ERROR: writing the reports: creating the report directory: "},
		{"STOP with --fail-on none and --on-error pass", true, true, report.FailOnNone, step.ExitPass,
			"buildgate: ERROR: writing the reports: creating the report directory: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeGate{stop: tt.stop})
			defer srv.Close()
			cfg := step.DefaultConfig()
			cfg.GateURL, cfg.Token, cfg.Image, cfg.OutDir, cfg.PassOnError, cfg.FailOn = srv.URL, "tok", "app:1", notDir, tt.passErr, tt.failOn
			r := step.Execute(context.Background(), cfg, io.Discard)
			if r.ExitCode != tt.wantCode || !strings.HasPrefix(r.Line(), tt.wantLine) {
				t.Errorf("exit %d, line %q; want %d and %q", r.ExitCode, r.Line(), tt.wantCode, tt.wantLine)
			}
			if len(r.Files) != 0 {
				t.Errorf("files %v", r.Files)
			}
		})
	}
}

func TestFailOnNoneReportsWithoutFailing(t *testing.T) {
	srv := httptest.NewServer(&fakeGate{stop: true})
	defer srv.Close()
	for _, tt := range []struct {
		failOn   policy.Action
		wantCode int
		wantLine string
	}{
		{policy.ActionStop, step.ExitFail, "buildgate: FAIL: policy STOP: 1 stop finding (bundle fake bundle v3) — see "},
		{report.FailOnNone, step.ExitPass, "buildgate: PASS: policy STOP: 1 stop finding (--fail-on none: not failing the build) (bundle fake bundle v3) — see "},
	} {
		t.Run(tt.failOn.String(), func(t *testing.T) {
			cfg := step.DefaultConfig()
			cfg.GateURL, cfg.Token, cfg.Image, cfg.FailOn = srv.URL, "tok", "app:1", tt.failOn
			cfg.OutDir = filepath.Join(t.TempDir(), "out")
			r := step.Execute(context.Background(), cfg, io.Discard)
			if r.ExitCode != tt.wantCode || r.Verdict != step.VerdictStop || r.Line() != tt.wantLine+filepath.Join(cfg.OutDir, "buildgate.md") {
				t.Errorf("exit %d, verdict %s, line %q; want %d, stop and %q", r.ExitCode, r.Verdict, r.Line(), tt.wantCode, tt.wantLine)
			}
			// The reports say STOP whatever --fail-on is.
			if len(r.Files) != 5 {
				t.Fatalf("files %v", r.Files)
			}
			md, err := os.ReadFile(filepath.Join(cfg.OutDir, "buildgate.md"))
			if err != nil || !strings.Contains(string(md), "## buildgate: ") || !strings.Contains(string(md), "STOP") {
				t.Errorf("markdown (%v):\n%s", err, md)
			}
		})
	}
}

func TestFindingsTableInTheLog(t *testing.T) {
	srv := httptest.NewServer(&fakeGate{stop: true, vulns: 60})
	defer srv.Close()
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image = srv.URL, "tok", "app:1"
	cfg.OutDir = filepath.Join(t.TempDir(), "out")
	var out bytes.Buffer
	r := step.Execute(context.Background(), cfg, &out)
	t.Logf("%s", out.String())
	if r.ExitCode != step.ExitFail || r.StopCount != 61 {
		t.Fatalf("exit %d, %d stop findings; want 1 and 61", r.ExitCode, r.StopCount)
	}
	lines := strings.Split(out.String(), "\n")
	head := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "  SEVERITY  VULNERABILITY  ") {
			head = i
			break
		}
	}
	if head < 1 || !strings.HasPrefix(lines[head-1], "buildgate: verdict STOP (61 stop, 0 warn findings)") {
		t.Fatalf("no table header after the verdict line")
	}
	// The dockerfile finding first, then 49 of the 60 vulnerabilities.
	rows := lines[head+1 : head+51]
	if !strings.Contains(rows[0], "dockerfile/exposed_ports") || !strings.Contains(rows[1], "CVE-2024-0000") || !strings.Contains(rows[49], "CVE-2024-0048") {
		t.Errorf("rows:\n%s", strings.Join(rows, "\n"))
	}
	for _, row := range rows[1:] {
		if f := strings.Fields(row); len(f) != 6 || f[0] != "High" || f[2] != "openssl" || f[3] != "1.1.1n-0" || f[4] != "1.1.1w-0" || f[5] != "STOP" {
			t.Errorf("row %q", row)
		}
	}
	more := "buildgate: … and 11 more (see " + filepath.Join(cfg.OutDir, "buildgate.json") + ", " + filepath.Join(cfg.OutDir, "buildgate.junit.xml") + ")"
	if lines[head+51] != more {
		t.Errorf("line after the table %q, want %q", lines[head+51], more)
	}
}

func TestReportsLinkTheConsole(t *testing.T) {
	srv := httptest.NewServer(&fakeGate{stop: true, vulns: 60})
	defer srv.Close()
	cfg := step.DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image = srv.URL+"/", "tok", "app:1"
	cfg.OutDir = filepath.Join(t.TempDir(), "out")
	r := step.Execute(context.Background(), cfg, io.Discard)
	page := srv.URL + "/ui/images/sha256:abc"
	if r.ImageURL != page || len(r.Files) != 5 {
		t.Fatalf("ImageURL %q, files %v; want %q", r.ImageURL, r.Files, page)
	}
	wants := map[string][]string{
		"buildgate.md":        {"[View the image on the gate](" + page + ")", "see [the gate](" + page + ")"},
		"buildgate.junit.xml": {"details: " + page},
		"buildgate.sarif":     {`"gateUrl": "` + page + `"`},
		"buildgate.json":      {`"gate_url": "` + page + `"`},
	}
	for _, f := range r.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(srv.URL+"/v1/")) {
			t.Errorf("%s links the token-only API", f)
		}
		for _, want := range wants[filepath.Base(f)] {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
	}
}
