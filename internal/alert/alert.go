// Package alert is the use case that tells people when something about an
// image matters, and keeps the gate looking after images once they run:
//
//   - alerts (scope globs, triggers, channels) and channels (webhook,
//     Slack, email; their secrets sealed at rest);
//   - subscriptions by tag, shared with the Anchore API: tag_update polls
//     the registry and analyses each new digest, vuln_update, policy_eval
//     and analysis_update notify the subscription's channels;
//   - events from the analysis service (an analysis finished or failed, a
//     re-match against a new DB changed an image's vulnerabilities), from
//     Verdicts (a stored verdict changed) and from runtime inventories
//     (a cluster runs an image the gate never analysed: notify, or scan);
//   - a persisted outbox: an event becomes one delivery per (source,
//     channel) with a dedupe key, and a worker sends each with retries and
//     capped exponential backoff, across restarts.
//
// It knows its adapters through the small interfaces below; gate/ wires
// the store (internal/store/sqlite), the senders (internal/notify) and the
// registry.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Store is what the service needs from the database.
type Store interface {
	CreateChannel(ctx context.Context, c buildgate.Channel, sealed string) (*buildgate.Channel, error)
	UpdateChannel(ctx context.Context, c buildgate.Channel, sealed string) (*buildgate.Channel, error)
	Channel(ctx context.Context, id string) (*buildgate.Channel, error)
	ChannelSecret(ctx context.Context, id string) (string, error)
	SetChannelURL(ctx context.Context, id, sealed, display string) error
	ChannelURL(ctx context.Context, id string) (string, error)
	ListChannels(ctx context.Context) ([]buildgate.Channel, error)
	DeleteChannel(ctx context.Context, id string) error

	CreateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error)
	UpdateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error)
	Alert(ctx context.Context, id string) (*buildgate.Alert, error)
	ListAlerts(ctx context.Context) ([]buildgate.Alert, error)
	DeleteAlert(ctx context.Context, id string) error

	AddSubscription(ctx context.Context, key, typ string, active bool) (*buildgate.Subscription, error)
	Subscription(ctx context.Context, id string) (*buildgate.Subscription, error)
	ListSubscriptions(ctx context.Context, key, typ string) ([]buildgate.Subscription, error)
	SetSubscriptionActive(ctx context.Context, id string, active bool) (*buildgate.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
	SetSubscriptionChannels(ctx context.Context, id string, channels []string) error
	SubscriptionChannels(ctx context.Context) (map[string][]string, error)
	TagDigest(ctx context.Context, tag string) (string, error)
	// ClaimRound claims a round of once-per-cluster work unless a gate
	// started one after at-every.
	ClaimRound(ctx context.Context, name string, at time.Time, every time.Duration) (bool, error)
	SetTagDigest(ctx context.Context, tag, digest, pollErr string, at time.Time) error

	EnqueueDeliveries(ctx context.Context, ds []buildgate.Delivery) (int, error)
	ClaimDeliveries(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]buildgate.Delivery, error)
	RecordAttempt(ctx context.Context, id string, a buildgate.DeliveryAttempt, status string, next time.Time) error
	Deliveries(ctx context.Context, sourceType, sourceID string, limit int) ([]buildgate.Delivery, error)

	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	ImageOrigin(ctx context.Context, digest string) (*buildgate.Origin, error)
	LookupImage(ctx context.Context, digest, tag string) (*buildgate.Image, error)
	ImageMatches(ctx context.Context, digest string) ([]buildgate.Match, error)
	ActivePolicy(ctx context.Context) (*buildgate.PolicyRecord, error)
	LatestEvaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error)

	SaveVulnerabilityChange(ctx context.Context, c buildgate.VulnerabilityChange) error
	VulnerabilityChanges(ctx context.Context, digest string) ([]buildgate.VulnerabilityChange, error)

	ReplaceInventory(ctx context.Context, inv buildgate.RuntimeInventory) error
	RuntimeContainers(ctx context.Context, cluster, namespace string) ([]buildgate.RuntimeContainer, error)
	RuntimeContainersOf(ctx context.Context, digests, tags []string) ([]buildgate.RuntimeContainer, error)
}

// Sealer seals channel secrets at rest (internal/secret), each for its
// record.
type Sealer interface {
	Seal(plain []byte, rec secret.Record) (string, error)
	Open(sealed string, rec secret.Record) ([]byte, error)
}

// Sender sends a message to one kind of channel. An error whose chain
// holds a Permanent() bool method that returns true is not retried.
type Sender interface {
	Send(ctx context.Context, ch buildgate.Channel, key secret.Secret, msg buildgate.Message) (buildgate.SendResult, error)
}

// Images submits images for analysis (the analysis service).
type Images interface {
	Submit(ctx context.Context, req buildgate.SubmitRequest) (*buildgate.Image, error)
}

// Registry resolves tags with the gate's stored credentials.
type Registry interface {
	Resolve(ctx context.Context, ref string) (buildgate.Resolved, error)
	// NormalizeTag returns the full tag a user's "repo:tag" stands for.
	NormalizeTag(tag string) (string, error)
}

// Config tunes the service.
type Config struct {
	// TagPollInterval is how often tag_update subscriptions are polled;
	// 0 means never.
	TagPollInterval time.Duration
	// RetryBase is the wait after a delivery's first failed attempt; each
	// further failure doubles it, up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxAttempts is how many times a delivery is tried before it is
	// given up as failed.
	MaxAttempts int
	// SendTimeout bounds one attempt.
	SendTimeout time.Duration
	// Poll is how often an idle outbox worker looks for due deliveries.
	Poll time.Duration
	// WorkerID names this gate's outbox worker in claims.
	WorkerID string
}

// DefaultConfig returns the defaults: tags polled every 10 minutes,
// retries after 10s, 20s, 40s... up to 10 minutes apart, 20 attempts
// (about two and a half hours), 15s a send.
func DefaultConfig() Config {
	return Config{
		TagPollInterval: 10 * time.Minute,
		RetryBase:       10 * time.Second,
		RetryMax:        10 * time.Minute,
		MaxAttempts:     20,
		SendTimeout:     15 * time.Second,
		Poll:            time.Second,
	}
}

// Service is the alerts, channels, subscriptions and runtime use case.
type Service struct {
	cfg      Config
	store    Store
	sealer   Sealer
	senders  map[string]Sender
	images   Images
	registry Registry
	log      *slog.Logger
	// Now is the service's clock.
	Now func() time.Time

	wake    chan struct{}
	pollNow chan struct{}
	bg      sync.WaitGroup

	mu     sync.Mutex
	runCtx context.Context // Run's context, for background scans
}

// New returns the service. senders maps channel types (buildgate.ChannelWebhook,
// ...) to their sender. Call Run to start the outbox worker and the tag
// poller.
func New(cfg Config, store Store, sealer Sealer, senders map[string]Sender, images Images, reg Registry, log *slog.Logger) *Service {
	d := DefaultConfig()
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = d.RetryBase
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = max(d.RetryMax, cfg.RetryBase)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = d.MaxAttempts
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = d.SendTimeout
	}
	if cfg.Poll <= 0 {
		cfg.Poll = d.Poll
	}
	if cfg.WorkerID == "" {
		host, _ := os.Hostname()
		cfg.WorkerID = fmt.Sprintf("%s-%d/outbox", host, os.Getpid())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg: cfg, store: store, sealer: sealer, senders: senders, images: images, registry: reg, log: log,
		Now:  func() time.Time { return time.Now().UTC() },
		wake: make(chan struct{}, 1), pollNow: make(chan struct{}, 1),
	}
}

// Run runs the outbox worker and the tag poller until ctx ends, then
// waits for the scans it started.
func (s *Service) Run(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.runOutbox(ctx)
	}()
	go func() {
		defer wg.Done()
		s.runTagPoller(ctx)
	}()
	wg.Wait()
	s.bg.Wait()
}

// background returns the context background work runs under: Run's, or,
// before Run, one detached from the request's.
func (s *Service) background(ctx context.Context) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx != nil {
		return s.runCtx
	}
	return context.WithoutCancel(ctx)
}

// Wake tells the outbox worker to look for due deliveries now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// permanent reports whether err says a retry cannot help.
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// backoff returns the wait after the attempt-th failed attempt.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.cfg.RetryBase
	for i := 1; i < attempt; i++ {
		d *= 2
		if d >= s.cfg.RetryMax {
			return s.cfg.RetryMax
		}
	}
	return min(d, s.cfg.RetryMax)
}
