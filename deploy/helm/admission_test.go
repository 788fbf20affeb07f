// Package helm_test renders the chart's admission webhook with helm v4 and
// decodes it strictly into k8s.io/api/admissionregistration/v1.
package helm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
)

// helmCommand returns how to run helm v4: $HELM when set, else the Go tool
// of tools/helm.mod. Without either the test skips, except under CI.
func helmCommand(t *testing.T) []string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return []string{h}
	}
	mod := filepath.Join(root(t), "tools", "helm.mod")
	if _, err := os.Stat(mod); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("no helm: set HELM or add tools/helm.mod (go tool -modfile=tools/helm.mod helm)")
		}
		t.Fatalf("CI needs helm v4: %v", err)
	}
	return []string{"go", "tool", "-modfile=" + mod, "helm"}
}

// admissionChart returns a chart directory holding the admission webhook:
// the repository's chart when it has a Chart.yaml, else a minimal chart
// around templates/admission-webhook.yaml and values.yaml.
func admissionChart(t *testing.T) string {
	t.Helper()
	chart := filepath.Join(root(t), "deploy", "helm", "buildgate")
	if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); err == nil {
		return chart
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: buildgate\nversion: 0.1.0\nappVersion: dev\n",
		"templates/_helpers.tpl": `{{- define "buildgate.fullname" -}}{{ printf "%s-buildgate" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "buildgate.labels" -}}app.kubernetes.io/name: buildgate
app.kubernetes.io/instance: {{ .Release.Name }}{{- end -}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"values.yaml", "templates/admission-webhook.yaml"} {
		b, err := os.ReadFile(filepath.Join(chart, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "values.yaml" {
			b = append(b, "service:\n  port: 8080\n"...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func helmTemplate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := helmCommand(t)
	full := append(append(cmd[1:], "template", "gate", admissionChart(t), "--namespace", "buildgate"), args...)
	c := exec.Command(cmd[0], full...)
	c.Dir = root(t)
	c.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("helm template: %w\n%s", err, stderr.String())
	}
	return stdout.String(), nil
}

// strict decodes a YAML document into v, refusing fields v lacks.
func strict(doc map[string]any, v any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// admissionObjects returns the rendered webhook configurations and secrets.
func admissionObjects(t *testing.T, out string) ([]admissionregistrationv1.ValidatingWebhookConfiguration, []corev1.Secret) {
	t.Helper()
	var hooks []admissionregistrationv1.ValidatingWebhookConfiguration
	var secrets []corev1.Secret
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, out)
		}
		switch doc["kind"] {
		case "ValidatingWebhookConfiguration":
			var h admissionregistrationv1.ValidatingWebhookConfiguration
			if err := strict(doc, &h); err != nil {
				t.Fatalf("ValidatingWebhookConfiguration does not decode strictly: %v\n%s", err, out)
			}
			hooks = append(hooks, h)
		case "Secret":
			var s corev1.Secret
			if err := strict(doc, &s); err != nil {
				t.Fatalf("Secret does not decode strictly: %v", err)
			}
			secrets = append(secrets, s)
		}
	}
	return hooks, secrets
}

func TestAdmissionWebhookRenders(t *testing.T) {
	caPEM := "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	ca := base64.StdEncoding.EncodeToString([]byte(caPEM))
	out, err := helmTemplate(t, "--set", "admission.enabled=true", "--set", "admission.caBundle="+ca,
		"--set", "admission.token=bg_admission_secret", "--set", "admission.cluster=prod-eu", "--set", "admission.failurePolicy=Ignore")
	if err != nil {
		t.Fatal(err)
	}
	hooks, secrets := admissionObjects(t, out)
	if len(hooks) != 1 || hooks[0].Name != "images.buildgate.dev" || len(hooks[0].Webhooks) != 2 {
		t.Fatalf("webhook configurations = %+v", hooks)
	}
	w := hooks[0].Webhooks[0]
	if w.Name != "images.buildgate.dev" || string(w.ClientConfig.CABundle) != caPEM || *w.TimeoutSeconds != 10 ||
		*w.FailurePolicy != admissionregistrationv1.Ignore || *w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun ||
		!slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("webhook = %+v", w)
	}
	svc := w.ClientConfig.Service
	if svc == nil || svc.Namespace != "buildgate" || svc.Path == nil || *svc.Path != "/v1/admission/review?cluster=prod-eu" || svc.Port == nil || *svc.Port != 8080 {
		t.Errorf("client config = %+v", w.ClientConfig)
	}
	var resources []string
	for _, r := range w.Rules {
		resources = append(resources, r.Resources...)
		if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}) {
			t.Errorf("rule %+v does not judge creates and updates", r)
		}
	}
	for _, want := range []string{"pods", "pods/ephemeralcontainers", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} {
		if !slices.Contains(resources, want) {
			t.Errorf("the webhook does not judge %s (rules: %v)", want, resources)
		}
	}
	if sel := w.NamespaceSelector; sel == nil || len(sel.MatchExpressions) != 1 || !slices.Equal(sel.MatchExpressions[0].Values, []string{"kube-system", "buildgate"}) {
		t.Errorf("namespace selector = %+v, want the gate's own namespace excluded", w.NamespaceSelector)
	}
	if ns := hooks[0].Webhooks[1]; ns.Name != "namespaces.buildgate.dev" || *ns.FailurePolicy != admissionregistrationv1.Ignore || ns.Rules[0].Resources[0] != "namespaces" {
		t.Errorf("namespace webhook = %+v", ns)
	}
	var kubeconfig string
	for _, s := range secrets {
		if strings.HasSuffix(s.Name, "-admission-kubeconfig") {
			kubeconfig = s.StringData["kubeconfig.yaml"]
		}
	}
	if !strings.Contains(kubeconfig, `token: "bg_admission_secret"`) || !strings.Contains(kubeconfig, `.buildgate.svc"`) {
		t.Errorf("admission kubeconfig = %q", kubeconfig)
	}

	// Disabled by default; enabled without a CA bundle is refused by name.
	out, err = helmTemplate(t)
	if err != nil {
		t.Fatal(err)
	}
	if hooks, _ := admissionObjects(t, out); len(hooks) != 0 {
		t.Errorf("the webhook renders while disabled: %+v", hooks)
	}
	if _, err := helmTemplate(t, "--set", "admission.enabled=true"); err == nil || !strings.Contains(err.Error(), "admission.caBundle is required") {
		t.Errorf("enabled without a CA bundle: %v", err)
	}
}
