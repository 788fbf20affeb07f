package step_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	steptest.Cleanup()
	os.Exit(code)
}

// stepRun is what one run of the step left behind.
type stepRun struct {
	code           int
	stdout, stderr string
	out            string
	cfg            step.Config
}

// runStep parses args and env like a step binary, runs the step with its
// reports in a temporary directory, and checks what every run must do:
// exactly one line on stderr, and no token anywhere in the output or the
// reports.
func runStep(t *testing.T, env map[string]string, args ...string) stepRun {
	t.Helper()
	return runTarget(t, env, nil, args...)
}

// runTarget is runStep in a pull request into target (step.Config.Target).
func runTarget(t *testing.T, env map[string]string, target *step.Target, args ...string) stepRun {
	t.Helper()
	cfg := step.DefaultConfig()
	cfg.Target = target
	fs := flag.NewFlagSet("step", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	out := filepath.Join(t.TempDir(), "reports")
	args = append([]string{"--out", out}, args...)
	if err := cfg.ParseFlags(fs, args, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	cfg.ProgressInterval = 2 * time.Second
	var so, se bytes.Buffer
	code := step.Run(context.Background(), cfg, &so, &se)
	r := stepRun{code: code, stdout: so.String(), stderr: se.String(), out: out, cfg: cfg}
	t.Logf("exit %d\nstdout:\n%sstderr:\n%s", code, r.stdout, r.stderr)
	if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.HasPrefix(r.stderr, "buildgate: ") {
		t.Errorf("stderr has %d lines, want exactly one buildgate: line:\n%s", n, r.stderr)
	}
	checkNoToken(t, string(cfg.Token), r)
	checkNoToken(t, steptest.AdminToken, r)
	return r
}

func checkNoToken(t *testing.T, token string, r stepRun) {
	t.Helper()
	if token == "" {
		return
	}
	if strings.Contains(r.stdout, token) || strings.Contains(r.stderr, token) {
		t.Errorf("the token appears in the step's output")
	}
	filepath.Walk(r.out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(token)) {
			t.Errorf("the token appears in %s", p)
		}
		return nil
	})
}

// checkReports checks that every report exists and agrees with the
// verdict and exit code: SARIF has "error" results exactly when the
// verdict is STOP, the step fails on STOP unless --fail-on none, and JUnit
// is never empty.
func checkReports(t *testing.T, r stepRun) {
	t.Helper()
	for _, f := range report.Formats() {
		p := filepath.Join(r.out, report.FileName(f))
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("report %s: %v", f, err)
			continue
		}
		if fi.Size() == 0 {
			t.Errorf("report %s is empty", p)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(r.out, "buildgate.junit.xml"))
	if !bytes.Contains(junit, []byte("<testcase")) || !bytes.Contains(junit, []byte("image analysed and evaluated")) {
		t.Errorf("JUnit report has no test case \"image analysed and evaluated\":\n%s", junit)
	}
	errs := steptest.SARIFLevels(t, filepath.Join(r.out, "buildgate.sarif"))["error"]
	stopped := strings.Contains(r.stderr, ": policy STOP: ")
	fails := stopped
	if r.cfg.FailOn == report.FailOnNew {
		// Only new STOP findings fail, and only they are errors.
		fails = r.code == step.ExitFail
	}
	if fails != (errs > 0) {
		t.Errorf("the line says %q but SARIF has %d error results", r.stderr, errs)
	}
	if stopped && r.cfg.FailOn != report.FailOnNew && (r.code == step.ExitFail) != (r.cfg.FailOn != report.FailOnNone) {
		t.Errorf("exit code %d on STOP with --fail-on %v", r.code, r.cfg.FailOn)
	}
	if !strings.Contains(r.stderr, filepath.Join(r.out, "buildgate.md")) {
		t.Errorf("the line does not point at the markdown report: %s", r.stderr)
	}
}

func wantLine(t *testing.T, r stepRun, code int, prefix string, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d", r.code, code)
	}
	if !strings.HasPrefix(r.stderr, prefix) {
		t.Errorf("stderr = %q, want it to start with %q", r.stderr, prefix)
	}
	for _, c := range contains {
		if !strings.Contains(r.stderr, c) {
			t.Errorf("stderr = %q, want it to contain %q", r.stderr, c)
		}
	}
}

func gateEnv(g *steptest.Gate) map[string]string {
	return map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": g.CIToken}
}

// unique returns a small image with no packages, new on every call.
func unique(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// dpkgOnly returns the shared Debian 11 dpkg-only image with a label, so
// that each label makes a new digest the gate analyses afresh.
func dpkgOnly(t *testing.T, label string) v1.Image {
	t.Helper()
	return labelled(t, steptest.SharedImage(t, "bullseye-dpkgonly"), label)
}

// labels counts the calls of labelled in this process, so that each call
// makes a digest the shared gate has not seen, also when -count runs a
// test again against the same gate.
var labels atomic.Int64

// labelled returns img with a label in its config: a new digest with the
// same layers, new on every call.
func labelled(t *testing.T, img v1.Image, label string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config.DeepCopy()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels["steptest"] = fmt.Sprintf("%s-%d", label, labels.Add(1))
	img, err = mutate.Config(img, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegistryReference(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	clean := reg.Push(t, "team/clean:1", unique(t))
	passing := g.AddPolicy(t, steptest.PassingBundle("steptest-pass"))
	vulnerable := reg.Push(t, "team/vulnerable:1", steptest.SharedImage(t, "bullseye-dpkgonly"))

	t.Run("WARN passes", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", clean)
		wantLine(t, r, step.ExitPass, "buildgate: PASS: policy WARN: ", "bundle Default bundle v1")
		checkReports(t, r)
		if !strings.Contains(r.stdout, "submitted "+clean+" as sha256:") {
			t.Errorf("no submitted line:\n%s", r.stdout)
		}
	})
	t.Run("GO with a policy", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", clean, "--policy", passing)
		wantLine(t, r, step.ExitPass, "buildgate: PASS: policy GO", "steptest-pass")
		checkReports(t, r)
	})
	t.Run("WARN fails with --fail-on warn", func(t *testing.T) {
		env := gateEnv(g)
		env["GATE_FAIL_ON"] = "warn"
		r := runStep(t, env, "--image", clean)
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy WARN: ", "--fail-on warn")
		checkReports(t, r)
	})
	t.Run("STOP fails", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", vulnerable)
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ", "stop findings (bundle Default bundle v1) — see ")
		checkReports(t, r)
		// The job log's table: STOP rows first, at most 50.
		_, table, ok := strings.Cut(r.stdout, "\n  SEVERITY  VULNERABILITY  ")
		rows := strings.Split(table, "\n")[1:]
		n := 0
		for n < len(rows) && strings.HasPrefix(rows[n], "  ") {
			n++
		}
		if !ok || n == 0 || n > 50 || !strings.HasSuffix(rows[0], " STOP") || (strings.HasPrefix(rows[n], "buildgate: … and ") && n != 50) {
			t.Errorf("no findings table of at most 50 rows, STOP first, with a line for the rest:\n%s", r.stdout)
		}
	})
	t.Run("STOP passes with --fail-on none", func(t *testing.T) {
		env := gateEnv(g)
		env["GATE_FAIL_ON"] = "none"
		r := runStep(t, env, "--image", vulnerable)
		wantLine(t, r, step.ExitPass, "buildgate: PASS: policy STOP: ", "stop findings (--fail-on none: not failing the build) (bundle Default bundle v1) — see ")
		checkReports(t, r)
		md, _ := os.ReadFile(filepath.Join(r.out, "buildgate.md"))
		if !bytes.Contains(md, []byte("## buildgate: **STOP** — build passes (--fail-on none: report only)")) {
			t.Errorf("the markdown headline does not say --fail-on none:\n%.300s", md)
		}
	})
	t.Run("STOP fails with the passing policy too", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", vulnerable, "--policy", passing)
		wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
		checkReports(t, r)
	})
	t.Run("missing tag", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", reg.Host+"/team/clean:nope")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: submitting "+reg.Host+"/team/clean:nope: gate answered 4")
		if _, err := os.Stat(filepath.Join(r.out, "buildgate.sarif")); err == nil {
			t.Error("an error left reports behind")
		}
	})
}

func TestDockerArchive(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	dir := t.TempDir()
	dockerfile := filepath.Join(dir, "Dockerfile")
	os.WriteFile(dockerfile, []byte("FROM debian:bullseye\nRUN true\nEXPOSE 22\n"), 0o644)
	r := runStep(t, gateEnv(g),
		"--image", "docker-archive:"+steptest.SharedImagePath(t, "bullseye-dpkgonly"),
		"--dockerfile", dockerfile, "--tag", "registry.example/team/dpkg:1",
		"--annotation", "team=payments")
	wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
	checkReports(t, r)
	if !strings.Contains(r.stdout, "uploading docker-archive ") {
		t.Errorf("no uploading line:\n%s", r.stdout)
	}
	sarif, _ := os.ReadFile(filepath.Join(r.out, "buildgate.sarif"))
	if !bytes.Contains(sarif, []byte("Dockerfile")) {
		t.Errorf("SARIF does not point at the Dockerfile")
	}
	md, _ := os.ReadFile(filepath.Join(r.out, "buildgate.md"))
	if !bytes.Contains(md, []byte("exposed_ports")) {
		t.Errorf("the Dockerfile's EXPOSE 22 did not reach the gate:\n%s", md)
	}
}

func TestOCISources(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	dirLayout := writeLayout(t, dpkgOnly(t, "oci-dir"))
	archLayout := writeLayout(t, dpkgOnly(t, "oci-archive"))
	archive := filepath.Join(t.TempDir(), "image.oci.tar")
	steptest.TarDir(t, archLayout, archive)
	for _, image := range []string{"oci-dir:" + dirLayout, "oci-archive:" + archive} {
		t.Run(strings.SplitN(image, ":", 2)[0], func(t *testing.T) {
			r := runStep(t, gateEnv(g), "--image", image)
			wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
			checkReports(t, r)
		})
	}
	t.Run("oci-dir that is no layout", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", "oci-dir:"+t.TempDir())
		wantLine(t, r, step.ExitError, "buildgate: ERROR: uploading oci-dir ", "is not an OCI image layout")
	})
}

func TestSBOM(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	// Analyse the image once to get an SBOM a previous step could have made.
	first := runStep(t, gateEnv(g), "--image", "docker-archive:"+steptest.SharedImagePath(t, "bullseye-dpkgonly"))
	wantLine(t, first, step.ExitFail, "buildgate: FAIL: ")
	digest := strings.Fields(strings.SplitN(first.stdout, " as ", 2)[1])[0]
	for _, format := range []string{"syft-json", "cyclonedx-json"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sbom.json")
			if err := os.WriteFile(path, g.SBOM(t, digest, format), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runStep(t, gateEnv(g), "--sbom", path, "--tag", "registry.example/sbom/app:1")
			wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
			checkReports(t, r)
		})
	}
	t.Run("not an SBOM", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		os.WriteFile(path, []byte("hello"), 0o644)
		r := runStep(t, gateEnv(g), "--sbom", path)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: sending the SBOM ", "gate answered 400")
	})
}

func TestDockerDaemon(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets: %v", err)
	}
	archive := steptest.SharedImagePath(t, "bullseye-dpkgonly")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/images/team/app:1/get" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"message":"reference does not exist"}`)
			return
		}
		f, _ := os.Open(archive)
		defer f.Close()
		w.Header().Set("Content-Type", "application/x-tar")
		io.Copy(w, f)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	env := gateEnv(g)
	env["DOCKER_HOST"] = "unix://" + sock

	r := runStep(t, env, "--image", "docker:team/app:1")
	wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
	checkReports(t, r)

	r = runStep(t, env, "--image", "docker:team/missing:1")
	wantLine(t, r, step.ExitError, "buildgate: ERROR: uploading the local image team/missing:1: the Docker daemon cannot export team/missing:1 (404): reference does not exist")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()

	t.Run("gate down", func(t *testing.T) {
		r := runStep(t, map[string]string{"GATE_TOKEN": "tok"}, "--gate", closed, "--image", "registry.example/app:1")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: gate unreachable at "+closed+": ", "connection refused")
	})
	t.Run("gate down with --on-error pass", func(t *testing.T) {
		r := runStep(t, map[string]string{"GATE_TOKEN": "tok", "GATE_ON_ERROR": "pass"}, "--gate", closed, "--image", "registry.example/app:1")
		wantLine(t, r, step.ExitPass, "buildgate: ERROR: gate unreachable at ", "(--on-error pass: not failing the build)")
	})
	t.Run("wrong token", func(t *testing.T) {
		r := runStep(t, map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": "bg_wrong_secret_token"}, "--image", "docker-archive:"+steptest.SharedImagePath(t, "bullseye-dpkgonly"))
		wantLine(t, r, step.ExitError, "buildgate: ERROR: the gate at "+g.URL+" refused the token (401")
	})
	t.Run("timeout", func(t *testing.T) {
		ref := reg.Push(t, "stall/app:1", unique(t))
		start := time.Now()
		r := runStep(t, gateEnv(g), "--image", ref, "--timeout", "3s")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: timed out after 3s waiting for the analysis of sha256:")
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the step took %s with --timeout 3s", d)
		}
		if !strings.Contains(r.stdout, "analyzing sha256:") && !strings.Contains(r.stdout, "queued sha256:") {
			t.Errorf("no progress line in 3s with a 2s interval:\n%s", r.stdout)
		}
	})
	t.Run("analysis failed", func(t *testing.T) {
		img := unique(t)
		layers, _ := img.Layers()
		d, _ := layers[0].Digest()
		reg.Corrupt(d.String())
		ref := reg.Push(t, "team/corrupt:1", img)
		r := runStep(t, gateEnv(g), "--image", ref)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: the analysis of "+ref+" (sha256:", ") failed: ")
	})
	t.Run("corrupt archive", func(t *testing.T) {
		b, err := os.ReadFile(steptest.SharedImagePath(t, "bullseye-dpkgonly"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "truncated.tar")
		os.WriteFile(path, b[:len(b)/2], 0o644)
		r := runStep(t, gateEnv(g), "--image", "docker-archive:"+path)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: uploading docker-archive "+path+": gate answered 400")
	})
	t.Run("missing archive", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", "docker-archive:/nonexistent.tar")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: uploading docker-archive /nonexistent.tar: opening the image archive: ")
	})
	t.Run("unknown policy", func(t *testing.T) {
		r := runStep(t, gateEnv(g), "--image", "docker-archive:"+steptest.SharedImagePath(t, "bullseye-dpkgonly"), "--policy", "nope")
		wantLine(t, r, step.ExitError, "buildgate: ERROR: fetching the verdict of sha256:", "404")
	})
}
