package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// testToken is the admin token of test gates: 32 random bytes, as
// --admin-token requires.
const testToken = "bg_yI3pLZebFFGlj9nC5Vj43JCGfT2BDiBKKEd3KJm-tnQ"

// testGate runs a gate in-process on a temporary data directory with a DB
// built from ../shared/vulndata.
type testGate struct {
	*Main
	c *client.Client
}

func startGate(t testing.TB, mutate func(*Config)) *testGate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DBUpdateURL = ""
	cfg.AdminToken = testToken
	// The test registries, webhooks and fake ECR listen on 127.0.0.1.
	cfg.AllowPrivateNetworks = "127.0.0.0/8"
	if mutate != nil {
		mutate(&cfg)
	}
	if _, err := importDB(t, cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	<-m.warm // as a deployment waits for /readyz
	return &testGate{Main: m, c: client.New(m.URL, testToken, nil)}
}

func importDB(t testing.TB, data string) (string, error) {
	archive := vulndbtest.Archive(t)
	var out bytes.Buffer
	cmd := dbImportCommand()
	cmd.FlagSet.SetOutput(&out)
	if err := cmd.ParseAndRun(context.Background(), []string{archive, "--data", data}); err != nil {
		return out.String(), err
	}
	return out.String(), nil
}

// testRegistry is go-containerregistry's registry, in process.
func testRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func sharedImage(t testing.TB, name string) v1.Image {
	t.Helper()
	dir, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(dir, "images", name+".docker.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func (g *testGate) submitAndWait(t testing.TB, ref string) *api.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := g.c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref})
	if err != nil {
		t.Fatalf("submitting %s: %v", ref, err)
	}
	done, err := g.c.WaitAnalyzed(ctx, img.Digest, time.Minute, nil)
	if err != nil {
		t.Fatalf("waiting for %s: %v", ref, err)
	}
	return done
}

func (g *testGate) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: decoding %q: %v", path, b, err)
		}
	}
	return resp.StatusCode
}

func TestAnalyseDpkgImage(t *testing.T) {
	g := startGate(t, nil)
	host := testRegistry(t)
	ref := host + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))

	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("status %s: %s", img.Status, img.Error)
	}
	if len(img.Tags) != 1 || img.Tags[0] != ref {
		t.Errorf("tags = %v, want [%s]", img.Tags, ref)
	}
	d := url.PathEscape(img.Digest)

	var vulns api.VulnerabilityList
	if code := g.get(t, "/v1/images/"+d+"/vulnerabilities?type=os", &vulns); code != 200 {
		t.Fatalf("vulnerabilities: %d", code)
	}
	if len(vulns.Vulnerabilities) == 0 {
		t.Fatal("no vulnerabilities for Debian 11 packages older than bullseye-security")
	}
	sawNVDSeverity := false
	for _, v := range vulns.Vulnerabilities {
		if v.PackageType != "deb" || v.FixState == "" || v.DataSource == "" && len(v.URLs) == 0 {
			t.Errorf("incomplete vulnerability: %+v", v)
		}
		if v.Severity != "Unknown" {
			sawNVDSeverity = true
		}
	}
	if !sawNVDSeverity {
		t.Error("every severity is Unknown: NVD records did not decorate Debian's")
	}
	var nonOS api.VulnerabilityList
	g.get(t, "/v1/images/"+d+"/vulnerabilities?type=non-os", &nonOS)
	if len(nonOS.Vulnerabilities) != 0 {
		t.Errorf("non-os vulnerabilities in a dpkg-only image: %d", len(nonOS.Vulnerabilities))
	}

	var pkgs api.PackageList
	g.get(t, "/v1/images/"+d+"/packages?type=os", &pkgs)
	if len(pkgs.Packages) < 50 {
		t.Errorf("%d os packages, want the dpkg database's", len(pkgs.Packages))
	}
	var meta api.Metadata
	g.get(t, "/v1/images/"+d+"/metadata", &meta)
	if meta.Distro != "debian" || meta.DistroVersion != "11" || meta.LayerCount != 1 || meta.Arch != "amd64" {
		t.Errorf("metadata = %+v", meta)
	}
	var files api.FileList
	g.get(t, "/v1/images/"+d+"/files", &files)
	found := false
	for _, f := range files.Files {
		if f.Path == "/var/lib/dpkg/status" && len(f.SHA256) == 64 {
			found = true
		}
	}
	if !found {
		t.Errorf("files lack /var/lib/dpkg/status with a sha256: %+v", files.Files)
	}
	for _, format := range []string{"syft-json", "cyclonedx-json", "spdx-json"} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/images/"+d+"/sbom?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !json.Valid(b) || !bytes.Contains(b, []byte("libc6")) {
			t.Errorf("sbom %s: %d, %d bytes", format, resp.StatusCode, len(b))
		}
	}

	// The same digest under a second tag is not analysed again.
	ref2 := host + "/team/dpkg:v2"
	push(t, ref2, sharedImage(t, "bullseye-dpkgonly"))
	again, err := g.c.SubmitImage(context.Background(), api.SubmitImageRequest{Ref: ref2})
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != api.StatusAnalyzed || again.Digest != img.Digest || len(again.Tags) != 2 {
		t.Errorf("second submit = %+v, want the analysed record with two tags", again)
	}
	// force queues it again
	forced, err := g.c.SubmitImage(context.Background(), api.SubmitImageRequest{Ref: ref2, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if forced.Status != api.StatusQueued {
		t.Errorf("forced submit status = %s, want queued", forced.Status)
	}

	// The check uses Anchore's default bundle, installed on first start.
	var verdict struct {
		FinalAction   string `json:"final_action"`
		BundleID      string `json:"bundle_id"`
		BundleVersion int    `json:"bundle_version"`
		Findings      []struct {
			Gate, Trigger, Action string
		} `json:"findings"`
	}
	g.c.WaitAnalyzed(context.Background(), img.Digest, time.Minute, nil)
	if code := g.get(t, "/v1/images/"+d+"/check?tag="+url.QueryEscape(ref), &verdict); code != 200 {
		t.Fatalf("check: %d", code)
	}
	if verdict.FinalAction != "stop" || verdict.BundleVersion != 1 || len(verdict.Findings) == 0 {
		t.Errorf("check = %+v, want stop under the default bundle", verdict)
	}
}

func TestAuthAndErrors(t *testing.T) {
	g := startGate(t, nil)
	ciToken := func() string {
		var out bytes.Buffer
		create := tokenCommandTo(&out).Subcommands[0]
		if err := create.ParseAndRun(context.Background(), []string{"--name", "ci", "--role", "ci", "--data", g.Config.DataDir}); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}()
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   string
		status int
		code   string
	}{
		{"no token", "GET", "/v1/images", "", "", 401, "unauthorized"},
		{"bad token", "GET", "/v1/images", "nope", "", 401, "unauthorized"},
		{"ci reads images", "GET", "/v1/images", ciToken, "", 200, ""},
		{"ci cannot delete", "DELETE", "/v1/images/sha256:x", ciToken, "", 403, "forbidden"},
		{"ci cannot import a DB", "POST", "/v1/db/import", ciToken, "x", 403, "forbidden"},
		{"ci cannot read policies", "GET", "/v1/policies", ciToken, "", 403, "forbidden"},
		{"unknown image", "GET", "/v1/images/sha256:0000", testToken, "", 404, "not_found"},
		{"bad json", "POST", "/v1/images", testToken, "{", 400, "invalid"},
		{"empty ref", "POST", "/v1/images", testToken, `{"ref": ""}`, 400, "invalid"},
		{"malformed ref", "POST", "/v1/images", testToken, `{"ref": "Host/UPPER:tag"}`, 400, "invalid"},
		{"ref with scheme", "POST", "/v1/images", testToken, `{"ref": "https://host/repo:tag"}`, 400, "invalid"},
		{"unknown host", "POST", "/v1/images", testToken, `{"ref": "no-such-host.invalid/repo:tag"}`, 400, "invalid"},
		{"corrupt DB archive", "POST", "/v1/db/import", testToken, "not a tarball", 400, "invalid"},
		{"unknown route", "GET", "/v1/nothing", testToken, "", 404, "not_found"},
		{"bad package type", "GET", "/v1/images/sha256:0000/vulnerabilities?type=nope", testToken, "", 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, g.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.path == "/v1/db/import" {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var er api.ErrorResponse
			json.NewDecoder(resp.Body).Decode(&er)
			if resp.StatusCode != tt.status || (tt.code != "" && er.Error.Code != tt.code) {
				t.Fatalf("%s %s = %d %+v, want %d %s", tt.method, tt.path, resp.StatusCode, er, tt.status, tt.code)
			}
			if tt.code != "" && er.Error.Message == "" {
				t.Error("error without a message")
			}
		})
	}
	// The DB survived the corrupt import.
	var st api.DBStatus
	g.get(t, "/v1/db", &st)
	if !st.Ready || len(st.Providers) == 0 {
		t.Errorf("db status after a corrupt import = %+v", st)
	}
	// health and readiness need no token; metrics need one, of either role
	// (issue 12), unless --metrics-public.
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d, want 401", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+p, nil)
		if p == "/metrics" {
			req.Header.Set("Authorization", "Bearer "+ciToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
		if p == "/metrics" {
			for _, m := range []string{"buildgate_queue_depth", "buildgate_analyses_total", "buildgate_analysis_duration_seconds", "buildgate_db_age_seconds", "buildgate_uploads_in_progress"} {
				if !bytes.Contains(b, []byte(m)) {
					t.Errorf("metrics lack %s", m)
				}
			}
		}
	}
}

// truncatingRegistry serves a registry whose blobs are cut short.
func truncatingRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && strings.Contains(r.URL.Path, "/bad/") {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 1000 {
				body = body[:len(body)/2]
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func layerWith(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFailedAnalyses(t *testing.T) {
	g := startGate(t, func(c *Config) { c.MaxLayerSize = 1 << 20 })
	host := truncatingRegistry(t)

	base := sharedImage(t, "bullseye-dpkgonly")
	// A layer of incompressible data, so the truncated blob is large.
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i*7919 + i/251)
	}
	withLayer, err := mutate.AppendLayers(base, layerWith(t, map[string]string{"data.bin": string(big)}))
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/bad/truncated:v1", withLayer)
	huge := make([]byte, 3<<20)
	rand.Read(huge)
	tooBig, _ := mutate.AppendLayers(base, layerWith(t, map[string]string{"huge.bin": string(huge)}))
	push(t, host+"/team/huge:v1", tooBig)

	tests := []struct {
		name string
		ref  string
		want string
	}{
		{"truncated layer", host + "/bad/truncated:v1", "pulling"},
		{"layer over the limit", host + "/team/huge:v1", "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := g.submitAndWait(t, tt.ref)
			if img.Status != api.StatusFailed || !strings.Contains(img.Error, tt.want) {
				t.Fatalf("image = %s %q, want failed with %q", img.Status, img.Error, tt.want)
			}
			var er api.ErrorResponse
			if code := g.get(t, "/v1/images/"+url.PathEscape(img.Digest)+"/vulnerabilities", &er); code != 409 || !strings.Contains(er.Error.Message, "failed") {
				t.Errorf("results of a failed image = %d %+v", code, er)
			}
		})
	}
	// The gate still serves.
	ok := testRegistry(t)
	push(t, ok+"/team/ok:v1", base)
	if img := g.submitAndWait(t, ok+"/team/ok:v1"); img.Status != api.StatusAnalyzed {
		t.Fatalf("after failures: %s %s", img.Status, img.Error)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	os.Exit(code)
}

// TestNegativeCacheSizesAreRefused: a gate told to keep a negative number
// of bytes does not start.
func TestNegativeCacheSizesAreRefused(t *testing.T) {
	for _, set := range []func(*Config){
		func(c *Config) { c.VerdictCacheSize = -1 },
		func(c *Config) { c.MatchCacheSize = -1 },
	} {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		set(&cfg)
		m := &Main{Config: cfg}
		err := m.Open(context.Background())
		if err == nil {
			m.Close()
			t.Fatal("a gate with a negative cache size started")
		}
		if !strings.Contains(err.Error(), "cache-size") {
			t.Fatalf("error %q does not name the flag", err)
		}
	}
}
