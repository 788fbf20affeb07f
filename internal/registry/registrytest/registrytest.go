// Package registrytest runs registries for tests: go-containerregistry's
// in-process registry behind a basic-auth check, and the real Debian
// docker-registry (distribution v2) with htpasswd (bcrypt) and TLS.
package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// AuthServer is go-containerregistry's registry behind HTTP basic auth.
type AuthServer struct {
	// Host is "127.0.0.1:port".
	Host string
	URL  string

	check func(user, pass string) bool
	mu    sync.Mutex
	users []string
	fails int
}

// NewAuthServer starts a registry that accepts a request only when check
// says its basic credentials are right. It answers 401 with a Basic
// challenge and a distribution error body otherwise.
func NewAuthServer(t testing.TB, check func(user, pass string) bool) *AuthServer {
	t.Helper()
	s := &AuthServer{check: check}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || !s.check(user, pass) {
			s.mu.Lock()
			s.fails++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
			return
		}
		s.mu.Lock()
		s.users = append(s.users, user)
		s.mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.Host = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// NewExactAuthServer accepts exactly user and pass.
func NewExactAuthServer(t testing.TB, user, pass string) *AuthServer {
	return NewAuthServer(t, func(u, p string) bool { return u == user && p == pass })
}

// Users returns the usernames of accepted requests.
func (s *AuthServer) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// Refusals counts refused requests.
func (s *AuthServer) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fails
}

// Push writes img to repo:tag with the given credentials and returns the
// full reference.
func Push(t testing.TB, host, repoTag, user, pass string, img v1.Image, rt http.RoundTripper) string {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: pass})}
	if rt != nil {
		opts = append(opts, remote.WithTransport(rt))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref.String()
}

// Cert is a self-signed certificate for 127.0.0.1 and localhost.
type Cert struct {
	CertPEM, KeyPEM []byte
	Pool            *x509.CertPool
}

// SelfSigned makes a self-signed CA certificate valid for 127.0.0.1,
// ::1 and localhost.
func SelfSigned(t testing.TB) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "buildgate test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
		Pool:    x509.NewCertPool(),
	}
	c.Pool.AppendCertsFromPEM(c.CertPEM)
	return c
}

// Transport trusts the certificate.
func (c Cert) Transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
	return t
}

// DistributionBinary is Debian's docker-registry.
const DistributionBinary = "/usr/bin/docker-registry"

// Distribution is a running docker-registry.
type Distribution struct {
	// Host is "127.0.0.1:port".
	Host string
	Cert Cert
	// Log is the registry's output file.
	Log string
}

// StartDistribution runs the real docker-registry on 127.0.0.1 with TLS
// (a certificate made here) and htpasswd auth (bcrypt, by `htpasswd -Bbn`)
// for users (name to password). It skips the test when docker-registry or
// htpasswd is missing; .ci/run installs both.
func StartDistribution(t testing.TB, users map[string]string) *Distribution {
	t.Helper()
	if _, err := os.Stat(DistributionBinary); err != nil {
		t.Skipf("%s is absent: install Debian's docker-registry (apt-get install docker-registry apache2-utils) to run this test", DistributionBinary)
	}
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Skip("htpasswd is absent: install apache2-utils to run this test")
	}
	dir := t.TempDir()
	var lines []string
	for u, p := range users {
		out, err := exec.Command(htpasswd, "-Bbn", u, p).Output()
		if err != nil {
			t.Fatalf("htpasswd -Bbn %s: %v", u, err)
		}
		lines = append(lines, strings.TrimSpace(string(out)))
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	htfile := write("htpasswd", []byte(strings.Join(lines, "\n")+"\n"))
	cert := SelfSigned(t)
	certFile := write("cert.pem", cert.CertPEM)
	keyFile := write("key.pem", cert.KeyPEM)
	port := freePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: buildgate-test-http-secret
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: buildgate-test
    path: %s
`, filepath.Join(dir, "storage"), host, certFile, keyFile, htfile)
	cfgFile := write("config.yml", []byte(cfg))
	logFile := filepath.Join(dir, "registry.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(DistributionBinary, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed on purpose
		lf.Close()
	})
	client := &http.Client{Transport: cert.Transport(), Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("https://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", host, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Distribution{Host: host, Cert: cert, Log: logFile}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
