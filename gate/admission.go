package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/admission"
	"github.com/buildgate/buildgate/internal/server"
)

// AdmissionConfig is the part of gate serve's configuration about the
// Kubernetes admission webhook.
type AdmissionConfig struct {
	// Timeout bounds an admission review's answer; keep it under the
	// webhook's timeoutSeconds (10 s by default).
	Timeout time.Duration
	// PublicURL is the base URL people reach the gate's console at, for
	// links in admission messages (default: the URL the gate listens on).
	PublicURL string
	// Token, when set, is installed as a token of the admission role (the
	// Kubernetes API server's) on start, unless it already is
	// (GATE_ADMISSION_TOKEN).
	Token string
}

func defaultAdmissionConfig() AdmissionConfig {
	return AdmissionConfig{Timeout: admission.DefaultConfig().Timeout}
}

func (c *AdmissionConfig) flags(fs *flag.FlagSet) {
	d := defaultAdmissionConfig()
	fs.DurationVar(&c.Timeout, "admission-timeout", d.Timeout, "longest time to answer an admission review (and longest rule wait); keep it under the webhook's timeoutSeconds")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of the gate's console, for links in admission messages (default: the listen URL)")
	fs.StringVar(&c.Token, "admission-token", "", "token of the admission role (the Kubernetes API server's) to install on start")
}

// ensureAdmissionToken installs Config.Admission.Token with the admission
// role unless a token with that secret exists.
func (m *Main) ensureAdmissionToken(ctx context.Context) error {
	secret := m.Config.Admission.Token
	if secret == "" {
		return nil
	}
	if err := server.CheckSuppliedToken(secret); err != nil {
		return fmt.Errorf("--admission-token (GATE_ADMISSION_TOKEN) must carry at least 32 random bytes, as --admin-token must: generate one with `openssl rand -base64 32`")
	}
	hash := server.HashToken(secret)
	t, err := m.Store.TokenByHash(ctx, hash)
	switch {
	case err == nil && t.Role != buildgate.RoleAdmission:
		return fmt.Errorf("--admission-token is already the token %q of role %s: give the admission role its own token", t.Name, t.Role)
	case err == nil:
		return nil
	case buildgate.ErrorCode(err) != buildgate.EUNAUTHORIZED:
		return err
	}
	tok, err := server.NewTokenRecord("admission", buildgate.RoleAdmission, 0, m.Now())
	if err != nil {
		return err
	}
	if err := m.Store.CreateToken(ctx, tok, hash); err != nil {
		return err
	}
	m.Log.Info("installed the admission token", "name", tok.Name)
	return nil
}

// openAdmission wires the admission service: stored verdicts and rules,
// submissions through the analysis service, tags resolved through the
// registry adapter (the stored credentials), audit denials to alerts.
func (m *Main) openAdmission(reg registryAdapter) {
	c := m.Config.Admission
	cfg := admission.DefaultConfig()
	cfg.Timeout = c.Timeout
	m.Admission = admission.New(cfg, m.Store, m.Analysis, m.Verdicts, reg, m.Alerts, m.Log)
	m.Admission.Now = m.Now
	m.Admission.UIURL = c.PublicURL // the listen URL when empty, once known
	m.Server.RouteAdmission(m.Admission)
}

// admissionFinished is the analysis Observer's hook into admission: it
// wakes reviews waiting for an analysis.
func (m *Main) admissionFinished() {
	if m.Admission != nil {
		m.Admission.AnalysisFinished()
	}
}
