package admission

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

// store is the real SQLite store with images the test sets (their
// analysis is not what these tests are about) and an Image that can hang.
type store struct {
	*sqlite.DB
	mu     sync.Mutex
	images map[string]buildgate.Status
	hang   chan struct{} // when set, Image blocks until closed, whatever ctx says
}

func (s *store) Image(ctx context.Context, digest string) (*buildgate.Image, error) {
	s.mu.Lock()
	st, ok := s.images[digest]
	hang := s.hang
	s.mu.Unlock()
	if hang != nil {
		<-hang
	}
	if !ok {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "image %q not found", digest)
	}
	return &buildgate.Image{Digest: digest, Status: st}, nil
}

func (s *store) set(digest string, st buildgate.Status) {
	s.mu.Lock()
	s.images[digest] = st
	s.mu.Unlock()
}

// resolver resolves refs from a map, counting registry calls; a ref in
// slow blocks until ctx ends.
type resolver struct {
	mu    sync.Mutex
	refs  map[string]string
	slow  map[string]bool
	calls int
}

func (r *resolver) Resolve(ctx context.Context, ref string) (analysis.Resolved, error) {
	r.mu.Lock()
	r.calls++
	d, ok := r.refs[ref]
	slow := r.slow[ref]
	r.mu.Unlock()
	if slow {
		<-ctx.Done()
		return analysis.Resolved{}, fmt.Errorf("GET %s: %w", ref, ctx.Err())
	}
	if !ok {
		return analysis.Resolved{}, buildgate.Errorf(buildgate.EINVALID, "could not parse reference: %s", ref)
	}
	return analysis.Resolved{Digest: d, Tag: policy.FullTag(ref), PullRef: ref}, nil
}

func (r *resolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

type submitter struct {
	st        *store
	submitted []string
}

func (s *submitter) Submit(_ context.Context, req analysis.SubmitRequest) (*buildgate.Image, error) {
	s.submitted = append(s.submitted, req.Ref)
	return &buildgate.Image{Status: buildgate.StatusQueued}, nil
}

type noVerdicts struct{}

func (noVerdicts) Check(context.Context, string, string, string) (*policy.Verdict, error) {
	return nil, fmt.Errorf("no verdicts in these tests")
}

const (
	dAnalyzed = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dQueued   = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func newTest(t *testing.T, cfg Config) (*Service, *store, *resolver, *time.Time) {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &store{DB: db, images: map[string]buildgate.Status{dAnalyzed: buildgate.StatusAnalyzed, dQueued: buildgate.StatusQueued}}
	res := &resolver{refs: map[string]string{
		"reg.example/team/app:1": dAnalyzed, "reg.example/team/new:1": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
		"reg.example/team/queued:1": dQueued, "reg.example/other/app:1": dAnalyzed,
	}, slow: map[string]bool{"slow.example/team/app:1": true}}
	s := New(cfg, st, &submitter{st: st}, noVerdicts{}, res, nil, nil)
	s.Now = clock
	t.Cleanup(s.Close)
	return s, st, res, &now
}

func mustRule(t *testing.T, s *Service, r buildgate.AdmissionRule) *buildgate.AdmissionRule {
	t.Helper()
	out, err := s.CreateRule(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRuleValidation(t *testing.T) {
	s, _, _, _ := newTest(t, Config{Timeout: 9 * time.Second})
	tests := []struct {
		name string
		rule buildgate.AdmissionRule
		want string
	}{
		{"no name", buildgate.AdmissionRule{}, "name is required"},
		{"bad mode", buildgate.AdmissionRule{Name: "r", Mode: "block"}, `mode "block" is not one of policy, analysis, audit`},
		{"bad on_error", buildgate.AdmissionRule{Name: "r", OnError: "ignore"}, `on_error "ignore" is not deny or allow`},
		{"wait over the timeout", buildgate.AdmissionRule{Name: "r", Wait: 20 * time.Second}, "wait 20s is outside 0s..9s"},
		{"negative position", buildgate.AdmissionRule{Name: "r", Position: -1}, "position -1 is negative"},
		{"empty namespace", buildgate.AdmissionRule{Name: "r", Namespaces: []string{"prod", " "}}, "namespaces[1] is empty"},
		{"empty label key", buildgate.AdmissionRule{Name: "r", NamespaceLabels: map[string]string{"": "x"}}, "namespace_labels has an empty key"},
		{"unknown policy", buildgate.AdmissionRule{Name: "r", Policy: "nope"}, `policy "nope" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateRule(context.Background(), tt.rule)
			if buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want invalid with %q", err, tt.want)
			}
		})
	}
	if rules, _ := s.Rules(context.Background()); len(rules) != 0 {
		t.Fatalf("refused rules were stored: %+v", rules)
	}
	r := mustRule(t, s, buildgate.AdmissionRule{Name: "defaults"})
	if r.Mode != buildgate.AdmissionPolicy || r.OnError != buildgate.OnErrorDeny || r.Wait != 8*time.Second {
		t.Errorf("defaults = %+v, want policy, deny, 8s", r)
	}
	if _, err := s.CreateRule(context.Background(), buildgate.AdmissionRule{Name: "defaults"}); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("same name again: %v, want conflict", err)
	}
}

func TestFirstMatchWins(t *testing.T) {
	s, st, _, _ := newTest(t, Config{})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "labelled", Position: 0, NamespaceLabels: map[string]string{"env": "prod"}, Mode: buildgate.AdmissionAnalysis, Wait: time.Millisecond})
	mustRule(t, s, buildgate.AdmissionRule{Name: "team", Position: 1, Namespaces: []string{"prod-*"}, Scope: buildgate.AdmissionScope{Repository: "team/*"}, Mode: buildgate.AdmissionAnalysis, Wait: 200 * time.Millisecond})
	mustRule(t, s, buildgate.AdmissionRule{Name: "prod audit", Position: 2, Namespaces: []string{"prod-*"}, Mode: buildgate.AdmissionAudit})
	if err := st.SetNamespaceLabels(ctx, "c1", "labelled-ns", map[string]string{"env": "prod", "team": "a"}); err != nil {
		t.Fatal(err)
	}
	pod := func(ns string, images ...string) Request {
		r := Request{UID: "u", Cluster: "c1", Namespace: ns, Kind: "Pod", Name: "p", Operation: "CREATE"}
		for i, img := range images {
			r.Containers = append(r.Containers, Container{Name: fmt.Sprint("c", i), Kind: buildgate.ContainerRegular, Image: img})
		}
		return r
	}
	tests := []struct {
		name    string
		req     Request
		allowed bool
		rule    string
		message string
	}{
		{"analysed image under the first rule", pod("prod-web", "reg.example/team/app:1"), true, "team", ""},
		{"queued image waits then is denied", pod("prod-web", "reg.example/team/queued:1"), false, "team", "is being analysed by buildgate, retry"},
		{"out of the first rule's scope: audit", pod("prod-web", "reg.example/other/app:1"), true, "", ""},
		{"no rule: admitted", pod("dev", "reg.example/team/queued:1"), true, "", ""},
		{"labels match first", pod("labelled-ns", "reg.example/team/queued:1"), false, "labelled", "being analysed"},
		{"one denied image denies the object", pod("prod-web", "reg.example/team/app:1", "reg.example/team/queued:1"), false, "team", "reg.example/team/queued:1 (sha256:bbbbbbbb"},
		{"bad reference answered by on_error", pod("prod-web", "reg.example/team/Bad:1"), false, "team", `image reference "reg.example/team/Bad:1" is not valid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.Review(ctx, tt.req)
			if res.Allowed != tt.allowed || (tt.rule != "" && res.Decision.RuleName != tt.rule) || !strings.Contains(res.Message, tt.message) {
				t.Fatalf("review = allowed %v rule %q message %q, want %v %q %q", res.Allowed, res.Decision.RuleName, res.Message, tt.allowed, tt.rule, tt.message)
			}
		})
	}
	// An unanalysed image in audit mode is submitted, admitted, recorded
	// as would-deny.
	res := s.Review(ctx, pod("prod-web", "reg.example/other/app:1"))
	if !res.Allowed || res.Decision.RuleName != "team" && res.Decision.RuleName != "prod audit" {
		t.Fatalf("audit = %+v", res)
	}
}

func TestAuditAndSubmit(t *testing.T) {
	s, _, _, _ := newTest(t, Config{})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "audit", Mode: buildgate.AdmissionAudit})
	res := s.Review(ctx, Request{Namespace: "x", Kind: "Pod", Containers: []Container{{Name: "a", Kind: buildgate.ContainerRegular, Image: "reg.example/team/new:1"}}})
	if !res.Allowed || !res.Decision.WouldDeny || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "audit mode admitted") {
		t.Fatalf("audit of an unknown image = %+v", res)
	}
	if sub := s.images.(*submitter).submitted; len(sub) != 1 || sub[0] != "reg.example/team/new:1" {
		t.Errorf("submitted %v, want the unknown image", sub)
	}
}

func TestSlowRegistryAnsweredByOnError(t *testing.T) {
	s, _, _, _ := newTest(t, Config{})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "allow", Namespaces: []string{"a"}, Wait: 300 * time.Millisecond, OnError: buildgate.OnErrorAllow})
	mustRule(t, s, buildgate.AdmissionRule{Name: "deny", Namespaces: []string{"d"}, Wait: 300 * time.Millisecond})
	for _, tt := range []struct {
		ns      string
		allowed bool
		want    string
	}{{"a", true, `admitted by rule "allow" (on_error allow)`}, {"d", false, `denied by rule "deny" (on_error deny)`}} {
		start := time.Now()
		res := s.Review(ctx, Request{Namespace: tt.ns, Kind: "Pod", Containers: []Container{{Name: "a", Image: "slow.example/team/app:1"}}})
		text := res.Message + strings.Join(res.Warnings, "\n")
		if res.Allowed != tt.allowed || !strings.Contains(text, "no answer within the rule's wait of 300ms") || !strings.Contains(text, tt.want) {
			t.Errorf("%s: %+v", tt.ns, res)
		}
		if d := time.Since(start); d > s.cfg.Timeout {
			t.Errorf("%s: answered after %s, over the timeout", tt.ns, d)
		}
	}
}

// TestStoreHangAnsweredByTimeout: a store that ignores the deadline does
// not hold the answer past the review timeout.
func TestStoreHangAnsweredByTimeout(t *testing.T) {
	s, st, _, _ := newTest(t, Config{Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "allow", Wait: 300 * time.Millisecond, OnError: buildgate.OnErrorAllow, Mode: buildgate.AdmissionAnalysis})
	// Read the rules once, so the fallback knows them.
	s.Review(ctx, Request{Namespace: "n", Kind: "Pod", Containers: []Container{{Name: "a", Image: "reg.example/team/app:1"}}})
	hang := make(chan struct{})
	st.mu.Lock()
	st.hang = hang
	st.mu.Unlock()
	defer close(hang)
	res := s.Review(ctx, Request{Namespace: "n", Kind: "Pod", Containers: []Container{{Name: "a", Image: "reg.example/team/app:1"}}})
	if !res.Allowed || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "could not judge the images within 300ms") ||
		!strings.Contains(res.Warnings[0], `admitted by rule "allow" (on_error allow)`) {
		t.Fatalf("review with a hung store = %+v", res)
	}
}

func TestResolveCache(t *testing.T) {
	s, _, res, now := newTest(t, Config{ResolveTTL: 30 * time.Second, ResolveCacheSize: 2})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "all", Mode: buildgate.AdmissionAnalysis})
	review := func(ref string) {
		t.Helper()
		if r := s.Review(ctx, Request{Namespace: "n", Kind: "Pod", Containers: []Container{{Name: "a", Image: ref}}}); !r.Allowed {
			t.Fatalf("review of %s = %+v", ref, r)
		}
	}
	review("reg.example/team/app:1")
	review("reg.example/team/app:1")
	if n := res.count(); n != 1 {
		t.Errorf("%d registry calls for one tag within 30s, want 1", n)
	}
	*now = now.Add(31 * time.Second)
	review("reg.example/team/app:1")
	if n := res.count(); n != 2 {
		t.Errorf("%d registry calls after the TTL, want 2", n)
	}
	review("reg.example/other/app:1")
	review("reg.example/team/app:1@" + dAnalyzed) // a stored digest needs no registry
	if n := res.count(); n != 3 {
		t.Errorf("%d registry calls, want 3: a stored digest is judged without the registry", n)
	}
	if n := s.cache.len(); n > 2 {
		t.Errorf("cache holds %d entries, over its bound of 2", n)
	}
}

func TestDecisionsStoredUnlessDryRun(t *testing.T) {
	s, st, _, _ := newTest(t, Config{})
	ctx := context.Background()
	mustRule(t, s, buildgate.AdmissionRule{Name: "all", Mode: buildgate.AdmissionAnalysis})
	req := Request{UID: "u1", Cluster: "c", Namespace: "n", Kind: "Deployment", Name: "web", Operation: "CREATE", User: "alice",
		Containers: []Container{{Name: "a", Kind: buildgate.ContainerInit, Image: "reg.example/team/app:1"}}}
	dry := req
	dry.UID, dry.DryRun = "u0", true
	s.Review(ctx, dry)
	s.Review(ctx, req)
	s.Close()
	ds, err := st.ListAdmissionDecisions(ctx, buildgate.AdmissionDecisionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d decisions stored, want 1 (the dry run is not stored)", len(ds))
	}
	d := ds[0]
	if d.UID != "u1" || d.Cluster != "c" || d.User != "alice" || d.Kind != "Deployment" || !d.Allowed || d.RuleName != "all" ||
		len(d.Images) != 1 || d.Images[0].Digest != dAnalyzed || d.Images[0].Kind != buildgate.ContainerInit {
		t.Errorf("decision = %+v", d)
	}
}

func TestSummary(t *testing.T) {
	crit := func(id string, fixed bool) policy.Finding {
		st := buildgate.FixStateNotFixed
		if fixed {
			st = buildgate.FixStateFixed
		}
		return policy.Finding{Gate: "vulnerabilities", Trigger: "package", Action: policy.ActionStop,
			Vulnerability: &buildgate.Match{VulnerabilityID: id, Severity: buildgate.SeverityCritical, FixState: st}}
	}
	v := &policy.Verdict{Evaluation: policy.Evaluation{FinalAction: policy.ActionStop, Findings: []policy.Finding{
		crit("CVE-3", true), crit("CVE-1", true), crit("CVE-2", true), crit("CVE-4", true), crit("CVE-9", false),
		{Gate: "dockerfile", Trigger: "instruction", Action: policy.ActionStop},
		{Gate: "dockerfile", Trigger: "instruction", Action: policy.ActionWarn},
		{Gate: "vulnerabilities", Trigger: "package", Action: policy.ActionStop, Allowlisted: &policy.AllowlistMatch{},
			Vulnerability: &buildgate.Match{VulnerabilityID: "CVE-0", Severity: buildgate.SeverityCritical}},
	}}}
	got := summary(v, policy.ActionStop)
	want := "4 critical vulnerabilities with fixes (CVE-1, CVE-2, CVE-3, ...); 1 critical vulnerability without a fix (CVE-9); 1 dockerfile/instruction finding"
	if got != want {
		t.Errorf("summary =\n%s\nwant\n%s", got, want)
	}
}
