package console

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
)

type fakeStore struct {
	Store
	mu       *sync.Mutex
	sessions map[string]buildgate.ConsoleSession
}

func newFakeStore() fakeStore {
	return fakeStore{mu: &sync.Mutex{}, sessions: map[string]buildgate.ConsoleSession{}}
}

func (f fakeStore) SaveConsoleSession(_ context.Context, s buildgate.ConsoleSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[s.IDHash] = s
	return nil
}

func (f fakeStore) ConsoleSession(_ context.Context, idHash string) (*buildgate.ConsoleSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[idHash]
	if !ok {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no session")
	}
	return &s, nil
}

func (f fakeStore) DeleteConsoleSession(_ context.Context, idHash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, idHash)
	return nil
}

var tokens = map[string]*buildgate.Token{
	"admin-secret": {ID: "a", Name: "admin", Role: buildgate.RoleAdmin},
	"ci-secret":    {ID: "c", Name: "ci", Role: buildgate.RoleCI},
}

func (fakeStore) TokenByHash(_ context.Context, h string) (*buildgate.Token, error) {
	if t, ok := tokens[h]; ok {
		return t, nil
	}
	return nil, buildgate.Errorf(buildgate.EUNAUTHORIZED, "invalid token")
}
func (fakeStore) ListImages(context.Context, string, buildgate.Status) ([]buildgate.Image, error) {
	return nil, nil
}
func (fakeStore) ActivePolicy(context.Context) (*buildgate.PolicyRecord, error) {
	return nil, buildgate.Errorf(buildgate.ENOTFOUND, "none")
}

type fakeImages struct{ submitted []string }

func (f *fakeImages) Submit(_ context.Context, req analysis.SubmitRequest) (*buildgate.Image, error) {
	f.submitted = append(f.submitted, req.Ref)
	return &buildgate.Image{Digest: "sha256:1234"}, nil
}

type nopPolicies struct{ Policies }

func start(t *testing.T) (*httptest.Server, *fakeImages) {
	t.Helper()
	e := echo.New()
	imgs := &fakeImages{}
	Route(e, Config{Images: imgs, Store: newFakeStore(), Policies: nopPolicies{}, HashToken: func(s string) string { return s }})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, imgs
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client signs in with token and returns the client and the session's CSRF token.
func client(t *testing.T, srv *httptest.Server, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) string {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return sb.String()
	}
	m := csrfField.FindStringSubmatch(get("/ui/login"))
	if m == nil {
		t.Fatal("no CSRF field on the sign-in page")
	}
	resp, err := c.PostForm(srv.URL+"/ui/login", url.Values{"token": {token}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/repositories" {
		t.Fatalf("sign-in with %s ended at %s (%d)", token, resp.Request.URL, resp.StatusCode)
	}
	m = csrfField.FindStringSubmatch(get("/ui/repositories"))
	if m == nil {
		t.Fatal("no CSRF field on the repositories page")
	}
	return c, m[1]
}

func TestSessionsCSRFAndRoles(t *testing.T) {
	srv, imgs := start(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(srv.URL + "/ui/repositories")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	admin, csrf := client(t, srv, "admin-secret")
	tests := []struct {
		name   string
		c      *http.Client
		form   url.Values
		status int
	}{
		{name: "no csrf", c: admin, form: url.Values{"ref": {"r/a:1"}}, status: http.StatusForbidden},
		{name: "wrong csrf", c: admin, form: url.Values{"ref": {"r/a:1"}, "csrf": {"x"}}, status: http.StatusForbidden},
		{name: "admin scans", c: admin, form: url.Values{"ref": {"r/a:1"}, "csrf": {csrf}}, status: http.StatusOK},
	}
	ci, ciCSRF := client(t, srv, "ci-secret")
	tests = append(tests, struct {
		name   string
		c      *http.Client
		form   url.Values
		status int
	}{name: "ci scans, as POST /v1/images lets it", c: ci, form: url.Values{"ref": {"r/b:1"}, "csrf": {ciCSRF}}, status: http.StatusOK})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			defer func() { tt.c.CheckRedirect = nil }()
			resp, err := tt.c.PostForm(srv.URL+"/ui/scan", tt.form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.StatusCode
			if got == http.StatusSeeOther {
				got = http.StatusOK
			}
			if got != tt.status {
				t.Fatalf("POST /ui/scan = %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	if strings.Join(imgs.submitted, ",") != "r/a:1,r/b:1" {
		t.Fatalf("submitted %q", imgs.submitted)
	}
	// ci reads no policy, as /v1/policies refuses it (issue 12, finding 12).
	for _, path := range []string{"/ui/policies", "/ui/policies/p1", "/ui/policies/p1/export"} {
		resp, err := ci.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("ci GET %s = %d, want 403", path, resp.StatusCode)
		}
	}
	// Signing out ends the session.
	resp, err = admin.PostForm(srv.URL+"/ui/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/login" {
		t.Fatalf("after sign-out: %s", resp.Request.URL)
	}
}

func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{name: "console page", in: "/ui/policies", want: "/ui/policies"},
		{name: "other host", in: "//evil.example/ui/", want: "/ui/repositories"},
		{name: "absolute", in: "https://evil.example/", want: "/ui/repositories"},
		{name: "api", in: "/v1/images", want: "/ui/repositories"},
	} {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("%s: safeNext(%q) = %q", tt.name, tt.in, got)
		}
	}
}

func TestSplitRef(t *testing.T) {
	for _, tt := range []struct{ name, ref, reg, repo, tag string }{
		{name: "port", ref: "127.0.0.1:5000/team/app:v1", reg: "127.0.0.1:5000", repo: "team/app", tag: "v1"},
		{name: "hub", ref: "library/alpine:3", reg: "docker.io", repo: "library/alpine", tag: "3"},
		{name: "digest", ref: "ghcr.io/o/r@sha256:abc", reg: "ghcr.io", repo: "o/r"},
	} {
		reg, repo, tag := splitRef(tt.ref)
		if reg != tt.reg || repo != tt.repo || tag != tt.tag {
			t.Errorf("%s: splitRef(%q) = %q %q %q", tt.name, tt.ref, reg, repo, tag)
		}
	}
}

func TestFilterVulns(t *testing.T) {
	ms := []buildgate.Match{
		{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityOf("High"), PackageName: "openssl", PackageType: "deb", FixState: buildgate.FixStateFixed},
		{VulnerabilityID: "CVE-2", Severity: buildgate.SeverityOf("Low"), PackageName: "zlib", PackageType: "deb", FixState: buildgate.FixStateNotFixed},
		{VulnerabilityID: "GHSA-3", Severity: buildgate.SeverityOf("Critical"), PackageName: "lodash", PackageType: "npm", FixState: buildgate.FixStateFixed},
	}
	ids := func(rows []vulnRow) string {
		var out []string
		for _, r := range rows {
			out = append(out, r.VulnerabilityID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		name string
		f    vulnFilter
		want string
	}{
		{name: "all by severity", want: "GHSA-3,CVE-1,CVE-2"},
		{name: "severity", f: vulnFilter{Severity: "low"}, want: "CVE-2"},
		{name: "fixable", f: vulnFilter{Fixable: "yes", Sort: "id"}, want: "CVE-1,GHSA-3"},
		{name: "not fixable", f: vulnFilter{Fixable: "no"}, want: "CVE-2"},
		{name: "os", f: vulnFilter{Type: "os"}, want: "CVE-1,CVE-2"},
		{name: "npm", f: vulnFilter{Type: "npm"}, want: "GHSA-3"},
		{name: "search", f: vulnFilter{Q: "ZLIB"}, want: "CVE-2"},
		{name: "sort package", f: vulnFilter{Sort: "package"}, want: "GHSA-3,CVE-1,CVE-2"},
	} {
		rows, _ := filterVulns(ms, tt.f)
		if got := ids(rows); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// The rule editor offers exactly the gates and triggers the server validates against.
func TestFindTrigger(t *testing.T) {
	for _, g := range policy.Definitions() {
		for _, tr := range g.Triggers {
			if gate, def := findTrigger(g.Name + "/" + tr.Name); gate != g.Name || def == nil || def.Name != tr.Name {
				t.Errorf("findTrigger(%s/%s) = %q %v", g.Name, tr.Name, gate, def)
			}
		}
	}
	if _, def := findTrigger("vulnerabilities/nope"); def != nil {
		t.Error("an unknown trigger was found")
	}
}

// TestSessionsLiveInTheStore: a session signed in on one console is served,
// CSRF token and all, by another console on the same store (another
// replica, or this one restarted); the store holds neither the session id
// nor the API token in plaintext; signing out on the second ends it on the
// first.
func TestSessionsLiveInTheStore(t *testing.T) {
	store := newFakeStore()
	consoles := make([]*httptest.Server, 2)
	imgs := &fakeImages{}
	for i := range consoles {
		e := echo.New()
		Route(e, Config{Images: imgs, Store: store, Policies: nopPolicies{}, HashToken: func(s string) string { return s }})
		consoles[i] = httptest.NewServer(e)
		t.Cleanup(consoles[i].Close)
	}
	c, csrf := client(t, consoles[0], "admin-secret")
	u, _ := url.Parse(consoles[0].URL)
	cookies := c.Jar.Cookies(u)
	var id string
	for _, ck := range cookies {
		if ck.Name == sessionCookie {
			id = ck.Value
		}
	}
	if id == "" {
		t.Fatal("no session cookie")
	}
	store.mu.Lock()
	for k, s := range store.sessions {
		for _, plain := range []string{id, "admin-secret", csrf} {
			if strings.Contains(k, plain) || strings.Contains(s.SealedToken, plain) {
				t.Errorf("the stored session %q holds %q in plaintext", k, plain)
			}
		}
	}
	store.mu.Unlock()

	// The second console serves the same cookie and CSRF token.
	u2, _ := url.Parse(consoles[1].URL)
	c.Jar.SetCookies(u2, cookies)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(consoles[1].URL+"/ui/scan", url.Values{"ref": {"r/a:1"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") || len(imgs.submitted) != 1 {
		t.Fatalf("a scan through the second console = %d %s, submitted %v", resp.StatusCode, resp.Header.Get("Location"), imgs.submitted)
	}
	resp, err = c.PostForm(consoles[1].URL+"/ui/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.Jar.SetCookies(u, cookies) // the first console still gets the old cookie
	resp, err = c.Get(consoles[0].URL + "/ui/repositories")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("after signing out on the second console the first answers %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
