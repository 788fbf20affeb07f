// Package helm_test lints and renders the buildgate chart with helm v4 (a Go
// tool: go tool -modfile=tools/helm.mod helm) and decodes every rendered
// object strictly into the k8s.io/api types: a field Kubernetes does not
// know fails the test.
package helm_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// root is the repository's root directory: go test runs a package's tests
// in its directory (the source path is not used: make test builds with
// -trimpath).
func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// helm runs helm v4 from tools/helm.mod; stderr is returned with the error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r := root(t)
	cmd := exec.Command("go", append([]string{"tool", "-modfile=" + filepath.Join(r, "tools", "helm.mod"), "helm"}, args...)...)
	cmd.Dir = r
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

const chart = "deploy/helm/buildgate"

// serviceMonitor is the part of Prometheus Operator's ServiceMonitor the
// chart renders (its CRD types are not in k8s.io/api).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
			// BearerTokenSecret authenticates the scrape (/metrics needs a token).
			BearerTokenSecret *corev1.SecretKeySelector `json:"bearerTokenSecret,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is what one helm template produced, by kind.
type rendered struct {
	raw          string
	deployment   *appsv1.Deployment
	service      *corev1.Service
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	pvcs         []*corev1.PersistentVolumeClaim
	ingress      *networkingv1.Ingress
	monitor      *serviceMonitor
	accounts     []*corev1.ServiceAccount
	kindsInOrder []string
}

// decode splits helm's output into documents and decodes each strictly.
func decode(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{raw: out}
	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---"))
		if doc == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("reading the kind of\n%s\n: %v", doc, err)
		}
		var obj any
		switch tm.Kind {
		case "Deployment":
			r.deployment = &appsv1.Deployment{}
			obj = r.deployment
		case "Service":
			r.service = &corev1.Service{}
			obj = r.service
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			r.configMaps, obj = append(r.configMaps, cm), cm
		case "Secret":
			s := &corev1.Secret{}
			r.secrets, obj = append(r.secrets, s), s
		case "PersistentVolumeClaim":
			p := &corev1.PersistentVolumeClaim{}
			r.pvcs, obj = append(r.pvcs, p), p
		case "ServiceAccount":
			a := &corev1.ServiceAccount{}
			r.accounts, obj = append(r.accounts, a), a
		case "Ingress":
			r.ingress = &networkingv1.Ingress{}
			obj = r.ingress
		case "ServiceMonitor":
			r.monitor = &serviceMonitor{}
			obj = r.monitor
		default:
			t.Fatalf("rendered an object of kind %q that the test does not decode:\n%s", tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly into its k8s.io/api type: %v\n%s", tm.Kind, err, doc)
		}
		r.kindsInOrder = append(r.kindsInOrder, tm.Kind)
	}
	if r.deployment == nil || r.service == nil || len(r.configMaps) != 1 {
		t.Fatalf("rendered %v, want a Deployment, a Service and a ConfigMap", r.kindsInOrder)
	}
	return r
}

// Values of the test's secrets: none may appear in plain text.
var (
	sealingKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	adminToken = "admin-token-not-in-plain-text"
	storeURL   = "postgres://gate:pg-password-not-in-plain-text@db.example:5432/gate?sslmode=require"
)

func TestChart(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("no go command to run helm with")
	}
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, r *rendered)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, r *rendered) {
				d := r.deployment
				if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Errorf("replicas %d, strategy %q; want 1 and Recreate (SQLite)", *d.Spec.Replicas, d.Spec.Strategy.Type)
				}
				if len(r.pvcs) != 1 || volume(d, "data").PersistentVolumeClaim == nil ||
					volume(d, "data").PersistentVolumeClaim.ClaimName != r.pvcs[0].Name {
					t.Errorf("want /data on the chart's PersistentVolumeClaim; volumes %+v", d.Spec.Template.Spec.Volumes)
				}
				if len(r.secrets) != 0 || envVar(d, "GATE_STORE") != nil || envVar(d, "GATE_SECRET_KEY") != nil {
					t.Errorf("defaults: want no Secret and no GATE_STORE or GATE_SECRET_KEY (the gate keeps its key in /data)")
				}
			},
		},
		{
			name: "postgres and three replicas",
			set:  []string{"store.url=" + storeURL, "replicaCount=3", "secret.sealingKey=" + sealingKey, "secret.adminToken=" + adminToken},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment
				if *d.Spec.Replicas != 3 || len(r.pvcs) != 0 || volume(d, "data").EmptyDir == nil {
					t.Errorf("replicas %d, PVCs %d, data %+v; want 3 replicas, no claim, /data an emptyDir", *d.Spec.Replicas, len(r.pvcs), volume(d, "data"))
				}
				if len(r.secrets) != 1 {
					t.Fatalf("%d Secrets, want the chart's one", len(r.secrets))
				}
				s := r.secrets[0]
				for env, want := range map[string]string{"GATE_STORE": storeURL, "GATE_SECRET_KEY": sealingKey, "GATE_ADMIN_TOKEN": adminToken} {
					e := envVar(d, env)
					if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != s.Name {
						t.Errorf("%s = %+v, want it from the Secret %s", env, e, s.Name)
						continue
					}
					if got := string(s.Data[e.ValueFrom.SecretKeyRef.Key]); got != want {
						t.Errorf("Secret %s[%s] = %q, want %q", s.Name, e.ValueFrom.SecretKeyRef.Key, got, want)
					}
				}
			},
		},
		{
			name: "existing secret, ingress and service monitor",
			set: []string{"existingSecret=gate-secrets", "ingress.enabled=true", "ingress.className=nginx", "serviceMonitor.enabled=true",
				"serviceMonitor.bearerTokenSecret.name=gate-metrics", "serviceMonitor.bearerTokenSecret.key=token"},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment
				if len(r.secrets) != 0 {
					t.Errorf("rendered %d Secrets, want none with existingSecret", len(r.secrets))
				}
				for _, env := range []string{"GATE_SECRET_KEY", "GATE_ADMIN_TOKEN"} {
					e := envVar(d, env)
					if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "gate-secrets" {
						t.Errorf("%s = %+v, want it from the Secret gate-secrets", env, e)
					}
				}
				if r.ingress == nil {
					t.Fatal("no Ingress")
				}
				b := r.ingress.Spec.Rules[0].HTTP.Paths[0].Backend.Service
				if b.Name != r.service.Name || b.Port.Name != "http" || *r.ingress.Spec.IngressClassName != "nginx" {
					t.Errorf("Ingress backend %+v class %v; want the Service %s port http, class nginx", b, r.ingress.Spec.IngressClassName, r.service.Name)
				}
				if r.monitor == nil || r.monitor.Spec.Endpoints[0].Path != "/metrics" || r.monitor.Spec.Endpoints[0].Port != "http" ||
					r.monitor.Spec.Endpoints[0].BearerTokenSecret == nil || r.monitor.Spec.Endpoints[0].BearerTokenSecret.Name != "gate-metrics" {
					t.Errorf("ServiceMonitor %+v, want /metrics on port http with the token from gate-metrics", r.monitor)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			if out, err := helm(t, append([]string{"lint", "--strict", chart}, args...)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out, err := helm(t, append([]string{"template", "gate", chart, "--namespace", "ci"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			r := decode(t, out)
			checkPod(t, r.deployment)
			checkNoPlainSecrets(t, r)
			tt.check(t, r)
		})
	}
}

func TestChartRefusesBadValues(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"postgres without a sealing key", []string{"store.url=" + storeURL, "replicaCount=3"}, "secret.sealingKey is required"},
		{"sqlite with three replicas", []string{"replicaCount=3"}, "replicaCount=3 needs store.url"},
		{"store from a secret that is not named", []string{"store.fromExistingSecret=true", "secret.sealingKey=" + sealingKey}, "store.fromExistingSecret needs existingSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "gate", chart}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template --set %v: %v; want a failure saying %q", tt.set, err, tt.want)
			}
		})
	}
}

func volume(d *appsv1.Deployment, name string) corev1.VolumeSource {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v.VolumeSource
		}
	}
	return corev1.VolumeSource{}
}

func envVar(d *appsv1.Deployment, name string) *corev1.EnvVar {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return &e
		}
	}
	return nil
}

// checkPod checks the probes and the restricted securityContext.
func checkPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65532 ||
		ps.FSGroup == nil || *ps.FSGroup != 65532 || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, uid and fsGroup 65532, seccomp RuntimeDefault", ps)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v: want the restricted profile", sc)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v, want http 8080", c.Ports)
	}
	if got := strings.Join(c.Args, " "); got != "serve --addr 0.0.0.0:8080 --data /data" {
		t.Errorf("args %q, want serve --addr 0.0.0.0:8080 --data /data", got)
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = !m.ReadOnly
	}
	if !mounts["/data"] || !mounts["/tmp"] {
		t.Errorf("mounts %+v, want /data and /tmp writable (the root filesystem is read-only)", c.VolumeMounts)
	}
}

// checkNoPlainSecrets checks that no secret value is written in plain text
// anywhere (a Secret's data is base64), nor under any name in a ConfigMap.
func checkNoPlainSecrets(t *testing.T, r *rendered) {
	t.Helper()
	for _, v := range []string{sealingKey, adminToken, storeURL, "pg-password-not-in-plain-text"} {
		if strings.Contains(r.raw, v) {
			t.Errorf("a secret value (%.12s...) is rendered in plain text", v)
		}
		for _, cm := range r.configMaps {
			for k, val := range cm.Data {
				if strings.Contains(val, v) {
					t.Errorf("ConfigMap %s[%s] holds a secret value", cm.Name, k)
				}
			}
		}
	}
	for _, cm := range r.configMaps {
		for _, k := range []string{"GATE_SECRET_KEY", "GATE_ADMIN_TOKEN", "GATE_STORE"} {
			if _, ok := cm.Data[k]; ok {
				t.Errorf("ConfigMap %s has %s: it belongs in a Secret", cm.Name, k)
			}
		}
	}
}
