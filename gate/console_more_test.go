package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
)

// TestConsoleAlerts drives the Alerts tab in headless Chromium: add a
// webhook channel, send it a test (the receiver checks the signature),
// create an alert scoped to a cluster and namespace, see its delivery log
// fill when a runtime inventory names an unscanned image, edit it, and keep
// a ci token away from every alert and channel form.
func TestConsoleAlerts(t *testing.T) {
	ctx := browser(t)
	g := startGate(t, nil)
	const hookSecret = "console-more-hook-secret"
	recv := notifytest.NewReceiver(t, hookSecret)
	ciToken := anchoreToken(t, g, "console-more-ci", buildgate.RoleCI)
	r := consoleRun{t: t, ctx: ctx, url: g.URL, dir: screenshotDir(t)}
	r.signIn(testToken)

	// A webhook channel through the form; the secret is never shown back.
	r.run("add channel", chromedp.Navigate(g.URL+"/ui/alerts"), chromedp.WaitVisible(chromedp.CSS("#channel-form")),
		setField("#c-name", "console-hook"), setField("#c-type", "webhook"),
		setField("#c-url", recv.URL), setField("#c-secret", hookSecret),
		clickNav("#add-channel"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if body := r.text("#channels"); !strings.Contains(body, "console-hook") || !strings.Contains(body, recv.URL) {
		t.Fatalf("channels table after adding: %s", body)
	}
	if html := eval[string](r, "html", `document.documentElement.outerHTML`, false); strings.Contains(html, hookSecret) {
		t.Fatal("the page shows the channel's secret")
	}
	// Send test: the same service as POST /v1/channels/{id}/test.
	r.run("send test", clickNav(".send-test"), chromedp.WaitVisible(chromedp.CSS("#test-result")))
	if msg := r.text("#test-result"); !strings.Contains(msg, "delivered") {
		t.Fatalf("send test: %s", msg)
	}
	reqs := recv.Requests()
	if len(reqs) != 1 || !reqs[0].Signed || reqs[0].Event != "test" {
		t.Fatalf("receiver got %+v", reqs)
	}
	r.shot("20-alerts-channel-test")

	// A new alert through the form: scope by cluster and namespace, unscanned_image, the channel.
	r.run("new alert", clickNav("#new-alert"), chromedp.WaitVisible(chromedp.CSS("#alert-form")),
		setField("#a-name", "unscanned-in-prod"), setField("#a-description", "images nobody scanned"),
		setField("#a-cluster", "prod-*"), setField("#a-namespace", "web"),
		chromedp.Click(chromedp.CSS("#t-unscanned_image")), setField("#t-action", "notify"),
		chromedp.Click(chromedp.CSS("#t-verdict_changed")))
	if !eval[bool](r, "select channel", `(() => { const o = document.querySelector("#a-channels").options; for (const x of o) if (x.text.startsWith("console-hook")) { x.selected = true; return true } return false })()`, false) {
		t.Fatal("the channel is not offered in the alert form")
	}
	r.shot("21-alert-new")
	r.run("create alert", clickNav("#save-alert"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	alertURL, err := chromedp.Run(r.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !eval[bool](r, "checked", `document.querySelector("#t-unscanned_image").checked && document.querySelector("#t-verdict_changed").checked && !document.querySelector("#t-policy_eval_failed").checked`, false) {
		t.Fatal("the saved alert's triggers are not shown back")
	}

	// A runtime inventory in scope naming an unscanned image fills the delivery log.
	inv := map[string]any{"cluster": "prod-eu", "containers": []map[string]string{
		{"namespace": "web", "pod": "app-1", "container": "app", "image": "registry.invalid/team/never-scanned:v1"},
	}}
	if code, b := g.regCall(t, "POST", "/v1/runtime/inventory", inv, nil); code != http.StatusOK {
		t.Fatalf("inventory: %d %s", code, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.run("delivery log", chromedp.Navigate(strings.Split(alertURL, "?")[0]), chromedp.WaitVisible(chromedp.CSS("#deliveries")))
		body := r.text("#deliveries")
		if strings.Contains(body, "unscanned_image") && strings.Contains(body, "delivered") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: %s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	got := 0
	for _, q := range recv.Requests() {
		if q.Event == "unscanned_image" && q.Signed {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("receiver: %d signed unscanned_image messages", got)
	}
	r.shot("22-alert-deliveries")

	// Edit: a new description and min severity trigger; the list shows it.
	r.run("edit alert", setField("#a-description", "edited in the console"),
		chromedp.Click(chromedp.CSS("#t-new_vulnerabilities")), setField("#t-min-severity", "high"),
		clickNav("#save-alert"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	r.run("alerts list", chromedp.Navigate(g.URL+"/ui/alerts"), chromedp.WaitVisible(chromedp.CSS("#alerts")))
	if body := r.text("#alerts"); !strings.Contains(body, "edited in the console") || !strings.Contains(body, "new_vulnerabilities ≥ high") || !strings.Contains(body, "cluster prod-*") {
		t.Fatalf("alerts list after editing: %s", body)
	}
	r.shot("23-alerts")

	// A ci token reaches none of the alert or channel forms, and posting is refused.
	r.run("sign out", clickNav(".signout button"), chromedp.WaitVisible(chromedp.CSS("#token")))
	r.signIn(ciToken)
	for _, path := range []string{"/ui/alerts", "/ui/alerts/new", strings.TrimPrefix(strings.Split(alertURL, "?")[0], g.URL)} {
		r.run("ci "+path, chromedp.Navigate(g.URL+path), chromedp.WaitVisible(chromedp.CSS("#page-error")))
		if r.exists("#alert-form") || r.exists("#channel-form") || r.exists(".send-test") {
			t.Fatalf("a ci token reaches a write form at %s", path)
		}
	}
	for _, path := range []string{"/ui/alerts", "/ui/channels", "/ui/channels/x/test"} {
		status := eval[int](r, "ci post", `fetch("`+path+`", {method: "POST", body: new URLSearchParams({name: "x"})}).then(r => r.status)`, true)
		if status != http.StatusForbidden {
			t.Fatalf("ci POST %s = %d", path, status)
		}
	}
	if n := len(recv.Requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
}

// TestConsoleRegistryEdit edits registry credentials in the console (an
// empty password keeps the stored one), validates them now, and keeps a ci
// token away from those forms.
func TestConsoleRegistryEdit(t *testing.T) {
	ctx := browser(t)
	g := startGate(t, nil)
	ciToken := anchoreToken(t, g, "console-reg-ci", buildgate.RoleCI)
	r := consoleRun{t: t, ctx: ctx, url: g.URL, dir: screenshotDir(t)}
	r.signIn(testToken)
	fake := basicAuthRegistry(t, "alice", "right-password")
	r.run("add", chromedp.Navigate(g.URL+"/ui/registries"), chromedp.WaitVisible(chromedp.CSS("#registry-form")),
		setField("#r-registry", fake), setField("#r-name", "before"), setField("#r-user", "alice"),
		setField("#r-pass", "right-password"), clickNav("#add-registry"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	r.run("validate", clickNav(".validate-registry"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	if msg := r.text("main"); !strings.Contains(msg, "accepted") {
		t.Fatalf("validate now: %s", msg)
	}
	// Edit the name, leave the password empty: validated with the stored one.
	r.run("edit", clickNav(".edit-registry"), chromedp.WaitVisible(chromedp.CSS("body")))
	if !r.exists("#registry-edit-form") {
		t.Fatalf("edit page: %s", r.text("body"))
	}
	if v := eval[string](r, "password", `document.querySelector("#e-pass").value`, false); v != "" {
		t.Fatalf("the edit form shows a password: %q", v)
	}
	r.run("save", setField("#e-name", "after"), clickNav("#save-registry"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	if body := r.text("#registries"); !strings.Contains(body, "after") || strings.Contains(body, "before") {
		t.Fatalf("registries after editing: %s", body)
	}
	// A wrong new password is refused with the registry's answer and not stored.
	r.run("wrong", clickNav(".edit-registry"), chromedp.WaitVisible(chromedp.CSS("#registry-edit-form")),
		setField("#e-pass", "wrong-password"), clickNav("#save-registry"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if msg := r.text("#page-error"); !strings.Contains(msg, "console-fake-registry says no") {
		t.Fatalf("refusal without the registry's answer: %s", msg)
	}
	if strings.Contains(eval[string](r, "html", `document.documentElement.outerHTML`, false), "wrong-password") {
		t.Fatal("the page shows the password")
	}
	r.shot("24-registry-edit-refused")
	r.run("validate again", chromedp.Navigate(g.URL+"/ui/registries"), chromedp.WaitVisible(chromedp.CSS("#registries")),
		clickNav(".validate-registry"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	if msg := r.text("main"); !strings.Contains(msg, "accepted") {
		t.Fatalf("validate after a refused edit: %s", msg)
	}
	r.shot("25-registries-validated")

	r.run("sign out", clickNav(".signout button"), chromedp.WaitVisible(chromedp.CSS("#token")))
	r.signIn(ciToken)
	r.run("ci edit", chromedp.Navigate(g.URL+"/ui/registries/edit?registry="+fake), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if r.exists("#registry-edit-form") {
		t.Fatal("a ci token reaches the registry edit form")
	}
	for _, path := range []string{"/ui/registries/edit", "/ui/registries/validate"} {
		status := eval[int](r, "ci post", `fetch("`+path+`", {method: "POST", body: new URLSearchParams({registry: "`+fake+`"})}).then(r => r.status)`, true)
		if status != http.StatusForbidden {
			t.Fatalf("ci POST %s = %d", path, status)
		}
	}
}

// TestConsoleMappings adds, reorders and removes mappings in the Scanning
// Policies editor and sees them in the exported bundle.
func TestConsoleMappings(t *testing.T) {
	ctx := browser(t)
	g := startGate(t, nil)
	ciToken := anchoreToken(t, g, "console-map-ci", buildgate.RoleCI)
	r := consoleRun{t: t, ctx: ctx, url: g.URL, dir: screenshotDir(t)}
	r.signIn(testToken)
	bundle := filepath.Join(t.TempDir(), "bundle.json")
	os.WriteFile(bundle, []byte(consoleBundle), 0o644)
	r.run("import", chromedp.Navigate(g.URL+"/ui/policies"), chromedp.WaitVisible(chromedp.CSS("#bundle")),
		chromedp.SetUploadFiles(chromedp.CSS("#bundle"), []string{bundle}), clickNav("#import"),
		chromedp.WaitVisible(chromedp.CSS("#mapping-form")))
	r.run("add mapping", setField("#m-name", "team-only"), setField("#m-registry", "registry.example"),
		setField("#m-repository", "team/*"), setField("#m-image-type", "tag"), setField("#m-image-value", "v*"))
	eval[bool](r, "select", `(() => { document.querySelector("#m-policies").options[0].selected = true; document.querySelector("#m-allowlists").options[0].selected = true; return true })()`, false)
	r.run("submit mapping", clickNav("#add-mapping"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	if names := r.column("#mappings", 0); len(names) != 2 || names[0] != "team-only" || names[1] != "all" {
		t.Fatalf("mappings after adding: %q (%s)", names, r.text("main"))
	}
	export := func() string {
		return eval[string](r, "export", `fetch("/ui/policies/console-test/export").then(r => r.text())`, true)
	}
	if b := export(); !strings.Contains(b, `"team-only"`) || !strings.Contains(b, `"team/*"`) || strings.Index(b, `"team-only"`) > strings.Index(b, `"name":"all"`) && strings.Contains(b, `"name":"all"`) {
		t.Fatalf("exported bundle: %s", b)
	}
	r.run("move up", clickNav(".mapping-up"), chromedp.WaitVisible(chromedp.CSS(".notice, #page-error")))
	if names := r.column("#mappings", 0); len(names) != 2 || names[0] != "all" || names[1] != "team-only" {
		t.Fatalf("mappings after moving up: %q", names)
	}
	r.shot("26-mappings")
	r.run("sign out", clickNav(".signout button"), chromedp.WaitVisible(chromedp.CSS("#token")))
	r.signIn(ciToken)
	r.run("ci policy", chromedp.Navigate(g.URL+"/ui/policies/console-test"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if r.exists("#mapping-form") || r.exists(".mapping-up") {
		t.Fatal("a ci token sees the mapping forms")
	}
	status := eval[int](r, "ci post", `fetch("/ui/policies/console-test/mappings", {method: "POST", body: new URLSearchParams({name: "x"})}).then(r => r.status)`, true)
	if status != http.StatusForbidden {
		t.Fatalf("ci POST mappings = %d", status)
	}
}
