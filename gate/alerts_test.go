package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// hookBody is what the tests read of a webhook's JSON body.
type hookBody struct {
	DeliveryID string `json:"delivery_id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Alert      *struct{ ID, Name string }
	Image      *struct {
		Digest string
		Tag    string
		Tags   []string
	}
	Verdict *struct {
		FinalAction  string `json:"final_action"`
		StopFindings int    `json:"stop_findings"`
	}
	Vulnerabilities *struct {
		Appeared    []struct{ ID, Severity, Package string }
		Disappeared []struct{ ID, Severity, Package string }
	}
	Runtime *struct {
		Cluster, Namespace, Pod, Image string
		ScanSubmitted                  bool `json:"scan_submitted"`
	}
	TagUpdate *struct {
		Tag      string
		Previous string `json:"previous_digest"`
		Digest   string
	} `json:"tag_update"`
}

// received decodes the requests a receiver accepted (each one's signature
// checked) of event type typ.
func received(t *testing.T, r *notifytest.Receiver, typ string) []hookBody {
	t.Helper()
	var out []hookBody
	for _, req := range r.Requests() {
		var b hookBody
		if err := json.Unmarshal(req.Body, &b); err != nil {
			t.Fatalf("webhook body %q: %v", req.Body, err)
		}
		if b.DeliveryID != req.Delivery || b.Type != req.Event || !req.Signed {
			t.Fatalf("headers (delivery %q, event %q, signed %v) disagree with the body %s", req.Delivery, req.Event, req.Signed, req.Body)
		}
		if typ == "" || b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// call sends a JSON request with the admin token and decodes the answer.
func (g *testGate) call(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	code, b := g.regCall(t, method, path, body, nil)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return code
}

func (g *testGate) mustCall(t *testing.T, method, path string, body, out any, want int) {
	t.Helper()
	code, b := g.regCall(t, method, path, body, nil)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
}

func (g *testGate) webhookChannel(t *testing.T, name, hookURL, secret string) string {
	t.Helper()
	var ch api.Channel
	g.mustCall(t, "POST", "/v1/channels", map[string]any{"name": name, "type": "webhook", "url": hookURL, "secret": secret}, &ch, 201)
	return ch.ID
}

// TestAlertUnscannedImageScan: a cluster runs an image the gate has never
// seen; an unscanned_image alert with action scan has the gate pull and
// analyse it, and its verdict reaches a webhook receiver that checks the
// signature.
func TestAlertUnscannedImageScan(t *testing.T) {
	g := startGate(t, nil)
	const hookSecret = "whsec-e2e-0123456789"
	recv := notifytest.NewReceiver(t, hookSecret)
	host := testRegistry(t)
	ref := host + "/team/runtime:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))

	ch := g.webhookChannel(t, "sec-team", recv.URL, hookSecret)
	var a api.Alert
	g.mustCall(t, "POST", "/v1/alerts", map[string]any{
		"name": "prod images", "enabled": true,
		"scope":    map[string]string{"registry": "*", "repository": "team/*", "tag": "*", "cluster": "prod-*", "namespace": "*"},
		"triggers": []map[string]string{{"type": "unscanned_image", "action": "scan"}, {"type": "policy_eval_failed"}, {"type": "new_vulnerabilities", "min_severity": "high"}},
		"channels": []string{ch},
	}, &a, 201)
	if a.ID == "" || !a.Enabled || len(a.Triggers) != 3 || a.Triggers[2].MinSeverity != "high" {
		t.Fatalf("alert = %+v", a)
	}

	// A ci token may push inventory, and only that.
	ci := anchoreToken(t, g, "runtime", buildgate.RoleCI)
	if code, _ := g.regCall(t, "GET", "/v1/alerts", nil, nil, ci); code != 403 {
		t.Errorf("ci lists alerts: %d", code)
	}
	inv := map[string]any{"cluster": "prod-eu", "observed_at": time.Now().UTC().Format(time.RFC3339), "containers": []map[string]string{
		{"namespace": "web", "pod": "runtime-7d9f-abc", "container": "app", "image": ref},
		{"namespace": "web", "pod": "runtime-7d9f-def", "container": "app", "image": ref},
	}}
	code, b := g.regCall(t, "POST", "/v1/runtime/inventory", inv, nil, ci)
	var res api.InventoryResult
	json.Unmarshal(b, &res)
	if code != 200 || res.Containers != 2 || res.Images != 1 || res.Unscanned != 1 || res.Scans != 1 {
		t.Fatalf("inventory = %d %s", code, b)
	}

	waitFor(t, "the verdict's webhook", 4*time.Minute, func() bool { return len(received(t, recv, "policy_eval_failed")) > 0 })
	failed := received(t, recv, "policy_eval_failed")[0]
	if failed.Alert == nil || failed.Alert.ID != a.ID || failed.Image == nil || !slices.Contains(failed.Image.Tags, ref) ||
		failed.Verdict == nil || failed.Verdict.FinalAction != "stop" || failed.Verdict.StopFindings == 0 {
		t.Errorf("policy_eval_failed body = %+v", failed)
	}
	unscanned := received(t, recv, "unscanned_image")
	if len(unscanned) != 1 || unscanned[0].Runtime == nil || unscanned[0].Runtime.Image != ref || !unscanned[0].Runtime.ScanSubmitted ||
		unscanned[0].Runtime.Cluster != "prod-eu" {
		t.Errorf("unscanned_image bodies = %+v", unscanned)
	}

	// The gate pulled and analysed the image, and lists it as running.
	var imgs api.ImageList
	g.get(t, "/v1/images?tag="+url.QueryEscape(ref), &imgs)
	if len(imgs.Images) != 1 || imgs.Images[0].Status != api.StatusAnalyzed || imgs.Images[0].Digest != failed.Image.Digest {
		t.Fatalf("images of %s = %+v", ref, imgs)
	}
	var running api.RuntimeImageList
	code, b = g.regCall(t, "GET", "/v1/runtime/images?cluster=prod-eu&namespace=web", nil, nil, ci)
	json.Unmarshal(b, &running)
	if code != 200 || len(running.Images) != 1 || len(running.Unscanned) != 0 {
		t.Fatalf("runtime images = %d %s", code, b)
	}
	ri := running.Images[0]
	total := 0
	for _, n := range ri.Vulnerabilities {
		total += n
	}
	if ri.Status != "analyzed" || ri.FinalAction != "stop" || ri.Digest != failed.Image.Digest || len(ri.Containers) != 2 || total == 0 {
		t.Errorf("runtime image = %+v", ri)
	}

	// Each delivery is recorded with its attempt and the receiver's answer.
	var ds api.DeliveryList
	waitFor(t, "the deliveries to be recorded", 30*time.Second, func() bool {
		g.mustCall(t, "GET", "/v1/alerts/"+a.ID+"/deliveries", nil, &ds, 200)
		return len(ds.Deliveries) == 2 && ds.Deliveries[0].Status == "delivered" && ds.Deliveries[1].Status == "delivered"
	})
	for _, d := range ds.Deliveries {
		if d.ChannelID != ch || len(d.AttemptLog) == 0 || !d.AttemptLog[len(d.AttemptLog)-1].OK || d.AttemptLog[len(d.AttemptLog)-1].StatusCode != 200 ||
			d.AttemptLog[len(d.AttemptLog)-1].Answer != "ok" || d.DeliveredAt == nil || d.NextAttemptAt != nil {
			t.Errorf("delivery = %+v", d)
		}
	}

	// The same inventory again: no new notification, no new analysis.
	g.regCall(t, "POST", "/v1/runtime/inventory", inv, nil, ci)
	time.Sleep(2 * time.Second)
	if n := len(recv.Requests()); n != 2 {
		t.Errorf("%d webhook requests after the same inventory again, want 2", n)
	}
}

// dbWithout builds a DB archive from the nvd records and the Debian
// records except those whose files are named in drop, at ts.
func dbWithout(t *testing.T, ts time.Time, drop ...string) string {
	t.Helper()
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	vd := filepath.Join(shared, "vulndata", "workspaces")
	debian := filepath.Join(t.TempDir(), "debian")
	if err := os.CopyFS(debian, os.DirFS(filepath.Join(vd, "debian"))); err != nil {
		t.Fatal(err)
	}
	// Without its listing the workspace is listed again at build time.
	os.Remove(filepath.Join(debian, "results", "listing.xxh64"))
	meta, _ := os.ReadFile(filepath.Join(debian, "metadata.json"))
	var m map[string]any
	json.Unmarshal(meta, &m)
	delete(m, "listing")
	meta, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(debian, "metadata.json"), meta, 0o644)
	for _, f := range drop {
		if err := os.Remove(filepath.Join(debian, "results", f)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := vulndb.Build(context.Background(), vulndb.BuildConfig{OutDir: t.TempDir(), Timestamp: ts,
		Providers: []vulndb.ProviderDir{{Name: "nvd", Dir: filepath.Join(vd, "nvd")}, {Name: "debian", Dir: debian}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.ArchivePath
}

func (g *testGate) importArchive(t *testing.T, path string) {
	t.Helper()
	f, _ := os.ReadFile(path)
	if code := g.do(t, "POST", "/v1/db/import", "application/octet-stream", string(f), nil); code != 200 {
		t.Fatalf("import = %d", code)
	}
}

// TestAlertNewVulnerabilitiesAfterDBImport: a DB import that removes a
// vulnerability of a stored image records its disappearance; one that
// adds it back records its appearance and alerts new_vulnerabilities,
// naming the image and the vulnerability.
func TestAlertNewVulnerabilitiesAfterDBImport(t *testing.T) {
	g := startGate(t, nil)
	const hookSecret = "whsec-vulns-0123456789"
	recv := notifytest.NewReceiver(t, hookSecret)
	host := testRegistry(t)
	ref := host + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)
	d := url.PathEscape(img.Digest)

	// The vulnerability to take out and put back: a High one whose Debian
	// record is a file of its own.
	shared, _ := vulndbtest.SharedDir()
	var vulns api.VulnerabilityList
	g.get(t, "/v1/images/"+d+"/vulnerabilities?type=all", &vulns)
	var cve, file string
	for _, v := range vulns.Vulnerabilities {
		f := filepath.Join("debian-11", strings.ToLower(v.ID)+".json")
		if _, err := os.Stat(filepath.Join(shared, "vulndata", "workspaces", "debian", "results", f)); err == nil && (v.Severity == "High" || v.Severity == "Critical") {
			cve, file = v.ID, f
			break
		}
	}
	if cve == "" {
		t.Fatal("no High Debian vulnerability with a record of its own")
	}

	ch := g.webhookChannel(t, "vulns", recv.URL, hookSecret)
	var a api.Alert
	g.mustCall(t, "POST", "/v1/alerts", map[string]any{"name": "new vulns", "scope": map[string]string{"repository": "team/*"},
		"triggers": []map[string]string{{"type": "new_vulnerabilities", "min_severity": "high"}}, "channels": []string{ch}}, &a, 201)
	var sub api.Subscription
	g.mustCall(t, "POST", "/v1/subscriptions", map[string]any{"key": ref, "type": "vuln_update", "channels": []string{ch}}, &sub, 201)

	changes := func() api.VulnerabilityChangeList {
		var out api.VulnerabilityChangeList
		g.mustCall(t, "GET", "/v1/images/"+d+"/vulnerability-changes", nil, &out, 200)
		return out
	}
	has := func(vs []api.Vulnerability, id string) bool {
		return slices.ContainsFunc(vs, func(v api.Vulnerability) bool { return v.ID == id })
	}

	built1 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	g.importArchive(t, dbWithout(t, built1, file))
	waitFor(t, "the disappearance to be recorded", time.Minute, func() bool { return len(changes().Changes) == 1 })
	gone := changes().Changes[0]
	if !has(gone.Disappeared, cve) || len(gone.Appeared) != 0 || gone.DBBuilt == nil || !gone.DBBuilt.Equal(built1) {
		t.Fatalf("first change = %+v, want %s gone", gone, cve)
	}
	g.get(t, "/v1/images/"+d+"/vulnerabilities?type=all", &vulns)
	if has(vulns.Vulnerabilities, cve) {
		t.Fatalf("%s is still stored", cve)
	}

	built2 := built1.Add(24 * time.Hour)
	g.importArchive(t, dbWithout(t, built2))
	waitFor(t, "the new_vulnerabilities alert", time.Minute, func() bool { return len(received(t, recv, "new_vulnerabilities")) > 0 })
	nv := received(t, recv, "new_vulnerabilities")
	if len(nv) != 1 || nv[0].Image == nil || nv[0].Image.Digest != img.Digest || !slices.Contains(nv[0].Image.Tags, ref) || nv[0].Alert.ID != a.ID {
		t.Fatalf("new_vulnerabilities = %+v", nv)
	}
	named := false
	for _, v := range nv[0].Vulnerabilities.Appeared {
		named = named || v.ID == cve
		if v.Severity != "High" && v.Severity != "Critical" {
			t.Errorf("%s (%s) is below the alert's min_severity", v.ID, v.Severity)
		}
	}
	if !named || !strings.Contains(nv[0].Title, "new vulnerabilities") {
		t.Errorf("the alert does not name %s: %+v", cve, nv[0])
	}
	cs := changes().Changes
	if len(cs) != 2 || !has(cs[0].Appeared, cve) || !cs[0].DBBuilt.Equal(built2) {
		t.Errorf("changes = %+v", cs)
	}
	// vuln_update told the subscription's channel of both changes.
	waitFor(t, "the vuln_update notifications", 30*time.Second, func() bool { return len(received(t, recv, "vuln_update")) == 2 })
	var subDs api.DeliveryList
	g.mustCall(t, "GET", "/v1/subscriptions/"+sub.ID+"/deliveries", nil, &subDs, 200)
	if len(subDs.Deliveries) != 2 {
		t.Errorf("subscription deliveries = %+v", subDs)
	}
}

// TestSubscriptionTagUpdate: a tag_update subscription polls its tag,
// analyses the digest it points at, sees a new digest pushed under the tag
// and analyses that too, telling the subscription's channel.
func TestSubscriptionTagUpdate(t *testing.T) {
	g := startGate(t, func(c *Config) { c.Alerts.TagPollInterval = 500 * time.Millisecond })
	const hookSecret = "whsec-tags-0123456789"
	recv := notifytest.NewReceiver(t, hookSecret)
	host := testRegistry(t)
	ref := host + "/team/poll:latest"
	base := sharedImage(t, "bullseye-dpkgonly")
	push(t, ref, base)

	ch := g.webhookChannel(t, "tags", recv.URL, hookSecret)
	var sub api.Subscription
	g.mustCall(t, "POST", "/v1/subscriptions", map[string]any{"key": ref, "type": "tag_update", "channels": []string{ch}}, &sub, 201)
	if sub.Key != ref || !sub.Active || sub.Type != "tag_update" || len(sub.Channels) != 1 {
		t.Fatalf("subscription = %+v", sub)
	}
	analysed := func(digest string) bool {
		i, err := g.c.Image(context.Background(), digest)
		return err == nil && i.Status == api.StatusAnalyzed && slices.Contains(i.Tags, ref)
	}
	first, _ := base.Digest()
	waitFor(t, "the first digest's analysis", 3*time.Minute, func() bool { return analysed(first.String()) })

	next, err := mutate.AppendLayers(base, layerWith(t, map[string]string{"etc/build-id": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	push(t, ref, next)
	second, _ := next.Digest()
	waitFor(t, "the new digest's analysis", 3*time.Minute, func() bool { return analysed(second.String()) })
	waitFor(t, "the tag_update notification", 30*time.Second, func() bool { return len(received(t, recv, "tag_update")) == 1 })
	u := received(t, recv, "tag_update")[0]
	if u.TagUpdate == nil || u.TagUpdate.Tag != ref || u.TagUpdate.Previous != first.String() || u.TagUpdate.Digest != second.String() {
		t.Errorf("tag_update = %+v", u.TagUpdate)
	}

	// The gate's subscriptions and Anchore's are the same table.
	var list api.SubscriptionList
	g.mustCall(t, "GET", "/v1/subscriptions?type=tag_update", nil, &list, 200)
	if len(list.Subscriptions) != 1 || list.Subscriptions[0].ID != sub.ID {
		t.Errorf("our list = %+v", list)
	}
	req, _ := http.NewRequest("GET", g.URL+"/v1/subscriptions", nil)
	req.SetBasicAuth(testToken, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var anchoreSubs []struct {
		ID     string `json:"subscription_id"`
		Key    string `json:"subscription_key"`
		Active bool   `json:"active"`
	}
	json.NewDecoder(resp.Body).Decode(&anchoreSubs)
	resp.Body.Close()
	if len(anchoreSubs) != 1 || anchoreSubs[0].ID != sub.ID || anchoreSubs[0].Key != ref || !anchoreSubs[0].Active {
		t.Errorf("anchore list = %+v", anchoreSubs)
	}
	// Deactivated, the tag is no longer polled.
	g.mustCall(t, "PUT", "/v1/subscriptions/"+sub.ID, map[string]any{"active": false}, &sub, 200)
	if sub.Active || len(sub.Channels) != 1 {
		t.Errorf("after PUT = %+v", sub)
	}
	g.mustCall(t, "DELETE", "/v1/subscriptions/"+sub.ID, nil, nil, 204)
}

// TestAlertDeliveriesSurviveRestart: deliveries are pending (their
// receiver is down) when the gate is killed; after a restart and the
// receiver's return every delivery arrives exactly once.
func TestAlertDeliveriesSurviveRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	data := t.TempDir()
	if _, err := importDB(t, data); err != nil {
		t.Fatal(err)
	}
	const hookSecret = "whsec-restart-0123456789"
	recv := notifytest.NewStoppedReceiver(t, hookSecret)
	addr := freePort(t)
	args := []string{"serve", "--addr", addr, "--data", data, "--db-update-url", "", "--workers", "1", "--log-level", "warn",
		"--allow-private-networks", "127.0.0.0/8", "--tag-poll-interval", "0", "--delivery-retry", "500ms", "--delivery-retry-max", "2s"}
	first := gateProcess(t, args...)
	c := client.New("http://"+addr, testToken, nil)
	up := func() bool { _, err := c.DBStatus(context.Background()); return err == nil }
	waitFor(t, "the first gate", 30*time.Second, up)
	g := &testGate{Main: &Main{URL: "http://" + addr}, c: c}

	ch := g.webhookChannel(t, "restart", recv.URL, hookSecret)
	var a api.Alert
	g.mustCall(t, "POST", "/v1/alerts", map[string]any{"name": "unscanned", "triggers": []map[string]string{{"type": "unscanned_image"}},
		"channels": []string{ch}}, &a, 201)
	const n = 3
	var containers []map[string]string
	for i := range n {
		containers = append(containers, map[string]string{"namespace": "ns", "pod": fmt.Sprintf("p%d", i), "container": "c", "image": fmt.Sprintf("registry.invalid/team/app%d:1", i)})
	}
	var res api.InventoryResult
	g.mustCall(t, "POST", "/v1/runtime/inventory", map[string]any{"cluster": "c1", "containers": containers}, &res, 200)
	if res.Unscanned != n || res.Scans != 0 {
		t.Fatalf("inventory = %+v", res)
	}
	var ds api.DeliveryList
	waitFor(t, "failed attempts while the receiver is down", 30*time.Second, func() bool {
		g.mustCall(t, "GET", "/v1/alerts/"+a.ID+"/deliveries", nil, &ds, 200)
		failedTwice := 0
		for _, d := range ds.Deliveries {
			if d.Status == "pending" && d.Attempts >= 2 && d.NextAttemptAt != nil && d.LastError != "" {
				failedTwice++
			}
		}
		return failedTwice == n
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	recv.Start(t)
	gateProcess(t, args...)
	waitFor(t, "the second gate", 30*time.Second, up)
	waitFor(t, "every delivery", 2*time.Minute, func() bool { return len(recv.Requests()) >= n })
	// Give a duplicate time to show up.
	time.Sleep(3 * time.Second)
	seen := map[string]int{}
	for _, r := range recv.Requests() {
		seen[r.Delivery]++
	}
	if len(recv.Requests()) != n || len(seen) != n {
		t.Fatalf("%d requests for %d deliveries: %v", len(recv.Requests()), len(seen), seen)
	}
	// The same inventory after the restart queues nothing new.
	g.mustCall(t, "POST", "/v1/runtime/inventory", map[string]any{"cluster": "c1", "containers": containers}, &res, 200)
	g.mustCall(t, "GET", "/v1/alerts/"+a.ID+"/deliveries", nil, &ds, 200)
	if len(ds.Deliveries) != n {
		t.Fatalf("%d deliveries", len(ds.Deliveries))
	}
	for _, d := range ds.Deliveries {
		if d.Status != "delivered" || seen[d.ID] != 1 || !d.AttemptLog[len(d.AttemptLog)-1].OK || d.AttemptLog[0].OK {
			t.Errorf("delivery = %+v", d)
		}
	}
}

// TestChannelSecretsNeverShown creates, reads, updates and tests webhook,
// Slack and email channels (email through an in-process SMTP server with
// STARTTLS and AUTH PLAIN) and checks that no secret is in an answer, in
// the logs or in the database file.
func TestChannelSecretsNeverShown(t *testing.T) {
	logs := &syncBuffer{}
	g := startRegistryGate(t, "", true, logs)
	const (
		hookSecret   = "whsec-NEVER-SHOWN-0123456789"
		slackToken   = "SLACKTOKEN-NEVER-SHOWN-42"
		smtpPassword = "smtp-NEVER-SHOWN-pass-99"
	)
	secrets := []string{hookSecret, slackToken, smtpPassword}
	var answers []string
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		code, b := g.regCall(t, method, path, body, &answers)
		if code != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
		}
		return b
	}

	recv := notifytest.NewReceiver(t, hookSecret)
	var slackMu sync.Mutex
	var slackBodies [][]byte
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		slackMu.Lock()
		slackBodies = append(slackBodies, buf.Bytes())
		slackMu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer slack.Close()
	smtp := notifytest.NewSMTPServer(t, "gate@example.com", smtpPassword)

	var hook, sl, mail api.Channel
	json.Unmarshal(call("POST", "/v1/channels", map[string]any{"name": "hook", "type": "webhook", "url": recv.URL, "secret": hookSecret}, 201), &hook)
	json.Unmarshal(call("POST", "/v1/channels", map[string]any{"name": "slack", "type": "slack", "url": slack.URL + "/services/T0/B0/" + slackToken}, 201), &sl)
	json.Unmarshal(call("POST", "/v1/channels", map[string]any{"name": "mail", "type": "email", "smtp_host": smtp.Host, "smtp_port": smtp.Port,
		"tls": "starttls", "ca_cert": smtp.CACert, "username": "gate@example.com", "password": smtpPassword,
		"from": "gate@example.com", "to": []string{"sec@example.com"}}, 201), &mail)
	for _, c := range []api.Channel{hook, sl, mail} {
		if c.ID == "" || !c.SecretSet || c.SecretSetAt == nil {
			t.Errorf("channel = %+v", c)
		}
	}
	if sl.URL != slack.URL+"/…" {
		t.Errorf("slack url answered as %q", sl.URL)
	}
	call("GET", "/v1/channels", nil, 200)
	for _, c := range []api.Channel{hook, sl, mail} {
		call("GET", "/v1/channels/"+c.ID, nil, 200)
		var res api.ChannelTestResult
		json.Unmarshal(call("POST", "/v1/channels/"+c.ID+"/test", nil, 200), &res)
		if !res.OK {
			t.Errorf("test of %s = %+v", c.Name, res)
		}
	}
	// An update without secrets keeps them.
	call("PUT", "/v1/channels/"+mail.ID, map[string]any{"name": "mail-2"}, 200)
	var res api.ChannelTestResult
	json.Unmarshal(call("POST", "/v1/channels/"+mail.ID+"/test", nil, 200), &res)
	if !res.OK {
		t.Errorf("test after update = %+v", res)
	}
	slackMu.Lock()
	if len(received(t, recv, "test")) != 1 || len(slackBodies) != 1 || !bytes.Contains(slackBodies[0], []byte(`"blocks"`)) {
		t.Errorf("test messages: webhook %d, slack %d", len(recv.Requests()), len(slackBodies))
	}
	slackMu.Unlock()
	mails := smtp.Mails()
	if len(mails) != 2 || !mails[0].TLS || mails[0].User != "gate@example.com" || smtp.AuthFailures() != 0 ||
		!bytes.Contains(mails[0].Data, []byte("Subject: buildgate test message")) {
		t.Errorf("mails = %+v", mails)
	}

	// Failures quote neither the Slack URL nor a password.
	slack.Close()
	json.Unmarshal(call("POST", "/v1/channels/"+sl.ID+"/test", nil, 200), &res)
	if res.OK || res.Error == "" {
		t.Errorf("test of a closed slack = %+v", res)
	}
	call("PUT", "/v1/channels/"+mail.ID, map[string]any{"password": "wrong-" + smtpPassword}, 200)
	json.Unmarshal(call("POST", "/v1/channels/"+mail.ID+"/test", nil, 200), &res)
	if res.OK || res.StatusCode != 535 {
		t.Errorf("test with a wrong password = %+v", res)
	}
	// A type cannot change; bad input is refused without quoting it.
	call("PUT", "/v1/channels/"+hook.ID, map[string]any{"type": "slack"}, 400)
	call("POST", "/v1/channels", map[string]any{"name": "bad", "type": "slack", "url": "not a url " + slackToken}, 400)
	call("POST", "/v1/channels", `{"name": "bad", "secret": "`+hookSecret+`"`, 400)
	// A channel an alert uses cannot go.
	var a api.Alert
	json.Unmarshal(call("POST", "/v1/alerts", map[string]any{"name": "uses hook", "triggers": []map[string]string{{"type": "verdict_changed"}}, "channels": []string{hook.ID}}, 201), &a)
	call("DELETE", "/v1/channels/"+hook.ID, nil, 409)
	call("DELETE", "/v1/alerts/"+a.ID, nil, 204)
	call("DELETE", "/v1/channels/"+hook.ID, nil, 204)
	call("GET", "/v1/channels/"+hook.ID, nil, 404)

	for _, s := range secrets {
		for _, ans := range answers {
			if strings.Contains(ans, s) {
				t.Errorf("an answer holds a secret: %s", ans)
			}
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold %s", s)
		}
	}
	if !strings.Contains(logs.String(), "channel test message sent") {
		t.Error("nothing was logged: the log check checks nothing")
	}
	for _, f := range []string{"buildgate.db", "buildgate.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(g.Config.DataDir, f))
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %s in clear", f, s)
			}
		}
	}
}

// TestRuntimeExampleScript runs examples/runtime/push-inventory.sh with a
// kubectl that prints a pod list, against a gate, and reads the inventory
// back.
func TestRuntimeExampleScript(t *testing.T) {
	for _, tool := range []string{"sh", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (.ci/run installs it)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	g := startGate(t, nil)
	bin := t.TempDir()
	pods := `{"items": [
	 {"metadata": {"namespace": "web", "name": "app-1"}, "spec": {"containers": [{"name": "app", "image": "registry.example/team/app:1.4"}]},
	  "status": {"phase": "Running", "containerStatuses": [{"name": "app", "imageID": "registry.example/team/app@sha256:` + strings.Repeat("2", 64) + `"}]}},
	 {"metadata": {"namespace": "jobs", "name": "done"}, "spec": {"containers": [{"name": "x", "image": "busybox"}]}, "status": {"phase": "Succeeded"}}]}`
	os.WriteFile(filepath.Join(bin, "pods.json"), []byte(pods), 0o644)
	os.WriteFile(filepath.Join(bin, "kubectl"), []byte("#!/bin/sh\ncat "+filepath.Join(bin, "pods.json")+"\n"), 0o755)
	cmd := exec.Command("sh", filepath.Join("..", "examples", "runtime", "push-inventory.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GATE_URL="+g.URL, "GATE_TOKEN="+anchoreToken(t, g, "cron", buildgate.RoleCI), "CLUSTER=prod-eu")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("push-inventory.sh: %v\n%s", err, out)
	}
	var res api.InventoryResult
	if err := json.Unmarshal(out, &res); err != nil || res.Cluster != "prod-eu" || res.Containers != 1 || res.Unscanned != 1 {
		t.Fatalf("answer %s (%v)", out, err)
	}
	var running api.RuntimeImageList
	g.mustCall(t, "GET", "/v1/runtime/images?cluster=prod-eu", nil, &running, 200)
	if len(running.Unscanned) != 1 || running.Unscanned[0].ImageDigest != "sha256:"+strings.Repeat("2", 64) ||
		running.Unscanned[0].Tag != "registry.example/team/app:1.4" || running.Unscanned[0].Containers[0].Pod != "app-1" {
		t.Errorf("running = %+v", running)
	}
}
