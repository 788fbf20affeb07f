package anchore_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/server/anchore"
)

// fakeStore knows three tokens and one analysed image; any other call
// panics (the embedded interface is nil).
type fakeStore struct{ anchore.Store }

func (fakeStore) TokenByHash(_ context.Context, hash string) (*buildgate.Token, error) {
	switch hash {
	case server.HashToken("admin-token"):
		return &buildgate.Token{Name: "admin", Role: buildgate.RoleAdmin}, nil
	case server.HashToken("ci-token"):
		return &buildgate.Token{Name: "ci", Role: buildgate.RoleCI}, nil
	case server.HashToken("viewer-token"):
		// A token that verifies but whose role no route takes: the
		// dispatcher looks at its body, the handlers refuse it.
		return &buildgate.Token{Name: "viewer", Role: "viewer"}, nil
	}
	return nil, buildgate.Errorf(buildgate.EUNAUTHORIZED, "unknown token")
}

func (fakeStore) Image(_ context.Context, digest string) (*buildgate.Image, error) {
	if digest != "sha256:abc" {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "image %q not found", digest)
	}
	return &buildgate.Image{Digest: digest, Status: buildgate.StatusAnalyzed, Tags: []string{"docker.io/x:1"}}, nil
}

// noActivePolicy answers every check as the store does with no active bundle.
type noActivePolicy struct{ anchore.Verdicts }

func (noActivePolicy) Check(context.Context, string, string, string) (*policy.Verdict, error) {
	return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no policy is active")
}

// fakeRegistries records what the Anchore routes pass on.
type fakeRegistries struct {
	calls    []string
	cred     buildgate.RegistryCredential
	password string
	validate bool
}

func (f *fakeRegistries) Add(_ context.Context, c buildgate.RegistryCredential, pw string, validate bool) (*buildgate.RegistryCredential, error) {
	f.calls = append(f.calls, "add "+c.Registry)
	f.cred, f.password, f.validate = c, pw, validate
	return &c, nil
}

func (f *fakeRegistries) Update(_ context.Context, registry string, c buildgate.RegistryCredential, pw string, validate bool) (*buildgate.RegistryCredential, error) {
	f.calls = append(f.calls, "update "+registry)
	f.cred, f.password, f.validate = c, pw, validate
	c.Registry = registry
	return &c, nil
}

func (f *fakeRegistries) Get(_ context.Context, registry string) (*buildgate.RegistryCredential, error) {
	f.calls = append(f.calls, "get "+registry)
	return &buildgate.RegistryCredential{Registry: registry, Username: "robot", Type: "docker_v2"}, nil
}

func (f *fakeRegistries) List(context.Context) ([]buildgate.RegistryCredential, error) {
	f.calls = append(f.calls, "list")
	return []buildgate.RegistryCredential{{Registry: "quay.io/org", Username: "org+robot", Type: "docker_v2"}}, nil
}

func (f *fakeRegistries) Delete(_ context.Context, registry string) error {
	f.calls = append(f.calls, "delete "+registry)
	return nil
}

// newServer mounts the Anchore API beside stand-ins for the gate's own
// /v1 routes (answering "ours:<body>") on one echo instance, and reports
// the route that served each request in X-Route.
func newServer(t *testing.T, regs anchore.Registries) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Route", c.Path())
			return next(c)
		}
	})
	ours := func(c echo.Context) error {
		b, _ := io.ReadAll(c.Request().Body)
		return c.String(http.StatusOK, "ours:"+string(b))
	}
	// Like the gate's /v1 group: a group middleware makes echo add a
	// catch-all 404 route under /v1.
	v1 := e.Group("/v1", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	for _, r := range []struct{ method, path string }{
		{"POST", "/images"}, {"GET", "/images"}, {"GET", "/images/:digest"}, {"DELETE", "/images/:digest"},
		{"GET", "/images/:digest/check"}, {"GET", "/images/:digest/vulnerabilities"},
		{"POST", "/policies"}, {"GET", "/policies"}, {"GET", "/policies/:id"}, {"PUT", "/policies/:id"}, {"DELETE", "/policies/:id"},
		{"POST", "/registries"}, {"GET", "/registries"}, {"GET", "/registries/*"}, {"PUT", "/registries/*"}, {"DELETE", "/registries/*"},
	} {
		v1.Add(r.method, r.path, ours)
	}
	cfg := anchore.Config{Store: fakeStore{}, Verdicts: noActivePolicy{}}
	if regs != nil {
		cfg.Registries = regs
	}
	anchore.Route(e, cfg)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	status int
	route  string
	header http.Header
	body   string
}

func send(t *testing.T, srv *httptest.Server, method, path, auth, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(auth, "basic "):
		req.SetBasicAuth(strings.TrimPrefix(auth, "basic "), "None")
	case strings.HasPrefix(auth, "bearer "):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(auth, "bearer "))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, route: resp.Header.Get("X-Route"), header: resp.Header, body: string(b)}
}

// TestDispatch checks which API answers each request under /v1: Anchore
// when only it has the route, ours when only ours has it (or neither),
// and by the request's shape where both have it.
func TestDispatch(t *testing.T) {
	srv := newServer(t, nil)
	const (
		ours    = "ours"
		anchor  = "anchore"
		bundle  = `{"id": "b", "policies": [], "mappings": []}`
		unknown = "ci-token-unknown"
	)
	tests := []struct {
		name, method, path, auth, body, want string
	}{
		{"ping", "GET", "/v1", "", "", anchor},
		{"ping with a slash", "GET", "/v1/", "", "", anchor},
		{"swagger", "GET", "/v1/swagger.json", "", "", anchor},
		{"our image add", "POST", "/v1/images", "bearer viewer-token", `{"ref": "x:1"}`, ours},
		{"anchore image add, bearer", "POST", "/v1/images", "bearer viewer-token", `{"tag": "x:1"}`, anchor},
		{"no token: the body is not looked at", "POST", "/v1/images", "", `{"tag": "x:1"}`, ours},
		{"unknown token: the body is not looked at", "POST", "/v1/images", "bearer nope", `{"tag": "x:1"}`, ours},
		{"anchore image add, basic", "POST", "/v1/images", "basic t", `{"tag": "x:1", "ref": "y"}`, anchor},
		{"invalid JSON stays ours", "POST", "/v1/images", "bearer viewer-token", `{`, ours},
		{"our image list", "GET", "/v1/images", "bearer t", "", ours},
		{"anchore image list, basic", "GET", "/v1/images", "basic t", "", anchor},
		{"anchore image get by tag", "GET", "/v1/images?fulltag=x&history=false", "bearer t", "", anchor},
		{"anchore fallback with a GET body", "GET", "/v1/images?history=false", "", `{"tag": "x"}`, anchor},
		{"our image get", "GET", "/v1/images/sha256:abc", "bearer t", "", ours},
		{"anchore image get, encoded", "GET", "/v1/images/sha256%3Aabc", "basic t", "", anchor},
		{"our image delete", "DELETE", "/v1/images/sha256:abc", "bearer t", "", ours},
		{"anchore image delete", "DELETE", "/v1/images/sha256:abc?force=True", "basic t", "", anchor},
		{"our check", "GET", "/v1/images/sha256:abc/check?tag=x", "bearer t", "", ours},
		{"anchore check by its parameters", "GET", "/v1/images/sha256:abc/check?tag=x&detail=true", "bearer t", "", anchor},
		{"anchore check by policyId", "GET", "/v1/images/sha256:abc/check?tag=x&policyId=p", "bearer t", "", anchor},
		{"anchore-only vuln", "GET", "/v1/images/sha256:abc/vuln/all", "bearer t", "", anchor},
		{"anchore-only content", "GET", "/v1/images/sha256:abc/content/os", "", "", anchor},
		{"anchore-only by_id", "GET", "/v1/images/by_id/0123", "bearer t", "", anchor},
		{"our-only vulnerabilities, even with basic", "GET", "/v1/images/sha256:abc/vulnerabilities", "basic t", "", ours},
		{"neither: ours answers", "GET", "/v1/nothing", "bearer t", "", ours},
		{"neither, basic: ours answers", "GET", "/v1/nothing", "basic t", "", ours},
		{"our policy add", "POST", "/v1/policies", "bearer viewer-token", bundle, ours},
		{"our policy add, YAML", "POST", "/v1/policies", "bearer viewer-token", "id: b\n", ours},
		{"anchore policy add", "POST", "/v1/policies?detail=True", "basic t", bundle, anchor},
		{"our policy update", "PUT", "/v1/policies/b", "bearer viewer-token", bundle, ours},
		{"anchore policy activate", "PUT", "/v1/policies/b", "bearer viewer-token", `{"policyId": "b", "active": true, "policybundle": {}}`, anchor},
		{"our registry add", "POST", "/v1/registries?validate=false", "bearer viewer-token", `{"registry": "r", "username": "u", "password": "p"}`, ours},
		{"anchore registry add", "POST", "/v1/registries?validate=False", "bearer viewer-token", `{"registry": "r", "registry_user": "u", "registry_pass": "p"}`, anchor},
		{"our registry get", "GET", "/v1/registries/quay.io%2Forg", "bearer t", "", ours},
		{"anchore registry get", "GET", "/v1/registries/quay.io%2Forg", "basic t", "", anchor},
		{"anchore-only subscriptions", "GET", "/v1/subscriptions", "bearer t", "", anchor},
		{"anchore-only system feeds", "GET", "/v1/system/feeds", "bearer t", "", anchor},
		{"the anchore prefix", "GET", anchore.Prefix + "/images", "bearer " + unknown, "", anchor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, srv, tt.method, tt.path, tt.auth, tt.body)
			got := ours
			if strings.HasPrefix(r.route, anchore.Prefix) {
				got = anchor
			}
			if got != tt.want {
				t.Fatalf("%s %s served by %s (route %q, %d %s), want %s", tt.method, tt.path, got, r.route, r.status, r.body, tt.want)
			}
			if got == ours && r.status == 200 && r.body != "ours:"+tt.body {
				t.Errorf("our handler read %q, want the whole body %q", r.body, tt.body)
			}
		})
	}
}

func decodeError(t *testing.T, r result, status int) string {
	t.Helper()
	var e struct {
		Message  string `json:"message"`
		HTTPCode int    `json:"httpcode"`
		Detail   struct {
			ErrorCodes []string `json:"error_codes"`
		} `json:"detail"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.status != status || e.HTTPCode != status || e.Message == "" || e.Detail.ErrorCodes == nil {
		t.Fatalf("%d %s, want Anchore's error with %d", r.status, r.body, status)
	}
	return e.Message
}

func TestAuthAndErrors(t *testing.T) {
	srv := newServer(t, nil)
	tests := []struct {
		name, method, path, auth string
		status                   int
	}{
		{"no credentials", "GET", "/images", "", 401},
		{"unknown token", "GET", "/images", "basic nope", 401},
		{"empty basic user", "GET", "/images", "basic ", 401},
		{"ci may not manage policies", "GET", "/policies", "basic ci-token", 403},
		{"ci may not manage registries", "GET", "/registries", "basic ci-token", 403},
		{"ci may not delete images", "DELETE", "/images/sha256:abc", "basic ci-token", 403},
		{"unknown image", "GET", "/images/sha256%3Aother/check?tag=x", "basic ci-token", 404},
		{"bad boolean", "GET", "/images/sha256:abc/check?tag=x&detail=maybe", "bearer ci-token", 400},
		{"unknown path", "GET", "/nothing", "bearer admin-token", 404},
		{"registries are not wired", "GET", "/registries", "basic admin-token", 501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, base := range []string{anchore.Prefix, "/v1"} {
				if (tt.path == "/nothing" || tt.auth == "") && base == "/v1" {
					continue // the gate's own API answers these
				}
				r := send(t, srv, tt.method, base+tt.path, tt.auth, "")
				decodeError(t, r, tt.status)
				if tt.status == 401 && strings.Join(r.header.Values("WWW-Authenticate"), ",") != `Bearer realm="buildgate"` {
					t.Errorf("401 challenges %v, want Bearer only", r.header.Values("WWW-Authenticate"))
				}
			}
		})
	}
	// Basic with an empty password, Basic with "None" and Bearer all work;
	// with no active policy, /check is a 404.
	for _, auth := range []string{"basic ci-token", "bearer ci-token"} {
		r := send(t, srv, "GET", anchore.Prefix+"/images/sha256%3Aabc/check?history=false&detail=True&tag=docker.io/x:1", auth, "")
		if msg := decodeError(t, r, 404); !strings.Contains(msg, "no policy is active") {
			t.Errorf("check without an active policy: %q", msg)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+anchore.Prefix+"/images/sha256:abc/check?tag=x", nil)
	req.SetBasicAuth("ci-token", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("Basic with an empty password = %d", resp.StatusCode)
	}
}

func TestRegistries(t *testing.T) {
	regs := &fakeRegistries{}
	srv := newServer(t, regs)
	const admin = "basic admin-token"

	r := send(t, srv, "POST", anchore.Prefix+"/registries?validate=False", admin,
		`{"registry": "localhost:5000/team", "registry_user": "robot", "registry_pass": "pw", "registry_type": null, "registry_verify": "False", "registry_name": "team"}`)
	var recs []map[string]any
	if err := json.Unmarshal([]byte(r.body), &recs); err != nil || r.status != 200 || len(recs) != 1 {
		t.Fatalf("add = %d %s", r.status, r.body)
	}
	if regs.validate || regs.password != "pw" || regs.cred.VerifyTLS || regs.cred.Username != "robot" || regs.cred.Name != "team" || regs.cred.Type != "" {
		t.Errorf("add passed %+v %q validate=%v", regs.cred, regs.password, regs.validate)
	}
	if strings.Contains(r.body, "pw") || recs[0]["registry_user"] != "robot" || recs[0]["registry_verify"] != false {
		t.Errorf("add answered %s", r.body)
	}

	send(t, srv, "PUT", "/v1/registries/quay.io%2Forg?validate=True", "bearer admin-token",
		`{"registry": "quay.io/org", "registry_user": "org+robot", "registry_pass": "pw2", "registry_type": "docker_v2", "registry_verify": true}`)
	if !regs.validate || !regs.cred.VerifyTLS || regs.cred.Type != "docker_v2" {
		t.Errorf("update passed %+v validate=%v", regs.cred, regs.validate)
	}
	send(t, srv, "GET", anchore.Prefix+"/registries/localhost%3A5000%2Fteam", admin, "")
	send(t, srv, "GET", anchore.Prefix+"/registries/gcr.io/my-project", admin, "")
	send(t, srv, "GET", anchore.Prefix+"/registries", admin, "")
	send(t, srv, "DELETE", "/v1/registries/localhost%3A5000", admin, "")
	want := []string{"add localhost:5000/team", "update quay.io/org", "get localhost:5000/team", "get gcr.io/my-project", "list", "delete localhost:5000"}
	if strings.Join(regs.calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls = %v, want %v", regs.calls, want)
	}
	r = send(t, srv, "POST", anchore.Prefix+"/registries", admin, `{"registry": "r", "registry_verify": "maybe"}`)
	decodeError(t, r, 400)
}
