package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate/internal/api"
)

// apiGet reads a /v1 document with the session's token, so pages built on
// newer routes (runtime, alerts) answer exactly as the API does.
func (c *Console) apiGet(ec echo.Context, path string, out any) (int, string) {
	s, _ := ec.Get(ctxSession).(*session)
	req, err := http.NewRequestWithContext(ec.Request().Context(), http.MethodGet, path, nil)
	if err != nil || s == nil {
		return http.StatusBadRequest, "bad request"
	}
	req.Header.Set("Authorization", "Bearer "+s.secret)
	rec := httptest.NewRecorder()
	c.cfg.API.ServeHTTP(rec, req)
	if rec.Code == http.StatusNotFound && rec.Body.Len() > 0 {
		var er api.ErrorResponse
		if json.Unmarshal(rec.Body.Bytes(), &er) == nil && er.Error.Message == "Not Found" {
			return rec.Code, "this gate does not serve " + path
		}
	}
	if rec.Code/100 != 2 {
		var er api.ErrorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &er) // a body that is not an error shape keeps the status text below
		if er.Error.Message == "" {
			er.Error.Message = http.StatusText(rec.Code)
		}
		return rec.Code, er.Error.Message
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		return http.StatusBadGateway, "decoding " + path + ": " + err.Error()
	}
	return rec.Code, ""
}

func (c *Console) runtime(ec echo.Context) error {
	q := url.Values{}
	for _, k := range []string{"cluster", "namespace"} {
		if v := ec.QueryParam(k); v != "" {
			q.Set(k, v)
		}
	}
	var list api.RuntimeImageList
	status, msg := c.apiGet(ec, "/v1/runtime/images?"+q.Encode(), &list)
	running := list.Images[:0]
	for _, img := range list.Images {
		if img.Status != "unscanned" {
			running = append(running, img)
		}
	}
	list.Images = running
	sort.SliceStable(list.Images, func(i, j int) bool { return risk(list.Images[i]) > risk(list.Images[j]) })
	p := c.newPage(ec, "Runtime", "runtime", map[string]any{
		"List": list, "Severities": severities, "Cluster": ec.QueryParam("cluster"), "Namespace": ec.QueryParam("namespace"),
	})
	p.Error = msg
	return c.render(ec, status, "runtime", p)
}

// risk orders running images: STOP first, then by critical and high counts.
func risk(img api.RuntimeImage) int {
	r := img.Vulnerabilities["critical"]*1000 + img.Vulnerabilities["high"]*10 + img.Vulnerabilities["medium"]
	if img.FinalAction == "stop" || img.FinalAction == "STOP" {
		r += 1 << 30
	}
	return r
}

func (c *Console) alerts(ec echo.Context) error {
	var alerts api.AlertList
	var channels api.ChannelList
	status, msg := c.apiGet(ec, "/v1/alerts", &alerts)
	if msg == "" {
		status, msg = c.apiGet(ec, "/v1/channels", &channels)
	}
	names := map[string]string{}
	for _, ch := range channels.Channels {
		names[ch.ID] = ch.Name
	}
	p := c.newPage(ec, "Alerts", "alerts", map[string]any{"Alerts": alerts.Alerts, "Channels": channels.Channels, "Names": names})
	p.Error = msg
	return c.render(ec, status, "alerts", p)
}
