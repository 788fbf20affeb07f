package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buildgate/buildgate"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium for the console tests, or skips.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s under CI (.ci/run installs chromium): %v", chromiumPath, err)
		}
		t.Skipf("browser tests need %s (apt-get install chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// screenshotDir is $BUILDGATE_SCREENSHOTS, or a new temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("BUILDGATE_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "buildgate-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", dir)
	return dir
}

type consoleRun struct {
	t   *testing.T
	ctx context.Context
	url string
	dir string
}

func (r consoleRun) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	r.t.Helper()
	if err := chromedp.Do(r.ctx, actions...); err != nil {
		r.fatal(what, err)
	}
}

func (r consoleRun) fatal(what string, err error) {
	r.t.Helper()
	loc, _ := chromedp.Run(r.ctx, chromedp.Location())
	body, _ := chromedp.Run(r.ctx, chromedp.Text(chromedp.CSS("body")))
	r.t.Fatalf("%s: %v\nat %s:\n%.3000s", what, err, loc, body)
}

// clickNav clicks sel and waits for the page it leads to to load.
func clickNav(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Evaluate[bool](`window.__bgOld = true`)(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		if _, err := chromedp.Click(chromedp.CSS(sel))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		for {
			done, err := chromedp.Evaluate[bool](`window.__bgOld !== true && document.readyState === "complete"`)(ctx, t)
			if err == nil && done {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// setField sets the value of a form field in the current page.
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return "(no element)"; e.value = %q; return e.value; })()`, sel, value)
		got, err := chromedp.Evaluate[string](js)(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		if got != value {
			return chromedp.Void{}, fmt.Errorf("setting %s to %q: the field holds %q", sel, value, got)
		}
		return chromedp.Void{}, nil
	}
}

func eval[T any](r consoleRun, what, expr string, await bool) T {
	r.t.Helper()
	var opts []chromedp.EvaluateOption
	if await {
		opts = append(opts, chromedp.EvalAwaitPromise)
	}
	v, err := chromedp.Run(r.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		r.fatal(what, err)
	}
	return v
}

// unlabeledControls finds form controls on the page with no label.
const unlabeledControls = `Array.from(document.querySelectorAll('input,select,textarea')).filter(e =>
	!['hidden', 'submit', 'button'].includes(e.type) && !(e.labels && e.labels.length) &&
	!e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')).map(e => e.name || e.id || e.outerHTML.slice(0, 80))`

// shot saves a screenshot of the page, after checking that every form
// control on it has a label.
func (r consoleRun) shot(name string) {
	r.t.Helper()
	if missing := eval[[]string](r, "labels on "+name, unlabeledControls, false); len(missing) > 0 {
		r.t.Errorf("page %s has form controls without a label: %v", name, missing)
	}
	png, err := chromedp.Run(r.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		r.fatal("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, name+".png"), png, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r consoleRun) text(sel string) string {
	r.t.Helper()
	s, err := chromedp.Run(r.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		r.fatal("reading "+sel, err)
	}
	return s
}

func (r consoleRun) exists(sel string) bool {
	r.t.Helper()
	return eval[int](r, "counting "+sel, fmt.Sprintf("document.querySelectorAll(%q).length", sel), false) > 0
}

func (r consoleRun) signIn(token string) {
	r.t.Helper()
	r.run("sign in",
		chromedp.Navigate(r.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		clickNav("#signin"),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if h := r.text("h1"); h != "Repositories" {
		r.t.Fatalf("after sign-in: h1 %q", h)
	}
}

// column returns the text of column col (0-based) of every row of table.
func (r consoleRun) column(table string, col int) []string {
	r.t.Helper()
	return eval[[]string](r, "reading "+table, fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q)).map(tr => (tr.cells[%d]||{}).innerText || "")`, table+" tbody tr", col), false)
}

const consoleBundle = `{
  "id": "console-test", "name": "Console test", "version": "1_0", "comment": "",
  "policies": [{"id": "console-policy", "name": "ConsolePolicy", "version": "1_0", "rules": []}],
  "whitelists": [{"id": "console-allow", "name": "Console allowlist", "version": "1_0", "items": []}],
  "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"},
    "policy_ids": ["console-policy"], "whitelist_ids": ["console-allow"]}],
  "whitelisted_images": [], "blacklisted_images": []
}`

// TestConsole drives the web console in headless Chromium: sign in, scan an
// image until its verdict, filter vulnerabilities, edit a policy and see
// the verdict change, allowlist a finding, refuse wrong registry
// credentials, and keep a ci token away from the write forms.
func TestConsole(t *testing.T) {
	ctx := browser(t)
	g := startGate(t, nil)
	reg := testRegistry(t)
	ref := reg + "/team/app:v1"
	push(t, ref, sharedImage(t, "bullseye-minbase"))
	ciToken := anchoreToken(t, g, "console-ci", buildgate.RoleCI)
	r := consoleRun{t: t, ctx: ctx, url: g.URL, dir: screenshotDir(t)}

	// Signing in: a bad token is refused; the session cookie is HttpOnly and SameSite=Strict.
	r.run("bad token", chromedp.Navigate(g.URL+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "bg_not_a_token"), clickNav("#signin"),
		chromedp.WaitVisible(chromedp.CSS("#page-error")))
	r.shot("01-sign-in")
	r.signIn(testToken)
	checkSessionCookie(t, g.URL)

	// Scan Image: progress, then the verdict.
	r.run("scan", setField("#ref", ref), clickNav("#scan"),
		chromedp.WaitVisible(chromedp.CSS("#progress, #verdict, #analysis-failed")))
	if r.exists("#progress") {
		r.shot("02-scan-progress")
	}
	r.run("verdict", chromedp.WaitVisible(chromedp.CSS("#verdict, #analysis-failed")))
	if r.exists("#analysis-failed") {
		t.Fatalf("analysis failed: %s", r.text("#analysis-failed"))
	}
	t.Logf("verdict under the default policy: %s", r.text("#verdict"))
	r.shot("03-image")

	r.run("repositories", chromedp.Navigate(g.URL+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS(".repo")))
	if body := r.text("main"); !strings.Contains(body, "team/app") || !strings.Contains(body, "v1") || !strings.Contains(body, "analyzed") {
		t.Fatalf("repositories page lacks the image:\n%s", body)
	}
	r.shot("04-repositories")

	// Vulnerabilities: filters and search, server-side.
	r.run("open image", clickNav(".taglink"), chromedp.WaitVisible(chromedp.CSS("#verdict")))
	loc, err := chromedp.Run(r.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	r.run("vulnerabilities tab", chromedp.Navigate(loc+"&tab=vulnerabilities"), chromedp.WaitVisible(chromedp.CSS("#vulns")))
	all := r.column("#vulns", 0)
	sevs := r.column("#vulns", 1)
	if len(all) < 2 {
		t.Fatalf("want vulnerabilities in bullseye-minbase, got %q", all)
	}
	r.shot("05-vulnerabilities")
	sev := strings.ToLower(strings.TrimSpace(sevs[len(sevs)-1]))
	r.run("filter severity", setField("#f-severity", sev), clickNav("#apply-filters"),
		chromedp.WaitVisible(chromedp.CSS("#vulns")))
	got := r.column("#vulns", 1)
	for _, s := range got {
		if strings.ToLower(strings.TrimSpace(s)) != sev {
			t.Fatalf("severity filter %s: row with %q", sev, s)
		}
	}
	if len(got) == 0 || len(got) >= len(all) && sev != strings.ToLower(strings.TrimSpace(sevs[0])) {
		t.Fatalf("severity filter %s: %d of %d rows", sev, len(got), len(all))
	}
	id := strings.TrimSpace(all[0])
	r.run("search", setField("#f-severity", ""), setField("#f-q", id),
		clickNav("#apply-filters"), chromedp.WaitVisible(chromedp.CSS("#vulns")))
	for _, v := range r.column("#vulns", 0) {
		if strings.TrimSpace(v) != id {
			t.Fatalf("search %s: row %q", id, v)
		}
	}
	r.run("fixable", setField("#f-q", ""), setField("#f-fixable", "no"),
		setField("#f-sort", "package"),
		clickNav("#apply-filters"), chromedp.WaitVisible(chromedp.CSS("#vulns")))
	for _, v := range r.column("#vulns", 5) {
		if v != "" && !strings.Contains(v, "fix") && !strings.Contains(v, "unknown") {
			t.Fatalf("fixable=no: fix column %q", v)
		}
	}
	t.Logf("vulnerabilities: %d, %s: %d, search %s ok", len(all), sev, len(got), id)

	// Downloads go through /v1 with the session's token.
	checkDownloads(r, loc)

	// Scanning Policies: import a bundle with no rules, activate it: GO.
	bundle := filepath.Join(t.TempDir(), "bundle.json")
	os.WriteFile(bundle, []byte(consoleBundle), 0o644)
	r.run("import", chromedp.Navigate(g.URL+"/ui/policies"), chromedp.WaitVisible(chromedp.CSS("#bundle")),
		chromedp.SetUploadFiles(chromedp.CSS("#bundle"), []string{bundle}),
		chromedp.Click(chromedp.CSS("#activate")), clickNav("#import"),
		chromedp.WaitVisible(chromedp.CSS("#choose-trigger")))
	r.run("image GO", chromedp.Navigate(loc+"&tab=policy"), chromedp.WaitVisible(chromedp.CSS("#verdict")))
	if v := r.text("#verdict"); v != "GO" {
		t.Fatalf("verdict under an empty policy = %q", v)
	}
	// The rule editor, driven by the definitions: metadata/attribute distro = debian, STOP.
	r.run("rule editor", chromedp.Navigate(g.URL+"/ui/policies/console-test"), chromedp.WaitVisible(chromedp.CSS("#rule-trigger")),
		setField("#rule-trigger", "metadata/attribute"), clickNav("#choose-trigger"),
		chromedp.WaitVisible(chromedp.CSS("#rule-form")),
		setField("#p-attribute", "distro"), setField("#p-check", "="),
		setField("#p-value", "debian"), setField("#rule-action", "STOP"))
	r.shot("06-rule-editor")
	r.run("add rule", clickNav("#add-rule-submit"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	r.run("image STOP", chromedp.Navigate(loc+"&tab=policy"), chromedp.WaitVisible(chromedp.CSS("#findings")))
	if v := r.text("#verdict"); v != "STOP" {
		t.Fatalf("verdict after adding a STOP rule = %q", v)
	}
	trig := strings.TrimSpace(r.text(".trigger-id"))
	// Allowlist the finding with a reason: it shows on the image page and the verdict is GO again.
	r.run("allowlist", chromedp.Navigate(g.URL+"/ui/policies/console-test"), chromedp.WaitVisible(chromedp.CSS("#allowlist-form")),
		setField("#al-gate", "metadata"), setField("#al-trigger", trig),
		setField("#al-reason", "accepted by the console test"),
		setField("#al-expires", "2099-12-31"),
		clickNav("#add-allowlist"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	r.shot("07-policy")
	r.run("image allowlisted", chromedp.Navigate(loc+"&tab=policy"), chromedp.WaitVisible(chromedp.CSS("#findings")))
	if reason := r.text(".allow-reason"); !strings.Contains(reason, "accepted by the console test") {
		t.Fatalf("allowlisted reason on the image page = %q", reason)
	}
	if v := r.text("#verdict"); v != "GO" {
		t.Fatalf("verdict after allowlisting = %q", v)
	}
	if body := r.text("#findings"); !strings.Contains(body, "2099-12-31") {
		t.Fatalf("expiry not shown: %s", body)
	}
	r.shot("08-image-policy")
	r.run("policies list", chromedp.Navigate(g.URL+"/ui/policies"), chromedp.WaitVisible(chromedp.CSS("#policies")))
	r.shot("09-policies")

	// Registry Credentials: a wrong password is refused with the registry's answer.
	fake := basicAuthRegistry(t, "alice", "right-password")
	r.run("registries", chromedp.Navigate(g.URL+"/ui/registries"), chromedp.WaitVisible(chromedp.CSS("#registry-form")),
		setField("#r-registry", fake), setField("#r-user", "alice"),
		setField("#r-pass", "wrong-password"), clickNav("#add-registry"),
		chromedp.WaitVisible(chromedp.CSS("#page-error")))
	msg := r.text("#page-error")
	t.Logf("wrong password: %s", msg)
	if !strings.Contains(msg, `refused the credentials of "alice"`) || !strings.Contains(msg, "console-fake-registry says no") {
		t.Fatalf("refusal without the registry's answer: %q", msg)
	}
	if strings.Contains(r.text("body"), "wrong-password") {
		t.Fatal("the page shows the password")
	}
	r.shot("10-registries-refused")
	r.run("right password", setField("#r-pass", "right-password"), clickNav("#add-registry"),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if !strings.Contains(r.text("#registries"), fake) {
		t.Fatal("the registry is not listed after adding it")
	}
	r.shot("11-registries")

	// Runtime and Alerts read /v1/runtime and /v1/alerts (another team's routes) with the session's token.
	missing := reg + "/team/missing:v9"
	inv := map[string]any{"cluster": "prod-eu", "containers": []map[string]string{
		{"namespace": "web", "pod": "app-1", "container": "app", "image": ref},
		{"namespace": "web", "pod": "other-1", "container": "other", "image": missing},
	}}
	if code, b := g.regCall(t, "POST", "/v1/runtime/inventory", inv, nil); code != http.StatusOK {
		t.Fatalf("inventory: %d %s", code, b)
	}
	r.run("runtime", chromedp.Navigate(g.URL+"/ui/runtime"), chromedp.WaitVisible(chromedp.CSS("#runtime-images")))
	if body := r.text("main"); !strings.Contains(body, ref) || !strings.Contains(body, missing) || !strings.Contains(body, "prod-eu/web/app-1") {
		t.Fatalf("runtime page:\n%s", body)
	}
	r.shot("12-runtime")
	var ch struct{ ID string }
	code, b := g.regCall(t, "POST", "/v1/channels", map[string]any{"name": "ops-hook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "console-hook-secret"}, nil)
	if json.Unmarshal(b, &ch); code/100 != 2 || ch.ID == "" {
		t.Fatalf("creating a channel: %d %s", code, b)
	}
	if code, b := g.regCall(t, "POST", "/v1/alerts", map[string]any{"name": "stop-in-prod", "description": "STOP verdicts",
		"scope": map[string]string{"repository": "team/*"}, "triggers": []map[string]string{{"type": "policy_eval_failed"}},
		"channels": []string{ch.ID}}, nil); code/100 != 2 {
		t.Fatalf("creating an alert: %d %s", code, b)
	}
	r.run("alerts", chromedp.Navigate(g.URL+"/ui/alerts"), chromedp.WaitVisible(chromedp.CSS("#alerts")))
	if body := r.text("main"); !strings.Contains(body, "stop-in-prod") || !strings.Contains(body, "ops-hook") {
		t.Fatalf("alerts page:\n%s", body)
	}
	r.shot("13-alerts")

	// Narrow screens: the pages still work at 390 px.
	r.run("mobile", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Navigate(g.URL+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS(".repo")))
	if eval[bool](r, "overflow", `document.documentElement.scrollWidth > window.innerWidth + 1`, false) {
		t.Error("the repositories page scrolls sideways at 390 px")
	}
	r.shot("14-repositories-390px")
	r.run("mobile image", chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.CSS("#verdict")))
	r.shot("15-image-390px")
	r.run("desktop", chromedp.ResetViewport())

	// Sign out; a ci token sees read-only pages and cannot reach the write forms.
	r.run("sign out", chromedp.Navigate(g.URL+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS(".signout button")),
		clickNav(".signout button"), chromedp.WaitVisible(chromedp.CSS("#token")))
	r.run("signed out", chromedp.Navigate(g.URL+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS("#token")))
	r.signIn(ciToken)
	// ci may scan (as POST /v1/images lets it) but reads no policy, as
	// /v1/policies refuses it: one rule per role in every face (issue 12).
	if !r.exists("#scan") || r.exists(`a[href="/ui/registries"]`) || r.exists(`a[href="/ui/policies"]`) {
		t.Fatal("a ci token misses the scan form or sees the registries or policies tab")
	}
	r.shot("16-ci-repositories")
	r.run("ci policy", chromedp.Navigate(g.URL+"/ui/policies/console-test"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if r.exists("#rule-form") || r.exists("#allowlist-form") || r.exists("#choose-trigger") || r.exists("form[action$=delete]") {
		t.Fatal("a ci token sees policy write forms")
	}
	r.run("ci registries", chromedp.Navigate(g.URL+"/ui/registries"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if r.exists("#registry-form") {
		t.Fatal("a ci token reaches the registry form")
	}
	r.run("ci delete", chromedp.Navigate(g.URL+"/ui/policies/console-test/delete"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	r.shot("17-ci-forbidden")
	// Posting anyway is refused (CSRF and role).
	status := eval[int](r, "ci post", `fetch("/ui/scan", {method: "POST", body: new URLSearchParams({ref: "x/y:z"})}).then(r => r.status)`, true)
	if status != http.StatusForbidden {
		t.Fatalf("ci POST /ui/scan = %d", status)
	}
}

// checkSessionCookie signs in over plain HTTP and checks the cookie flags.
func checkSessionCookie(t *testing.T, base string) {
	t.Helper()
	jar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := jar.Get(base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "bg_login_csrf" {
			csrf = c
		}
	}
	if csrf == nil {
		t.Fatal("no login CSRF cookie")
	}
	post := func(form url.Values) *http.Response {
		req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(csrf)
		resp, err := jar.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(url.Values{"token": {testToken}, "csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in with a wrong CSRF token = %d", resp.StatusCode)
	}
	resp = post(url.Values{"token": {testToken}, "csrf": {csrf.Value}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	raw := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if !strings.Contains(raw, "bg_session=") || !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Strict") {
		t.Fatalf("session cookie flags: %s", raw)
	}
	if strings.Contains(raw, testToken) {
		t.Fatal("the cookie holds the token")
	}
}

// checkDownloads fetches each download from inside the signed-in page.
func checkDownloads(r consoleRun, imageURL string) {
	r.t.Helper()
	u, _ := url.Parse(imageURL)
	base := u.Path + "/download/"
	for kind, want := range map[string]string{"cyclonedx": "CycloneDX", "spdx": "spdxVersion", "sarif": "sarif", "junit": "<testsuite"} {
		body := eval[string](r, "download "+kind, fmt.Sprintf(`fetch(%q).then(async r => r.status + "\n" + (r.headers.get("content-disposition")||"") + "\n" + (await r.text()).slice(0, 4000))`, base+kind+"?"+u.RawQuery), true)
		if !strings.HasPrefix(body, "200\nattachment") || !strings.Contains(body, want) {
			r.t.Fatalf("download %s: %.300s", kind, body)
		}
	}
}

// basicAuthRegistry is a registry whose /v2/ wants HTTP Basic credentials.
func basicAuthRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="console-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "console-fake-registry says no"}}})
			return
		}
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
