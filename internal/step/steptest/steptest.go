// Package steptest runs what the step's tests talk to: a real `gate serve`
// subprocess with a vulnerability DB built from ../shared/vulndata, and an
// in-process registry that can stall or corrupt blob downloads.
//
// It imports vulndbtest (and so grype) and go-containerregistry's remote:
// only tests may import it, never a step binary.
package steptest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// AdminToken is the admin token of every gate Start runs.
const AdminToken = "bg_LHMYMJSMNenrA6my136_3LOYH6pcKaiRDCC7bcmGeQA"

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + wd)
		}
	}
}

// Build builds a main package of the module (e.g. "./gate") into dir and
// returns the binary's path.
func Build(pkg, dir string, extra ...string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	args := append([]string{"build"}, extra...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Gate is a running `gate serve` subprocess.
type Gate struct {
	// URL is the gate's base URL.
	URL string
	// CIToken is a token of role ci; AdminToken is the admin's.
	CIToken string
	// Bin is the gate binary, DataDir its data directory.
	Bin, DataDir string

	cmd  *exec.Cmd
	log  *syncWriter
	done chan error
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error

	sharedOnce sync.Once
	shared     *Gate
	sharedErr  error
)

// Binary builds the gate once per test binary.
func Binary() (string, error) {
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "steptest-bin-"); binErr != nil {
			return
		}
		binPath, binErr = Build("./gate", binDir)
	})
	return binPath, binErr
}

// Shared returns the gate shared by every test of the test binary,
// starting it on first use; Cleanup stops it.
func Shared(tb testing.TB) *Gate {
	tb.Helper()
	sharedOnce.Do(func() {
		// If Archive stops the test, the error stays for the others.
		sharedErr = errors.New("the shared gate did not start (see the first test that used it)")
		archive := vulndbtest.Archive(tb)
		shared, sharedErr = Start(archive)
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// Cleanup stops the shared gate and removes the built binary; TestMain
// calls it.
func Cleanup() {
	if shared != nil {
		shared.Stop()
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Start imports the DB archive into a new data directory and starts a gate
// on a free port, with AdminToken and a fresh ci token, and waits until it
// is ready.
func Start(dbArchive string) (*Gate, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp("", "steptest-gate-")
	if err != nil {
		return nil, err
	}
	if b, err := exec.Command(bin, "db", "import", dbArchive, "--data", data).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gate db import: %v\n%s", err, b)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	g := &Gate{URL: "http://" + addr, Bin: bin, DataDir: data, log: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	g.cmd = exec.Command(bin, "serve", "--addr", addr, "--data", data, "--db-update-url", "",
		"--log-level", "warn", "--workers", "4", "--analysis-timeout", "2m",
		// The test registries and webhooks listen on 127.0.0.1.
		"--allow-private-networks", "127.0.0.0/8")
	g.cmd.Env = append(os.Environ(), "GATE_ADMIN_TOKEN="+AdminToken)
	g.cmd.SysProcAttr = dieWithParent()
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { g.done <- g.cmd.Wait() }()
	if err := g.waitReady(2 * time.Minute); err != nil {
		g.Stop()
		return nil, err
	}
	out, err := exec.Command(bin, "token", "create", "--name", "ci", "--role", "ci", "--data", data).Output()
	if err != nil {
		g.Stop()
		return nil, fmt.Errorf("gate token create: %v", err)
	}
	g.CIToken = strings.TrimSpace(string(out))
	return g, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (g *Gate) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-g.done:
			return fmt.Errorf("gate serve exited: %v\n%s", err, g.Log())
		default:
		}
		resp, err := http.Get(g.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("gate not ready after %s\n%s", limit, g.Log())
}

// Log returns what the gate printed.
func (g *Gate) Log() string {
	g.log.mu.Lock()
	defer g.log.mu.Unlock()
	return g.log.w.(*bytes.Buffer).String()
}

// Stop stops the gate and removes its data directory.
func (g *Gate) Stop() {
	if g.cmd != nil && g.cmd.Process != nil {
		// Stopped on purpose: how the process ends says nothing here, and
		// the data directory goes whatever is left in it.
		_ = g.cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-g.done:
		case <-time.After(10 * time.Second):
			_ = g.cmd.Process.Kill()
			err = <-g.done
		}
		_ = err
	}
	_ = os.RemoveAll(g.DataDir)
}

// Admin returns a client with the admin token.
func (g *Gate) Admin() *client.Client { return client.New(g.URL, AdminToken, nil) }

// Image reads an image record with the admin token.
func (g *Gate) Image(tb testing.TB, digest string) *api.Image {
	tb.Helper()
	img, err := g.Admin().Image(context.Background(), digest)
	if err != nil {
		tb.Fatalf("GET /v1/images/%s: %v", digest, err)
	}
	return img
}

// SBOM returns an analysed image's SBOM in a format (syft-json,
// cyclonedx-json, spdx-json).
func (g *Gate) SBOM(tb testing.TB, digest, format string) []byte {
	tb.Helper()
	b, err := g.Admin().Raw(context.Background(), http.MethodGet, "/v1/images/"+digest+"/sbom?format="+format, nil, "")
	if err != nil {
		tb.Fatalf("GET sbom of %s: %v", digest, err)
	}
	return b
}

// AddPolicy stores a bundle (not activated) and returns its id.
func (g *Gate) AddPolicy(tb testing.TB, bundle any) string {
	tb.Helper()
	var p api.Policy
	if err := g.Admin().Do(context.Background(), http.MethodPost, "/v1/policies", bundle, &p); err != nil {
		tb.Fatalf("POST /v1/policies: %v", err)
	}
	return p.ID
}

// RestoreActivePolicy makes the bundle active now active again when the
// test ends, so that a test that activates another one on the shared gate
// leaves it as it found it for the tests after it (and for its own next
// run under -count).
func (g *Gate) RestoreActivePolicy(tb testing.TB) {
	tb.Helper()
	var list api.PolicyList
	if err := g.Admin().Do(context.Background(), http.MethodGet, "/v1/policies", nil, &list); err != nil {
		tb.Fatalf("GET /v1/policies: %v", err)
	}
	i := slices.IndexFunc(list.Policies, func(p api.Policy) bool { return p.Active })
	if i < 0 {
		tb.Fatal("GET /v1/policies: no active bundle")
	}
	id := list.Policies[i].ID
	tb.Cleanup(func() {
		if err := g.Admin().Do(context.Background(), http.MethodPost, "/v1/policies/"+url.PathEscape(id)+"/activate", nil, nil); err != nil {
			tb.Errorf("reactivating bundle %s: %v", id, err)
		}
	})
}

// PassingBundle is an Anchore bundle that stops only on vulnerabilities
// above medium and warns on nothing: an image without packages gets GO.
func PassingBundle(id string) map[string]any {
	return map[string]any{
		"id": id, "name": "steptest " + id, "version": "1_0",
		"policies": []any{map[string]any{
			"id": "p-" + id, "name": "high vulnerabilities", "version": "1_0",
			"rules": []any{map[string]any{
				"id": "r-" + id, "gate": "vulnerabilities", "trigger": "package", "action": "STOP",
				"params": []any{
					map[string]any{"name": "package_type", "value": "all"},
					map[string]any{"name": "severity_comparison", "value": ">"},
					map[string]any{"name": "severity", "value": "medium"},
				},
			}},
		}},
		"whitelists": []any{},
		"mappings": []any{map[string]any{
			"id": "m-" + id, "name": "all", "registry": "*", "repository": "*",
			"image":     map[string]any{"type": "tag", "value": "*"},
			"policy_id": "p-" + id, "whitelist_ids": []any{},
		}},
	}
}

// SharedImagePath returns the path of an image under ../shared/images:
// "bullseye-dpkgonly" is ../shared/images/bullseye-dpkgonly.docker.tar.
func SharedImagePath(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := vulndbtest.SharedDir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, "images", name+".docker.tar")
}

// SharedImage loads an image under ../shared/images.
func SharedImage(tb testing.TB, name string) v1.Image {
	tb.Helper()
	img, err := tarball.ImageFromPath(SharedImagePath(tb, name), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// Layer is an image layer holding files (path without the leading slash
// to content), in path order, each mode 0644.
func Layer(tb testing.TB, files map[string]string) v1.Layer {
	tb.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		body := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Registry is go-containerregistry's registry in process, behind a handler
// that stalls every blob download of repositories under "stall/" and
// serves garbage for the blobs Corrupt names.
type Registry struct {
	// Host is host:port, for references: Host + "/team/app:1".
	Host string

	srv     *httptest.Server
	release chan struct{}
	mu      sync.Mutex
	corrupt map[string]bool
}

// NewRegistry starts a registry that lives until the test ends.
func NewRegistry(tb testing.TB) *Registry {
	tb.Helper()
	r := &Registry{release: make(chan struct{}), corrupt: map[string]bool{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		repo, digest, isBlob := blobPath(req.URL.Path)
		if isBlob && req.Method == http.MethodGet {
			if strings.HasPrefix(repo, "stall/") {
				select {
				case <-r.release:
				case <-req.Context().Done():
				}
				http.Error(w, "stalled", http.StatusServiceUnavailable)
				return
			}
			r.mu.Lock()
			bad := r.corrupt[digest]
			r.mu.Unlock()
			if bad {
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, req)
				body := rec.Body.Bytes()
				for i := range body {
					body[i] ^= 0x5a
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	tb.Cleanup(func() {
		close(r.release)
		r.srv.Close()
	})
	return r
}

// blobPath splits /v2/<repo>/blobs/<digest>.
func blobPath(p string) (repo, digest string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/blobs/")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len("/blobs/"):], true
}

// Corrupt makes the registry serve garbage for a blob.
func (r *Registry) Corrupt(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt[digest] = true
}

// Push writes an image to repo:tag (e.g. "team/app:1") and returns the
// full reference.
func (r *Registry) Push(tb testing.TB, repoTag string, img v1.Image) string {
	tb.Helper()
	ref := r.Host + "/" + repoTag
	parsed, err := name.ParseReference(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(parsed, img); err != nil {
		tb.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// TarDir packs a directory into a tar file (an oci-archive when dir is an
// OCI layout).
func TarDir(tb testing.TB, dir, out string) {
	tb.Helper()
	f, err := os.Create(out)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// SARIFLevels counts a SARIF file's results by level.
func SARIFLevels(tb testing.TB, path string) map[string]int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				Level string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	out := map[string]int{}
	for _, r := range doc.Runs {
		for _, res := range r.Results {
			out[res.Level]++
		}
	}
	return out
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
