package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
)

const goAllYAML = `
id: go-all
name: go all
version: "1_0"
policies:
  - id: p1
    name: only warn
    version: "1_0"
    rules:
      - id: r1
        gate: vulnerabilities
        trigger: package
        action: STOP
        params:
          - {name: package_type, value: all}
          - {name: severity_comparison, value: ">="}
          - {name: severity, value: low}
whitelists: []
mappings:
  - {id: m1, name: elsewhere, registry: "no-such-registry.example", repository: "*", image: {type: tag, value: "*"}, policy_id: p1, whitelist_ids: []}
`

// blockingRegistry is go-containerregistry's registry, whose manifests
// under /v2/slow/ and blobs under /v2/pending/ are answered to the gate
// only when the test ends (or the gate gives up): a slow registry, and an
// analysis that cannot finish.
func blockingRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		gate := strings.Contains(r.UserAgent(), "buildgate/") // pushes from the test go through
		if gate && (strings.HasPrefix(p, "/v2/slow/") && strings.Contains(p, "/manifests/") ||
			strings.HasPrefix(p, "/v2/pending/") && strings.Contains(p, "/blobs/sha256:") && r.Method == http.MethodGet) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: cleanups run last-in first-out
	return strings.TrimPrefix(srv.URL, "http://")
}

// podReview is an AdmissionReview of a Pod built with k8s.io/api types.
func podReview(uid, ns string, dryRun bool, images ...string) []byte {
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "app-" + uid, Namespace: ns},
	}
	for i, img := range images {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: img})
	}
	raw, _ := json.Marshal(pod)
	return reviewOf(uid, ns, "Pod", pod.Name, dryRun, raw)
}

func reviewOf(uid, ns, kind, name string, dryRun bool, raw []byte) []byte {
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       k8stypes.UID(uid),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: kind},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: strings.ToLower(kind) + "s"},
			Name:      name,
			Namespace: ns,
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "alice@example.com", Groups: []string{"system:authenticated"}},
			Object:    runtime.RawExtension{Raw: raw},
			DryRun:    &dryRun,
		},
	}
	b, _ := json.Marshal(ar)
	return b
}

// captured reads a captured AdmissionReview and fills its placeholders.
func captured(t *testing.T, file string, vars map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "admission", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return []byte(s)
}

// review posts an AdmissionReview and decodes the answer strictly,
// checking it is a well-formed admission.k8s.io/v1 AdmissionReview for the
// request's uid.
func review(t *testing.T, g *testGate, token, query string, body []byte) (*admissionv1.AdmissionResponse, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/admission/review"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("review = %d %s, want 200", resp.StatusCode, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var out admissionv1.AdmissionReview
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("answer %s is not an AdmissionReview: %v", b, err)
	}
	var in struct {
		Request *struct{ UID string } `json:"request"`
	}
	json.Unmarshal(body, &in)
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil || out.Request != nil {
		t.Fatalf("answer = %s", b)
	}
	if in.Request != nil && string(out.Response.UID) != in.Request.UID {
		t.Fatalf("answer uid %q, request uid %q", out.Response.UID, in.Request.UID)
	}
	if !out.Response.Allowed && (out.Response.Result == nil || out.Response.Result.Code != 403 || out.Response.Result.Message == "") {
		t.Fatalf("a denial without a 403 status and message: %s", b)
	}
	return out.Response, took
}

func message(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}

func (g *testGate) decisions(t *testing.T, query string) []api.AdmissionDecision {
	t.Helper()
	var out api.AdmissionDecisionList
	g.mustCall(t, "GET", "/v1/admission/decisions"+query, nil, &out, 200)
	return out.Decisions
}

// TestAdmissionReviews sends real admission.k8s.io/v1 AdmissionReviews
// (built with k8s.io/api, and captured JSON of a Deployment and of a Pod
// with init and ephemeral containers) to a gate holding real analysed
// images, under rules of each mode.
func TestAdmissionReviews(t *testing.T) {
	g := startGate(t, func(c *Config) { c.Admission.Timeout = 2 * time.Minute })
	const hookSecret = "whsec-admission-0123456789"
	recv := notifytest.NewReceiver(t, hookSecret)
	host := testRegistry(t)
	slow := blockingRegistry(t)
	ref := host + "/team/app:1.2"
	debugRef := host + "/team/debug:1"
	base := sharedImage(t, "bullseye-dpkgonly")
	push(t, ref, base)
	push(t, debugRef, base)
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("image = %s %s", img.Status, img.Error)
	}
	debugByDigest := host + "/team/debug@" + img.Digest

	for _, y := range []string{passAllYAML, goAllYAML} {
		if code := g.do(t, "POST", "/v1/policies", "application/yaml", y, nil); code != 201 {
			t.Fatalf("saving a bundle: %d", code)
		}
	}
	admissionToken := anchoreToken(t, g, "kube-apiserver", buildgate.RoleAdmission)
	ciToken := anchoreToken(t, g, "ci", buildgate.RoleCI)

	// Rules, in order; invalid ones are refused with what is wrong.
	for _, bad := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "x", "mode": "block"}, `mode "block" is not one of policy, analysis, audit`},
		{map[string]any{"name": "x", "wait": "5 minutes"}, `wait "5 minutes" is not a positive duration`},
		{map[string]any{"name": "x", "wait": "3m"}, "wait 3m0s is outside 0s..2m0s"},
		{map[string]any{"name": "x", "policy": "nope"}, `policy "nope" does not exist`},
	} {
		var er api.ErrorResponse
		if code := g.call(t, "POST", "/v1/admission/rules", bad.body, &er); code != 400 || !strings.Contains(er.Error.Message, bad.want) {
			t.Errorf("rule %v = %d %q, want 400 with %q", bad.body, code, er.Error.Message, bad.want)
		}
	}
	rules := []map[string]any{
		{"name": "labelled", "namespace_labels": map[string]string{"env": "prod"}, "wait": "8s"},
		{"name": "prod", "namespaces": []string{"prod-*"}, "scope": map[string]string{"registry": "*", "repository": "team/*", "tag": "*"},
			"mode": "policy", "policy": "", "wait": "8s", "on_error": "deny"},
		{"name": "staging", "namespaces": []string{"staging"}, "policy": "pass-all"},
		{"name": "dev", "namespaces": []string{"dev"}, "policy": "go-all"},
		{"name": "break-glass", "namespaces": []string{"break-glass"}, "mode": "audit"},
		{"name": "fresh", "namespaces": []string{"fresh"}, "wait": "90s"},
		{"name": "pending", "namespaces": []string{"pending"}, "wait": "500ms"},
		{"name": "slow-allow", "namespaces": []string{"slow-allow"}, "wait": "1s", "on_error": "allow"},
		{"name": "slow-deny", "namespaces": []string{"slow-deny"}, "wait": "1s"},
		{"name": "lenient", "namespaces": []string{"lenient"}, "mode": "analysis", "on_error": "allow"},
	}
	for i, r := range rules {
		r["position"] = i
		var out api.AdmissionRule
		g.mustCall(t, "POST", "/v1/admission/rules", r, &out, 201)
	}
	var list api.AdmissionRuleList
	g.mustCall(t, "GET", "/v1/admission/rules", nil, &list, 200)
	if len(list.Rules) != len(rules) || list.Rules[1].Name != "prod" || list.Rules[1].Wait != "8s" || list.Rules[2].Wait != "2m0s" && list.Rules[2].Wait != "8s" {
		t.Fatalf("rules = %+v", list.Rules)
	}

	// The audit rule's denials raise admission_denied.
	ch := g.webhookChannel(t, "cluster-team", recv.URL, hookSecret)
	g.mustCall(t, "POST", "/v1/alerts", map[string]any{
		"name": "break-glass used", "enabled": true,
		"scope":    map[string]string{"namespace": "break-glass", "cluster": "prod-eu"},
		"triggers": []map[string]string{{"type": "admission_denied"}},
		"channels": []string{ch},
	}, nil, 201)

	stopMessage := regexp.MustCompile(`^image ` + regexp.QuoteMeta(ref) + ` \(sha256:[0-9a-f]{64}\) is STOP under policy "Default bundle": \d+ (critical|high) (vulnerability with a fix|vulnerabilities with fixes) \(CVE-\d+-\d+(, CVE-\d+-\d+)*(, \.\.\.)?\).*; see http://127\.0\.0\.1:\d+/ui/images/sha256:[0-9a-f]{64}`)

	t.Run("STOP denied with the message", func(t *testing.T) {
		vars := map[string]string{"NAMESPACE": "prod-web", "IMAGE": ref, "INIT_IMAGE": ref, "DRY_RUN": "true"}
		r, _ := review(t, g, admissionToken, "?cluster=prod-eu", captured(t, "deployment.json", vars))
		if r.Allowed || !stopMessage.MatchString(message(r)) {
			t.Fatalf("dry run = allowed %v %q, want denied like %s", r.Allowed, message(r), stopMessage)
		}
		vars["DRY_RUN"] = "false"
		r, _ = review(t, g, admissionToken, "?cluster=prod-eu", captured(t, "deployment.json", vars))
		if r.Allowed || !stopMessage.MatchString(message(r)) {
			t.Fatalf("review = allowed %v %q", r.Allowed, message(r))
		}
		var ds []api.AdmissionDecision
		waitFor(t, "the decision to be stored", time.Minute, func() bool { ds = g.decisions(t, "?namespace=prod-web"); return len(ds) > 0 })
		d := ds[0]
		if len(ds) != 1 || d.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" || d.Cluster != "prod-eu" || d.Kind != "Deployment" || d.Name != "web" ||
			d.User != "kubernetes-admin" || d.Operation != "CREATE" || d.Allowed || d.RuleName != "prod" || d.Mode != "policy" || len(d.Images) != 2 {
			t.Fatalf("decisions = %+v (the dry run must not be stored)", ds)
		}
		if d.Images[0].Kind != "init" || d.Images[1].Kind != "container" || d.Images[1].Digest != img.Digest || d.Images[1].Verdict != "stop" {
			t.Errorf("decision images = %+v", d.Images)
		}
	})

	t.Run("WARN admitted with a warning", func(t *testing.T) {
		r, _ := review(t, g, admissionToken, "", podReview("warn-1", "staging", false, ref))
		if !r.Allowed || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `(`+img.Digest+`) is WARN under policy "pass all": `) ||
			!strings.Contains(r.Warnings[0], "critical vulnerabilit") {
			t.Fatalf("review = %+v", r)
		}
	})

	t.Run("GO admitted: every container, init and ephemeral container", func(t *testing.T) {
		vars := map[string]string{"NAMESPACE": "dev", "IMAGE": ref, "INIT_IMAGE": ref, "EPHEMERAL_IMAGE": debugByDigest, "DRY_RUN": "false"}
		r, _ := review(t, g, admissionToken, "", captured(t, "pod-ephemeral.json", vars))
		if !r.Allowed || len(r.Warnings) != 0 || r.Result != nil {
			t.Fatalf("review = %+v", r)
		}
		var d api.AdmissionDecision
		waitFor(t, "the decision", time.Minute, func() bool {
			ds := g.decisions(t, "?namespace=dev")
			if len(ds) > 0 {
				d = ds[0]
			}
			return len(ds) > 0
		})
		var kinds []string
		for _, i := range d.Images {
			kinds = append(kinds, i.Kind+"="+i.Verdict)
			if i.Digest != img.Digest {
				t.Errorf("image %s judged as %s, want %s", i.Image, i.Digest, img.Digest)
			}
		}
		if !slices.Equal(kinds, []string{"init=go", "container=go", "ephemeral=go"}) || d.Operation != "UPDATE" {
			t.Errorf("decision = %+v", d)
		}
		// The same Pod in prod: each container is denied, the ephemeral
		// one (by digest) too.
		vars["NAMESPACE"] = "prod-web"
		r, _ = review(t, g, admissionToken, "", captured(t, "pod-ephemeral.json", vars))
		if r.Allowed || strings.Count(message(r), "is STOP") != 3 || !strings.Contains(message(r), "image "+debugByDigest+" (") {
			t.Fatalf("prod review = allowed %v %q", r.Allowed, message(r))
		}
	})

	t.Run("namespace labels select a rule", func(t *testing.T) {
		ns, _ := json.Marshal(corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: "payments", Labels: map[string]string{"env": "prod"}}})
		if r, _ := review(t, g, admissionToken, "?cluster=prod-eu", reviewOf("ns-1", "", "Namespace", "payments", false, ns)); !r.Allowed {
			t.Fatalf("namespace review = %+v", r)
		}
		r, _ := review(t, g, admissionToken, "?cluster=prod-eu", podReview("lab-1", "payments", false, ref))
		if r.Allowed || !strings.Contains(message(r), "is STOP") {
			t.Fatalf("labelled namespace = %+v", r)
		}
		// The same namespace name in another cluster has no labels known.
		if r, _ := review(t, g, admissionToken, "?cluster=dev-eu", podReview("lab-2", "payments", false, ref)); !r.Allowed {
			t.Fatalf("unlabelled namespace = %+v, want admitted (no rule)", r)
		}
	})

	t.Run("audit admits, records and alerts", func(t *testing.T) {
		r, _ := review(t, g, admissionToken, "?cluster=prod-eu", podReview("audit-1", "break-glass", false, ref))
		if !r.Allowed || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "audit mode admitted: image "+ref) {
			t.Fatalf("review = %+v", r)
		}
		waitFor(t, "the admission_denied webhook", time.Minute, func() bool { return len(received(t, recv, "admission_denied")) > 0 })
		var body struct {
			Title     string
			Admission struct {
				Cluster, Namespace, Kind, Name, Rule, Mode string
				Images                                     []string
			}
		}
		json.Unmarshal(recv.Requests()[0].Body, &body)
		if a := body.Admission; a.Cluster != "prod-eu" || a.Namespace != "break-glass" || a.Kind != "Pod" || a.Rule != "break-glass" ||
			a.Mode != "audit" || !slices.Equal(a.Images, []string{ref}) || !strings.Contains(body.Title, "would have been denied") {
			t.Errorf("webhook body = %+v", body)
		}
		ds := g.decisions(t, "?namespace=break-glass")
		if len(ds) != 1 || !ds[0].Allowed || !ds[0].WouldDeny {
			t.Errorf("decisions = %+v", ds)
		}
	})

	t.Run("unknown image scanned, then judged within wait", func(t *testing.T) {
		fresh, err := mutate.AppendLayers(base, layerWith(t, map[string]string{"etc/fresh": "fresh"}))
		if err != nil {
			t.Fatal(err)
		}
		freshRef := host + "/team/fresh:1"
		push(t, freshRef, fresh)
		r, took := review(t, g, admissionToken, "", podReview("fresh-1", "fresh", false, freshRef))
		if r.Allowed || !strings.Contains(message(r), "image "+freshRef+" (sha256:") || !strings.Contains(message(r), "is STOP") || took > 90*time.Second {
			t.Fatalf("review after %s = allowed %v %q", took, r.Allowed, message(r))
		}
	})

	t.Run("analysis still running past wait: denied, retry", func(t *testing.T) {
		pendingRef := slow + "/pending/app:1"
		pending, _ := mutate.AppendLayers(base, layerWith(t, map[string]string{"etc/pending": "pending"}))
		push(t, pendingRef, pending)
		r, took := review(t, g, admissionToken, "", podReview("pending-1", "pending", false, pendingRef))
		if r.Allowed || !strings.Contains(message(r), "is being analysed by buildgate, retry") || took > 30*time.Second {
			t.Fatalf("review after %s = allowed %v %q", took, r.Allowed, message(r))
		}
	})

	t.Run("slow registry answered by on_error within the deadline", func(t *testing.T) {
		slowRef := slow + "/slow/app:1"
		push(t, slowRef, base)
		for _, tt := range []struct {
			ns      string
			allowed bool
			want    string
		}{{"slow-allow", true, `admitted by rule "slow-allow" (on_error allow)`}, {"slow-deny", false, `denied by rule "slow-deny" (on_error deny)`}} {
			r, took := review(t, g, admissionToken, "", podReview("slow-"+tt.ns, tt.ns, false, slowRef))
			text := message(r) + strings.Join(r.Warnings, "\n")
			if r.Allowed != tt.allowed || !strings.Contains(text, "no answer within the rule's wait of 1s") || !strings.Contains(text, tt.want) {
				t.Errorf("%s = %+v", tt.ns, r)
			}
			if took > 10*time.Second {
				t.Errorf("%s answered after %s, over Kubernetes' 10s timeout", tt.ns, took)
			}
		}
	})

	t.Run("bad input: 200 with a well-formed review, on_error, the problem named", func(t *testing.T) {
		service, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]string{"name": "svc"}})
		empty, _ := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "empty"}})
		tests := []struct {
			name    string
			body    []byte
			allowed bool
			want    string
		}{
			{"malformed", []byte(`{"apiVersion": "admission.k8s.io/v1", "request": {`), false, "the AdmissionReview is not valid JSON"},
			{"oversized", append([]byte(`{"x": "`), bytes.Repeat([]byte("a"), 8<<20)...), false, "over the limit of 7340032 bytes"},
			{"no request", []byte(`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}`), false, "has no request"},
			{"unknown kind", reviewOf("bad-1", "lenient", "Service", "svc", false, service), true, `kind "Service" is not one the gate judges`},
			{"no containers", reviewOf("bad-2", "lenient", "Pod", "empty", false, empty), true, `Pod "empty" has no containers`},
			{"bad reference, lenient", podReview("bad-3", "lenient", false, "Host/UPPER:tag"), true, `image reference "Host/UPPER:tag" is not valid`},
			{"bad reference, prod", podReview("bad-4", "prod-web", false, "127.0.0.1:1/team/Bad:tag"), false, `image reference "127.0.0.1:1/team/Bad:tag" is not valid`},
			{"unknown kind, prod", reviewOf("bad-5", "prod-web", "Service", "svc", false, service), false, `kind "Service" is not one the gate judges`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r, _ := review(t, g, admissionToken, "", tt.body)
				text := message(r) + strings.Join(r.Warnings, "\n")
				if r.Allowed != tt.allowed || !strings.Contains(text, tt.want) {
					t.Fatalf("answer = allowed %v %q, want %v with %q", r.Allowed, text, tt.allowed, tt.want)
				}
			})
		}
	})

	t.Run("roles", func(t *testing.T) {
		if code, _ := g.regCall(t, "GET", "/v1/images", nil, nil, admissionToken); code != 403 {
			t.Errorf("admission token lists images: %d, want 403", code)
		}
		if code, _ := g.regCall(t, "GET", "/v1/admission/rules", nil, nil, admissionToken); code != 403 {
			t.Errorf("admission token lists rules: %d, want 403", code)
		}
		if code, _ := g.regCall(t, "POST", "/v1/admission/review", string(podReview("r", "dev", false, ref)), nil, ciToken); code != 403 {
			t.Errorf("ci token reviews: %d, want 403", code)
		}
		if code, _ := g.regCall(t, "POST", "/v1/admission/review", string(podReview("r", "dev", false, ref)), nil, "nope"); code != 401 {
			t.Errorf("bad token reviews: %d, want 401", code)
		}
	})

	t.Run("rules update and delete", func(t *testing.T) {
		id := list.Rules[9].ID
		var out api.AdmissionRule
		g.mustCall(t, "PUT", "/v1/admission/rules/"+url.PathEscape(id), map[string]any{"name": "lenient", "namespaces": []string{"lenient"}, "mode": "audit", "position": 9}, &out, 200)
		if out.Mode != "audit" || out.OnError != "deny" || out.Wait != "8s" {
			t.Errorf("updated = %+v", out)
		}
		var er api.ErrorResponse
		if code := g.call(t, "PUT", "/v1/admission/rules/"+url.PathEscape(id), map[string]any{"name": "lenient", "on_error": "maybe"}, &er); code != 400 {
			t.Errorf("bad update = %d", code)
		}
		g.mustCall(t, "GET", "/v1/admission/rules/"+url.PathEscape(id), nil, &out, 200)
		if out.Mode != "audit" {
			t.Errorf("a refused update changed the rule: %+v", out)
		}
		g.mustCall(t, "DELETE", "/v1/admission/rules/"+url.PathEscape(id), nil, nil, 204)
		g.mustCall(t, "GET", "/v1/admission/rules/"+url.PathEscape(id), nil, nil, 404)
	})
}
