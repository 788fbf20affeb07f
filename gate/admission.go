package main

import (
	"flag"
	"time"

	"github.com/buildgate/buildgate/internal/admission"
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
}

func defaultAdmissionConfig() AdmissionConfig {
	return AdmissionConfig{Timeout: admission.DefaultConfig().Timeout}
}

func (c *AdmissionConfig) flags(fs *flag.FlagSet) {
	d := defaultAdmissionConfig()
	fs.DurationVar(&c.Timeout, "admission-timeout", d.Timeout, "longest time to answer an admission review (and longest rule wait); keep it under the webhook's timeoutSeconds")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of the gate's console, for links in admission messages (default: the listen URL)")
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
