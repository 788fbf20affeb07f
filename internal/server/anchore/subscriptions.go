package anchore

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// subscriptionRecord is Anchore's subscription record.
type subscriptionRecord struct {
	SubscriptionID    string  `json:"subscription_id"`
	SubscriptionKey   string  `json:"subscription_key"`
	SubscriptionType  string  `json:"subscription_type"`
	SubscriptionValue *string `json:"subscription_value"`
	Active            bool    `json:"active"`
	CreatedAt         string  `json:"created_at"`
	LastUpdated       string  `json:"last_updated"`
	UserID            string  `json:"userId"`
}

func toSubscriptionRecord(s *buildgate.Subscription) subscriptionRecord {
	return subscriptionRecord{
		SubscriptionID: s.ID, SubscriptionKey: s.Key, SubscriptionType: s.Type, Active: s.Active,
		CreatedAt: isoTime(s.CreatedAt), LastUpdated: isoTime(s.UpdatedAt), UserID: userID,
	}
}

// subscriptionKey normalises a key: keys are full tags.
func subscriptionKey(key string) string {
	if strings.TrimSpace(key) == "" {
		return ""
	}
	return policy.FullTag(key)
}

func checkSubscriptionType(t string) error {
	if t != "" && !slices.Contains(buildgate.SubscriptionTypes(), t) {
		return buildgate.Errorf(buildgate.EINVALID, "unknown subscription_type %q (want one of %s)", t, strings.Join(buildgate.SubscriptionTypes(), ", "))
	}
	return nil
}

// listSubscriptions answers GET /subscriptions?subscription_key=&subscription_type=.
func (a *API) listSubscriptions(c echo.Context) error {
	typ := c.QueryParam("subscription_type")
	if err := checkSubscriptionType(typ); err != nil {
		return err
	}
	subs, err := a.cfg.Store.ListSubscriptions(c.Request().Context(), subscriptionKey(c.QueryParam("subscription_key")), typ)
	if err != nil {
		return err
	}
	out := make([]subscriptionRecord, 0, len(subs))
	for i := range subs {
		out = append(out, toSubscriptionRecord(&subs[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getSubscription(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	s, err := a.cfg.Store.Subscription(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []subscriptionRecord{toSubscriptionRecord(s)})
}

// subscriptionRequest is the body of POST /subscriptions and PUT
// /subscriptions/{id}.
type subscriptionRequest struct {
	SubscriptionKey  string `json:"subscription_key"`
	SubscriptionType string `json:"subscription_type"`
	Active           *bool  `json:"active"`
}

func (a *API) addSubscription(c echo.Context) error {
	var req subscriptionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	key := subscriptionKey(req.SubscriptionKey)
	if key == "" || req.SubscriptionType == "" {
		return buildgate.Errorf(buildgate.EINVALID, "the body needs both subscription_key and subscription_type")
	}
	if err := checkSubscriptionType(req.SubscriptionType); err != nil {
		return err
	}
	s, err := a.cfg.Store.AddSubscription(c.Request().Context(), key, req.SubscriptionType, req.Active != nil && *req.Active)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []subscriptionRecord{toSubscriptionRecord(s)})
}

// updateSubscription answers PUT /subscriptions/{id} {active, ...}:
// subscription activate and deactivate.
func (a *API) updateSubscription(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req subscriptionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	s, err := a.cfg.Store.Subscription(ctx, id)
	if err != nil {
		return err
	}
	if req.Active != nil && *req.Active != s.Active {
		if s, err = a.cfg.Store.SetSubscriptionActive(ctx, id, *req.Active); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, []subscriptionRecord{toSubscriptionRecord(s)})
}

func (a *API) deleteSubscription(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteSubscription(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
