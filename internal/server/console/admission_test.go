package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

// memAdmission keeps rules in memory and refuses what the service refuses
// by name, so the page's handling of refusals shows.
type memAdmission struct {
	rules     []buildgate.AdmissionRule
	decisions []buildgate.AdmissionDecision
}

func (m *memAdmission) CreateRule(_ context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error) {
	if r.Mode != "" && r.Mode != buildgate.AdmissionPolicy && r.Mode != buildgate.AdmissionAudit && r.Mode != buildgate.AdmissionAnalysis {
		return nil, buildgate.Errorf(buildgate.EINVALID, "mode %q is not one of policy, analysis, audit", r.Mode)
	}
	r.ID = "r" + string(rune('0'+len(m.rules)))
	m.rules = append(m.rules, r)
	return &r, nil
}

func (m *memAdmission) Rules(context.Context) ([]buildgate.AdmissionRule, error) { return m.rules, nil }

func (m *memAdmission) DeleteRule(_ context.Context, id string) error {
	for i, r := range m.rules {
		if r.ID == id {
			m.rules = append(m.rules[:i], m.rules[i+1:]...)
			return nil
		}
	}
	return buildgate.Errorf(buildgate.ENOTFOUND, "admission rule %q not found", id)
}

func (m *memAdmission) Decisions(context.Context, buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error) {
	return m.decisions, nil
}

func TestAdmissionPage(t *testing.T) {
	e := echo.New()
	adm := &memAdmission{decisions: []buildgate.AdmissionDecision{{
		ID: "d1", CreatedAt: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), Cluster: "prod-eu", Namespace: "prod-web",
		Kind: "Deployment", Name: "web", User: "alice", RuleName: "prod", Mode: "policy",
		Message: `image r/a:1 (sha256:ab) is STOP under policy "default"`,
		Images:  []buildgate.AdmissionImage{{Kind: "init", Container: "migrate", Image: "r/a:1", Digest: "sha256:ab", Verdict: "stop"}},
	}}}
	Route(e, Config{Images: &fakeImages{}, Store: newFakeStore(), Policies: nopPolicies{}, Admission: adm, HashToken: func(s string) string { return s }})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	admin, csrf := client(t, srv, "admin-secret")
	read := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := read(admin.Get(srv.URL + "/ui/admission"))
	if code != 200 || !strings.Contains(body, "DENIED") || !strings.Contains(body, "prod-eu/prod-web") || !strings.Contains(body, "No rules: every image is admitted.") {
		t.Fatalf("admission page = %d\n%s", code, body)
	}
	// Every control of the form has a label.
	for _, m := range regexp.MustCompile(`<(?:input|select)[^>]* id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `<label for="`+m[1]+`"`) {
			t.Errorf("control #%s has no label", m[1])
		}
	}

	form := url.Values{"csrf": {csrf}, "name": {"prod"}, "namespaces": {"prod-*, staging"}, "namespace_labels": {"env=prod"},
		"repository": {"team/*"}, "mode": {"policy"}, "wait": {"5s"}, "on_error": {"allow"}, "position": {"2"}}
	code, body = read(admin.PostForm(srv.URL+"/ui/admission/rules", form))
	if code != 200 || !strings.Contains(body, "Rule added.") || len(adm.rules) != 1 {
		t.Fatalf("add rule = %d %d rules\n%s", code, len(adm.rules), body)
	}
	r := adm.rules[0]
	if strings.Join(r.Namespaces, ",") != "prod-*,staging" || r.NamespaceLabels["env"] != "prod" || r.Wait != 5*time.Second ||
		r.OnError != "allow" || r.Position != 2 || r.Scope.Repository != "team/*" {
		t.Errorf("stored rule = %+v", r)
	}

	for _, tt := range []struct {
		name, field, value, want string
	}{
		{"bad wait", "wait", "soon", `The wait &#34;soon&#34; is not a positive duration`},
		{"bad label", "namespace_labels", "env", `The namespace label &#34;env&#34; is not key=value.`},
		{"bad mode", "mode", "block", `mode &#34;block&#34; is not one of policy, analysis, audit`},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set(tt.field, tt.value)
		code, body = read(admin.PostForm(srv.URL+"/ui/admission/rules", f))
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) || len(adm.rules) != 1 {
			t.Errorf("%s = %d, %d rules; want 400 with %q", tt.name, code, len(adm.rules), tt.want)
		}
	}

	code, body = read(admin.PostForm(srv.URL+"/ui/admission/rules/r0/delete", url.Values{"csrf": {csrf}}))
	if code != 200 || len(adm.rules) != 0 || !strings.Contains(body, "Rule deleted.") {
		t.Errorf("delete = %d, %d rules", code, len(adm.rules))
	}

	// A ci token does not see the page, and forms need the CSRF token.
	ci, ciCSRF := client(t, srv, "ci-secret")
	if code, _ := read(ci.Get(srv.URL + "/ui/admission")); code != http.StatusForbidden {
		t.Errorf("ci GET /ui/admission = %d, want 403", code)
	}
	if code, _ := read(ci.PostForm(srv.URL+"/ui/admission/rules", url.Values{"csrf": {ciCSRF}, "name": {"x"}})); code != http.StatusForbidden {
		t.Errorf("ci adds a rule: %d, want 403", code)
	}
	if code, _ := read(admin.PostForm(srv.URL+"/ui/admission/rules", url.Values{"name": {"x"}})); code != http.StatusForbidden || len(adm.rules) != 0 {
		t.Errorf("no csrf: %d, want 403", code)
	}
}
