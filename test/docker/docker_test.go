// Package docker_test proves the images `make image` writes with a real
// Docker engine (Debian's docker.io, started on a private socket with vfs,
// no iptables and no bridge): the gate image runs as uid 65532 on a
// read-only root filesystem, keeps its data in a volume across a restart,
// analyses an image from a registry on 127.0.0.1, and refuses a data
// directory it cannot write; the step image's gate-jenkins stops a
// vulnerable image; and the step's docker:NAME source reads from the real
// daemon.
//
// It also validates deploy/compose/docker-compose.yml with docker-compose
// (or docker compose) and starts its gate service from the loaded image.
//
// It needs root, dockerd, docker and docker-compose on the PATH, and
// dist/gate.docker.tar and dist/gate-step.docker.tar (make image). Without
// them it skips, unless CI is set or BUILDGATE_E2E=1 (.ci/run sets it):
// then it fails.
package docker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/shareddir"
)

// root is the repository's root directory: go test runs a package's tests
// in its directory (the source path is not used: make test builds with
// -trimpath).
func root() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}

// need skips the test when cond is false, and fails it under CI or
// BUILDGATE_E2E=1.
func need(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if cond {
		return
	}
	if os.Getenv("CI") != "" || os.Getenv("BUILDGATE_E2E") == "1" {
		t.Fatalf("CI or BUILDGATE_E2E=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

// daemon is a dockerd this test started.
type daemon struct {
	host string
	dir  string
}

// startDaemon starts dockerd on a private socket and data root.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "bgd-") // short: a unix socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{host: "unix://" + dir + "/docker.sock", dir: dir}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"-H", d.host, "--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if out, err := d.docker("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
			d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log (tail):\n%s", tail(string(b), 3000))
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.docker("version"); err == nil {
			return d
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited: %v\n%s", err, tail(string(b), 3000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not answer within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// docker runs the docker CLI against d; the error carries stderr.
func (d *daemon) docker(args ...string) (string, error) {
	out, code, err := d.dockerCode(args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("docker %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out, err
}

// dockerCode runs the docker CLI and returns its combined output and exit
// code; err is set only when it could not run.
func (d *daemon) dockerCode(args ...string) (string, int, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	return out.String(), 0, err
}

// load docker-loads a docker-archive and returns the tag it holds.
func (d *daemon) load(t *testing.T, path string) string {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 {
		t.Fatalf("reading %s: %v (%d images); want one tagged image", path, err, len(m))
	}
	if out, err := d.docker("load", "-i", path); err != nil {
		t.Fatalf("docker load %s: %v", path, err)
	} else if !strings.Contains(out, m[0].RepoTags[0]) {
		t.Fatalf("docker load %s said %q, want %s", path, out, m[0].RepoTags[0])
	}
	return m[0].RepoTags[0]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writableDir makes a directory the images' user 65532 may write.
func writableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bgdocker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, d *daemon, url, container string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	logs, _ := d.docker("logs", container)
	t.Fatalf("%s did not answer 200 within 2m; logs of %s:\n%s", url, container, tail(logs, 3000))
}

// checkConfined checks that the container's process runs as 65532 on a
// read-only root filesystem.
func checkConfined(t *testing.T, d *daemon, container string) {
	t.Helper()
	pid, err := d.docker("inspect", "-f", "{{.State.Pid}}", container)
	if err != nil {
		t.Fatal(err)
	}
	pid = strings.TrimSpace(pid)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && (f[1] != "65532" || f[2] != "65532") {
			t.Errorf("%s runs with %s, want 65532", container, l)
		}
	}
	mounts, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
			rootRO = strings.HasPrefix(f[5], "ro")
		}
	}
	if !rootRO {
		t.Errorf("the root filesystem of %s is not mounted read-only:\n%s", container, mounts)
	}
}

// serveArgs are the gate's arguments on a private port: no DB updates
// from the internet, pulls from the registry on 127.0.0.1.
func serveArgs(port int) []string {
	return []string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(port), "--data", "/data", "--db-update-interval", "0",
		"--allow-private-networks", "127.0.0.0/8"}
}

func TestImages(t *testing.T) {
	need(t, os.Geteuid() == 0, "needs root to run dockerd")
	for _, tool := range []string{"dockerd", "docker"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, "needs %s (apt-get install --no-install-recommends docker.io)", tool)
	}
	dist := filepath.Join(root(), "dist")
	for _, f := range []string{"gate.docker.tar", "gate-step.docker.tar"} {
		_, err := os.Stat(filepath.Join(dist, f))
		need(t, err == nil, "needs dist/%s: run make image", f)
	}
	shared, err := shareddir.Dir()
	if err != nil {
		t.Fatal(err)
	}
	sharedAbs, err := filepath.Abs(shared)
	if err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t)
	gateImage := d.load(t, filepath.Join(dist, "gate.docker.tar"))
	stepImage := d.load(t, filepath.Join(dist, "gate-step.docker.tar"))

	t.Run("version", func(t *testing.T) {
		out, err := d.docker("run", "--rm", "--network", "none", gateImage, "version")
		if err != nil || !strings.HasPrefix(out, "gate ") || !strings.Contains(out, "(commit ") {
			t.Errorf("gate version in the image: %q, %v", out, err)
		}
		out, err = d.docker("run", "--rm", "--network", "none", stepImage, "gate-jenkins", "--version")
		if err != nil || !strings.HasPrefix(out, "gate-jenkins ") {
			t.Errorf("gate-jenkins --version in the step image: %q, %v", out, err)
		}
	})

	t.Run("unwritable data directory", func(t *testing.T) {
		for _, c := range []struct {
			name, volume, reason string
		}{
			// root's, mode 0755: uid 65532 cannot write it
			{"host directory of another user", t.TempDir() + ":/data", "permission denied"},
			{"read-only volume", writableDir(t) + ":/data:ro", "read-only file system"},
		} {
			out, code, err := d.dockerCode(append([]string{"run", "--rm", "--network", "none", "-v", c.volume, gateImage}, serveArgs(freePort(t))...)...)
			if err != nil {
				t.Fatal(err)
			}
			if code == 0 || !strings.Contains(out, "data directory /data is not writable") || !strings.Contains(out, c.reason) ||
				!strings.Contains(out, "uid 65532") {
				t.Errorf("gate on /data from a %s: exit %d, output %q; want a refusal naming the path, %q and the user", c.name, code, out, c.reason)
			}
		}
	})

	// A vulnerability DB from ../shared/vulndata, built and imported by the
	// image's own gate into a named volume.
	dbDir := writableDir(t)
	build := []string{"run", "--rm", "--network", "none", "-v", sharedAbs + ":/shared:ro", "-v", dbDir + ":/out",
		gateImage, "db", "build", "--out", "/out"}
	for _, p := range []string{"nvd", "debian", "github", "kev"} {
		build = append(build, "--provider", p+"=/shared/vulndata/workspaces/"+p)
	}
	build = append(build, "--osv", "govulndb=/shared/vulndata/osv/govulndb")
	if out, err := d.docker(build...); err != nil {
		t.Fatalf("gate db build in the image: %v\n%s", err, out)
	}
	archives, _ := filepath.Glob(filepath.Join(dbDir, "vulnerability-db_*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("db build wrote %v, want one archive", archives)
	}
	if out, err := d.docker("run", "--rm", "--network", "none", "-v", "gate-data:/data", "-v", dbDir+":/db:ro",
		gateImage, "db", "import", "/db/"+filepath.Base(archives[0]), "--data", "/data"); err != nil {
		t.Fatalf("gate db import in the image: %v\n%s", err, out)
	}

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	ref := strings.TrimPrefix(reg.URL, "http://") + "/debian/bullseye-minbase:11"
	push(t, ref, filepath.Join(shared, "images", "bullseye-minbase.docker.tar"))

	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	token := randomToken(t)
	if out, err := d.docker(append([]string{"run", "-d", "--name", "gate", "--network", "host", "--read-only", "--tmpfs", "/tmp", "-v", "gate-data:/data",
		"-e", "GATE_ADMIN_TOKEN=" + token, gateImage}, serveArgs(port)...)...); err != nil {
		t.Fatalf("docker run gate: %v\n%s", err, out)
	}
	waitOK(t, d, base+"/readyz", "gate")

	t.Run("runs as 65532 on a read-only root", func(t *testing.T) {
		checkConfined(t, d, "gate")
	})

	c := client.New(base, token, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sub, err := c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref})
	if err != nil {
		t.Fatalf("submitting %s: %v", ref, err)
	}
	img, err := c.WaitAnalyzed(ctx, sub.Digest, time.Second, nil)
	if err != nil || img.Status != api.StatusAnalyzed {
		logs, _ := d.docker("logs", "gate")
		t.Fatalf("analysing %s in the container: %+v, %v\n%s", ref, img, err, tail(logs, 3000))
	}
	vulns, err := c.Vulnerabilities(ctx, sub.Digest, "all")
	if err != nil || len(vulns.Vulnerabilities) == 0 {
		t.Fatalf("vulnerabilities of %s: %d, %v; want some (bullseye-minbase is old)", ref, len(vulns.Vulnerabilities), err)
	}

	t.Run("restart keeps the data", func(t *testing.T) {
		if out, err := d.docker("restart", "gate"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		waitOK(t, d, base+"/readyz", "gate")
		again, err := c.Image(ctx, sub.Digest)
		if err != nil || again.Status != api.StatusAnalyzed {
			t.Fatalf("after a restart: %+v, %v; want the analysed image", again, err)
		}
		after, err := c.Vulnerabilities(ctx, sub.Digest, "all")
		if err != nil || len(after.Vulnerabilities) != len(vulns.Vulnerabilities) {
			t.Errorf("after a restart: %d vulnerabilities, %v; want %d", len(after.Vulnerabilities), err, len(vulns.Vulnerabilities))
		}
	})

	t.Run("step image stops the vulnerable image", func(t *testing.T) {
		out := writableDir(t)
		got, code, err := d.dockerCode("run", "--rm", "--network", "host", "-v", out+":/reports", "-e", "GATE_TOKEN="+token,
			stepImage, "gate-jenkins", "--gate", base, "--image", ref, "--out", "/reports")
		if err != nil {
			t.Fatal(err)
		}
		if code != 1 || !strings.Contains(got, "policy STOP") {
			t.Errorf("gate-jenkins in the step image: exit %d, output %q; want exit 1 and policy STOP", code, got)
		}
		checkReports(t, out)
	})

	t.Run("docker source from the real daemon", func(t *testing.T) {
		local := d.load(t, filepath.Join(shared, "images", "bullseye-dpkgonly.docker.tar"))
		bin := filepath.Join(t.TempDir(), "gate-jenkins")
		if b, err := exec.Command("go", "build", "-o", bin, filepath.Join(root(), "jenkins")).CombinedOutput(); err != nil {
			t.Fatalf("building gate-jenkins: %v\n%s", err, b)
		}
		ws := t.TempDir()
		cmd := exec.Command(bin, "--gate", base, "--image", "docker:"+local, "--out", filepath.Join(ws, "reports"))
		cmd.Env = append(os.Environ(), "GATE_TOKEN="+token, "DOCKER_HOST="+d.host, "WORKSPACE="+ws)
		got, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(got), "docker:"+local) || !strings.Contains(string(got), "policy STOP") {
			t.Errorf("gate-jenkins --image docker:%s: %v, output %q; want exit 1 and policy STOP", local, err, got)
		}
		checkReports(t, filepath.Join(ws, "reports"))
	})

	t.Run("compose", func(t *testing.T) {
		compose := composeCommand(t)
		repo, version, ok := strings.Cut(gateImage, ":")
		if !ok || repo != "ghcr.io/buildgate/gate" {
			t.Fatalf("the gate image is tagged %q, want ghcr.io/buildgate/gate:VERSION (the compose file's image)", gateImage)
		}
		port := freePort(t)
		file := filepath.Join(root(), "deploy", "compose", "docker-compose.yml")
		project := "bgcompose" + strconv.Itoa(port)
		// The gate service, published on 127.0.0.1 only.
		run := func(args ...string) error {
			cmd := exec.Command(compose[0], append(append(compose[1:], "-f", file, "-p", project), args...)...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "BUILDGATE_VERSION="+version, "BUILDGATE_PORT=127.0.0.1:"+strconv.Itoa(port))
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s %s: %v\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out)
			}
			return nil
		}
		for _, args := range [][]string{{"config", "-q"}, {"--profile", "postgres", "config", "-q"}} {
			if err := run(args...); err != nil {
				t.Errorf("validating the compose file: %v", err)
			}
		}
		t.Cleanup(func() {
			if err := run("down", "-v"); err != nil {
				t.Errorf("compose down: %v", err)
			}
		})
		if err := run("up", "-d", "gate"); err != nil {
			t.Fatal(err)
		}
		id, err := d.docker("ps", "-q", "--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.service=gate")
		if id = strings.TrimSpace(id); err != nil || id == "" {
			t.Fatalf("the compose gate's container: %q, %v", id, err)
		}
		// No DB here (nothing to download it from): alive, not ready.
		waitOK(t, d, "http://127.0.0.1:"+strconv.Itoa(port)+"/healthz", id)
		checkConfined(t, d, id)
	})
}

// composeCommand is Docker Compose: Debian's docker-compose, else the
// docker compose plugin.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	err := exec.Command("docker", "compose", "version").Run()
	need(t, err == nil, "needs docker-compose (apt-get install --no-install-recommends docker-compose) or docker compose")
	return []string{"docker", "compose"}
}

// randomToken is an admin token the gate accepts (32 random bytes).
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkReports checks that the step left its reports in dir.
func checkReports(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"buildgate.junit.xml", "buildgate.sarif", "gl-container-scanning-report.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			entries, _ := os.ReadDir(dir)
			t.Errorf("report %s: %v (the directory holds %v)", f, err, entries)
		}
	}
}

func push(t *testing.T, ref, path string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}
