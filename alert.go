package buildgate

import "time"

// Channel types.
const (
	// ChannelWebhook posts a JSON body signed with HMAC-SHA256.
	ChannelWebhook = "webhook"
	// ChannelSlack posts a message with blocks to a Slack incoming webhook.
	ChannelSlack = "slack"
	// ChannelEmail sends mail through an SMTP server.
	ChannelEmail = "email"
)

// ChannelTypes lists the channel types.
func ChannelTypes() []string { return []string{ChannelWebhook, ChannelSlack, ChannelEmail} }

// SMTP connection security of an email channel.
const (
	// SMTPStartTLS connects in plain text and upgrades with STARTTLS; a
	// server that does not offer it is refused (the default).
	SMTPStartTLS = "starttls"
	// SMTPTLS connects with TLS from the start (port 465).
	SMTPTLS = "tls"
	// SMTPNone sends in plain text and only without authentication.
	SMTPNone = "none"
)

// Channel is where notifications go. Its secret (a webhook's signing
// secret, a Slack incoming-webhook URL, an SMTP password) is kept sealed
// apart from the record and never appears in it: SecretSetAt says when it
// was set.
type Channel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	// URL is a webhook's URL. A Slack channel's URL is its secret; here it
	// holds only the URL's scheme and host, to recognise it by.
	URL string `json:"url,omitempty"`

	// Email: the SMTP server, its security (SMTPStartTLS, SMTPTLS,
	// SMTPNone), a PEM CA bundle to trust besides the system's, and the
	// addresses.
	SMTPHost string   `json:"smtp_host,omitempty"`
	SMTPPort int      `json:"smtp_port,omitempty"`
	TLS      string   `json:"tls,omitempty"`
	CACert   string   `json:"ca_cert,omitempty"`
	Username string   `json:"username,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`

	SecretSetAt *time.Time `json:"secret_set_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Alert trigger types.
const (
	// TriggerPolicyEvalFailed fires when an image's verdict becomes stop.
	TriggerPolicyEvalFailed = "policy_eval_failed"
	// TriggerUnscannedImage fires when a runtime inventory names an image
	// the gate has not analysed; with ActionScan the gate also analyses it.
	TriggerUnscannedImage = "unscanned_image"
	// TriggerNewVulnerabilities fires when a DB change adds
	// vulnerabilities of at least MinSeverity to a stored image.
	TriggerNewVulnerabilities = "new_vulnerabilities"
	// TriggerVerdictChanged fires when a stored verdict changes.
	TriggerVerdictChanged = "verdict_changed"
	// TriggerAdmissionDenied fires when an admission rule in audit mode
	// admits an object that its judgement would have denied.
	TriggerAdmissionDenied = "admission_denied"
)

// TriggerTypes lists the alert trigger types.
func TriggerTypes() []string {
	return []string{TriggerPolicyEvalFailed, TriggerUnscannedImage, TriggerNewVulnerabilities, TriggerVerdictChanged, TriggerAdmissionDenied}
}

// Actions of the unscanned_image trigger.
const (
	ActionNotify = "notify"
	ActionScan   = "scan"
)

// AlertScope says which images an alert watches: globs ("*" matches any
// run of characters, "/" included; empty means "*") over the parts of an
// image's tags, and, for running images, over the cluster and namespace.
type AlertScope struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Cluster    string `json:"cluster"`
	Namespace  string `json:"namespace"`
}

// AlertTrigger is one condition an alert fires on.
type AlertTrigger struct {
	Type string `json:"type"`
	// Action is unscanned_image's: ActionNotify (default) or ActionScan.
	Action string `json:"action,omitempty"`
	// MinSeverity is new_vulnerabilities' lowest severity, by name
	// ("high"); empty means every severity.
	MinSeverity string `json:"min_severity,omitempty"`
}

// Alert tells its channels when one of its triggers fires for an image in
// its scope.
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

// Message is a notification as every channel type renders it: a title and
// text for people, and the JSON body a webhook sends.
type Message struct {
	// Event is the event type (a trigger or subscription type, or "test").
	Event  string         `json:"event"`
	Title  string         `json:"title"`
	Text   string         `json:"text"`
	Fields []MessageField `json:"fields,omitempty"`
	// Body is the webhook's JSON body.
	Body []byte `json:"-"`
	// DeliveryID identifies the delivery, for receivers to drop repeats.
	DeliveryID string `json:"-"`
}

// MessageField is one labelled value of a message.
type MessageField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SendResult is a channel's answer to a message.
type SendResult struct {
	// StatusCode is the HTTP status or the SMTP reply code; 0 when the
	// message was not answered.
	StatusCode int
	// Answer is the start of the answer's body or text.
	Answer string
}

// Delivery sources.
const (
	SourceAlert        = "alert"
	SourceSubscription = "subscription"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one message for one channel in the outbox: one per event,
// source (an alert or a subscription) and channel.
type Delivery struct {
	ID         string `json:"id"`
	SourceType string `json:"source_type"`
	SourceID   string `json:"source_id"`
	ChannelID  string `json:"channel_id"`
	EventType  string `json:"event_type"`
	// EventKey names the event; a second delivery of the same event to the
	// same channel for the same source is never made.
	EventKey      string            `json:"event_key"`
	Message       Message           `json:"message"`
	Status        string            `json:"status"`
	Attempts      int               `json:"attempts"`
	CreatedAt     time.Time         `json:"created_at"`
	NextAttemptAt *time.Time        `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time        `json:"delivered_at,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	AttemptLog    []DeliveryAttempt `json:"attempt_log"`
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

// RuntimeContainer is one container a cluster reported running.
type RuntimeContainer struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// Image is the reference the container was started from.
	Image string `json:"image"`
	// ImageDigest is the digest the runtime pulled ("sha256:..."), when
	// the inventory said it.
	ImageDigest string `json:"image_digest,omitempty"`
	// Tag is Image as a full tag (registry/repository:tag), empty when
	// Image names a digest only.
	Tag string `json:"tag,omitempty"`
	// Cluster is filled when containers of several clusters are listed.
	Cluster string `json:"cluster,omitempty"`
}

// RuntimeInventory is what one cluster runs at one time.
type RuntimeInventory struct {
	Cluster    string             `json:"cluster"`
	ObservedAt time.Time          `json:"observed_at"`
	Containers []RuntimeContainer `json:"containers"`
}

// VulnerabilityChange is what one re-match of an image against a new DB
// changed: the matches that appeared and those that disappeared.
type VulnerabilityChange struct {
	Digest      string    `json:"digest"`
	DBBuilt     time.Time `json:"db_built"`
	ChangedAt   time.Time `json:"changed_at"`
	Appeared    []Match   `json:"appeared"`
	Disappeared []Match   `json:"disappeared"`
}
