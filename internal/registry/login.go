package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Login checks c against its registry the way `docker login` does: it
// pings /v2/, exchanges the credentials for a token where the registry asks
// for one (minting an ECR token first for awsecr), and reads /v2/ with
// them. A refusal is an buildgate.EINVALID error naming the registry and
// quoting its answer; the secret never appears in it.
func (a *Auth) Login(ctx context.Context, c Credential) error {
	host := c.Host()
	reg, err := registryOf(c)
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "registry %q is not a valid host: %v", host, err)
	}
	var cas []string
	if strings.TrimSpace(c.CACert) != "" {
		cas = []string{c.CACert}
	}
	rt := a.base
	if !c.VerifyTLS || len(cas) > 0 {
		if rt, err = newTLSTransport(a.base, c.VerifyTLS, cas); err != nil {
			return buildgate.Errorf(buildgate.EINVALID, "TLS settings of registry %s: %v", host, err)
		}
	}
	auth, err := a.authenticator(ctx, c)
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "registry %s: %s", host, secret.Redact(err.Error(), string(c.Password)))
	}
	t, err := transport.NewWithContext(ctx, reg, auth, rt, nil)
	if err != nil {
		return loginError(host, c, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return loginError(host, c, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drained for reuse only
		return nil
	}
	return loginError(host, c, transport.CheckError(resp, http.StatusOK))
}

// loginError describes why a login failed, naming the registry and quoting
// its answer, with the secret redacted.
func loginError(host string, c Credential, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	who := "the credentials"
	if c.Username != "" && c.Type != buildgate.RegistryTypeAWSECR {
		who = fmt.Sprintf("the credentials of %q", c.Username)
	}
	var msg string
	var terr *transport.Error
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &uaErr), errors.As(err, &hostErr), errors.As(err, &certErr):
		// Before the registry's answers: a loopback registry's plain-HTTP
		// fallback adds a less telling one.
		msg = fmt.Sprintf("registry %s: its TLS certificate is not trusted (%s): give its CA as ca_cert, or set verify_tls: false", host, tlsReason(err))
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		msg = fmt.Sprintf("registry %s refused %s: %s", host, who, answer(terr))
	case errors.As(err, &terr):
		msg = fmt.Sprintf("registry %s answered the login with %s", host, answer(terr))
	case errors.As(err, &dnsErr):
		msg = fmt.Sprintf("registry host %s cannot be resolved: %v", host, dnsErr)
	case errors.As(err, &opErr):
		msg = fmt.Sprintf("registry %s is unreachable: %v", host, opErr)
	default:
		msg = fmt.Sprintf("logging in to registry %s: %v", host, err)
	}
	return buildgate.Errorf(buildgate.EINVALID, "%s", secret.Redact(msg, string(c.Password)))
}

// answer quotes a registry's error answer: its error messages, else its
// HTTP status.
func answer(terr *transport.Error) string {
	var parts []string
	for _, d := range terr.Errors {
		s := d.Message
		if s == "" {
			s = string(d.Code)
		}
		parts = append(parts, s)
	}
	status := fmt.Sprintf("HTTP %d", terr.StatusCode)
	if len(parts) == 0 {
		return status
	}
	return strings.Join(parts, "; ") + " (" + status + ")"
}

func tlsReason(err error) string {
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &uaErr):
		return "signed by an unknown authority"
	case errors.As(err, &hostErr):
		return hostErr.Error()
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) && certErr.Err != nil {
		return certErr.Err.Error()
	}
	return "verification failed"
}
