package api

import (
	"log/slog"
	"time"
)

// ChannelRequest is the body of POST /v1/channels and PUT
// /v1/channels/{id}. Secret is a webhook's signing secret; a Slack
// channel's url is its secret; Password is an email channel's SMTP
// password. None of them is ever answered.
type ChannelRequest struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	URL      string   `json:"url,omitempty"`
	Secret   string   `json:"secret,omitempty"`
	SMTPHost string   `json:"smtp_host,omitempty"`
	SMTPPort int      `json:"smtp_port,omitempty"`
	TLS      string   `json:"tls,omitempty"`
	CACert   string   `json:"ca_cert,omitempty"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
}

// String describes the request without its secrets.
func (r ChannelRequest) String() string {
	return "name=" + r.Name + " type=" + r.Type
}

// GoString describes the request without its secrets.
func (r ChannelRequest) GoString() string { return "api.ChannelRequest{" + r.String() + "}" }

// LogValue logs the request without its secrets.
func (r ChannelRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("type", r.Type))
}

// Channel is a channel as the API answers it: never with its secret.
// URL is a webhook's URL, or only the scheme and host of a Slack
// webhook's; SecretSet says whether a secret is stored.
type Channel struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	URL         string     `json:"url,omitempty"`
	SMTPHost    string     `json:"smtp_host,omitempty"`
	SMTPPort    int        `json:"smtp_port,omitempty"`
	TLS         string     `json:"tls,omitempty"`
	CACert      string     `json:"ca_cert,omitempty"`
	Username    string     `json:"username,omitempty"`
	From        string     `json:"from,omitempty"`
	To          []string   `json:"to,omitempty"`
	SecretSet   bool       `json:"secret_set"`
	SecretSetAt *time.Time `json:"secret_set_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// ChannelList is the answer of GET /v1/channels.
type ChannelList struct {
	Channels []Channel `json:"channels"`
}

// ChannelTestResult is the answer of POST /v1/channels/{id}/test.
type ChannelTestResult struct {
	OK         bool   `json:"ok"`
	StatusCode int    `json:"status_code,omitempty"`
	Answer     string `json:"answer,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// AlertScope is the scope of an alert: globs where "*" matches any run of
// characters ("/" included) and an empty glob means "*".
type AlertScope struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Cluster    string `json:"cluster"`
	Namespace  string `json:"namespace"`
}

// AlertTrigger is one trigger of an alert: policy_eval_failed,
// unscanned_image (action notify or scan), new_vulnerabilities
// (min_severity) or verdict_changed.
type AlertTrigger struct {
	Type        string `json:"type"`
	Action      string `json:"action,omitempty"`
	MinSeverity string `json:"min_severity,omitempty"`
}

// AlertRequest is the body of POST /v1/alerts and PUT /v1/alerts/{id};
// enabled defaults to true.
type AlertRequest struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Enabled     *bool          `json:"enabled"`
	Scope       AlertScope     `json:"scope"`
	Triggers    []AlertTrigger `json:"triggers"`
	Channels    []string       `json:"channels"`
}

// Alert is an alert record.
type Alert struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Enabled     bool           `json:"enabled"`
	Scope       AlertScope     `json:"scope"`
	Triggers    []AlertTrigger `json:"triggers"`
	Channels    []string       `json:"channels"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

// AlertList is the answer of GET /v1/alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
}

// DeliveryAttempt is one try at sending a delivery.
type DeliveryAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	StatusCode int       `json:"status_code,omitempty"`
	Answer     string    `json:"answer,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Delivery is one notification for one channel: status pending,
// delivered or failed, with each attempt and, while pending, when the
// next one is due.
type Delivery struct {
	ID            string            `json:"id"`
	ChannelID     string            `json:"channel_id"`
	EventType     string            `json:"event_type"`
	EventKey      string            `json:"event_key"`
	Title         string            `json:"title"`
	Status        string            `json:"status"`
	Attempts      int               `json:"attempts"`
	CreatedAt     time.Time         `json:"created_at"`
	NextAttemptAt *time.Time        `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time        `json:"delivered_at,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	AttemptLog    []DeliveryAttempt `json:"attempt_log"`
}

// DeliveryList is the answer of GET /v1/alerts/{id}/deliveries and GET
// /v1/subscriptions/{id}/deliveries, newest first.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// SubscriptionRequest is the body of POST /v1/subscriptions (key and
// type; active defaults to true) and PUT /v1/subscriptions/{id} (active
// and channels; absent fields keep their values).
type SubscriptionRequest struct {
	Key      string    `json:"key"`
	Type     string    `json:"type"`
	Active   *bool     `json:"active"`
	Channels *[]string `json:"channels"`
}

// Subscription is a subscription record.
type Subscription struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Type      string    `json:"type"`
	Active    bool      `json:"active"`
	Channels  []string  `json:"channels"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SubscriptionList is the answer of GET /v1/subscriptions.
type SubscriptionList struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// RuntimeContainer is one running container of an inventory.
type RuntimeContainer struct {
	Cluster     string `json:"cluster,omitempty"`
	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	Container   string `json:"container"`
	Image       string `json:"image"`
	ImageDigest string `json:"image_digest,omitempty"`
}

// RuntimeInventory is the body of POST /v1/runtime/inventory: what one
// cluster runs; it replaces the cluster's previous inventory.
type RuntimeInventory struct {
	Cluster    string             `json:"cluster"`
	ObservedAt *time.Time         `json:"observed_at"`
	Containers []RuntimeContainer `json:"containers"`
}

// InventoryResult is the answer of POST /v1/runtime/inventory.
type InventoryResult struct {
	Cluster    string    `json:"cluster"`
	ObservedAt time.Time `json:"observed_at"`
	Containers int       `json:"containers"`
	Images     int       `json:"images"`
	Unscanned  int       `json:"unscanned"`
	Scans      int       `json:"scans_submitted"`
}

// RuntimeImage is one running image with what the gate knows of it:
// status is the analysis status or "unscanned"; final_action is the
// stored verdict under the active policy; vulnerabilities counts matches
// by lower-case severity.
type RuntimeImage struct {
	Image           string             `json:"image"`
	Tag             string             `json:"tag,omitempty"`
	ImageDigest     string             `json:"image_digest,omitempty"`
	Digest          string             `json:"digest,omitempty"`
	Status          string             `json:"status"`
	Error           string             `json:"error,omitempty"`
	FinalAction     string             `json:"final_action,omitempty"`
	PolicyID        string             `json:"policy_id,omitempty"`
	Vulnerabilities map[string]int     `json:"vulnerabilities,omitempty"`
	Containers      []RuntimeContainer `json:"containers"`
}

// RuntimeImageList is the answer of GET /v1/runtime/images: every running
// image, and those the gate has no analysis of.
type RuntimeImageList struct {
	Images    []RuntimeImage `json:"images"`
	Unscanned []RuntimeImage `json:"unscanned"`
}

// VulnerabilityChange is what one re-match against a new DB changed.
type VulnerabilityChange struct {
	DBBuilt     *time.Time      `json:"db_built,omitempty"`
	ChangedAt   time.Time       `json:"changed_at"`
	Appeared    []Vulnerability `json:"appeared"`
	Disappeared []Vulnerability `json:"disappeared"`
}

// VulnerabilityChangeList is the answer of GET
// /v1/images/{digest}/vulnerability-changes, newest first.
type VulnerabilityChangeList struct {
	Digest  string                `json:"digest"`
	Changes []VulnerabilityChange `json:"changes"`
}
