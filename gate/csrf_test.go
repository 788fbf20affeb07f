package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
)

// heldBundle STOPs every image (a deny list matching everything); the
// attacker's bundle, under the same id, lets every image through.
const (
	heldBundle = `{"id": "held", "name": "held", "version": "1_0",
  "policies": [{"id": "p1", "name": "p1", "version": "1_0", "rules": [{"id": "r1", "gate": "vulnerabilities", "trigger": "package", "action": "WARN",
    "params": [{"name": "package_type", "value": "all"}, {"name": "severity_comparison", "value": ">="}, {"name": "severity", "value": "critical"}]}]}],
  "whitelists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []}],
  "whitelisted_images": [], "blacklisted_images": [{"name": "held", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}}]}`
	attackBundle = `{"id": "held", "name": "held", "version": "1_0",
  "policies": [{"id": "p1", "name": "p1", "version": "1_0", "rules": []}],
  "whitelists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []}],
  "whitelisted_images": [{"name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}}], "blacklisted_images": []}`
	// tinySBOM is a CycloneDX document of one package: an analysed image
	// without pulling or cataloguing one.
	tinySBOM = `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
  "metadata": {"component": {"type": "container", "name": "team/app", "version": "1"}},
  "components": [{"type": "library", "name": "zlib1g", "version": "1:1.2.11.dfsg-2", "purl": "pkg:deb/debian/zlib1g@1:1.2.11.dfsg-2?distro=debian-11"}]}`
)

// attackPage is served from another origin. It tries every way a page can
// make a browser POST a bundle to the gate without the gate's consent:
// no-cors fetches with the content types a page may send freely, a CORS
// fetch with JSON (which needs a preflight), and a text/plain form whose
// field name carries the JSON.
const attackPage = `<!doctype html><html><body>
<iframe name="sink"></iframe>
<script>
async function attack(gate, bundle) {
  const out = [];
  const paths = ["/api/scanning/v1/anchore/policies?detail=True", "/v1/policies?detail=True", "/api/scanning/v1/anchore/policies/held"];
  for (const p of paths) {
    const method = p.endsWith("/held") ? "PUT" : "POST";
    for (const type of ["text/plain", "application/x-www-form-urlencoded", ""]) {
      try {
        await fetch(gate + p, {method: method === "PUT" ? "POST" : method, mode: "no-cors", credentials: "include", body: new Blob([bundle], {type})});
        out.push(p + " no-cors " + (type || "untyped") + ": sent");
      } catch (e) { out.push(p + " no-cors " + (type || "untyped") + ": " + e); }
    }
    try {
      const r = await fetch(gate + p, {method, credentials: "include", headers: {"Content-Type": "application/json"}, body: bundle});
      out.push(p + " cors json: answered " + r.status);
    } catch (e) { out.push(p + " cors json: blocked"); }
  }
  const form = document.createElement("form");
  form.method = "POST"; form.enctype = "text/plain"; form.target = "sink";
  form.action = gate + "/api/scanning/v1/anchore/policies?detail=True";
  const field = document.createElement("input");
  field.name = bundle.slice(0, -1) + ', "pad": "'; field.value = '"}';
  form.appendChild(field); document.body.appendChild(form);
  await new Promise(done => { document.querySelector("iframe").onload = done; form.submit(); });
  out.push("text/plain form: submitted");
  return out;
}
</script></body></html>`

// seen is one request the recording proxy forwarded to the gate.
type seen struct {
	method, path, contentType string
	credentials               bool
	status                    int
}

// TestCrossSiteWritesFail is finding 1 in headless Chromium: an admin's
// browser holds the admin token as Basic credentials and sends them with
// every request to the gate (what answering one Basic prompt amounts to);
// a page on another origin tries to replace the active bundle, which STOPs
// an image, with one that passes it. Every attempt fails, the bundle is
// unchanged and the verdict stays STOP. The gate also never challenges
// with Basic, so the browser has no prompt to answer in the first place.
func TestCrossSiteWritesFail(t *testing.T) {
	ctx := browser(t)
	g := startGate(t, nil)

	// The active bundle STOPs team/app:1.
	if code := g.do(t, "POST", "/v1/policies", "application/json", heldBundle, nil); code != http.StatusCreated {
		t.Fatalf("adding the bundle = %d", code)
	}
	if code := g.do(t, "POST", "/v1/policies/held/activate", "", "", nil); code != http.StatusOK {
		t.Fatalf("activating the bundle = %d", code)
	}
	var img api.Image
	if code := g.do(t, "POST", "/v1/sboms?tag=team/app:1", "application/json", tinySBOM, &img); code != http.StatusCreated {
		t.Fatalf("uploading the SBOM = %d %+v", code, img)
	}
	const tag = "docker.io/team/app:1"
	if v := g.check(t, img.Digest, tag); v.FinalAction != policy.ActionStop {
		t.Fatalf("before the attack the verdict is %s, want STOP", v.FinalAction)
	}
	var before api.Policy
	g.get(t, "/v1/policies/held", &before)

	// The browser reaches the gate through a proxy that records what it
	// sent, so the test can tell the credentials went along.
	target, _ := url.Parse(g.URL)
	var mu sync.Mutex
	var log []seen
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		mu.Lock()
		log = append(log, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), strings.HasPrefix(r.Header.Get("Authorization"), "Basic "), resp.StatusCode})
		mu.Unlock()
		return nil
	}
	gate := httptest.NewServer(proxy)
	t.Cleanup(gate.Close)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, attackPage)
	}))
	t.Cleanup(attacker.Close)
	if strings.TrimPrefix(gate.URL, "http://") == strings.TrimPrefix(attacker.URL, "http://") {
		t.Fatal("the attacker must be on another origin")
	}

	// No Basic prompt: the gate's 401s, as the browser sees them, challenge
	// only Bearer.
	for _, p := range []string{"/v1/images", "/api/scanning/v1/anchore/images", "/v1/policies"} {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(gate.URL+p))
		if err != nil {
			t.Fatal(err)
		}
		challenge := ""
		for k, v := range resp.Headers {
			if strings.EqualFold(k, "WWW-Authenticate") {
				challenge = fmt.Sprint(v)
			}
		}
		if resp.Status != 401 || !strings.HasPrefix(challenge, "Bearer") || strings.Contains(strings.ToLower(challenge), "basic") {
			t.Errorf("the browser's GET %s = %d challenging %s, want 401 with no Basic challenge", p, resp.Status, challenge)
		}
	}

	// The worst case: the browser sends the admin's credentials anyway.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testToken+":"))
	err := chromedp.Do(ctx, chromedp.Func(func(ctx2 context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx2, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx2, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basic}})
		return err
	}), chromedp.Navigate(attacker.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf("attack(%q, %s)", gate.URL, mustJSON(t, attackBundle)), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the page's attempts: %q", out)

	mu.Lock()
	defer mu.Unlock()
	writes := 0
	for _, s := range log {
		if s.method == http.MethodGet || s.method == http.MethodOptions {
			continue
		}
		writes++
		t.Logf("the gate got %s %s (%s, credentials %v): %d", s.method, s.path, s.contentType, s.credentials, s.status)
		if !s.credentials {
			t.Errorf("%s %s reached the gate without the admin's credentials: the test does not show what it claims", s.method, s.path)
		}
		if s.status < 400 {
			t.Errorf("%s %s (%s) from another origin = %d, want it refused", s.method, s.path, s.contentType, s.status)
		}
	}
	if writes < 10 {
		t.Errorf("%d of the page's writes reached the gate, want the 9 no-cors fetches and the form", writes)
	}
	var after api.Policy
	g.get(t, "/v1/policies/held", &after)
	if after.Version != before.Version || !after.Active || string(after.Bundle) != string(before.Bundle) {
		t.Errorf("the bundle changed: version %d -> %d, active %v", before.Version, after.Version, after.Active)
	}
	if v := g.check(t, img.Digest, tag); v.FinalAction != policy.ActionStop {
		t.Errorf("after the attack the verdict is %s, want STOP", v.FinalAction)
	}
}

func mustJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
