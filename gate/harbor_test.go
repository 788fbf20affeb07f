package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// harborRegistry stands for the registry behind Harbor on 127.0.0.1: it
// serves only requests whose Authorization is exactly want (the short-lived
// authorization Harbor puts in a scan request), challenging for it as
// Harbor's registry does, and holds blob downloads while hold is set.
type harborRegistry struct {
	host  string // the authenticating front
	inner string // the registry behind it, for pushes
	want  string
	hold  atomic.Bool
	blobs atomic.Int32

	mu   sync.Mutex
	seen []string // the Authorization of every request
}

func newHarborRegistry(t *testing.T, want string) *harborRegistry {
	t.Helper()
	inner := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(inner.Close)
	r := &harborRegistry{inner: strings.TrimPrefix(inner.URL, "http://"), want: want}
	proxy := inner.Config.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got := req.Header.Get("Authorization")
		r.mu.Lock()
		r.seen = append(r.seen, got)
		r.mu.Unlock()
		if got != r.want {
			if strings.HasPrefix(r.want, "Bearer ") {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/service/token",service="harbor-registry"`, r.host))
			} else {
				w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
			return
		}
		if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet {
			r.blobs.Add(1)
			for r.hold.Load() {
				select {
				case <-req.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	r.host = strings.TrimPrefix(front.URL, "http://")
	return r
}

// push puts img in the registry as repo:tag and returns its digest.
func (r *harborRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	push(t, r.inner+"/"+repo+":v1", img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// requests returns how many requests the registry received, and whether
// every one that carried an Authorization carried want.
func (r *harborRegistry) requests() (n int, withWant int, other []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.seen {
		switch a {
		case r.want:
			withWant++
		case "":
		default:
			other = append(other, a)
		}
	}
	return len(r.seen), withWant, other
}

// harborCall is Harbor calling the gate's scanner adapter API; every
// answer is kept, to look for the registry credentials in.
type harborCall struct {
	base, token string
	mu          sync.Mutex
	answers     bytes.Buffer
}

func (h *harborCall) do(t *testing.T, method, path string, header map[string]string, body string) (*http.Request, *http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	// Harbor's client does not follow the report's 302 (it has no Location).
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h.mu.Lock()
	fmt.Fprintf(&h.answers, "%s %s\n%v\n%s\n", method, path, resp.Header, b)
	h.mu.Unlock()
	// The request as kin-openapi sees it, body intact.
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	return req, resp, b
}

// harborSpecSlips lets through the slips of v1.2: examples that are
// strings where objects belong, and "descriptions" beside a schema's
// fields. The schemas are what answers are checked against.
var harborSpecSlips = []openapi3.ValidationOption{openapi3.DisableExamplesValidation(), openapi3.AllowExtraSiblingFields("descriptions")}

// loadHarborSpec loads a version of the contract, its server at /harbor.
func loadHarborSpec(t *testing.T, version string) *openapi3.T {
	t.Helper()
	dir, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(dir, "contracts", "harbor", "scanner-adapter-openapi-"+version+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), harborSpecSlips...); err != nil {
		t.Fatalf("the Harbor %s contract does not load: %v", version, err)
	}
	doc.Servers = openapi3.Servers{{URL: "/harbor/api/v1"}}
	return doc
}

// validateHarbor checks a request and its answer against the contract.
func validateHarbor(t *testing.T, doc *openapi3.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	registerHarborDecoders()
	route, params := findRoute(t, doc, req, harborSpecSlips...)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("the request %s %s is not the contract's: %v", req.Method, req.URL.Path, err)
	}
	validateHarborAnswer(t, doc, req, resp, body)
}

// validateHarborAnswer checks an answer against the contract (of a
// request that may not be the contract's: the refusals).
func validateHarborAnswer(t *testing.T, doc *openapi3.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	registerHarborDecoders()
	if req.Body != nil {
		req.Body = io.NopCloser(bytes.NewReader(nil))
	}
	validateAnswer(t, doc, req, resp, body, harborSpecSlips...)
}

var harborDecoders sync.Once

// registerHarborDecoders has kin-openapi read the spec's media types as
// JSON: some have no +json suffix.
func registerHarborDecoders() {
	harborDecoders.Do(func() {
		for _, mt := range []string{
			"application/vnd.scanner.adapter.scan.request+json", "application/vnd.security.vulnerability.report",
			"application/vnd.scanner.adapter.vuln.report.harbor+json", "application/vnd.security.sbom.report+json",
			"application/vnd.scanner.adapter.metadata+json", "application/vnd.scanner.adapter.scan.response+json",
			"application/vnd.scanner.adapter.error+json",
		} {
			openapi3filter.RegisterBodyDecoder(mt, openapi3filter.JSONBodyDecoder)
		}
	})
}

type harborReport struct {
	GeneratedAt     time.Time `json:"generated_at"`
	Scanner         struct{ Name, Vendor, Version string }
	Artifact        struct{ Digest string }
	Severity        string `json:"severity"`
	Vulnerabilities []struct {
		ID            string   `json:"id"`
		Package       string   `json:"package"`
		Version       string   `json:"version"`
		FixVersion    string   `json:"fix_version"`
		Severity      string   `json:"severity"`
		Links         []string `json:"links"`
		PreferredCVSS *struct {
			ScoreV3  *float64 `json:"score_v3"`
			VectorV3 string   `json:"vector_v3"`
		} `json:"preferred_cvss"`
		VendorAttributes struct {
			PackageType string                     `json:"package_type"`
			PURL        string                     `json:"purl"`
			CVSS        map[string]json.RawMessage `json:"CVSS"`
		} `json:"vendor_attributes"`
	} `json:"vulnerabilities"`
}

const (
	mimeVuln11    = "application/vnd.security.vulnerability.report; version=1.1"
	mimeVulnHb10  = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	mimeSBOM10    = "application/vnd.security.sbom.report+json; version=1.0"
	mimeScanReq11 = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	mimeScanReq10 = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	mimeScanResp  = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
)

// scanBody is the spec's ScanRequest as Harbor sends it: v1.2 with the
// enabled capabilities, v1.1 without.
func scanBody(regURL, authorization, repo, digest string, v12 bool) string {
	req := map[string]any{
		"registry": map[string]string{"url": regURL, "authorization": authorization},
		"artifact": map[string]string{"repository": repo, "digest": digest, "tag": "v1",
			"mime_type": "application/vnd.docker.distribution.manifest.v2+json"},
	}
	if v12 {
		req["enabled_capabilities"] = []map[string]any{
			{"type": "vulnerability", "produces_mime_types": []string{mimeVuln11}},
			{"type": "sbom", "produces_mime_types": []string{mimeSBOM10},
				"parameters": map[string]any{"sbom_media_types": []string{"application/spdx+json", "application/vnd.cyclonedx+json"}}},
		}
	}
	b, _ := json.Marshal(req)
	return string(b)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestHarborScannerAdapter drives a real `gate serve` process as Harbor
// does, with a Basic (v1.2) and a Bearer (v1.1) registry authorization
// against registries that demand them: metadata, scan, report pending and
// ready, SBOM reports, the refusals, a restart between scan and pull; and
// the credentials are in no log line, stored file or answer.
func TestHarborScannerAdapter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	doc11, doc12 := loadHarborSpec(t, "v1.1"), loadHarborSpec(t, "v1.2")
	data := t.TempDir()
	if _, err := importDB(t, data); err != nil {
		t.Fatal(err)
	}
	token := func(name, role string) string {
		var out bytes.Buffer
		if err := tokenCommandTo(&out).Subcommands[0].ParseAndRun(context.Background(), []string{"--name", name, "--role", role, "--data", data}); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	adminToken, ciToken, admissionToken := token("admin", "admin"), token("harbor", "ci"), token("k8s", "admission")

	robotSecret := "robot-secret-" + randomHex(t, 12)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$library+scan-7f3a:"+robotSecret))
	bearerToken := "harbor-jwt-" + randomHex(t, 16)
	wrongSecret := "expired-secret-" + randomHex(t, 12)
	wrongBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$library+scan-7f3a:"+wrongSecret))
	secrets := []string{robotSecret, strings.TrimPrefix(basic, "Basic "), bearerToken, wrongSecret, strings.TrimPrefix(wrongBasic, "Basic ")}

	base := sharedImage(t, "bullseye-dpkgonly")
	variant := func(name string) v1.Image {
		img, err := mutate.AppendLayers(base, layerWith(t, map[string]string{"etc/" + name: name}))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	regBasic := newHarborRegistry(t, basic)
	regBearer := newHarborRegistry(t, "Bearer "+bearerToken)
	digestBasic := regBasic.push(t, "library/debian", base)
	digestBearer := regBearer.push(t, "library/debian-b", variant("bearer"))
	digestRefused := regBasic.push(t, "library/refused", variant("refused"))
	digestRestart := regBasic.push(t, "library/restart", variant("restart"))

	logPath := filepath.Join(t.TempDir(), "gate.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	addr := freePort(t)
	args := []string{"serve", "--addr", addr, "--data", data, "--db-update-url", "", "--workers", "1", "--log-level", "debug",
		"--allow-private-networks", "127.0.0.0/8"}
	top := t
	gate := gateProcessLogging(t, logFile, args...)
	h := &harborCall{base: "http://" + addr, token: ciToken}
	admin := client.New("http://"+addr, adminToken, nil)
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("the gate's log, its end:\n%s", b)
		}
	}()
	waitFor(t, "the gate", 30*time.Second, func() bool {
		_, err := admin.DBStatus(context.Background())
		return err == nil
	})

	t.Run("metadata", func(t *testing.T) {
		db, err := admin.DBStatus(context.Background())
		if err != nil || db.Built == nil {
			t.Fatalf("db status: %+v %v", db, err)
		}
		req, resp, body := h.do(t, "GET", "/harbor/api/v1/metadata", map[string]string{"Accept": "application/vnd.scanner.adapter.metadata+json; version=1.1"}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("metadata: %d %s", resp.StatusCode, body)
		}
		validateHarbor(t, doc12, req, resp, body)
		var m struct {
			Scanner      struct{ Name, Vendor, Version string }
			Capabilities []struct {
				Type     string   `json:"type"`
				Consumes []string `json:"consumes_mime_types"`
				Produces []string `json:"produces_mime_types"`
			}
			Properties map[string]string
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if m.Scanner.Name != "buildgate" || m.Scanner.Version != version {
			t.Errorf("scanner = %+v, want buildgate %s", m.Scanner, version)
		}
		got := map[string][]string{}
		for _, c := range m.Capabilities {
			got[c.Type] = c.Produces
			if strings.Join(c.Consumes, ",") != "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json" {
				t.Errorf("%s consumes %v", c.Type, c.Consumes)
			}
		}
		if got["vulnerability"][0] != mimeVuln11 || len(got["sbom"]) != 1 || got["sbom"][0] != mimeSBOM10 {
			t.Errorf("capabilities = %+v", m.Capabilities)
		}
		updated, err := time.Parse(time.RFC3339Nano, m.Properties["harbor.scanner-adapter/vulnerability-database-updated-at"])
		if err != nil || !updated.Equal(*db.Built) {
			t.Errorf("vulnerability-database-updated-at = %q, want the DB build time %s", m.Properties["harbor.scanner-adapter/vulnerability-database-updated-at"], db.Built)
		}

		// Harbor of the v1.1 API asks for metadata 1.0: vulnerabilities only.
		req, resp, body = h.do(t, "GET", "/harbor/api/v1/metadata", map[string]string{"Accept": "application/vnd.scanner.adapter.metadata+json; version=1.0"}, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.scanner.adapter.metadata+json; version=1.0" || strings.Contains(string(body), "sbom") {
			t.Fatalf("metadata 1.0: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		validateHarbor(t, doc11, req, resp, body)
	})

	// scan posts a scan request and returns its id.
	scan := func(t *testing.T, doc *openapi3.T, ct, body string) string {
		t.Helper()
		req, resp, b := h.do(t, "POST", "/harbor/api/v1/scan", map[string]string{"Content-Type": ct, "Accept": mimeScanResp}, body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("scan: %d %s", resp.StatusCode, b)
		}
		validateHarbor(t, doc, req, resp, b)
		var out struct{ ID string }
		if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
			t.Fatalf("scan answer %s: %v", b, err)
		}
		return out.ID
	}
	// report polls a report as Harbor does until it is no longer 302.
	report := func(t *testing.T, doc *openapi3.T, id, accept, query string) (*http.Response, []byte) {
		t.Helper()
		var resp *http.Response
		var body []byte
		waitFor(t, "the report of "+id, 3*time.Minute, func() bool {
			var req *http.Request
			req, resp, body = h.do(t, "GET", "/harbor/api/v1/scan/"+id+"/report"+query, map[string]string{"Accept": accept}, "")
			validateHarbor(t, doc, req, resp, body)
			return resp.StatusCode != http.StatusFound
		})
		return resp, body
	}

	t.Run("basic authorization, v1.2", func(t *testing.T) {
		regBasic.hold.Store(true)
		id := scan(t, doc12, mimeScanReq11, scanBody("http://"+regBasic.host, basic, "library/debian", digestBasic, true))
		// Pending while the pull is held.
		req, resp, body := h.do(t, "GET", "/harbor/api/v1/scan/"+id+"/report", map[string]string{"Accept": mimeVuln11}, "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("report while the pull is held: %d %s", resp.StatusCode, body)
		}
		if n, err := strconv.Atoi(resp.Header.Get("Refresh-After")); err != nil || n <= 0 {
			t.Errorf("Refresh-After = %q, want a number of seconds", resp.Header.Get("Refresh-After"))
		}
		validateHarbor(t, doc12, req, resp, body)
		waitFor(t, "the pull to reach the blobs", time.Minute, func() bool { return regBasic.blobs.Load() > 0 })
		regBasic.hold.Store(false)

		resp, body = report(t, doc12, id, mimeVuln11, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mimeVuln11 {
			t.Fatalf("report: %d %s %.500s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var rep harborReport
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		own, err := admin.Vulnerabilities(context.Background(), digestBasic, "all")
		if err != nil {
			t.Fatal(err)
		}
		if len(own.Vulnerabilities) == 0 || len(rep.Vulnerabilities) != len(own.Vulnerabilities) {
			t.Fatalf("the report has %d vulnerabilities, the gate's /v1 answer %d", len(rep.Vulnerabilities), len(own.Vulnerabilities))
		}
		if rep.Artifact.Digest != digestBasic || rep.Scanner.Name != "buildgate" {
			t.Errorf("report artifact %+v scanner %+v", rep.Artifact, rep.Scanner)
		}
		type key struct{ id, pkg string }
		want := map[key]api.Vulnerability{}
		top := ""
		rank := map[string]int{"Unknown": 0, "Negligible": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}
		for _, v := range own.Vulnerabilities {
			want[key{v.ID, v.PackageName}] = v
			if top == "" || rank[v.Severity] > rank[top] {
				top = v.Severity
			}
		}
		if rep.Severity != top {
			t.Errorf("report severity %q, want the highest, %q", rep.Severity, top)
		}
		var fixed, scored, purls int
		for _, v := range rep.Vulnerabilities {
			w, ok := want[key{v.ID, v.Package}]
			if !ok {
				t.Errorf("the report has %s in %s, which the gate does not", v.ID, v.Package)
				continue
			}
			if v.Severity != w.Severity || v.Version != w.PackageVersion || v.VendorAttributes.PackageType != w.PackageType {
				t.Errorf("%s in %s: %s %s %s, want %s %s %s", v.ID, v.Package, v.Severity, v.Version, v.VendorAttributes.PackageType, w.Severity, w.PackageVersion, w.PackageType)
			}
			if w.FixState == "fixed" && v.FixVersion != strings.Join(w.FixVersions, ", ") {
				t.Errorf("%s in %s: fix_version %q, want %v", v.ID, v.Package, v.FixVersion, w.FixVersions)
			}
			if w.FixState != "fixed" && v.FixVersion != "" {
				t.Errorf("%s in %s (%s): fix_version %q", v.ID, v.Package, w.FixState, v.FixVersion)
			}
			if len(v.Links) != len(w.URLs) {
				t.Errorf("%s: links %v, want %v", v.ID, v.Links, w.URLs)
			}
			if v.FixVersion != "" {
				fixed++
			}
			if v.PreferredCVSS != nil && v.PreferredCVSS.ScoreV3 != nil && strings.HasPrefix(v.PreferredCVSS.VectorV3, "CVSS:3") && len(v.VendorAttributes.CVSS) > 0 {
				scored++
			}
			if strings.HasPrefix(v.VendorAttributes.PURL, "pkg:deb/debian/"+v.Package+"@") {
				purls++
			}
		}
		if fixed == 0 || scored == 0 || purls != len(rep.Vulnerabilities) {
			t.Errorf("of %d vulnerabilities %d have a fix version, %d a CVSS v3 score, %d the package's purl", len(rep.Vulnerabilities), fixed, scored, purls)
		}

		for _, tc := range []struct{ media, marker string }{
			{"application/vnd.cyclonedx+json", `"bomFormat":"CycloneDX"`},
			{"application/spdx+json", `"spdxVersion":"SPDX-`},
		} {
			resp, body := report(t, doc12, id, mimeSBOM10, "?sbom_media_type="+strings.ReplaceAll(tc.media, "+", "%2B"))
			if resp.StatusCode != 200 {
				t.Fatalf("SBOM report %s: %d %s", tc.media, resp.StatusCode, body)
			}
			var sb struct {
				MediaType string          `json:"media_type"`
				SBOM      json.RawMessage `json:"sbom"`
			}
			if err := json.Unmarshal(body, &sb); err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			json.Compact(&compact, sb.SBOM)
			if sb.MediaType != tc.media || !strings.Contains(compact.String(), tc.marker) || !strings.Contains(compact.String(), "libc6") {
				t.Errorf("SBOM report %s: media_type %q, document %.300s", tc.media, sb.MediaType, compact.String())
			}
		}
		if n, withWant, other := regBasic.requests(); withWant == 0 || len(other) > 0 {
			t.Errorf("the registry got %d requests, %d with Harbor's authorization, others with %q", n, withWant, other)
		}
	})

	t.Run("bearer authorization, v1.1", func(t *testing.T) {
		id := scan(t, doc11, mimeScanReq10, scanBody("http://"+regBearer.host, "Bearer "+bearerToken, "library/debian-b", digestBearer, false))
		resp, body := report(t, doc11, id, mimeVulnHb10, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mimeVulnHb10 {
			t.Fatalf("report: %d %s %.500s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var rep harborReport
		if err := json.Unmarshal(body, &rep); err != nil || len(rep.Vulnerabilities) == 0 || rep.Artifact.Digest != digestBearer {
			t.Fatalf("report %.300s: %v", body, err)
		}
		if n, withWant, other := regBearer.requests(); withWant == 0 || len(other) > 0 {
			t.Errorf("the registry got %d requests, %d with Harbor's authorization, others with %q", n, withWant, other)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		basicID := strings.Replace(digestBasic, ":", "-", 1)
		closed := freePort(t)
		tests := []struct {
			name, method, path, ct, accept, body string
			status                               int
			want                                 []string
		}{
			{name: "unknown report type", method: "GET", path: "/scan/" + basicID + "/report", accept: "application/vnd.scanner.adapter.vuln.report.raw",
				status: 400, want: []string{mimeVuln11, mimeVulnHb10, mimeSBOM10}},
			{name: "sbom without its media type", method: "GET", path: "/scan/" + basicID + "/report", accept: mimeSBOM10,
				status: 400, want: []string{"sbom_media_type", "application/spdx+json", "application/vnd.cyclonedx+json"}},
			{name: "unknown scan", method: "GET", path: "/scan/sha256-" + strings.Repeat("0", 64) + "/report", accept: mimeVuln11, status: 404},
			{name: "malformed JSON", method: "POST", path: "/scan", ct: mimeScanReq11, body: `{"registry":`, status: 400, want: []string{"JSON"}},
			{name: "no digest", method: "POST", path: "/scan", ct: mimeScanReq11, status: 422, want: []string{"artifact.digest"},
				body: scanBody("http://"+regBasic.host, basic, "library/debian", "", true)},
			{name: "no authorization", method: "POST", path: "/scan", ct: mimeScanReq11, status: 422, want: []string{"registry.authorization"},
				body: scanBody("http://"+regBasic.host, "", "library/debian", digestBasic, true)},
			{name: "authorization scheme", method: "POST", path: "/scan", ct: mimeScanReq11, status: 422, want: []string{"Basic", "Bearer"},
				body: scanBody("http://"+regBasic.host, "Token "+robotSecret, "library/debian", digestBasic, true)},
			{name: "unknown capability", method: "POST", path: "/scan", ct: mimeScanReq11, status: 501, want: []string{"secrets"},
				body: strings.Replace(scanBody("http://"+regBasic.host, basic, "library/debian", digestBasic, true), `"type":"sbom"`, `"type":"secrets"`, 1)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, resp, body := h.do(t, tc.method, "/harbor/api/v1"+tc.path, map[string]string{"Content-Type": tc.ct, "Accept": tc.accept}, tc.body)
				if resp.StatusCode != tc.status {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
				}
				var e struct{ Error struct{ Message string } }
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || resp.Header.Get("Content-Type") != "application/vnd.scanner.adapter.error+json; version=1.0" {
					t.Fatalf("not the spec's error: %s %s", resp.Header.Get("Content-Type"), body)
				}
				for _, w := range tc.want {
					if !strings.Contains(e.Error.Message, w) {
						t.Errorf("%q does not name %q", e.Error.Message, w)
					}
				}
				validateHarborAnswer(t, doc12, req, resp, body)
			})
		}

		t.Run("no token", func(t *testing.T) {
			anon := &harborCall{base: h.base, token: ""}
			_, resp, body := anon.do(t, "GET", "/harbor/api/v1/metadata", nil, "")
			if resp.StatusCode != 401 || !strings.Contains(string(body), `"message"`) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})

		t.Run("token of another role", func(t *testing.T) {
			k8s := &harborCall{base: h.base, token: admissionToken}
			_, resp, body := k8s.do(t, "POST", "/harbor/api/v1/scan", map[string]string{"Content-Type": mimeScanReq11},
				scanBody("http://"+regBasic.host, basic, "library/debian", digestBasic, true))
			if resp.StatusCode != 403 || !strings.Contains(string(body), "submit images") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})

		t.Run("registry unreachable", func(t *testing.T) {
			id := scan(t, doc12, mimeScanReq11, scanBody("http://"+closed, basic, "library/gone", "sha256:"+strings.Repeat("ab", 32), true))
			resp, body := report(t, doc12, id, mimeVuln11, "")
			if resp.StatusCode != 500 || !strings.Contains(string(body), closed) || !strings.Contains(string(body), "cannot connect") {
				t.Fatalf("report: %d %s, want 500 naming the registry %s", resp.StatusCode, body, closed)
			}
		})

		t.Run("registry refuses the authorization", func(t *testing.T) {
			id := scan(t, doc12, mimeScanReq11, scanBody("http://"+regBasic.host, wrongBasic, "library/refused", digestRefused, true))
			resp, body := report(t, doc12, id, mimeVuln11, "")
			if resp.StatusCode != 500 || !strings.Contains(string(body), "UNAUTHORIZED") || !strings.Contains(string(body), regBasic.host) {
				t.Fatalf("report: %d %s, want 500 quoting the registry's refusal", resp.StatusCode, body)
			}
		})
	})

	t.Run("restart before the pull", func(t *testing.T) {
		regBasic.hold.Store(true)
		defer regBasic.hold.Store(false)
		before := regBasic.blobs.Load()
		id := scan(t, doc12, mimeScanReq11, scanBody("http://"+regBasic.host, basic, "library/restart", digestRestart, true))
		waitFor(t, "the pull to reach the blobs", time.Minute, func() bool { return regBasic.blobs.Load() > before })
		if err := gate.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		gate.Wait()
		n, _, _ := regBasic.requests()
		regBasic.hold.Store(false)
		gate = gateProcessLogging(top, logFile, args...) // lives past this subtest
		waitFor(t, "the gate again", 30*time.Second, func() bool {
			_, err := admin.DBStatus(context.Background())
			return err == nil
		})
		resp, body := report(t, doc12, id, mimeVuln11, "")
		if resp.StatusCode != 500 || !strings.Contains(string(body), "authorization sent with this scan request is gone") {
			t.Fatalf("report after a restart: %d %s, want the scan failed for want of the authorization", resp.StatusCode, body)
		}
		if after, _, _ := regBasic.requests(); after != n {
			t.Errorf("the registry got %d requests after the restart; the image must not be pulled without Harbor's authorization", after-n)
		}
		// Harbor scans again: the new authorization pulls it.
		id = scan(t, doc12, mimeScanReq11, scanBody("http://"+regBasic.host, basic, "library/restart", digestRestart, true))
		if resp, body := report(t, doc12, id, mimeVuln11, ""); resp.StatusCode != 200 {
			t.Fatalf("report of the second scan: %d %.300s", resp.StatusCode, body)
		}
	})

	// The credentials are in no answer, log line or stored file.
	if err := gate.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gate.Wait()
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logged, []byte("harbor scan accepted")) {
		t.Fatalf("the gate's log has no scan in it:\n%.2000s", logged)
	}
	var stored int
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		stored++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a registry credential", path)
			}
		}
		return nil
	})
	if err != nil || stored == 0 {
		t.Fatalf("walking the data directory: %d files, %v", stored, err)
	}
	for _, s := range secrets {
		if bytes.Contains(logged, []byte(s)) {
			t.Errorf("the gate's log holds a registry credential")
		}
		if bytes.Contains(h.answers.Bytes(), []byte(s)) {
			t.Errorf("an answer holds a registry credential")
		}
	}
}
