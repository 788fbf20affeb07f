package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/notify"
	"github.com/buildgate/buildgate/internal/secret"
)

// AlertConfig is the part of gate serve's configuration about
// subscriptions and alert deliveries.
type AlertConfig struct {
	// TagPollInterval is how often tag_update subscriptions are polled.
	TagPollInterval time.Duration
	// DeliveryRetry is the wait after a delivery's first failure; it
	// doubles at each failure up to DeliveryRetryMax.
	DeliveryRetry    time.Duration
	DeliveryRetryMax time.Duration
	// DeliveryAttempts is how many times a delivery is tried.
	DeliveryAttempts int
}

func defaultAlertConfig() AlertConfig {
	d := alert.DefaultConfig()
	return AlertConfig{
		TagPollInterval: d.TagPollInterval, DeliveryRetry: d.RetryBase,
		DeliveryRetryMax: d.RetryMax, DeliveryAttempts: d.MaxAttempts,
	}
}

func (c *AlertConfig) flags(fs *flag.FlagSet) {
	d := defaultAlertConfig()
	fs.DurationVar(&c.TagPollInterval, "tag-poll-interval", d.TagPollInterval, "how often tag_update subscriptions poll their registry; 0: never")
	fs.DurationVar(&c.DeliveryRetry, "delivery-retry", d.DeliveryRetry, "wait after an alert delivery's first failure; doubled at each failure")
	fs.DurationVar(&c.DeliveryRetryMax, "delivery-retry-max", d.DeliveryRetryMax, "longest wait between two attempts at an alert delivery")
	fs.IntVar(&c.DeliveryAttempts, "delivery-attempts", d.DeliveryAttempts, "attempts at an alert delivery before it is given up")
}

// openAlerts wires the alert service: channel secrets sealed with the
// gate's key, the webhook, Slack and email senders, submissions through
// the analysis service and tag polling through the registry adapter. It
// hooks Verdicts and adds the routes; the analysis Observer calls it
// through m.Alerts.
func (m *Main) openAlerts(ctx context.Context, reg alert.Registry, sealer *secret.Sealer) error {
	c := m.Config.Alerts
	ua := "buildgate/" + version
	m.Alerts = alert.New(alert.Config{
		TagPollInterval: c.TagPollInterval, RetryBase: c.DeliveryRetry, RetryMax: c.DeliveryRetryMax, MaxAttempts: c.DeliveryAttempts,
	}, m.Store, sealer, map[string]alert.Sender{
		buildgate.ChannelWebhook: notify.Webhook{UserAgent: ua, Client: m.Guard.Client(0, 0)},
		buildgate.ChannelSlack:   notify.Slack{UserAgent: ua, Client: m.Guard.Client(0, 0)},
		buildgate.ChannelEmail:   notify.Email{Dial: m.Guard.DialContext},
	}, m.Analysis, reg, m.Log)
	m.Alerts.Now = m.Now
	n, err := m.Alerts.SealChannelURLs(context.Background())
	if err != nil {
		return fmt.Errorf("sealing webhook channel urls: %w", err)
	}
	if n > 0 {
		m.Log.Warn("sealed the webhook urls that were stored in plain text", "channels", n)
	}
	m.Verdicts.OnChange = m.Alerts.VerdictChanged
	m.Server.RouteAlerts(m.Alerts)
	return nil
}

// alertFinished and alertRematched are the analysis Observer's hooks into
// alerts; m.Alerts is set before any analysis runs.
func (m *Main) alertFinished(digest string, outcome buildgate.Status, d time.Duration) {
	if m.Alerts != nil {
		m.Alerts.AnalysisFinished(digest, outcome, d)
	}
}

func (m *Main) alertRematched(ctx context.Context, digest string, before, after []buildgate.Match, db buildgate.DBInfo) {
	if m.Alerts != nil {
		m.Alerts.Rematched(ctx, digest, before, after, db)
	}
}
