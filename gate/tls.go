package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// TLSConfig is the gate's own HTTPS: a certificate and key, reloaded when
// the files change, and optionally a CA whose client certificates
// authenticate as the admission role (the Kubernetes API server).
type TLSConfig struct {
	Cert     string
	Key      string
	ClientCA string
}

func (c *TLSConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Cert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; reloaded when the file changes")
	fs.StringVar(&c.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.ClientCA, "tls-client-ca", "", "PEM CA bundle: a client certificate it verifies authenticates with the admission role")
}

// serverTLS returns the TLS configuration of the listener, or nil when the
// gate serves plain HTTP.
func (c TLSConfig) serverTLS(log *slog.Logger) (*tls.Config, error) {
	if c.Cert == "" && c.Key == "" {
		if c.ClientCA != "" {
			return nil, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: client certificates need HTTPS")
		}
		return nil, nil
	}
	if c.Cert == "" || c.Key == "" {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together: give both")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &certReloader{certFile: c.Cert, keyFile: c.Key, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading --tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s holds no PEM certificate", c.ClientCA)
		}
		cfg.ClientCAs = pool
		// Tokens stay valid: a certificate is asked for, verified when
		// given, and not required.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// certReloader serves a certificate and key from files, loading them
// again when either file's size or modification time changes (a rotation
// by cert-manager or by hand), checked at each TLS handshake (two stats;
// connections are kept alive). A pair that does not load (a rotation half
// written) keeps the previous one.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string
}

func fileStamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

func (r *certReloader) load() error {
	stamp, err := fileStamp(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("reading the TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// GetCertificate is tls.Config's hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, err := fileStamp(r.certFile, r.keyFile); err == nil && s != r.stamp {
		if err := r.load(); err != nil {
			// Not again until the files change once more.
			r.stamp = s
			r.log.Warn("keeping the current TLS certificate: the new one does not load", "err", err)
		} else {
			r.log.Info("TLS certificate reloaded", "cert", r.certFile)
		}
	}
	return r.cert, nil
}
