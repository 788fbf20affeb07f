package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/secret"
)

// Alerts is the alerts, channels, subscriptions and runtime service
// (alert.Service).
type Alerts interface {
	CreateChannel(ctx context.Context, in alert.ChannelInput) (*buildgate.Channel, error)
	UpdateChannel(ctx context.Context, id string, in alert.ChannelInput) (*buildgate.Channel, error)
	Channel(ctx context.Context, id string) (*buildgate.Channel, error)
	Channels(ctx context.Context) ([]buildgate.Channel, error)
	DeleteChannel(ctx context.Context, id string) error
	TestChannel(ctx context.Context, id string) (*alert.TestResult, error)

	CreateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error)
	UpdateAlert(ctx context.Context, id string, a buildgate.Alert) (*buildgate.Alert, error)
	Alert(ctx context.Context, id string) (*buildgate.Alert, error)
	Alerts(ctx context.Context) ([]buildgate.Alert, error)
	DeleteAlert(ctx context.Context, id string) error
	AlertDeliveries(ctx context.Context, id string, limit int) ([]buildgate.Delivery, error)

	CreateSubscription(ctx context.Context, in alert.SubscriptionInput) (*buildgate.Subscription, error)
	UpdateSubscription(ctx context.Context, id string, in alert.SubscriptionInput) (*buildgate.Subscription, error)
	Subscription(ctx context.Context, id string) (*buildgate.Subscription, error)
	Subscriptions(ctx context.Context, key, typ string) ([]buildgate.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
	SubscriptionDeliveries(ctx context.Context, id string, limit int) ([]buildgate.Delivery, error)

	PushInventory(ctx context.Context, inv buildgate.RuntimeInventory) (*alert.InventoryResult, error)
	RuntimeImages(ctx context.Context, cluster, namespace string) ([]alert.RuntimeImage, error)
	VulnerabilityChanges(ctx context.Context, digest string) ([]buildgate.VulnerabilityChange, error)
}

// maxAlertBody bounds an alert, channel, subscription or inventory body.
const maxAlertBody = 32 << 20

// RouteAlerts adds /v1/channels and /v1/alerts (admin), /v1/subscriptions
// (reads ci, writes admin), /v1/runtime (ci may push inventory) and
// /v1/images/{digest}/vulnerability-changes.
func (s *Server) RouteAlerts(a Alerts) {
	v1 := s.v1
	admin, read := require(buildgate.ActManageAlerts), require(buildgate.ActReadImages)
	readSubs, writeSubs := require(buildgate.ActReadSubscriptions), require(buildgate.ActWriteSubscriptions)
	h := alertHandlers{a: a}
	channels := resource[api.ChannelRequest, alert.ChannelInput, buildgate.Channel, api.Channel]{toChannelInput, toChannel}
	v1.POST("/channels", channels.create(a.CreateChannel), admin)
	v1.GET("/channels", h.listChannels, admin)
	v1.GET("/channels/:id", channels.get(a.Channel), admin)
	v1.PUT("/channels/:id", channels.update(a.UpdateChannel), admin)
	v1.DELETE("/channels/:id", deleteByID(a.DeleteChannel), admin)
	v1.POST("/channels/:id/test", h.testChannel, admin)

	alerts := resource[api.AlertRequest, buildgate.Alert, buildgate.Alert, api.Alert]{toAlertModel, toAlert}
	v1.POST("/alerts", alerts.create(a.CreateAlert), admin)
	v1.GET("/alerts", h.listAlerts, admin)
	v1.GET("/alerts/:id", alerts.get(a.Alert), admin)
	v1.PUT("/alerts/:id", alerts.update(a.UpdateAlert), admin)
	v1.DELETE("/alerts/:id", deleteByID(a.DeleteAlert), admin)
	v1.GET("/alerts/:id/deliveries", deliveriesByID(a.AlertDeliveries), admin)

	subs := resource[api.SubscriptionRequest, alert.SubscriptionInput, buildgate.Subscription, api.Subscription]{toSubscriptionInput, toSubscription}
	v1.POST("/subscriptions", subs.create(a.CreateSubscription), writeSubs)
	v1.GET("/subscriptions", h.listSubscriptions, readSubs)
	v1.GET("/subscriptions/:id", subs.get(a.Subscription), readSubs)
	v1.PUT("/subscriptions/:id", subs.update(a.UpdateSubscription), writeSubs)
	v1.DELETE("/subscriptions/:id", deleteByID(a.DeleteSubscription), writeSubs)
	v1.GET("/subscriptions/:id/deliveries", deliveriesByID(a.SubscriptionDeliveries), writeSubs)

	v1.POST("/runtime/inventory", h.pushInventory, require(buildgate.ActSubmitImages))
	v1.GET("/runtime/images", h.runtimeImages, read)
	v1.GET("/images/:digest/vulnerability-changes", h.vulnerabilityChanges, read)
}

type alertHandlers struct{ a Alerts }

// resource makes the JSON handlers of one resource of the alerts service
// (channels, alerts, subscriptions): Req is the request body, In what the
// service takes, M its model and Out the answer.
type resource[Req, In, M, Out any] struct {
	in  func(Req) In
	out func(*M) Out
}

// create answers 201 with what create made of the body.
func (r resource[Req, In, M, Out]) create(create func(context.Context, In) (*M, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req Req
		if err := decodeAlertBody(c, &req); err != nil {
			return err
		}
		m, err := create(c.Request().Context(), r.in(req))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, r.out(m))
	}
}

// update answers what update made of the body for the :id of the path.
func (r resource[Req, In, M, Out]) update(update func(context.Context, string, In) (*M, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		var req Req
		if err := decodeAlertBody(c, &req); err != nil {
			return err
		}
		m, err := update(c.Request().Context(), id, r.in(req))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r.out(m))
	}
}

// get answers the :id of the path.
func (r resource[Req, In, M, Out]) get(get func(context.Context, string) (*M, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		m, err := get(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r.out(m))
	}
}

// deleteByID deletes the :id of the path and answers 204.
func deleteByID(del func(context.Context, string) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		if err := del(c.Request().Context(), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// deliveriesByID answers the deliveries of the alert or subscription :id
// of the path, at most ?limit= of them.
func deliveriesByID(deliveries func(context.Context, string, int) ([]buildgate.Delivery, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		limit, err := limitParam(c)
		if err != nil {
			return err
		}
		ds, err := deliveries(c.Request().Context(), id, limit)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toDeliveries(ds))
	}
}

// decodeAlertBody reads a JSON body into v. Its errors never quote the body,
// which may hold a secret.
func decodeAlertBody(c echo.Context, v any) error {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAlertBody+1))
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "reading the request body: %v", err)
	}
	if len(b) > maxAlertBody {
		return buildgate.Errorf(buildgate.EINVALID, "the request body is larger than %d bytes", maxAlertBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: syntax error at byte %d", se.Offset)
		case errors.As(err, &te):
			return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: %s must be a %s, not a %s", te.Field, te.Type, te.Value)
		}
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: want a JSON object")
	}
	return nil
}

func limitParam(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, buildgate.Errorf(buildgate.EINVALID, "limit must be a positive number, not %q", v)
	}
	return n, nil
}

func toChannelInput(r api.ChannelRequest) alert.ChannelInput {
	key := r.Secret
	if r.Password != "" {
		key = r.Password
	}
	return alert.ChannelInput{
		Channel: buildgate.Channel{
			Name: r.Name, Type: r.Type, URL: r.URL, SMTPHost: r.SMTPHost, SMTPPort: r.SMTPPort, TLS: r.TLS,
			CACert: r.CACert, Username: r.Username, From: r.From, To: r.To,
		},
		Secret: secret.Secret(key),
	}
}

func toChannel(c *buildgate.Channel) api.Channel {
	return api.Channel{
		ID: c.ID, Name: c.Name, Type: c.Type, URL: c.URL, SMTPHost: c.SMTPHost, SMTPPort: c.SMTPPort, TLS: c.TLS,
		CACert: c.CACert, Username: c.Username, From: c.From, To: c.To,
		SecretSet: c.SecretSetAt != nil, SecretSetAt: c.SecretSetAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

func (h alertHandlers) listChannels(c echo.Context) error {
	chans, err := h.a.Channels(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.ChannelList{Channels: []api.Channel{}}
	for i := range chans {
		out.Channels = append(out.Channels, toChannel(&chans[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (h alertHandlers) testChannel(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	r, err := h.a.TestChannel(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.ChannelTestResult{OK: r.OK, StatusCode: r.StatusCode, Answer: r.Answer, Error: r.Error, DurationMS: r.Duration.Milliseconds()})
}

func toAlertModel(r api.AlertRequest) buildgate.Alert {
	a := buildgate.Alert{
		Name: r.Name, Description: r.Description, Enabled: r.Enabled == nil || *r.Enabled, Channels: r.Channels,
		Scope: buildgate.AlertScope{Registry: r.Scope.Registry, Repository: r.Scope.Repository, Tag: r.Scope.Tag, Cluster: r.Scope.Cluster, Namespace: r.Scope.Namespace},
	}
	for _, t := range r.Triggers {
		a.Triggers = append(a.Triggers, buildgate.AlertTrigger{Type: t.Type, Action: t.Action, MinSeverity: t.MinSeverity})
	}
	return a
}

func toAlert(a *buildgate.Alert) api.Alert {
	out := api.Alert{
		ID: a.ID, Name: a.Name, Description: a.Description, Enabled: a.Enabled, Channels: nonNil(a.Channels),
		Scope:     api.AlertScope{Registry: a.Scope.Registry, Repository: a.Scope.Repository, Tag: a.Scope.Tag, Cluster: a.Scope.Cluster, Namespace: a.Scope.Namespace},
		Triggers:  []api.AlertTrigger{},
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	for _, t := range a.Triggers {
		out.Triggers = append(out.Triggers, api.AlertTrigger{Type: t.Type, Action: t.Action, MinSeverity: t.MinSeverity})
	}
	return out
}

func (h alertHandlers) listAlerts(c echo.Context) error {
	alerts, err := h.a.Alerts(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.AlertList{Alerts: []api.Alert{}}
	for i := range alerts {
		out.Alerts = append(out.Alerts, toAlert(&alerts[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func toDeliveries(ds []buildgate.Delivery) api.DeliveryList {
	out := api.DeliveryList{Deliveries: []api.Delivery{}}
	for _, d := range ds {
		ad := api.Delivery{
			ID: d.ID, ChannelID: d.ChannelID, EventType: d.EventType, EventKey: d.EventKey, Title: d.Message.Title,
			Status: d.Status, Attempts: d.Attempts, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt,
			LastError: d.LastError, AttemptLog: []api.DeliveryAttempt{},
		}
		if d.Status == buildgate.DeliveryPending {
			ad.NextAttemptAt = d.NextAttemptAt
		}
		for _, a := range d.AttemptLog {
			ad.AttemptLog = append(ad.AttemptLog, api.DeliveryAttempt{
				Attempt: a.Attempt, At: a.At, OK: a.OK, StatusCode: a.StatusCode, Answer: a.Answer, Error: a.Error, DurationMS: a.DurationMS,
			})
		}
		out.Deliveries = append(out.Deliveries, ad)
	}
	return out
}

func toSubscriptionInput(r api.SubscriptionRequest) alert.SubscriptionInput {
	return alert.SubscriptionInput{Key: r.Key, Type: r.Type, Active: r.Active, Channels: r.Channels}
}

func toSubscription(s *buildgate.Subscription) api.Subscription {
	return api.Subscription{ID: s.ID, Key: s.Key, Type: s.Type, Active: s.Active, Channels: nonNil(s.Channels), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func (h alertHandlers) listSubscriptions(c echo.Context) error {
	subs, err := h.a.Subscriptions(c.Request().Context(), c.QueryParam("key"), c.QueryParam("type"))
	if err != nil {
		return err
	}
	out := api.SubscriptionList{Subscriptions: []api.Subscription{}}
	for i := range subs {
		out.Subscriptions = append(out.Subscriptions, toSubscription(&subs[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (h alertHandlers) pushInventory(c echo.Context) error {
	var req api.RuntimeInventory
	if err := decodeAlertBody(c, &req); err != nil {
		return err
	}
	inv := buildgate.RuntimeInventory{Cluster: req.Cluster, Containers: []buildgate.RuntimeContainer{}}
	if req.ObservedAt != nil {
		inv.ObservedAt = *req.ObservedAt
	}
	for _, ct := range req.Containers {
		inv.Containers = append(inv.Containers, buildgate.RuntimeContainer{
			Namespace: ct.Namespace, Pod: ct.Pod, Container: ct.Container, Image: ct.Image, ImageDigest: ct.ImageDigest,
		})
	}
	r, err := h.a.PushInventory(c.Request().Context(), inv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.InventoryResult{
		Cluster: r.Cluster, ObservedAt: r.ObservedAt, Containers: r.Containers, Images: r.Images, Unscanned: r.Unscanned, Scans: r.Scans,
	})
}

func (h alertHandlers) runtimeImages(c echo.Context) error {
	imgs, err := h.a.RuntimeImages(c.Request().Context(), c.QueryParam("cluster"), c.QueryParam("namespace"))
	if err != nil {
		return err
	}
	out := api.RuntimeImageList{Images: []api.RuntimeImage{}, Unscanned: []api.RuntimeImage{}}
	for _, ri := range imgs {
		ai := api.RuntimeImage{
			Image: ri.Image, Tag: ri.Tag, ImageDigest: ri.ImageDigest, Digest: ri.Digest, Status: ri.Status, Error: ri.Error,
			FinalAction: ri.FinalAction, PolicyID: ri.PolicyID, Vulnerabilities: ri.Vulnerabilities, Containers: []api.RuntimeContainer{},
		}
		for _, ct := range ri.Containers {
			ai.Containers = append(ai.Containers, api.RuntimeContainer{
				Cluster: ct.Cluster, Namespace: ct.Namespace, Pod: ct.Pod, Container: ct.Container, Image: ct.Image, ImageDigest: ct.ImageDigest,
			})
		}
		out.Images = append(out.Images, ai)
		if ri.Status != string(buildgate.StatusAnalyzed) {
			out.Unscanned = append(out.Unscanned, ai)
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (h alertHandlers) vulnerabilityChanges(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	changes, err := h.a.VulnerabilityChanges(c.Request().Context(), d)
	if err != nil {
		return err
	}
	out := api.VulnerabilityChangeList{Digest: d, Changes: []api.VulnerabilityChange{}}
	for _, ch := range changes {
		ac := api.VulnerabilityChange{ChangedAt: ch.ChangedAt, Appeared: []api.Vulnerability{}, Disappeared: []api.Vulnerability{}}
		if !ch.DBBuilt.IsZero() {
			b := ch.DBBuilt
			ac.DBBuilt = &b
		}
		for _, m := range ch.Appeared {
			ac.Appeared = append(ac.Appeared, toVulnerability(m))
		}
		for _, m := range ch.Disappeared {
			ac.Disappeared = append(ac.Disappeared, toVulnerability(m))
		}
		out.Changes = append(out.Changes, ac)
	}
	return c.JSON(http.StatusOK, out)
}
