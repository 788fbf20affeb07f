package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "buildgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, serial int64, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeAtomically replaces a file the way cert-manager and kubelet do:
// a new file renamed over the old one.
func writeAtomically(t *testing.T, path string, b []byte, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestGateServesTLSAndReloadsCertificate: gate serve --tls-cert --tls-key
// serves HTTPS; a rotated certificate is served without a restart; a
// client certificate from --tls-client-ca authenticates as the admission
// role and only that.
func TestGateServesTLSAndReloadsCertificate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	c1, k1 := ca.issue(t, 1001, "gate", x509.ExtKeyUsageServerAuth)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeAtomically(t, certFile, c1, mtime)
	writeAtomically(t, keyFile, k1, mtime)
	writeAtomically(t, caFile, ca.pem, mtime)

	g := startGate(t, func(c *Config) {
		c.TLS = TLSConfig{Cert: certFile, Key: keyFile, ClientCA: caFile}
	})
	if !strings.HasPrefix(g.URL, "https://") {
		t.Fatalf("URL = %s, want https", g.URL)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	clientCert, clientKey := ca.issue(t, 2001, "kube-apiserver", x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}, DisableKeepAlives: true}}
	}
	served := func() int64 {
		resp, err := client().Get(g.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := served(); s != 1001 {
		t.Fatalf("serving certificate %d, want 1001", s)
	}

	// A half-written rotation keeps the current certificate.
	writeAtomically(t, certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage"), mtime.Add(time.Hour))
	if s := served(); s != 1001 {
		t.Fatalf("after a broken rotation serving %d, want the previous 1001", s)
	}
	c2, k2 := ca.issue(t, 1002, "gate", x509.ExtKeyUsageServerAuth)
	writeAtomically(t, keyFile, k2, mtime.Add(2*time.Hour))
	writeAtomically(t, certFile, c2, mtime.Add(2*time.Hour))
	if s := served(); s != 1002 {
		t.Fatalf("after the rotation serving %d, want 1002", s)
	}

	// Client certificates: the admission role, and only it.
	body := strings.NewReader(string(podReview("tls-1", "default", false, "127.0.0.1:1/team/app:1")))
	resp, err := client(pair).Post(g.URL+"/v1/admission/review", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("review with a client certificate = %d, want 200", resp.StatusCode)
	}
	for _, tt := range []struct {
		name   string
		certs  []tls.Certificate
		path   string
		status int
	}{
		{"client certificate cannot list images", []tls.Certificate{pair}, "/v1/images", 403},
		{"no certificate and no token", nil, "/v1/admission/decisions", 401},
	} {
		resp, err := client(tt.certs...).Get(g.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
	// A certificate from another CA is refused at the handshake.
	other := newTestCA(t)
	oc, ok := other.issue(t, 3001, "intruder", x509.ExtKeyUsageClientAuth)
	opair, _ := tls.X509KeyPair(oc, ok)
	if _, err := client(opair).Get(g.URL + "/v1/admission/decisions"); err == nil {
		t.Error("a client certificate from an unknown CA was accepted")
	}
}

func TestTLSFlagsChecked(t *testing.T) {
	tests := []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{"cert without key", TLSConfig{Cert: "c.pem"}, "--tls-cert and --tls-key go together"},
		{"client CA without TLS", TLSConfig{ClientCA: "ca.pem"}, "--tls-client-ca needs --tls-cert and --tls-key"},
		{"missing files", TLSConfig{Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"}, "reading the TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.serverTLS(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
