package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/secret"
)

// Alerts manages alerts and notification channels (alert.Service), the
// same service /v1/alerts and /v1/channels use.
type Alerts interface {
	CreateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error)
	UpdateAlert(ctx context.Context, id string, a buildgate.Alert) (*buildgate.Alert, error)
	Alert(ctx context.Context, id string) (*buildgate.Alert, error)
	Alerts(ctx context.Context) ([]buildgate.Alert, error)
	DeleteAlert(ctx context.Context, id string) error
	AlertDeliveries(ctx context.Context, id string, limit int) ([]buildgate.Delivery, error)
	CreateChannel(ctx context.Context, in alert.ChannelInput) (*buildgate.Channel, error)
	Channels(ctx context.Context) ([]buildgate.Channel, error)
	DeleteChannel(ctx context.Context, id string) error
	TestChannel(ctx context.Context, id string) (*alert.TestResult, error)
}

var alertSeverities = []string{"negligible", "low", "medium", "high", "critical"}

// alertForm is an alert as its form shows it.
type alertForm struct {
	ID          string
	Alert       buildgate.Alert
	Channels    []buildgate.Channel
	Trig        map[string]buildgate.AlertTrigger
	Deliveries  []buildgate.Delivery
	Severities  []string
	TriggerList []string
}

func (c *Console) alertsIndex(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.alerts(ec)
	}
	return c.alertsPage(ec, http.StatusOK, "", nil)
}

func (c *Console) alertsPage(ec echo.Context, status int, errMsg string, chForm map[string]string) error {
	ctx := ec.Request().Context()
	alerts, err := c.cfg.Alerts.Alerts(ctx)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	channels, err := c.cfg.Alerts.Channels(ctx)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	names := map[string]string{}
	for _, ch := range channels {
		names[ch.ID] = ch.Name
	}
	if chForm == nil {
		chForm = map[string]string{"type": buildgate.ChannelWebhook, "tls": "starttls"}
	}
	p := c.newPage(ec, "Alerts", "alerts", map[string]any{"Alerts": alerts, "Channels": channels, "Names": names,
		"Managed": true, "Form": chForm, "Test": ec.QueryParam("test"), "TestOK": ec.QueryParam("ok") == "1"})
	p.Error = errMsg
	return c.render(ec, status, "alerts", p)
}

func (c *Console) alertEditor(ec echo.Context, status int, id string, a buildgate.Alert, errMsg string) error {
	ctx := ec.Request().Context()
	channels, err := c.cfg.Alerts.Channels(ctx)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	f := &alertForm{ID: id, Alert: a, Channels: channels, Trig: map[string]buildgate.AlertTrigger{},
		Severities: alertSeverities, TriggerList: buildgate.TriggerTypes()}
	for _, t := range a.Triggers {
		f.Trig[t.Type] = t
	}
	if id != "" {
		if f.Deliveries, err = c.cfg.Alerts.AlertDeliveries(ctx, id, 100); err != nil {
			return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
		}
	}
	title := "New alert"
	if id != "" {
		title = "Alert " + a.Name
	}
	p := c.newPage(ec, title, "alerts", f)
	p.Error = errMsg
	return c.render(ec, status, "alert", p)
}

func (c *Console) newAlert(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	return c.alertEditor(ec, http.StatusOK, "", buildgate.Alert{Enabled: true}, "")
}

func (c *Console) alertPage(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	a, err := c.cfg.Alerts.Alert(ec.Request().Context(), ec.Param("id"))
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	return c.alertEditor(ec, http.StatusOK, a.ID, *a, "")
}

// alertFromForm reads the alert form.
func alertFromForm(ec echo.Context) buildgate.Alert {
	v := func(k string) string { return strings.TrimSpace(ec.FormValue(k)) }
	a := buildgate.Alert{Name: v("name"), Description: v("description"), Enabled: v("enabled") == "on",
		Scope: buildgate.AlertScope{Registry: v("registry"), Repository: v("repository"), Tag: v("tag"), Cluster: v("cluster"), Namespace: v("namespace")}}
	form, _ := ec.FormParams()
	for _, t := range form["trigger"] {
		tr := buildgate.AlertTrigger{Type: t}
		switch t {
		case buildgate.TriggerUnscannedImage:
			tr.Action = v("action")
		case buildgate.TriggerNewVulnerabilities:
			tr.MinSeverity = v("min_severity")
		}
		a.Triggers = append(a.Triggers, tr)
	}
	a.Channels = append(a.Channels, form["channel"]...)
	return a
}

func (c *Console) saveAlert(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	id := ec.Param("id")
	a := alertFromForm(ec)
	var out *buildgate.Alert
	var err error
	if id == "" {
		out, err = c.cfg.Alerts.CreateAlert(ec.Request().Context(), a)
	} else {
		out, err = c.cfg.Alerts.UpdateAlert(ec.Request().Context(), id, a)
	}
	if err != nil {
		return c.alertEditor(ec, statusOf(err), id, a, "The alert was not saved: "+buildgate.ErrorMessage(err))
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/alerts/"+url.PathEscape(out.ID)+"?notice=Alert+saved.")
}

func (c *Console) deleteAlert(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	if err := c.cfg.Alerts.DeleteAlert(ec.Request().Context(), ec.Param("id")); err != nil {
		return c.alertsPage(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/alerts?notice=Alert+deleted.")
}

func (c *Console) addChannel(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	form := map[string]string{}
	for _, k := range []string{"name", "type", "url", "smtp_host", "smtp_port", "tls", "username", "from", "to", "ca_cert"} {
		form[k] = strings.TrimSpace(ec.FormValue(k))
	}
	ch := buildgate.Channel{Name: form["name"], Type: form["type"]}
	var key string
	switch form["type"] {
	case buildgate.ChannelWebhook:
		ch.URL, key = form["url"], ec.FormValue("secret")
	case buildgate.ChannelSlack:
		key = ec.FormValue("slack_url")
	case buildgate.ChannelEmail:
		ch.SMTPHost, ch.TLS, ch.Username, ch.From, ch.CACert = form["smtp_host"], form["tls"], form["username"], form["from"], form["ca_cert"]
		if form["smtp_port"] != "" {
			port, err := strconv.Atoi(form["smtp_port"])
			if err != nil {
				return c.alertsPage(ec, http.StatusBadRequest, "The SMTP port is not a number.", form)
			}
			ch.SMTPPort = port
		}
		for _, to := range strings.FieldsFunc(form["to"], func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
			ch.To = append(ch.To, strings.TrimSpace(to))
		}
		key = ec.FormValue("password")
	}
	if _, err := c.cfg.Alerts.CreateChannel(ec.Request().Context(), alert.ChannelInput{Channel: ch, Secret: secret.Secret(key)}); err != nil {
		return c.alertsPage(ec, statusOf(err), "The channel was not added: "+buildgate.ErrorMessage(err), form)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/alerts?notice=Channel+added.")
}

func (c *Console) deleteChannel(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	if err := c.cfg.Alerts.DeleteChannel(ec.Request().Context(), ec.Param("id")); err != nil {
		return c.alertsPage(ec, statusOf(err), "The channel was not deleted: "+buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/alerts?notice=Channel+deleted.")
}

func (c *Console) testChannel(ec echo.Context) error {
	if c.cfg.Alerts == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not manage alerts.")
	}
	r, err := c.cfg.Alerts.TestChannel(ec.Request().Context(), ec.Param("id"))
	if err != nil {
		return c.alertsPage(ec, statusOf(err), "The test was not sent: "+buildgate.ErrorMessage(err), nil)
	}
	msg := "Test message delivered"
	if !r.OK {
		msg = "Test message failed"
	}
	if r.StatusCode != 0 {
		msg += " (HTTP " + strconv.Itoa(r.StatusCode) + ")"
	}
	if r.Error != "" {
		msg += ": " + r.Error
	} else if r.Answer != "" {
		msg += "; the channel answered: " + r.Answer
	}
	ok := "0"
	if r.OK {
		ok = "1"
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/alerts?ok="+ok+"&test="+url.QueryEscape(msg))
}
