package anchore

import (
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// serviceState is one service of GET /system. The gate is one process
// that plays every Anchore service.
type serviceState struct {
	ServiceName   string        `json:"servicename"`
	HostID        string        `json:"hostid"`
	BaseURL       string        `json:"base_url"`
	Status        bool          `json:"status"`
	StatusMessage string        `json:"status_message"`
	Version       string        `json:"version"`
	ServiceDetail serviceDetail `json:"service_detail"`
}

type serviceDetail struct {
	Version   string `json:"version"`
	DBVersion string `json:"db_version"`
	Up        bool   `json:"up"`
	Available bool   `json:"available"`
	Busy      bool   `json:"busy"`
	Message   string `json:"message"`
}

// system answers GET /system. The policy engine is up once a
// vulnerability DB is loaded.
func (a *API) system(c echo.Context) error {
	host, _ := os.Hostname()
	base := c.Scheme() + "://" + c.Request().Host
	st := a.cfg.DB.Status()
	var states []serviceState
	for _, name := range []string{"apiext", "catalog", "simplequeue", "analyzer", "policy_engine"} {
		up, msg := true, "available"
		if name == "policy_engine" && !st.Ready {
			up, msg = false, "no vulnerability database loaded"
		}
		states = append(states, serviceState{
			ServiceName: name, HostID: host, BaseURL: base, Status: up, StatusMessage: msg, Version: a.cfg.Version,
			ServiceDetail: serviceDetail{Version: a.cfg.Version, DBVersion: st.SchemaVersion, Up: up, Available: up, Message: msg},
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"service_states": states})
}

// feed is one feed of GET /system/feeds: a provider of the vulnerability
// DB, with one group holding the provider's records.
type feed struct {
	Name         string      `json:"name"`
	Enabled      bool        `json:"enabled"`
	CreatedAt    *string     `json:"created_at"`
	UpdatedAt    *string     `json:"updated_at"`
	LastFullSync *string     `json:"last_full_sync"`
	Groups       []feedGroup `json:"groups"`
}

type feedGroup struct {
	Name        string  `json:"name"`
	Enabled     bool    `json:"enabled"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
	LastSync    *string `json:"last_sync"`
	RecordCount int     `json:"record_count"`
}

// feeds answers GET /system/feeds from the loaded DB: each provider is a
// feed whose sync time is the provider's capture date (the DB's build
// time when the provider has none).
func (a *API) feeds(c echo.Context) error {
	st := a.cfg.DB.Status()
	out := []feed{}
	for _, p := range st.Providers {
		var synced *time.Time
		switch {
		case p.DateCaptured != nil:
			synced = p.DateCaptured
		case st.Built != nil:
			synced = st.Built
		}
		at := isoTimePtr(synced)
		out = append(out, feed{
			Name: p.Name, Enabled: true, CreatedAt: at, UpdatedAt: at, LastFullSync: at,
			Groups: []feedGroup{{Name: p.Name, Enabled: true, CreatedAt: at, UpdatedAt: at, LastSync: at, RecordCount: p.Records}},
		})
	}
	return c.JSON(http.StatusOK, out)
}
