package registry

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/registry/registrytest"
)

func static(creds ...Credential) CredentialSource {
	return func(context.Context) ([]Credential, error) { return append([]Credential(nil), creds...), nil }
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pull resolves ref with a client that uses auth, opens it and reads its
// layers.
func pull(t *testing.T, auth *Auth, ref string) error {
	t.Helper()
	c := New(Config{Keychain: auth.Keychain(), Transport: auth.Transport()})
	r, err := ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Resolve(context.Background(), r)
	if err != nil {
		return err
	}
	img, err := c.Open(context.Background(), res)
	if err != nil {
		return err
	}
	return readLayers(img)
}

func TestMatchLongestPrefix(t *testing.T) {
	creds := []Credential{
		{Registry: "gcr.io", Username: "host"},
		{Registry: "gcr.io/proj", Username: "proj"},
		{Registry: "gcr.io/proj/team", Username: "team"},
		{Registry: "docker.io", Username: "hub"},
		{Registry: "index.docker.io/myorg", Username: "hub-org"},
		{Registry: "quay.io", Username: "quay"},
	}
	tests := []struct {
		name, path, want string
	}{
		{name: "host", path: "gcr.io/other/app", want: "host"},
		{name: "project", path: "gcr.io/proj/app", want: "proj"},
		{name: "deeper prefix", path: "gcr.io/proj/team/app", want: "team"},
		{name: "prefix ends at a slash", path: "gcr.io/projx/app", want: "host"},
		{name: "hub alias index", path: "index.docker.io/library/nginx", want: "hub"},
		{name: "hub alias registry-1", path: "registry-1.docker.io/myorg/app", want: "hub-org"},
		{name: "hub short", path: "docker.io/myorg/app", want: "hub-org"},
		{name: "registry only", path: "quay.io", want: "quay"},
		{name: "no match", path: "ghcr.io/team/app", want: ""},
		{name: "host is not a prefix of another host", path: "gcr.io.evil.example/proj/app", want: ""},
		{name: "no dot segment", path: "gcr.io/proj/team/../other/app", want: ""},
		{name: "no empty segment", path: "gcr.io/proj//app", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := Match(creds, tt.path)
			if got := c.Username; got != tt.want || ok != (tt.want != "") {
				t.Fatalf("Match(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
			}
		})
	}
}

func TestKeychainResolvesDockerHubAliases(t *testing.T) {
	auth := NewAuth(static(Credential{Registry: "docker.io", Type: buildgate.RegistryTypeDockerV2, Username: "u", Password: "p"}), AuthConfig{})
	for _, s := range []string{"nginx", "docker.io/library/nginx", "index.docker.io/team/app", "registry-1.docker.io/team/app"} {
		ref, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		a, err := auth.Keychain().Resolve(ref.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := a.Authorization()
		if cfg.Username != "u" {
			t.Errorf("%s: username %q, want the docker.io record", s, cfg.Username)
		}
	}
}

// TestQuayRobotAndPathPrefix pulls with a Quay robot account (org+robot)
// stored for a path prefix, through a registry that checks the exact
// username and password.
func TestQuayRobotAndPathPrefix(t *testing.T) {
	const user, pass = "myorg+builder", "R0B0T-T0KEN-0123456789ABCDEF"
	srv := registrytest.NewExactAuthServer(t, user, pass)
	ref := registrytest.Push(t, srv.Host, "myorg/app:v1", user, pass, randomImage(t), nil)

	ok := NewAuth(static(
		Credential{Registry: srv.Host, Type: buildgate.RegistryTypeDockerV2, Username: "someone-else", Password: "wrong"},
		Credential{Registry: srv.Host + "/myorg", Type: buildgate.RegistryTypeDockerV2, Username: user, Password: pass},
	), AuthConfig{})
	if err := pull(t, ok, ref); err != nil {
		t.Fatalf("pull with the robot account: %v", err)
	}
	for _, u := range srv.Users() {
		if u != user {
			t.Fatalf("registry saw username %q, want exactly %q", u, user)
		}
	}
	if err := ok.Login(context.Background(), Credential{Registry: srv.Host, Type: buildgate.RegistryTypeDockerV2, Username: user, Password: pass, VerifyTLS: true}); err != nil {
		t.Fatalf("Login: %v", err)
	}

	bad := NewAuth(static(Credential{Registry: srv.Host, Type: buildgate.RegistryTypeDockerV2, Username: user, Password: "not-the-token"}), AuthConfig{})
	err := pull(t, bad, ref)
	if err == nil || !strings.Contains(err.Error(), "refused access") || !strings.Contains(err.Error(), srv.Host) {
		t.Fatalf("pull with a wrong token: %v, want a refusal naming the registry", err)
	}
	err = bad.Login(context.Background(), Credential{Registry: srv.Host, Type: buildgate.RegistryTypeDockerV2, Username: user, Password: "not-the-token", VerifyTLS: true})
	if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), srv.Host) ||
		!strings.Contains(err.Error(), "authentication required") || strings.Contains(err.Error(), "not-the-token") {
		t.Fatalf("Login with a wrong token: %v", err)
	}
}

// TestCredentialsStayOnTheirHost pulls from a registry that redirects blob
// downloads to another host (blob storage). The registry must receive the
// credentials; the blob host must receive no Authorization header at all.
func TestCredentialsStayOnTheirHost(t *testing.T) {
	for _, scheme := range []string{"basic", "bearer"} {
		t.Run(scheme, func(t *testing.T) {
			const user, pass = "alice", "s3cr3t-registry-password"
			const token = "registry-bearer-token-for-alice"
			origin := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
			defer origin.Close()
			originURL, _ := url.Parse(origin.URL)
			img := randomImage(t)
			push := strings.TrimPrefix(origin.URL, "http://") + "/team/app:v1"
			pref, _ := name.ParseReference(push)
			if err := remote.Write(pref, img); err != nil {
				t.Fatal(err)
			}

			// The blob host records every Authorization header it gets.
			var mu sync.Mutex
			var blobAuth []string
			blobs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				blobAuth = append(blobAuth, r.Header.Get("Authorization"))
				mu.Unlock()
				r.URL.Path = "/v2/team/app/blobs/" + strings.TrimPrefix(r.URL.Path, "/blobs/")
				httputil.NewSingleHostReverseProxy(originURL).ServeHTTP(w, r)
			}))
			defer blobs.Close()
			// On "localhost", not 127.0.0.1: another host name as well as another port.
			blobBase := strings.Replace(blobs.URL, "127.0.0.1", "localhost", 1)

			var regAuth []string
			var regURL string
			proxy := httputil.NewSingleHostReverseProxy(originURL)
			reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				authz := r.Header.Get("Authorization")
				mu.Lock()
				regAuth = append(regAuth, authz)
				mu.Unlock()
				if r.URL.Path == "/token" {
					if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					json.NewEncoder(w).Encode(map[string]string{"token": token})
					return
				}
				authorized := false
				if scheme == "basic" {
					u, p, ok := r.BasicAuth()
					authorized = ok && u == user && p == pass
				} else {
					authorized = authz == "Bearer "+token
				}
				if !authorized {
					if scheme == "basic" {
						w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
					} else {
						w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, regURL))
					}
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodGet {
					http.Redirect(w, r, blobBase+"/blobs/"+r.URL.Path[i+len("/blobs/"):], http.StatusTemporaryRedirect)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			defer reg.Close()
			regURL = reg.URL
			host := strings.TrimPrefix(reg.URL, "http://")

			auth := NewAuth(static(Credential{Registry: host, Type: buildgate.RegistryTypeDockerV2, Username: user, Password: pass, VerifyTLS: true}), AuthConfig{})
			if err := pull(t, auth, host+"/team/app:v1"); err != nil {
				t.Fatalf("pull: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(blobAuth) == 0 {
				t.Fatal("the registry never redirected to the blob host")
			}
			for _, a := range blobAuth {
				if a != "" {
					t.Errorf("the blob host received Authorization %q; credentials must stay on their registry", a)
				}
			}
			sawCreds := false
			for _, a := range regAuth {
				sawCreds = sawCreds || strings.HasPrefix(a, "Basic ") || a == "Bearer "+token
			}
			if !sawCreds {
				t.Errorf("the registry never received the credentials: %q", regAuth)
			}
		})
	}
}

// TestPerRegistryTLS: a self-signed registry works with its CA stored, or
// with verify_tls false, and the setting applies to that host only.
func TestPerRegistryTLS(t *testing.T) {
	newTLS := func() (*httptest.Server, string, string) {
		srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		host := strings.TrimPrefix(srv.URL, "https://")
		ref, _ := name.ParseReference(host + "/team/app:v1")
		if err := remote.Write(ref, randomImage(t), remote.WithTransport(srv.Client().Transport)); err != nil {
			t.Fatal(err)
		}
		ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
		return srv, host, ca
	}
	_, hostA, caA := newTLS()
	_, hostB, _ := newTLS()

	tests := []struct {
		name    string
		creds   []Credential
		ref     string
		wantErr string
	}{
		{name: "no record", ref: hostA + "/team/app:v1", wantErr: "TLS certificate is not trusted"},
		{name: "ca cert", creds: []Credential{{Registry: hostA, VerifyTLS: true, CACert: caA}}, ref: hostA + "/team/app:v1"},
		{name: "verify off", creds: []Credential{{Registry: hostA, VerifyTLS: false}}, ref: hostA + "/team/app:v1"},
		{name: "verify off for another host only", creds: []Credential{{Registry: hostA, VerifyTLS: false}}, ref: hostB + "/team/app:v1", wantErr: "TLS certificate is not trusted"},
		{name: "ca of another host", creds: []Credential{{Registry: hostB, VerifyTLS: true, CACert: caA}}, ref: hostA + "/team/app:v1", wantErr: "TLS certificate is not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.creds {
				tt.creds[i].Type, tt.creds[i].Username, tt.creds[i].Password = buildgate.RegistryTypeDockerV2, "u", "p"
			}
			err := pull(t, NewAuth(static(tt.creds...), AuthConfig{}), tt.ref)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}

	auth := NewAuth(static(), AuthConfig{})
	c := Credential{Registry: hostA, Type: buildgate.RegistryTypeDockerV2, Username: "u", Password: "p", VerifyTLS: true}
	if err := auth.Login(context.Background(), c); err == nil || !strings.Contains(err.Error(), "TLS certificate is not trusted") {
		t.Fatalf("Login without the CA: %v", err)
	}
	c.CACert = caA
	if err := auth.Login(context.Background(), c); err != nil {
		t.Fatalf("Login with the CA: %v", err)
	}
}

func TestLoginUnreachable(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(l.URL, "http://")
	l.Close()
	err := NewAuth(static(), AuthConfig{}).Login(context.Background(), Credential{Registry: host, Username: "u", Password: "pw-that-must-not-leak", VerifyTLS: true})
	if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "pw-that-must-not-leak") {
		t.Fatalf("Login to a closed port: %v", err)
	}
}
