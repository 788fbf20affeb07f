package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate/internal/server/openapi"
)

// loadOpenAPI loads the embedded document with kin-openapi and validates it
// as OpenAPI 3.1, examples included.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the document does not validate: %v", err)
	}
	return doc
}

var echoParam = regexp.MustCompile(`:[^/]+|\*`)
var docParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPICoversRoutes checks the document against the server: every
// route echo registers under /v1 is in it and every operation in it is
// registered. The Anchore v1 subset is registered under its own prefix
// (/api/scanning/v1/anchore) and reaches /v1 only through a pre-routing
// dispatcher, so walking echo's routes under /v1 sees the gate's own API
// alone.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	g := startGate(t, nil)

	served := map[string]bool{}
	for _, r := range g.Server.Echo().Routes() {
		if r.Method == echo.RouteNotFound || (r.Path != "/v1" && !strings.HasPrefix(r.Path, "/v1/")) {
			continue
		}
		served[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+docParam.ReplaceAllString(path, "{}")] = true
		}
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes the gate serves that internal/server/openapi/openapi.yaml does not describe:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("operations in internal/server/openapi/openapi.yaml that the gate does not serve:\n  %s", strings.Join(extra, "\n  "))
	}
	if len(served) < 40 {
		t.Errorf("walked only %d /v1 routes; the walk is broken", len(served))
	}

	// The document and its reference page need no token.
	resp, err := http.Get(g.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := openapi.JSON()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET /v1/openapi.json without a token: %d, %d bytes (want 200, the embedded document)", resp.StatusCode, len(body))
	}
	if _, err := openapi3.NewLoader().LoadFromData(body); err != nil {
		t.Fatalf("the served JSON does not load: %v", err)
	}
	resp, err = http.Get(g.URL + "/v1/openapi.html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /v1/openapi.html: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, s := range []string{`id="submitImage"`, "<code>/v1/images/{digest}/check</code>", "SubmitImageRequest"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("the reference page lacks %q", s)
		}
	}
	if bytes.Contains(page, []byte("<script")) {
		t.Error("the reference page has a script")
	}

	// Real answers of the gate validate against the document, those about
	// an analysed Debian image with vulnerabilities included.
	host := testRegistry(t)
	push(t, host+"/team/app:1", sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, host+"/team/app:1")
	if img.Status != "analyzed" {
		t.Fatalf("analysis: %s %s", img.Status, img.Error)
	}
	d := "/v1/images/" + img.Digest
	for _, tc := range []struct {
		name, method, path, body, token string
		status                          int
	}{
		{name: "db status", method: "GET", path: "/v1/db", token: testToken, status: 200},
		{name: "no images", method: "GET", path: "/v1/images", token: testToken, status: 200},
		{name: "policies", method: "GET", path: "/v1/policies", token: testToken, status: 200},
		{name: "registries", method: "GET", path: "/v1/registries", token: testToken, status: 200},
		{name: "unknown image", method: "GET", path: "/v1/images/sha256:" + strings.Repeat("0", 64), token: testToken, status: 404},
		{name: "bad status", method: "GET", path: "/v1/images?status=done", token: testToken, status: 400},
		{name: "no token", method: "GET", path: "/v1/images", status: 401},
		{name: "image", method: "GET", path: d, token: testToken, status: 200},
		{name: "image list", method: "GET", path: "/v1/images?status=analyzed", token: testToken, status: 200},
		{name: "vulnerabilities", method: "GET", path: d + "/vulnerabilities?type=os", token: testToken, status: 200},
		{name: "packages", method: "GET", path: d + "/packages", token: testToken, status: 200},
		{name: "metadata", method: "GET", path: d + "/metadata", token: testToken, status: 200},
		{name: "files", method: "GET", path: d + "/files", token: testToken, status: 200},
		{name: "secrets", method: "GET", path: d + "/secrets", token: testToken, status: 200},
		{name: "check", method: "GET", path: d + "/check", token: testToken, status: 200},
		{name: "vulnerability changes", method: "GET", path: d + "/vulnerability-changes", token: testToken, status: 200},
		{name: "policies with the default", method: "GET", path: "/v1/policies", token: testToken, status: 200},
		{name: "tokens", method: "GET", path: "/v1/tokens", token: testToken, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
			}
			validateAnswer(t, doc, req, resp, b)
		})
	}
}

// validateAnswer checks an answer against the document's operation; opts
// are the document's allowances (harborSpecSlips).
func validateAnswer(t *testing.T, doc *openapi3.T, req *http.Request, resp *http.Response, body []byte, opts ...openapi3.ValidationOption) {
	t.Helper()
	route, params := findRoute(t, doc, req, opts...)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		if len(body) > 2000 {
			body = append(body[:2000:2000], "..."...)
		}
		msg := err.Error()
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		t.Errorf("the answer to %s %s does not match the document: %s\n%s", req.Method, req.URL.Path, msg, body)
	}
}

// findRoute finds the document's operation for a request.
func findRoute(t *testing.T, doc *openapi3.T, req *http.Request, opts ...openapi3.ValidationOption) (*routers.Route, map[string]string) {
	t.Helper()
	router, err := legacy.NewRouter(doc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Match on the path alone, under the document's server.
	u := *req.URL
	u.Scheme, u.Host = "", ""
	r2 := req.Clone(context.Background())
	r2.URL = &u
	route, params, err := router.FindRoute(r2)
	if err != nil {
		t.Fatalf("no operation in the document for %s %s: %v", req.Method, req.URL.Path, err)
	}
	return route, params
}

// TestOpenAPIExamplesValidate sends every request-body example of the
// document through kin-openapi's request validator, and checks that the
// validator refuses a broken body, so the check can fail.
func TestOpenAPIExamplesValidate(t *testing.T) {
	doc := loadOpenAPI(t)
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for ct, mt := range op.RequestBody.Value.Content {
				for name, ex := range mt.Examples {
					n++
					t.Run(op.OperationID+"/"+name, func(t *testing.T) {
						b, err := json.Marshal(ex.Value.Value)
						if err != nil {
							t.Fatal(err)
						}
						if err := validateRequest(t, doc, method, examplePath(path), ct, b); err != nil {
							t.Errorf("example %s of %s %s does not validate: %v", name, method, path, err)
						}
					})
				}
			}
		}
	}
	if n < 8 {
		t.Fatalf("found %d request examples, want at least 8", n)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{name: "submit without ref", method: "POST", path: "/v1/images", body: `{"tag":"a:1"}`},
		{name: "submit with unknown field", method: "POST", path: "/v1/images", body: `{"ref":"a:1","reff":"x"}`},
		{name: "registry type", method: "POST", path: "/v1/registries", body: `{"registry":"r","type":"ftp"}`},
		{name: "bad digest", method: "GET", path: "/v1/images/latest"},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			if err := validateRequest(t, doc, tc.method, tc.path, "application/json", []byte(tc.body)); err == nil {
				t.Errorf("%s %s %s validated; want an error", tc.method, tc.path, tc.body)
			}
		})
	}
}

// examplePath fills a document path's parameters with plausible values.
func examplePath(p string) string {
	return docParam.ReplaceAllStringFunc(p, func(s string) string {
		if s == "{digest}" {
			return url.PathEscape("sha256:" + strings.Repeat("ab", 32))
		}
		return "x1"
	})
}

func validateRequest(t *testing.T, doc *openapi3.T, method, path, ct string, body []byte) error {
	t.Helper()
	var r io.Reader
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, path, r)
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bearer x")
	route, params := findRoute(t, doc, req)
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
}
