package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate/internal/secret"
)

// TestOpenAuthorized: an image opened with an authorization of its own
// sends that header, and no stored credential, to its registry only (not
// to the blob host the registry redirects to) while its layers are read,
// and a refusal does not quote it.
func TestOpenAuthorized(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$harbor:short-lived-robot-secret"))
	wrongBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot$harbor:an-expired-robot-secret"))
	for _, tt := range [][2]string{{basic, wrongBasic}, {"Bearer harbor-issued-registry-token", "Bearer an-expired-registry-token"}} {
		header, wrong := tt[0], tt[1]
		t.Run(strings.Fields(header)[0], func(t *testing.T) {
			origin := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
			defer origin.Close()
			originURL, _ := url.Parse(origin.URL)
			pushRef, _ := name.ParseReference(strings.TrimPrefix(origin.URL, "http://") + "/library/app:v1")
			img := randomImage(t)
			if err := remote.Write(pushRef, img); err != nil {
				t.Fatal(err)
			}
			digest, _ := img.Digest()

			var mu sync.Mutex
			var blobAuth, regAuth []string
			blobs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				blobAuth = append(blobAuth, r.Header.Get("Authorization"))
				mu.Unlock()
				r.URL.Path = "/v2/library/app/blobs/" + strings.TrimPrefix(r.URL.Path, "/blobs/")
				httputil.NewSingleHostReverseProxy(originURL).ServeHTTP(w, r)
			}))
			defer blobs.Close()
			blobBase := strings.Replace(blobs.URL, "127.0.0.1", "localhost", 1)
			proxy := httputil.NewSingleHostReverseProxy(originURL)
			reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				regAuth = append(regAuth, r.Header.Get("Authorization"))
				mu.Unlock()
				if r.Header.Get("Authorization") != header {
					w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
					w.WriteHeader(http.StatusUnauthorized)
					// As a careless registry might: the refusal quotes what it got.
					fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, not %s"}]}`, r.Header.Get("Authorization"))
					return
				}
				if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodGet {
					http.Redirect(w, r, blobBase+"/blobs/"+r.URL.Path[i+len("/blobs/"):], http.StatusTemporaryRedirect)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			defer reg.Close()
			host := strings.TrimPrefix(reg.URL, "http://")

			// A stored credential for the host plays no part.
			stored := NewAuth(static(Credential{Registry: host, Username: "stored", Password: "stored-password", VerifyTLS: true}), AuthConfig{})
			var logged bytes.Buffer
			c := New(Config{Keychain: stored.Keychain(), Transport: stored.Transport(), Log: slog.New(slog.NewTextHandler(&logged, nil))})
			ref, err := ParseDigestReference(host+"/library/app@"+digest.String(), true)
			if err != nil {
				t.Fatal(err)
			}
			res := Resolved{Ref: ref, Digest: ref.DigestStr()}
			if err := pullAuthorized(c, res, Authorization{Host: host, Header: secret.Secret(header)}); err != nil {
				t.Fatalf("pull: %v", err)
			}
			mu.Lock()
			if len(blobAuth) == 0 {
				t.Error("the registry never redirected to the blob host")
			}
			for _, a := range blobAuth {
				if a != "" {
					t.Errorf("the blob host received Authorization %q", a)
				}
			}
			for _, a := range regAuth {
				if a != "" && a != header {
					t.Errorf("the registry received Authorization %q, not the pull's", a)
				}
			}
			mu.Unlock()

			err = pullAuthorized(c, res, Authorization{Host: host, Header: secret.Secret(wrong)})
			if err == nil || !strings.Contains(err.Error(), "refused access") {
				t.Fatalf("pull with a wrong authorization: %v, want a refusal", err)
			}
			if strings.Contains(err.Error(), strings.Fields(wrong)[1]) {
				t.Errorf("the refusal quotes the authorization: %v", err)
			}
			if !strings.Contains(logged.String(), "authentication required") || strings.Contains(logged.String(), strings.Fields(wrong)[1]) {
				t.Errorf("the log of the refusal does not quote the registry, or quotes the authorization:\n%s", logged.String())
			}
			if err := pullAuthorized(c, res, Authorization{Host: "127.0.0.1:1", Header: secret.Secret(header)}); err == nil {
				t.Error("a pull from another host than the authorization's succeeded")
			}
		})
	}
}

// pullAuthorized opens the image res names with a alone and reads its
// layers.
func pullAuthorized(c *Client, res Resolved, a Authorization) error {
	img, err := c.OpenAuthorized(context.Background(), res, a)
	if err != nil {
		return err
	}
	return readLayers(img)
}
