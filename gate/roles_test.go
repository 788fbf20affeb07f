package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/server/harbor"
)

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleSession signs in to the console with token and returns the
// client and the session's CSRF token.
func consoleSession(t *testing.T, base, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := csrfInput.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("%s: no CSRF token in the page (%d)", resp.Request.URL, resp.StatusCode)
		}
		return m[1]
	}
	login := page(c.Get(base + "/ui/login"))
	csrf := page(c.PostForm(base+"/ui/login", url.Values{"csrf": {login}, "token": {token}}))
	return c, csrf
}

// TestOneRulePerRole: every face of the gate (/v1, the Anchore API,
// Harbor's scanner API, the console) refuses a ci token exactly what buildgate.RoleCI.Can refuses, and
// lets admin through; the README's table says the same.
func TestOneRulePerRole(t *testing.T) {
	g := startGate(t, nil)
	ciToken := anchoreToken(t, g, "rules-ci", buildgate.RoleCI)
	type call struct {
		face, method, path string
		act                buildgate.Action
	}
	calls := []call{
		{"v1", "GET", "/v1/images", buildgate.ActReadImages},
		{"v1", "POST", "/v1/images", buildgate.ActSubmitImages},
		{"v1", "DELETE", "/v1/images/sha256:00", buildgate.ActDeleteImages},
		{"v1", "GET", "/v1/policies", buildgate.ActReadPolicies},
		{"v1", "POST", "/v1/policies", buildgate.ActWritePolicies},
		{"v1", "GET", "/v1/registries", buildgate.ActManageRegistries},
		{"v1", "GET", "/v1/subscriptions", buildgate.ActReadSubscriptions},
		{"v1", "POST", "/v1/subscriptions", buildgate.ActWriteSubscriptions},
		{"v1", "GET", "/v1/alerts", buildgate.ActManageAlerts},
		{"v1", "POST", "/v1/db/import", buildgate.ActImportDB},
		{"v1", "GET", "/v1/tokens", buildgate.ActManageTokens},
		{"v1", "GET", "/metrics", buildgate.ActReadMetrics},
		{"v1", "GET", "/debug/pprof/heap", buildgate.ActProfile},
		{"v1", "POST", "/v1/admission/review", buildgate.ActReviewAdmission},
		{"v1", "GET", "/v1/admission/rules", buildgate.ActManageAdmission},
		{"v1", "GET", "/v1/admission/decisions", buildgate.ActManageAdmission},
		{"anchore", "GET", anchore.Prefix + "/images", buildgate.ActReadImages},
		{"anchore", "POST", anchore.Prefix + "/images", buildgate.ActSubmitImages},
		{"anchore", "DELETE", anchore.Prefix + "/images/sha256:00", buildgate.ActDeleteImages},
		{"anchore", "GET", anchore.Prefix + "/policies", buildgate.ActReadPolicies},
		{"anchore", "POST", anchore.Prefix + "/policies", buildgate.ActWritePolicies},
		{"anchore", "GET", anchore.Prefix + "/registries", buildgate.ActManageRegistries},
		{"anchore", "GET", anchore.Prefix + "/subscriptions", buildgate.ActReadSubscriptions},
		{"anchore", "POST", anchore.Prefix + "/subscriptions", buildgate.ActWriteSubscriptions},
		{"harbor", "GET", harbor.Prefix + "/api/v1/metadata", buildgate.ActReadImages},
		{"harbor", "POST", harbor.Prefix + "/api/v1/scan", buildgate.ActSubmitImages},
		{"console", "GET", "/ui/repositories", buildgate.ActReadImages},
		{"console", "POST", "/ui/scan", buildgate.ActSubmitImages},
		{"console", "GET", "/ui/policies", buildgate.ActReadPolicies},
		{"console", "GET", "/ui/policies/x/export", buildgate.ActReadPolicies},
		{"console", "POST", "/ui/policies/import", buildgate.ActWritePolicies},
		{"console", "GET", "/ui/registries", buildgate.ActManageRegistries},
		{"console", "GET", "/ui/alerts", buildgate.ActManageAlerts},
	}
	covered := map[buildgate.Action]bool{}
	for _, role := range []struct {
		role  buildgate.Role
		token string
	}{{buildgate.RoleCI, ciToken}, {buildgate.RoleAdmin, testToken}} {
		ui, csrf := consoleSession(t, g.URL, role.token)
		ui.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for _, c := range calls {
			covered[c.act] = true
			var resp *http.Response
			var err error
			if c.face == "console" {
				if c.method == "POST" {
					resp, err = ui.PostForm(g.URL+c.path, url.Values{"csrf": {csrf}, "ref": {""}})
				} else {
					resp, err = ui.Get(g.URL + c.path)
				}
			} else {
				req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				if strings.HasSuffix(c.path, "/db/import") {
					req.Header.Set("Content-Type", "application/gzip")
				}
				req.Header.Set("Authorization", "Bearer "+role.token)
				resp, err = http.DefaultClient.Do(req)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			forbidden := resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized
			if want := !role.role.Can(c.act); forbidden != want {
				t.Errorf("%s %s %s %s (%s) = %d, want refused %v: %.200s", role.role, c.face, c.method, c.path, c.act, resp.StatusCode, want, b)
			}
			if forbidden && !strings.Contains(string(b), string(c.act)) {
				t.Errorf("%s %s %s: the refusal does not name %q: %.300s", role.role, c.method, c.path, c.act, b)
			}
		}
	}
	// Every action is exercised, and the README's table matches the rule.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range buildgate.Actions() {
		if !covered[a] && a != buildgate.ActBindTags { // bind tags: TestTagSpoofing
			t.Errorf("no request exercises %q", a)
		}
		yes := map[bool]string{true: "yes", false: "no"}
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(string(a)) + "`[^|]*\\| (yes|no) \\| (yes|no) \\| (yes|no) \\|$").FindStringSubmatch(string(readme))
		if row == nil || row[1] != yes[buildgate.RoleAdmin.Can(a)] || row[2] != yes[buildgate.RoleCI.Can(a)] || row[3] != yes[buildgate.RoleAdmission.Can(a)] {
			t.Errorf("the README's role table row for %q = %v, want admin %s, ci %s, admission %s", a, row,
				yes[buildgate.RoleAdmin.Can(a)], yes[buildgate.RoleCI.Can(a)], yes[buildgate.RoleAdmission.Can(a)])
		}
	}
}
