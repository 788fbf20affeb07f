package admission

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
)

// Container is one container of an object under review.
type Container struct {
	Name string
	// Kind is buildgate.ContainerRegular, ContainerInit or ContainerEphemeral.
	Kind  string
	Image string
}

// Request is an admission review as the use case sees it.
type Request struct {
	UID       string
	Cluster   string
	Namespace string
	// Kind is the object's kind (Pod, Deployment, ..., Namespace).
	Kind      string
	Name      string
	Operation string
	User      string
	DryRun    bool
	// Containers are every container of the object's pod template.
	Containers []Container
	// Labels are a Namespace object's labels, recorded for the rules'
	// namespace_labels.
	Labels map[string]string
	// Problem, when set, says why the review could not be read (malformed,
	// oversized, unknown kind, no containers); the answer is the matching
	// rule's on_error.
	Problem string
}

// Response is the answer to a review.
type Response struct {
	Allowed  bool
	Message  string
	Warnings []string
	// Decision is what was (or, for a dry run, would have been) stored.
	Decision buildgate.AdmissionDecision
}

// KindNamespace is the kind whose reviews record namespace labels.
const KindNamespace = "Namespace"

// Review judges a request: each container image under the first rule
// whose namespace selector and scope hold it. It always answers, within
// the configured timeout: what cannot be judged in time is answered by
// the rule's on_error. The decision is stored unless the request is a dry
// run.
func (s *Service) Review(ctx context.Context, req Request) Response {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	done := make(chan buildgate.AdmissionDecision, 1)
	go func() { done <- s.decide(ctx, req) }()
	var d buildgate.AdmissionDecision
	select {
	case d = <-done:
	case <-ctx.Done():
		d = s.fallback(req, fmt.Sprintf("the gate could not judge the images within %s", durationText(s.cfg.Timeout)))
	}
	d.UID, d.Cluster, d.Namespace, d.Kind, d.Name, d.Operation, d.User =
		req.UID, req.Cluster, req.Namespace, req.Kind, req.Name, req.Operation, req.User
	d.CreatedAt = s.Now()
	s.log.Debug("admission review", "namespace", req.Namespace, "kind", req.Kind, "name", req.Name,
		"allowed", d.Allowed, "rule", d.RuleName, "duration", time.Since(start).Round(time.Microsecond))
	if !req.DryRun && (req.Kind != KindNamespace || req.Problem != "") {
		s.record(ctx, d)
	}
	return Response{Allowed: d.Allowed, Message: d.Message, Warnings: d.Warnings, Decision: d}
}

// record stores a decision and raises the admission_denied alert in the
// background, so a slow store never delays the answer.
func (s *Service) record(ctx context.Context, d buildgate.AdmissionDecision) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		saved, err := s.store.SaveAdmissionDecision(ctx, d)
		if err != nil {
			s.log.Error("storing an admission decision", "namespace", d.Namespace, "name", d.Name, "err", err)
			return
		}
		if saved.WouldDeny && s.alerts != nil {
			s.alerts.AdmissionDenied(ctx, *saved)
		}
	}()
}

// fallback answers a review that could not be judged: by the on_error of
// the first rule whose namespace names hold the namespace (from the rules
// last read), deny when none was read, admit when no rule covers it.
func (s *Service) fallback(req Request, problem string) buildgate.AdmissionDecision {
	s.mu.Lock()
	rules := s.rules
	s.mu.Unlock()
	// Namespace labels are not read here: the store may be what is slow.
	return decideProblem(rules, rules != nil, req, problem, func(buildgate.AdmissionRule) bool { return false })
}

// decideProblem answers a review that cannot be judged by the on_error of
// the first rule whose namespace selector holds the namespace; labelsOK
// says whether a rule's namespace_labels hold.
func decideProblem(rules []buildgate.AdmissionRule, known bool, req Request, problem string, labelsOK func(buildgate.AdmissionRule) bool) buildgate.AdmissionDecision {
	d := buildgate.AdmissionDecision{Images: imagesOf(req)}
	if !known {
		d.Allowed = false
		d.Message = problem + "; denied (on_error deny: the admission rules could not be read)"
		return d
	}
	for _, r := range rules {
		if req.Namespace != "" && !namespaceMatch(r, req.Namespace) || len(r.NamespaceLabels) > 0 && !labelsOK(r) {
			continue
		}
		d.RuleID, d.RuleName, d.Mode = r.ID, r.Name, r.Mode
		d.Allowed = r.OnError == buildgate.OnErrorAllow || r.Mode == buildgate.AdmissionAudit
		verb := "denied"
		if d.Allowed {
			verb = "admitted"
		}
		d.Message = fmt.Sprintf("%s; %s by rule %q (on_error %s)", problem, verb, r.Name, r.OnError)
		if d.Allowed {
			d.Warnings = []string{d.Message}
			d.WouldDeny = r.Mode == buildgate.AdmissionAudit && r.OnError == buildgate.OnErrorDeny
		}
		return d
	}
	d.Allowed = true
	d.Message = fmt.Sprintf("%s; admitted: no admission rule covers namespace %q", problem, req.Namespace)
	d.Warnings = []string{d.Message}
	return d
}

func imagesOf(req Request) []buildgate.AdmissionImage {
	out := make([]buildgate.AdmissionImage, 0, len(req.Containers))
	for _, c := range req.Containers {
		out = append(out, buildgate.AdmissionImage{Container: c.Name, Kind: c.Kind, Image: c.Image})
	}
	return out
}

func (s *Service) decide(ctx context.Context, req Request) buildgate.AdmissionDecision {
	rules, err := s.store.ListAdmissionRules(ctx)
	if err != nil {
		return s.fallback(req, fmt.Sprintf("reading the admission rules: %v", err))
	}
	s.mu.Lock()
	s.rules = rules
	s.mu.Unlock()
	var labels map[string]string
	labelsRead := false
	labelsOK := func(r buildgate.AdmissionRule) bool {
		if !labelsRead {
			labelsRead = true
			if req.Namespace == "" {
				return false
			}
			labels, err = s.store.NamespaceLabels(ctx, req.Cluster, req.Namespace)
			if err != nil && buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
				s.log.Warn("reading namespace labels", "namespace", req.Namespace, "err", err)
			}
		}
		return labels != nil && labelsMatch(r.NamespaceLabels, labels)
	}
	if req.Problem != "" {
		return decideProblem(rules, true, req, req.Problem, labelsOK)
	}
	if req.Kind == KindNamespace {
		if !req.DryRun {
			if err := s.store.SetNamespaceLabels(ctx, req.Cluster, req.Name, req.Labels); err != nil {
				s.log.Error("recording namespace labels", "namespace", req.Name, "err", err)
			}
		}
		return buildgate.AdmissionDecision{Allowed: true, Images: []buildgate.AdmissionImage{}}
	}
	rulesOf := make([]*buildgate.AdmissionRule, len(req.Containers))
	for i, c := range req.Containers {
		for j := range rules {
			r := &rules[j]
			if !namespaceMatch(*r, req.Namespace) || !scopeMatch(r.Scope, c.Image) {
				continue
			}
			if len(r.NamespaceLabels) > 0 && !labelsOK(*r) {
				continue
			}
			rulesOf[i] = r
			break
		}
	}
	judged := make([]judgement, len(req.Containers))
	var wg sync.WaitGroup
	for i, c := range req.Containers {
		if rulesOf[i] == nil {
			judged[i] = judgement{img: buildgate.AdmissionImage{Container: c.Name, Kind: c.Kind, Image: c.Image, Allowed: true,
				Message: "no admission rule matches"}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			judged[i] = s.judge(ctx, *rulesOf[i], c)
		}()
	}
	wg.Wait()
	return combine(judged, rulesOf)
}

// combine makes the decision from each image's judgement.
func combine(js []judgement, rules []*buildgate.AdmissionRule) buildgate.AdmissionDecision {
	d := buildgate.AdmissionDecision{Allowed: true, Images: make([]buildgate.AdmissionImage, 0, len(js))}
	var denials, wouldDeny []string
	denier, auditor, first := -1, -1, -1
	for i, j := range js {
		d.Images = append(d.Images, j.img)
		if rules[i] != nil && first < 0 {
			first = i
		}
		if !j.img.Allowed {
			d.Allowed = false
			denials = append(denials, j.img.Message)
			if denier < 0 {
				denier = i
			}
		}
		if j.wouldDeny {
			d.WouldDeny = true
			wouldDeny = append(wouldDeny, j.img.Message)
			if auditor < 0 {
				auditor = i
			}
		}
		if j.warning != "" {
			d.Warnings = append(d.Warnings, j.warning)
		}
	}
	// The rule that decided: the first that denied, else the first that
	// would have, else the first that judged.
	decider := first
	switch {
	case denier >= 0:
		decider = denier
	case auditor >= 0:
		decider = auditor
	}
	if decider >= 0 {
		r := rules[decider]
		d.RuleID, d.RuleName, d.Mode = r.ID, r.Name, r.Mode
	}
	switch {
	case !d.Allowed:
		d.Message = strings.Join(denials, "; ")
	case d.WouldDeny:
		d.Message = "audit: admitted, but would deny: " + strings.Join(wouldDeny, "; ")
	}
	return d
}

// judgement is one image's outcome.
type judgement struct {
	img buildgate.AdmissionImage
	// warning is shown by kubectl (a WARN verdict, an on_error allow, an
	// audit admission).
	warning   string
	wouldDeny bool
}

var digestRef = regexp.MustCompile(`@(sha256:[a-f0-9]{64})$`)

// judge judges one container's image under its rule, within the rule's
// wait.
func (s *Service) judge(ctx context.Context, r buildgate.AdmissionRule, c Container) judgement {
	ctx, cancel := context.WithTimeout(ctx, r.Wait)
	defer cancel()
	j := judgement{img: buildgate.AdmissionImage{Container: c.Name, Kind: c.Kind, Image: c.Image, Rule: r.Name, Mode: r.Mode}}
	allow, deny := s.verdictOf(ctx, r, c, &j.img)
	switch {
	case allow.ok && r.Mode == buildgate.AdmissionAudit:
		j.img.Allowed = true
		j.warning = allow.warning
	case allow.ok:
		j.img.Allowed = true
		j.img.Message = allow.warning
		j.warning = allow.warning
	case r.Mode == buildgate.AdmissionAudit:
		// Break-glass: admitted, recorded as what would have been denied.
		j.img.Allowed, j.wouldDeny = true, true
		j.img.Message = deny.message
		j.warning = "audit mode admitted: " + deny.message
	case deny.onError && r.OnError == buildgate.OnErrorAllow:
		j.img.Allowed = true
		j.img.Message = deny.message + fmt.Sprintf("; admitted by rule %q (on_error allow)", r.Name)
		j.warning = j.img.Message
	default:
		j.img.Message = deny.message
		if deny.onError {
			j.img.Message += fmt.Sprintf("; denied by rule %q (on_error deny)", r.Name)
		}
	}
	return j
}

type allowed struct {
	ok      bool
	warning string
}

type denied struct {
	message string
	// onError says the image could not be judged (deadline, registry,
	// store, bad reference): the rule's on_error answers.
	onError bool
}

// verdictOf finds the image's verdict under the rule, filling img.
func (s *Service) verdictOf(ctx context.Context, r buildgate.AdmissionRule, c Container, img *buildgate.AdmissionImage) (allowed, denied) {
	failed := func(format string, args ...any) (allowed, denied) {
		if ctx.Err() != nil {
			return allowed{}, denied{onError: true, message: fmt.Sprintf("image %s: no answer within the rule's wait of %s", c.Image, durationText(r.Wait))}
		}
		return allowed{}, denied{onError: true, message: fmt.Sprintf(format, args...)}
	}
	res, err := s.resolve(ctx, c.Image)
	if err != nil {
		if buildgate.ErrorCode(err) == buildgate.EINVALID && ctx.Err() == nil {
			return failed("image reference %q is not valid: %s", c.Image, buildgate.ErrorMessage(err))
		}
		return failed("resolving image %s: %v", c.Image, err)
	}
	img.Digest, img.Tag = res.Digest, res.Tag
	submitted := false
	for {
		stored, err := s.store.Image(ctx, res.Digest)
		switch {
		case buildgate.ErrorCode(err) == buildgate.ENOTFOUND && !submitted:
			ref := c.Image
			if res.PullRef != "" {
				ref = res.PullRef
			}
			if _, err := s.images.Submit(ctx, analysis.SubmitRequest{Ref: ref, Tag: res.Tag}); err != nil {
				return failed("submitting image %s for analysis: %v", c.Image, err)
			}
			submitted = true
			img.Status = string(buildgate.StatusQueued)
			continue
		case err != nil && buildgate.ErrorCode(err) != buildgate.ENOTFOUND:
			return failed("reading image %s: %v", c.Image, err)
		case err == nil:
			img.Status = string(stored.Status)
			switch stored.Status {
			case buildgate.StatusAnalyzed:
				return s.judgeAnalyzed(ctx, r, c, stored, res, img, failed)
			case buildgate.StatusFailed:
				return allowed{}, denied{message: fmt.Sprintf("image %s (%s) could not be analysed: %s", c.Image, res.Digest, stored.Error)}
			}
		}
		if r.Mode == buildgate.AdmissionAudit {
			// Audit never waits: what is not analysed yet is recorded.
			return allowed{}, denied{message: fmt.Sprintf("image %s (%s) is being analysed", c.Image, res.Digest)}
		}
		// Queued or analysing: wait for it, up to the rule's wait.
		finished := s.finishedCh()
		t := time.NewTimer(s.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return allowed{}, denied{message: fmt.Sprintf("image %s (%s) is being analysed by buildgate, retry in a minute (waited %s)",
				c.Image, res.Digest, durationText(r.Wait))}
		case <-finished:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Service) judgeAnalyzed(ctx context.Context, r buildgate.AdmissionRule, c Container, stored *buildgate.Image,
	res analysis.Resolved, img *buildgate.AdmissionImage, failed func(string, ...any) (allowed, denied)) (allowed, denied) {
	if r.Mode == buildgate.AdmissionAnalysis {
		return allowed{ok: true}, denied{}
	}
	rec, err := s.policyOf(ctx, r)
	if err != nil {
		return failed("reading the policy of rule %q: %v", r.Name, err)
	}
	tag := res.Tag
	if tag == "" && len(stored.Tags) > 0 {
		tag = stored.Tags[0]
	}
	v, err := s.verdict(ctx, rec, res.Digest, tag)
	if err != nil {
		return failed("evaluating image %s: %v", c.Image, err)
	}
	img.Verdict = v.FinalAction.String()
	img.Policy = cmp.Or(v.BundleName, v.BundleID)
	who := fmt.Sprintf("image %s (%s)", c.Image, res.Digest)
	see := ""
	if s.UIURL != "" {
		see = "; see " + strings.TrimRight(s.UIURL, "/") + "/ui/images/" + url.PathEscape(res.Digest)
	}
	switch v.FinalAction {
	case policy.ActionStop:
		return allowed{}, denied{message: fmt.Sprintf("%s is STOP under policy %q: %s%s", who, img.Policy, summary(v, policy.ActionStop), see)}
	case policy.ActionWarn:
		return allowed{ok: true, warning: fmt.Sprintf("%s is WARN under policy %q: %s%s", who, img.Policy, summary(v, policy.ActionWarn), see)}, denied{}
	}
	return allowed{ok: true}, denied{}
}

// policyOf returns the rule's policy record: the named one or the active.
func (s *Service) policyOf(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.PolicyRecord, error) {
	if r.Policy != "" {
		return s.store.Policy(ctx, r.Policy)
	}
	return s.store.ActivePolicy(ctx)
}

// verdict returns the stored verdict of the image for the tag under the
// policy's current version, evaluating (and storing) it when there is
// none.
func (s *Service) verdict(ctx context.Context, rec *buildgate.PolicyRecord, digest, tag string) (*policy.Verdict, error) {
	e, err := s.store.Evaluation(ctx, digest, tag, rec.ID)
	if err == nil && e.PolicyVersion == rec.Version {
		var v policy.Verdict
		if err := json.Unmarshal(e.Result, &v); err == nil {
			return &v, nil
		}
	}
	if err != nil && buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		return nil, err
	}
	return s.verdicts.Check(ctx, digest, tag, rec.ID)
}

// resolve resolves a reference to a digest: a reference by digest of a
// stored image needs no registry; a tag is resolved with the registry,
// and the answer reused for a while.
func (s *Service) resolve(ctx context.Context, ref string) (analysis.Resolved, error) {
	if m := digestRef.FindStringSubmatch(ref); m != nil {
		if _, err := s.store.Image(ctx, m[1]); err == nil {
			tag := ""
			if base := strings.TrimSuffix(ref, m[0]); strings.Contains(base[strings.LastIndex(base, "/")+1:], ":") {
				tag = policy.FullTag(base)
			}
			return analysis.Resolved{Digest: m[1], Tag: tag}, nil
		}
	}
	if r, ok := s.cache.get(ref); ok {
		return r, nil
	}
	r, err := s.resolver.Resolve(ctx, ref)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return r, ctx.Err()
		}
		return r, err
	}
	s.cache.put(ref, r)
	return r, nil
}

// summary says why a verdict is what it is: its findings of that action,
// vulnerabilities grouped by severity and fix, the first ids named.
func summary(v *policy.Verdict, action policy.Action) string {
	type group struct {
		sev   buildgate.Severity
		fixed bool
		ids   []string
	}
	var groups []*group
	others := map[string]int{}
	var otherOrder []string
	for _, f := range v.Findings {
		if f.Effective() != action {
			continue
		}
		if m := f.Vulnerability; m != nil {
			fixed := m.FixState == buildgate.FixStateFixed
			i := slices.IndexFunc(groups, func(g *group) bool { return g.sev == m.Severity && g.fixed == fixed })
			if i < 0 {
				groups = append(groups, &group{sev: m.Severity, fixed: fixed})
				i = len(groups) - 1
			}
			if !slices.Contains(groups[i].ids, m.VulnerabilityID) {
				groups[i].ids = append(groups[i].ids, m.VulnerabilityID)
			}
			continue
		}
		k := f.Gate + "/" + f.Trigger
		if others[k] == 0 {
			otherOrder = append(otherOrder, k)
		}
		others[k]++
	}
	slices.SortStableFunc(groups, func(a, b *group) int {
		if a.sev != b.sev {
			return cmp.Compare(b.sev, a.sev)
		}
		if a.fixed != b.fixed {
			if a.fixed {
				return -1
			}
			return 1
		}
		return 0
	})
	var parts []string
	for _, g := range groups {
		slices.Sort(g.ids)
		n := len(g.ids)
		fix := plural(n, "without a fix", "without fixes")
		if g.fixed {
			fix = plural(n, "with a fix", "with fixes")
		}
		ids := g.ids
		more := ""
		if len(ids) > 3 {
			ids, more = ids[:3], ", ..."
		}
		parts = append(parts, fmt.Sprintf("%d %s %s %s (%s%s)", n, strings.ToLower(g.sev.String()), plural(n, "vulnerability", "vulnerabilities"), fix, strings.Join(ids, ", "), more))
	}
	for _, k := range otherOrder {
		parts = append(parts, fmt.Sprintf("%d %s %s", others[k], k, plural(others[k], "finding", "findings")))
	}
	if len(parts) == 0 {
		return string(v.Reason)
	}
	return strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
