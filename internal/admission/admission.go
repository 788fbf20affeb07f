// Package admission is the use case that answers Kubernetes admission
// reviews from stored verdicts: admission rules (namespace names, globs
// and labels; image scope globs; a mode of policy, analysis or audit; how
// long to wait; what to answer on error), tried in order, the first match
// judging each container image; and the decisions, stored and listed.
//
// It knows Kubernetes only through Request (the server's adapter decodes
// AdmissionReview objects into it), and its adapters through the small
// interfaces below; gate/ wires the store, the analysis service, the
// verdicts, the registry and the alerts.
package admission

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
)

// Store is what the service needs from the database.
type Store interface {
	CreateAdmissionRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error)
	UpdateAdmissionRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error)
	AdmissionRule(ctx context.Context, id string) (*buildgate.AdmissionRule, error)
	ListAdmissionRules(ctx context.Context) ([]buildgate.AdmissionRule, error)
	DeleteAdmissionRule(ctx context.Context, id string) error
	SaveAdmissionDecision(ctx context.Context, d buildgate.AdmissionDecision) (*buildgate.AdmissionDecision, error)
	ListAdmissionDecisions(ctx context.Context, f buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error)
	SetNamespaceLabels(ctx context.Context, cluster, namespace string, labels map[string]string) error
	NamespaceLabels(ctx context.Context, cluster, namespace string) (map[string]string, error)

	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error)
	ActivePolicy(ctx context.Context) (*buildgate.PolicyRecord, error)
	Evaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error)
}

// Images submits images for analysis (analysis.Service).
type Images interface {
	Submit(ctx context.Context, req analysis.SubmitRequest) (*buildgate.Image, error)
}

// Verdicts evaluates an analysed image under a policy and stores the
// verdict (analysis.Verdicts).
type Verdicts interface {
	Check(ctx context.Context, digest, tag, policyID string) (*policy.Verdict, error)
}

// Resolver resolves image references to digests with the gate's stored
// registry credentials.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (analysis.Resolved, error)
}

// Alerts hears of what audit mode admitted but would have denied.
type Alerts interface {
	AdmissionDenied(ctx context.Context, d buildgate.AdmissionDecision)
}

// Config tunes the service.
type Config struct {
	// Timeout bounds a whole review: past it the answer is the matching
	// rule's on_error, whatever is still running. A rule's wait may not
	// exceed it. Keep it under the webhook's timeoutSeconds.
	Timeout time.Duration
	// DefaultWait is a rule's wait when it gives none.
	DefaultWait time.Duration
	// ResolveTTL is how long a tag's resolution to a digest is reused;
	// ResolveCacheSize bounds how many are kept.
	ResolveTTL       time.Duration
	ResolveCacheSize int
	// Poll is how often a review waiting for an analysis looks at the
	// store besides being told an analysis finished (another replica may
	// have done it).
	Poll time.Duration
}

// DefaultConfig returns the defaults: answers within 9 s (Kubernetes'
// default webhook timeout is 10 s), rules wait 8 s, tags resolved at most
// every 30 s (4096 kept).
func DefaultConfig() Config {
	return Config{
		Timeout: 9 * time.Second, DefaultWait: 8 * time.Second,
		ResolveTTL: 30 * time.Second, ResolveCacheSize: 4096, Poll: 250 * time.Millisecond,
	}
}

// Service is the admission use case.
type Service struct {
	cfg      Config
	store    Store
	images   Images
	verdicts Verdicts
	resolver Resolver
	alerts   Alerts
	log      *slog.Logger
	// Now is the service's clock.
	Now func() time.Time
	// UIURL is the console's base URL, for links in messages; set it
	// before the first review.
	UIURL string

	cache *resolveCache

	mu       sync.Mutex
	finished chan struct{} // closed and replaced when an analysis finishes
	rules    []buildgate.AdmissionRule

	bg sync.WaitGroup
}

// New returns the service; alerts may be nil.
func New(cfg Config, store Store, images Images, verdicts Verdicts, resolver Resolver, alerts Alerts, log *slog.Logger) *Service {
	d := DefaultConfig()
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.DefaultWait <= 0 {
		cfg.DefaultWait = min(d.DefaultWait, cfg.Timeout)
	}
	if cfg.ResolveTTL <= 0 {
		cfg.ResolveTTL = d.ResolveTTL
	}
	if cfg.ResolveCacheSize <= 0 {
		cfg.ResolveCacheSize = d.ResolveCacheSize
	}
	if cfg.Poll <= 0 {
		cfg.Poll = d.Poll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, store: store, images: images, verdicts: verdicts, resolver: resolver, alerts: alerts, log: log,
		Now: func() time.Time { return time.Now().UTC() }, finished: make(chan struct{}),
	}
	s.cache = newResolveCache(cfg.ResolveCacheSize, cfg.ResolveTTL, func() time.Time { return s.Now() })
	return s
}

// Close waits for the decisions and alerts still being stored.
func (s *Service) Close() { s.bg.Wait() }

// AnalysisFinished wakes the reviews waiting for an analysis; the gate
// calls it when one finishes or is evaluated.
func (s *Service) AnalysisFinished() {
	s.mu.Lock()
	close(s.finished)
	s.finished = make(chan struct{})
	s.mu.Unlock()
}

func (s *Service) finishedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

// MaxWait is the longest wait a rule may have.
func (s *Service) MaxWait() time.Duration { return s.cfg.Timeout }

// DefaultWait is the wait of a rule that gives none.
func (s *Service) DefaultWait() time.Duration { return s.cfg.DefaultWait }

// normalize checks a rule and fills its defaults.
func (s *Service) normalize(ctx context.Context, r buildgate.AdmissionRule) (buildgate.AdmissionRule, error) {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return r, buildgate.Errorf(buildgate.EINVALID, "name is required")
	}
	if r.Mode == "" {
		r.Mode = buildgate.AdmissionPolicy
	}
	if !slices.Contains(buildgate.AdmissionModes(), r.Mode) {
		return r, buildgate.Errorf(buildgate.EINVALID, "mode %q is not one of %s", r.Mode, strings.Join(buildgate.AdmissionModes(), ", "))
	}
	if r.OnError == "" {
		r.OnError = buildgate.OnErrorDeny
	}
	if r.OnError != buildgate.OnErrorDeny && r.OnError != buildgate.OnErrorAllow {
		return r, buildgate.Errorf(buildgate.EINVALID, "on_error %q is not deny or allow", r.OnError)
	}
	if r.Wait == 0 {
		r.Wait = s.cfg.DefaultWait
	}
	if r.Wait < 0 || r.Wait > s.cfg.Timeout {
		return r, buildgate.Errorf(buildgate.EINVALID, "wait %s is outside 0s..%s: keep it under the webhook's timeout (the limit is gate serve --admission-timeout)", r.Wait, s.cfg.Timeout)
	}
	if r.Position < 0 {
		return r, buildgate.Errorf(buildgate.EINVALID, "position %d is negative", r.Position)
	}
	for i, n := range r.Namespaces {
		if strings.TrimSpace(n) == "" {
			return r, buildgate.Errorf(buildgate.EINVALID, "namespaces[%d] is empty: give a name or a glob such as prod-*", i)
		}
	}
	for k := range r.NamespaceLabels {
		if strings.TrimSpace(k) == "" {
			return r, buildgate.Errorf(buildgate.EINVALID, "namespace_labels has an empty key")
		}
	}
	if r.Policy != "" {
		if _, err := s.store.Policy(ctx, r.Policy); err != nil {
			if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
				return r, buildgate.Errorf(buildgate.EINVALID, "policy %q does not exist: give a stored policy bundle's id, or none for the active one", r.Policy)
			}
			return r, err
		}
	}
	return r, nil
}

// CreateRule validates and stores a new rule.
func (s *Service) CreateRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error) {
	r, err := s.normalize(ctx, r)
	if err != nil {
		return nil, err
	}
	r.ID = ""
	return s.store.CreateAdmissionRule(ctx, r)
}

// UpdateRule validates and replaces a rule.
func (s *Service) UpdateRule(ctx context.Context, id string, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error) {
	if _, err := s.store.AdmissionRule(ctx, id); err != nil {
		return nil, err
	}
	r, err := s.normalize(ctx, r)
	if err != nil {
		return nil, err
	}
	r.ID = id
	return s.store.UpdateAdmissionRule(ctx, r)
}

// Rule returns one rule.
func (s *Service) Rule(ctx context.Context, id string) (*buildgate.AdmissionRule, error) {
	return s.store.AdmissionRule(ctx, id)
}

// Rules returns the rules in the order they are tried.
func (s *Service) Rules(ctx context.Context) ([]buildgate.AdmissionRule, error) {
	return s.store.ListAdmissionRules(ctx)
}

// DeleteRule deletes a rule.
func (s *Service) DeleteRule(ctx context.Context, id string) error {
	return s.store.DeleteAdmissionRule(ctx, id)
}

// Decisions lists stored decisions, newest first.
func (s *Service) Decisions(ctx context.Context, f buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error) {
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "limit %d is outside 1..1000", f.Limit)
	}
	return s.store.ListAdmissionDecisions(ctx, f)
}

// namespaceMatch reports whether a rule's namespace names and globs hold
// a namespace; labels are checked apart (they need the store).
func namespaceMatch(r buildgate.AdmissionRule, ns string) bool {
	if len(r.Namespaces) == 0 {
		return true
	}
	for _, g := range r.Namespaces {
		if policy.Glob(g, ns) {
			return true
		}
	}
	return false
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// scopeMatch reports whether an image reference is in a rule's scope.
func scopeMatch(sc buildgate.AdmissionScope, ref string) bool {
	reg, repo, tag := policy.ParseTag(ref)
	return policy.Glob(sc.Registry, reg) && policy.Glob(sc.Repository, repo) && policy.Glob(sc.Tag, tag)
}

// resolveCache keeps tag resolutions briefly.
type resolveCache struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	now  func() time.Time
	refs map[string]cached
}

type cached struct {
	r  analysis.Resolved
	at time.Time
}

func newResolveCache(max int, ttl time.Duration, now func() time.Time) *resolveCache {
	return &resolveCache{max: max, ttl: ttl, now: now, refs: map[string]cached{}}
}

func (c *resolveCache) get(ref string) (analysis.Resolved, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.refs[ref]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		return analysis.Resolved{}, false
	}
	return e.r, true
}

func (c *resolveCache) put(ref string, r analysis.Resolved) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.refs) >= c.max {
		for k, e := range c.refs {
			if now.Sub(e.at) >= c.ttl {
				delete(c.refs, k)
			}
		}
	}
	if len(c.refs) >= c.max {
		// Still full of fresh entries: drop any one (map order is random).
		for k := range c.refs {
			delete(c.refs, k)
			break
		}
	}
	c.refs[ref] = cached{r: r, at: now}
}

// len is for tests.
func (c *resolveCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.refs)
}

func durationText(d time.Duration) string { return fmt.Sprint(d.Round(time.Millisecond)) }
