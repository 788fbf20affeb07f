package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// payload is the JSON body a webhook receives; Slack and email render its
// title, text and fields.
type payload struct {
	DeliveryID      string           `json:"delivery_id"`
	Type            string           `json:"type"`
	Title           string           `json:"title"`
	Text            string           `json:"text"`
	CreatedAt       time.Time        `json:"created_at"`
	Alert           *alertRef        `json:"alert,omitempty"`
	Subscription    *subscriptionRef `json:"subscription,omitempty"`
	Image           *imageRef        `json:"image,omitempty"`
	Verdict         *verdictInfo     `json:"verdict,omitempty"`
	Vulnerabilities *vulnChanges     `json:"vulnerabilities,omitempty"`
	Runtime         *runtimeInfo     `json:"runtime,omitempty"`
	Analysis        *analysisInfo    `json:"analysis,omitempty"`
	TagUpdate       *tagUpdateInfo   `json:"tag_update,omitempty"`
	Admission       *admissionInfo   `json:"admission,omitempty"`
}

type admissionInfo struct {
	DecisionID string   `json:"decision_id"`
	Cluster    string   `json:"cluster,omitempty"`
	Namespace  string   `json:"namespace"`
	Kind       string   `json:"kind"`
	Name       string   `json:"name"`
	User       string   `json:"user,omitempty"`
	Rule       string   `json:"rule"`
	Mode       string   `json:"mode"`
	Message    string   `json:"message"`
	Images     []string `json:"images"`
}

type alertRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type subscriptionRef struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Type string `json:"type"`
}

type imageRef struct {
	Digest string   `json:"digest,omitempty"`
	Tag    string   `json:"tag,omitempty"`
	Tags   []string `json:"tags,omitempty"`
}

type verdictInfo struct {
	FinalAction   string        `json:"final_action"`
	Previous      string        `json:"previous,omitempty"`
	PolicyID      string        `json:"policy_id"`
	PolicyVersion int           `json:"policy_version"`
	EvaluatedAt   time.Time     `json:"evaluated_at"`
	DBBuilt       *time.Time    `json:"db_built,omitempty"`
	StopFindings  int           `json:"stop_findings"`
	Findings      []findingInfo `json:"findings,omitempty"`
}

type findingInfo struct {
	Gate    string `json:"gate"`
	Trigger string `json:"trigger"`
	Action  string `json:"action"`
	Message string `json:"message"`
}

type vulnChanges struct {
	DBBuilt     *time.Time `json:"db_built,omitempty"`
	MinSeverity string     `json:"min_severity,omitempty"`
	Appeared    []vulnInfo `json:"appeared"`
	Disappeared []vulnInfo `json:"disappeared"`
}

type vulnInfo struct {
	ID          string   `json:"id"`
	Severity    string   `json:"severity"`
	Package     string   `json:"package"`
	Version     string   `json:"version"`
	Type        string   `json:"type"`
	FixState    string   `json:"fix_state,omitempty"`
	FixVersions []string `json:"fix_versions,omitempty"`
}

type runtimeInfo struct {
	Cluster       string `json:"cluster"`
	Namespace     string `json:"namespace"`
	Pod           string `json:"pod"`
	Container     string `json:"container"`
	Image         string `json:"image"`
	ImageDigest   string `json:"image_digest,omitempty"`
	Containers    int    `json:"containers"`
	Status        string `json:"status"`
	Action        string `json:"action,omitempty"`
	ScanSubmitted bool   `json:"scan_submitted,omitempty"`
}

type analysisInfo struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

type tagUpdateInfo struct {
	Tag      string `json:"tag"`
	Previous string `json:"previous_digest,omitempty"`
	Digest   string `json:"digest"`
}

// event is something that happened, before it meets alerts and
// subscriptions.
type event struct {
	// typ is a trigger type (for alerts) or a subscription type.
	typ string
	// key names the event; with the source and the channel it is the
	// delivery's dedupe key.
	key string
	// tags are the image's tags, for alert scopes.
	tags []string
	// digests are the image's manifest and index digests, for the
	// cluster and namespace of alert scopes.
	digests []string
	// subTags are the tags whose subscriptions of type typ hear of it.
	subTags []string
	// containers are a runtime event's containers.
	containers []buildgate.RuntimeContainer
	// appeared and disappeared are a re-match's changes.
	appeared, disappeared []buildgate.Match
	p                     payload
}

func isTrigger(t string) bool { return slices.Contains(buildgate.TriggerTypes(), t) }

func isSubscriptionType(t string) bool { return slices.Contains(buildgate.SubscriptionTypes(), t) }

// dispatch turns an event into deliveries: one per enabled alert with the
// event's trigger whose scope holds the image, times its channels; and one
// per active subscription of the event's type for one of subTags, times
// its channels. They are queued in the outbox in one transaction; an
// event already queued for a source and channel is not queued again.
func (s *Service) dispatch(ctx context.Context, ev event) {
	var ds []buildgate.Delivery
	if isTrigger(ev.typ) {
		alerts, err := s.store.ListAlerts(ctx)
		if err != nil {
			s.log.Error("listing alerts", "event", ev.typ, "err", err)
			return
		}
		var running []buildgate.RuntimeContainer
		loaded := false
		for _, a := range alerts {
			t, ok := trigger(a, ev.typ)
			if !a.Enabled || !ok || len(a.Channels) == 0 {
				continue
			}
			p := ev.p
			if ev.containers != nil {
				var in []buildgate.RuntimeContainer
				for _, c := range ev.containers {
					if containerInScope(a.Scope, c) {
						in = append(in, c)
					}
				}
				if len(in) == 0 {
					continue
				}
				if ev.p.Runtime != nil {
					r := *ev.p.Runtime
					r.Cluster, r.Namespace, r.Pod, r.Container, r.Containers = in[0].Cluster, in[0].Namespace, in[0].Pod, in[0].Container, len(in)
					p.Runtime = &r
				}
			} else {
				if !imageInScope(a.Scope, ev.tags) {
					continue
				}
				if !wildcard(a.Scope.Cluster) || !wildcard(a.Scope.Namespace) {
					if !loaded {
						running, err = s.store.RuntimeContainersOf(ctx, ev.digests, ev.tags)
						if err != nil {
							s.log.Error("listing where an image runs", "err", err)
						}
						loaded = true
					}
					if !slices.ContainsFunc(running, func(c buildgate.RuntimeContainer) bool {
						return glob(a.Scope.Cluster, c.Cluster) && glob(a.Scope.Namespace, c.Namespace)
					}) {
						continue
					}
				}
			}
			if ev.typ == buildgate.TriggerNewVulnerabilities {
				floor := buildgate.SeverityUnknown
				if t.MinSeverity != "" {
					floor = buildgate.SeverityOf(t.MinSeverity)
				}
				var keep []buildgate.Match
				for _, m := range ev.appeared {
					if m.Severity >= floor {
						keep = append(keep, m)
					}
				}
				if len(keep) == 0 {
					continue
				}
				p.Vulnerabilities = &vulnChanges{DBBuilt: ev.p.Vulnerabilities.DBBuilt, MinSeverity: t.MinSeverity,
					Appeared: vulnInfos(keep), Disappeared: []vulnInfo{}}
			}
			p.Alert = &alertRef{ID: a.ID, Name: a.Name}
			for _, ch := range a.Channels {
				ds = append(ds, s.delivery(buildgate.SourceAlert, a.ID, ch, ev, p))
			}
		}
	}
	if isSubscriptionType(ev.typ) && len(ev.subTags) > 0 {
		chans, err := s.store.SubscriptionChannels(ctx)
		if err != nil {
			s.log.Error("listing subscription channels", "err", err)
			return
		}
		for _, tag := range ev.subTags {
			subs, err := s.store.ListSubscriptions(ctx, tag, ev.typ)
			if err != nil {
				s.log.Error("listing subscriptions", "tag", tag, "err", err)
				return
			}
			for _, sub := range subs {
				if !sub.Active || len(chans[sub.ID]) == 0 {
					continue
				}
				p := ev.p
				p.Subscription = &subscriptionRef{ID: sub.ID, Key: sub.Key, Type: sub.Type}
				if p.Image != nil {
					img := *p.Image
					img.Tag = tag
					p.Image = &img
				}
				for _, ch := range chans[sub.ID] {
					ds = append(ds, s.delivery(buildgate.SourceSubscription, sub.ID, ch, ev, p))
				}
			}
		}
	}
	n, err := s.store.EnqueueDeliveries(ctx, ds)
	if err != nil {
		s.log.Error("queueing deliveries", "event", ev.typ, "key", ev.key, "err", err)
		return
	}
	if n > 0 {
		s.log.Info("notifications queued", "event", ev.typ, "key", ev.key, "deliveries", n)
		s.Wake()
	}
}

// delivery renders p for one source and channel.
func (s *Service) delivery(sourceType, sourceID, channel string, ev event, p payload) buildgate.Delivery {
	id := buildgate.NewID()
	p.DeliveryID = id
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.Now()
	}
	return buildgate.Delivery{
		ID: id, SourceType: sourceType, SourceID: sourceID, ChannelID: channel,
		EventType: ev.typ, EventKey: ev.key, Message: render(&p),
	}
}

// render fills p's title and text and returns the message every channel
// type sends: a webhook its JSON body, Slack and email the title, text and
// fields.
func render(p *payload) buildgate.Message {
	var fields []buildgate.MessageField
	field := func(name, value string) {
		if value != "" {
			fields = append(fields, buildgate.MessageField{Name: name, Value: value})
		}
	}
	name := ""
	if p.Image != nil {
		name = cmp.Or(p.Image.Tag, first(p.Image.Tags), p.Image.Digest)
		field("Image", cmp.Or(p.Image.Tag, first(p.Image.Tags)))
		field("Digest", p.Image.Digest)
	}
	switch p.Type {
	case buildgate.TriggerPolicyEvalFailed, buildgate.TriggerVerdictChanged, buildgate.SubscriptionPolicyEval:
		v := p.Verdict
		if p.Type == buildgate.TriggerPolicyEvalFailed {
			p.Title = "Policy evaluation failed: " + name
			p.Text = fmt.Sprintf("%s fails policy %s (version %d) with %d stop findings.", name, v.PolicyID, v.PolicyVersion, v.StopFindings)
		} else {
			p.Title = fmt.Sprintf("Verdict changed: %s %s → %s", name, cmp.Or(v.Previous, "none"), v.FinalAction)
			p.Text = fmt.Sprintf("The verdict of %s under policy %s (version %d) changed from %s to %s.", name, v.PolicyID, v.PolicyVersion, cmp.Or(v.Previous, "none"), v.FinalAction)
		}
		field("Final action", v.FinalAction)
		field("Previous", v.Previous)
		field("Policy", fmt.Sprintf("%s (version %d)", v.PolicyID, v.PolicyVersion))
		var lines []string
		for _, f := range v.Findings {
			lines = append(lines, fmt.Sprintf("%s %s/%s: %s", f.Action, f.Gate, f.Trigger, f.Message))
		}
		field("Findings", strings.Join(lines, "\n"))
	case buildgate.TriggerNewVulnerabilities, buildgate.SubscriptionVulnUpdate:
		vc := p.Vulnerabilities
		if p.Type == buildgate.TriggerNewVulnerabilities {
			p.Title = fmt.Sprintf("%d new vulnerabilities in %s", len(vc.Appeared), name)
			p.Text = fmt.Sprintf("A vulnerability DB update added %d vulnerabilities to %s.", len(vc.Appeared), name)
			if vc.MinSeverity != "" {
				p.Text = fmt.Sprintf("A vulnerability DB update added %d vulnerabilities of severity %s or higher to %s.", len(vc.Appeared), vc.MinSeverity, name)
			}
		} else {
			p.Title = fmt.Sprintf("Vulnerabilities changed in %s: +%d −%d", name, len(vc.Appeared), len(vc.Disappeared))
			p.Text = fmt.Sprintf("A vulnerability DB update added %d and removed %d vulnerabilities of %s.", len(vc.Appeared), len(vc.Disappeared), name)
		}
		field("Appeared", vulnLines(vc.Appeared))
		field("Disappeared", vulnLines(vc.Disappeared))
	case buildgate.TriggerUnscannedImage:
		r := p.Runtime
		p.Title = fmt.Sprintf("Unscanned image running in %s: %s", r.Cluster, r.Image)
		p.Text = fmt.Sprintf("%s runs in %d container(s) of cluster %s, first in %s/%s (%s), and the gate has no analysis of it (%s).",
			r.Image, r.Containers, r.Cluster, r.Namespace, r.Pod, r.Container, r.Status)
		if r.ScanSubmitted {
			p.Text += " The gate submitted it for analysis."
		}
		field("Image", r.Image)
		field("Digest", r.ImageDigest)
		field("Cluster", r.Cluster)
		field("Namespace", r.Namespace)
		field("Pod", r.Pod)
		field("Action", r.Action)
	case buildgate.SubscriptionAnalysisUpdate:
		a := p.Analysis
		p.Title = fmt.Sprintf("Analysis %s: %s", a.Status, name)
		p.Text = fmt.Sprintf("The analysis of %s is %s.", name, a.Status)
		if a.Error != "" {
			p.Text += " " + a.Error
		}
	case buildgate.SubscriptionTagUpdate:
		u := p.TagUpdate
		p.Title = "New image for " + u.Tag
		p.Text = fmt.Sprintf("%s now points at %s (was %s); the gate submitted it for analysis.", u.Tag, u.Digest, cmp.Or(u.Previous, "unknown"))
		field("Previous digest", u.Previous)
	case buildgate.TriggerAdmissionDenied:
		a := p.Admission
		where := a.Namespace
		if a.Cluster != "" {
			where = a.Cluster + "/" + a.Namespace
		}
		p.Title = fmt.Sprintf("Admission would have been denied: %s %s in %s", a.Kind, a.Name, where)
		p.Text = fmt.Sprintf("Rule %s (audit mode) admitted %s %s in %s, which it would have denied: %s", a.Rule, a.Kind, a.Name, where, a.Message)
		field("Cluster", a.Cluster)
		field("Namespace", a.Namespace)
		field("Object", a.Kind+" "+a.Name)
		field("User", a.User)
		field("Rule", a.Rule)
		field("Images", strings.Join(a.Images, "\n"))
	case "test":
		p.Title = "buildgate test message"
		p.Text = "This channel works: buildgate can reach it."
	}
	if p.Alert != nil {
		field("Alert", p.Alert.Name)
	}
	if p.Subscription != nil {
		field("Subscription", p.Subscription.Type+" "+p.Subscription.Key)
	}
	body, _ := json.Marshal(p)
	return buildgate.Message{Event: p.Type, Title: p.Title, Text: p.Text, Fields: fields, Body: body, DeliveryID: p.DeliveryID}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// maxListed bounds the vulnerabilities a message's text lists.
const maxListed = 15

func vulnLines(vs []vulnInfo) string {
	var lines []string
	for i, v := range vs {
		if i == maxListed {
			lines = append(lines, fmt.Sprintf("… and %d more", len(vs)-maxListed))
			break
		}
		lines = append(lines, fmt.Sprintf("%s (%s) in %s %s", v.ID, v.Severity, v.Package, v.Version))
	}
	return strings.Join(lines, "\n")
}

func vulnInfos(ms []buildgate.Match) []vulnInfo {
	out := make([]vulnInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, vulnInfo{
			ID: m.VulnerabilityID, Severity: m.Severity.String(), Package: m.PackageName, Version: m.PackageVersion,
			Type: m.PackageType, FixState: string(m.FixState), FixVersions: m.FixVersions,
		})
	}
	return out
}

// matchKey identifies a vulnerability of a package for diffs.
func matchKey(m buildgate.Match) string {
	return m.VulnerabilityID + "\x00" + m.PackageName + "\x00" + m.PackageVersion + "\x00" + m.PackageType
}

// diffMatches returns the matches of after that before lacks and those of
// before that after lacks, most severe first.
func diffMatches(before, after []buildgate.Match) (appeared, disappeared []buildgate.Match) {
	index := func(ms []buildgate.Match) map[string]bool {
		m := make(map[string]bool, len(ms))
		for _, x := range ms {
			m[matchKey(x)] = true
		}
		return m
	}
	b, a := index(before), index(after)
	seen := map[string]bool{}
	for _, m := range after {
		if k := matchKey(m); !b[k] && !seen[k] {
			seen[k] = true
			appeared = append(appeared, m)
		}
	}
	for _, m := range before {
		if k := matchKey(m); !a[k] && !seen[k] {
			seen[k] = true
			disappeared = append(disappeared, m)
		}
	}
	order := func(x, y buildgate.Match) int {
		return cmp.Or(cmp.Compare(y.Severity, x.Severity), cmp.Compare(x.VulnerabilityID, y.VulnerabilityID), cmp.Compare(x.PackageName, y.PackageName))
	}
	slices.SortFunc(appeared, order)
	slices.SortFunc(disappeared, order)
	return appeared, disappeared
}

// imageDigests returns an image's manifest digest and, when known, the
// digest of the index it was chosen from.
func (s *Service) imageDigests(ctx context.Context, digest string) []string {
	out := []string{digest}
	if o, err := s.store.ImageOrigin(ctx, digest); err == nil && o.IndexDigest != "" {
		out = append(out, o.IndexDigest)
	}
	return out
}

// AnalysisFinished is the analysis service's Observer.Finished hook: it
// tells the image's analysis_update subscriptions.
func (s *Service) AnalysisFinished(digest string, outcome buildgate.Status, _ time.Duration) {
	ctx := context.Background()
	img, err := s.store.Image(ctx, digest)
	if err != nil {
		s.log.Error("reading a finished image", "digest", digest, "err", err)
		return
	}
	if len(img.Tags) == 0 {
		return
	}
	at := img.UpdatedAt
	if outcome == buildgate.StatusAnalyzed && img.AnalyzedAt != nil {
		at = *img.AnalyzedAt
	}
	s.dispatch(ctx, event{
		typ: buildgate.SubscriptionAnalysisUpdate, key: fmt.Sprintf("analysis:%s:%s:%d", digest, outcome, at.UnixNano()),
		tags: img.Tags, subTags: img.Tags,
		p: payload{Type: buildgate.SubscriptionAnalysisUpdate, Image: &imageRef{Digest: digest, Tags: img.Tags},
			Analysis: &analysisInfo{Status: string(outcome), Error: img.Error}},
	})
}

// maxFindings bounds the findings a verdict message lists.
const maxFindings = 10

// VerdictChanged is Verdicts' hook, called when a stored verdict differs
// from the one stored before (previous is "" for an image's first
// verdict for a tag and policy). A stop fires policy_eval_failed; a change
// from an earlier verdict fires verdict_changed and the tag's policy_eval
// subscriptions.
func (s *Service) VerdictChanged(ctx context.Context, e buildgate.StoredEvaluation, previous string) {
	img, err := s.store.Image(ctx, e.Digest)
	if err != nil {
		s.log.Error("reading an evaluated image", "digest", e.Digest, "err", err)
		return
	}
	v := &verdictInfo{FinalAction: e.FinalAction, Previous: previous, PolicyID: e.PolicyID, PolicyVersion: e.PolicyVersion, EvaluatedAt: e.EvaluatedAt}
	if !e.DBBuilt.IsZero() {
		b := e.DBBuilt
		v.DBBuilt = &b
	}
	var verdict policy.Verdict
	if err := json.Unmarshal(e.Result, &verdict); err == nil {
		for _, f := range verdict.Findings {
			if f.Action == policy.ActionStop && f.Allowlisted == nil {
				v.StopFindings++
				if len(v.Findings) < maxFindings {
					v.Findings = append(v.Findings, findingInfo{Gate: f.Gate, Trigger: f.Trigger, Action: f.Action.String(), Message: f.Message})
				}
			}
		}
	}
	key := fmt.Sprintf("%s:%s:%s:v%d:%d:%s>%s", e.Digest, e.Tag, e.PolicyID, e.PolicyVersion, e.DBBuilt.Unix(), previous, e.FinalAction)
	base := event{
		tags: img.Tags, digests: s.imageDigests(ctx, e.Digest),
		p: payload{Image: &imageRef{Digest: e.Digest, Tag: e.Tag, Tags: img.Tags}, Verdict: v},
	}
	emit := func(typ string, subTags []string) {
		ev := base
		ev.typ, ev.key, ev.subTags, ev.p.Type = typ, typ+":"+key, subTags, typ
		s.dispatch(ctx, ev)
	}
	if e.FinalAction == policy.ActionStop.String() {
		emit(buildgate.TriggerPolicyEvalFailed, nil)
	}
	if previous != "" {
		emit(buildgate.TriggerVerdictChanged, nil)
		if e.Tag != "" {
			emit(buildgate.SubscriptionPolicyEval, []string{e.Tag})
		}
	}
}

// Rematched is the analysis service's Observer.Rematched hook: it records
// which vulnerabilities a re-match against a new DB added to and removed
// from an image, fires new_vulnerabilities for the added ones, and tells
// the image's vuln_update subscriptions.
func (s *Service) Rematched(ctx context.Context, digest string, before, after []buildgate.Match, db buildgate.DBInfo) {
	appeared, disappeared := diffMatches(before, after)
	if len(appeared) == 0 && len(disappeared) == 0 {
		return
	}
	if err := s.store.SaveVulnerabilityChange(ctx, buildgate.VulnerabilityChange{
		Digest: digest, DBBuilt: db.Built, ChangedAt: s.Now(), Appeared: appeared, Disappeared: disappeared,
	}); err != nil {
		s.log.Error("recording vulnerability changes", "digest", digest, "err", err)
	}
	s.log.Info("vulnerabilities changed", "digest", digest, "appeared", len(appeared), "disappeared", len(disappeared), "db_built", db.Built)
	img, err := s.store.Image(ctx, digest)
	if err != nil {
		s.log.Error("reading a re-matched image", "digest", digest, "err", err)
		return
	}
	var built *time.Time
	if !db.Built.IsZero() {
		b := db.Built
		built = &b
	}
	key := fmt.Sprintf("%s:%d", digest, db.Built.UnixNano())
	base := event{
		tags: img.Tags, digests: s.imageDigests(ctx, digest), appeared: appeared, disappeared: disappeared,
		p: payload{Image: &imageRef{Digest: digest, Tags: img.Tags},
			Vulnerabilities: &vulnChanges{DBBuilt: built, Appeared: vulnInfos(appeared), Disappeared: vulnInfos(disappeared)}},
	}
	if len(appeared) > 0 {
		ev := base
		ev.typ, ev.key, ev.p.Type = buildgate.TriggerNewVulnerabilities, buildgate.TriggerNewVulnerabilities+":"+key, buildgate.TriggerNewVulnerabilities
		s.dispatch(ctx, ev)
	}
	ev := base
	ev.typ, ev.key, ev.subTags, ev.p.Type = buildgate.SubscriptionVulnUpdate, buildgate.SubscriptionVulnUpdate+":"+key, img.Tags, buildgate.SubscriptionVulnUpdate
	s.dispatch(ctx, ev)
}

// VulnerabilityChanges returns the recorded vulnerability changes of an
// image, newest first.
func (s *Service) VulnerabilityChanges(ctx context.Context, digest string) ([]buildgate.VulnerabilityChange, error) {
	if _, err := s.store.Image(ctx, digest); err != nil {
		return nil, err
	}
	return s.store.VulnerabilityChanges(ctx, digest)
}

// AdmissionDenied is the admission service's hook: an audit rule admitted
// an object it would have denied. It fires admission_denied for the
// alerts whose scope holds one of the object's images, cluster and
// namespace.
func (s *Service) AdmissionDenied(ctx context.Context, d buildgate.AdmissionDecision) {
	info := &admissionInfo{
		DecisionID: d.ID, Cluster: d.Cluster, Namespace: d.Namespace, Kind: d.Kind, Name: d.Name, User: d.User,
		Rule: d.RuleName, Mode: d.Mode, Message: d.Message, Images: []string{},
	}
	var containers []buildgate.RuntimeContainer
	var tags []string
	for _, img := range d.Images {
		info.Images = append(info.Images, img.Image)
		containers = append(containers, buildgate.RuntimeContainer{
			Cluster: d.Cluster, Namespace: d.Namespace, Pod: d.Name, Container: img.Container,
			Image: img.Image, ImageDigest: img.Digest, Tag: img.Tag,
		})
		if img.Tag != "" {
			tags = append(tags, img.Tag)
		}
	}
	var ref *imageRef
	if len(d.Images) > 0 {
		ref = &imageRef{Digest: d.Images[0].Digest, Tag: d.Images[0].Tag, Tags: tags}
	}
	s.dispatch(ctx, event{
		typ: buildgate.TriggerAdmissionDenied, key: buildgate.TriggerAdmissionDenied + ":" + d.ID,
		tags: tags, containers: containers,
		p: payload{Type: buildgate.TriggerAdmissionDenied, Image: ref, Admission: info, CreatedAt: d.CreatedAt},
	})
}
