package alert

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		name, pattern, s string
		want             bool
	}{
		{"empty matches all", "", "team/app", true},
		{"star matches all", "*", "team/app", true},
		{"star crosses slashes", "team/*", "team/sub/app", true},
		{"prefix", "prod-*", "prod-eu", true},
		{"prefix miss", "prod-*", "staging", false},
		{"literal", "team/app", "team/app", true},
		{"literal miss", "team/app", "team/app2", false},
		{"inner star", "a*c*e", "abcde", true},
		{"inner star miss", "a*c*e", "abde", false},
		{"suffix", "*-svc", "api-svc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := glob(tt.pattern, tt.s); got != tt.want {
				t.Errorf("glob(%q, %q) = %v", tt.pattern, tt.s, got)
			}
		})
	}
}

func TestNormalizeAlert(t *testing.T) {
	ok := []buildgate.AlertTrigger{{Type: buildgate.TriggerPolicyEvalFailed}}
	tests := []struct {
		name  string
		alert buildgate.Alert
		err   string
	}{
		{"minimal", buildgate.Alert{Name: "a", Triggers: ok}, ""},
		{"no name", buildgate.Alert{Triggers: ok}, "name"},
		{"no trigger", buildgate.Alert{Name: "a"}, "trigger"},
		{"unknown trigger", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "boom"}}}, "unknown trigger"},
		{"twice", buildgate.Alert{Name: "a", Triggers: append(ok, ok...)}, "twice"},
		{"scan", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "unscanned_image", Action: "scan"}}}, ""},
		{"bad action", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "unscanned_image", Action: "delete"}}}, "action"},
		{"action elsewhere", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "verdict_changed", Action: "scan"}}}, "only unscanned_image"},
		{"severity", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "new_vulnerabilities", MinSeverity: "HIGH"}}}, ""},
		{"bad severity", buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "new_vulnerabilities", MinSeverity: "severe"}}}, "min_severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.alert
			err := normalizeAlert(&a)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if err == nil && (a.Scope.Registry != "*" || a.Scope.Cluster != "*" || a.Channels == nil) {
				t.Errorf("defaults = %+v", a)
			}
		})
	}
	a := buildgate.Alert{Name: "a", Triggers: []buildgate.AlertTrigger{{Type: "unscanned_image"}, {Type: "new_vulnerabilities", MinSeverity: "HIGH"}}}
	normalizeAlert(&a)
	if a.Triggers[0].Action != buildgate.ActionNotify || a.Triggers[1].MinSeverity != "high" {
		t.Errorf("triggers = %+v", a.Triggers)
	}
}

func TestNormalizeChannel(t *testing.T) {
	tests := []struct {
		name string
		in   ChannelInput
		err  string
	}{
		{"webhook", ChannelInput{Channel: buildgate.Channel{Name: "w", Type: "webhook", URL: "https://h.example/x"}, Secret: "s"}, ""},
		{"webhook without secret", ChannelInput{Channel: buildgate.Channel{Name: "w", Type: "webhook", URL: "https://h.example/x"}}, "secret"},
		{"webhook bad url", ChannelInput{Channel: buildgate.Channel{Name: "w", Type: "webhook", URL: "ftp://h/x"}, Secret: "s"}, "http"},
		{"slack", ChannelInput{Channel: buildgate.Channel{Name: "s", Type: "slack", URL: "https://hooks.slack.com/services/T/B/X"}}, ""},
		{"slack without url", ChannelInput{Channel: buildgate.Channel{Name: "s", Type: "slack"}}, "url"},
		{"email", ChannelInput{Channel: buildgate.Channel{Name: "e", Type: "email", SMTPHost: "smtp.example", From: "a@example.com", To: []string{"b@example.com"}, Username: "u"}, Secret: "p"}, ""},
		{"email with port in host", ChannelInput{Channel: buildgate.Channel{Name: "e", Type: "email", SMTPHost: "smtp.example:25", From: "a@example.com", To: []string{"b@example.com"}}}, "smtp_host"},
		{"email without password", ChannelInput{Channel: buildgate.Channel{Name: "e", Type: "email", SMTPHost: "smtp.example", From: "a@example.com", To: []string{"b@example.com"}, Username: "u"}}, "password"},
		{"email password in clear", ChannelInput{Channel: buildgate.Channel{Name: "e", Type: "email", SMTPHost: "smtp.example", TLS: "none", From: "a@example.com", To: []string{"b@example.com"}, Username: "u"}, Secret: "p"}, "plain text"},
		{"email bad address", ChannelInput{Channel: buildgate.Channel{Name: "e", Type: "email", SMTPHost: "smtp.example", From: "a@example.com", To: []string{"nope"}}}, "not an email"},
		{"unknown type", ChannelInput{Channel: buildgate.Channel{Name: "x", Type: "pager"}}, "unknown channel type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, key, err := normalizeChannel(tt.in, nil)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "hooks.slack.com/services") {
				t.Errorf("an error quotes the secret url: %v", err)
			}
			if err == nil && ch.Type == "slack" && (string(key) != tt.in.URL || ch.URL != "https://hooks.slack.com/…") {
				t.Errorf("slack: url %q secret %q", ch.URL, key)
			}
			if err == nil && ch.Type == "email" && ch.SMTPPort != 587 {
				t.Errorf("email port = %d", ch.SMTPPort)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	s := &Service{cfg: Config{RetryBase: 10 * time.Second, RetryMax: time.Minute}}
	tests := []struct {
		attempt int
		want    time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {4, time.Minute}, {30, time.Minute}}
	for _, tt := range tests {
		if got := s.backoff(tt.attempt); got != tt.want {
			t.Errorf("backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
		}
	}
}

func TestDiffMatches(t *testing.T) {
	m := func(id, pkg string, sev buildgate.Severity) buildgate.Match {
		return buildgate.Match{VulnerabilityID: id, PackageName: pkg, PackageVersion: "1", PackageType: "deb", Severity: sev}
	}
	before := []buildgate.Match{m("CVE-1", "a", buildgate.SeverityLow), m("CVE-2", "b", buildgate.SeverityHigh)}
	after := []buildgate.Match{m("CVE-2", "b", buildgate.SeverityHigh), m("CVE-3", "c", buildgate.SeverityLow), m("CVE-4", "c", buildgate.SeverityCritical), m("CVE-4", "c", buildgate.SeverityCritical)}
	app, dis := diffMatches(before, after)
	if len(app) != 2 || app[0].VulnerabilityID != "CVE-4" || app[1].VulnerabilityID != "CVE-3" || len(dis) != 1 || dis[0].VulnerabilityID != "CVE-1" {
		t.Fatalf("appeared %v, disappeared %v", app, dis)
	}
}

// fakeSender records messages and fails while fail returns an error.
type fakeSender struct {
	mu   sync.Mutex
	msgs []buildgate.Message
	keys []secret.Secret
	fail func(n int) error
}

func (f *fakeSender) Send(_ context.Context, _ buildgate.Channel, key secret.Secret, msg buildgate.Message) (buildgate.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.msgs) + 1
	f.msgs = append(f.msgs, msg)
	f.keys = append(f.keys, key)
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return buildgate.SendResult{StatusCode: 503, Answer: "busy " + string(key)}, err
		}
	}
	return buildgate.SendResult{StatusCode: 200, Answer: "ok"}, nil
}

type fakeImages struct {
	mu   sync.Mutex
	refs []string
}

func (f *fakeImages) Submit(_ context.Context, req buildgate.SubmitRequest) (*buildgate.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs = append(f.refs, req.Ref)
	return &buildgate.Image{Digest: "sha256:submitted"}, nil
}

func (f *fakeImages) submitted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refs...)
}

type fakeRegistry struct{}

func (fakeRegistry) Resolve(context.Context, string) (buildgate.Resolved, error) {
	return buildgate.Resolved{}, errors.New("no registry")
}

func (fakeRegistry) NormalizeTag(tag string) (string, error) { return policy.FullTag(tag), nil }

type env struct {
	s      *Service
	db     *sqlite.DB
	sender *fakeSender
	images *fakeImages
	now    time.Time
	hook   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
}

// newEnvAt starts the service and its store on one test clock set to now:
// everything that stamps or compares times reads it.
func newEnvAt(t *testing.T, now time.Time) *env {
	t.Helper()
	e := &env{sender: &fakeSender{}, images: &fakeImages{}, now: now}
	clock := func() time.Time { return e.now }
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	sealer, _ := secret.NewSealer(secret.NewKey())
	e.s = New(Config{RetryBase: 10 * time.Second, RetryMax: 40 * time.Second, MaxAttempts: 4}, db, sealer,
		map[string]Sender{buildgate.ChannelWebhook: e.sender}, e.images, fakeRegistry{}, nil)
	e.s.Now = clock
	ch, err := e.s.CreateChannel(context.Background(), ChannelInput{Channel: buildgate.Channel{Name: "hook", Type: "webhook", URL: "https://h.example/x"}, Secret: "hook-secret-42"})
	if err != nil {
		t.Fatal(err)
	}
	e.hook = ch.ID
	return e
}

func (e *env) deliveries(t *testing.T, alertID string) []buildgate.Delivery {
	t.Helper()
	ds, err := e.s.AlertDeliveries(context.Background(), alertID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func (e *env) image(t *testing.T, digest string, tags ...string) {
	t.Helper()
	for _, tag := range tags {
		if _, _, err := e.db.SubmitImage(context.Background(), buildgate.Submission{Digest: digest, Tag: tag, Source: "registry"}); err != nil {
			t.Fatal(err)
		}
	}
}

// clockStarts are the test clock's starting points: the outbox must not
// read the wall clock anywhere, so it behaves the same far from today.
var clockStarts = []struct {
	name string
	at   time.Time
}{
	{"fixed", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)},
	{"far past", time.Date(1971, 2, 3, 4, 5, 6, 0, time.UTC)},
	{"far future", time.Date(2199, 12, 31, 23, 0, 0, 0, time.UTC)},
}

func TestOutboxRetriesWithBackoff(t *testing.T) {
	for _, c := range clockStarts {
		t.Run(c.name, func(t *testing.T) { testOutboxRetries(t, newEnvAt(t, c.at)) })
	}
}

func testOutboxRetries(t *testing.T, e *env) {
	ctx := context.Background()
	e.sender.fail = func(n int) error {
		if n <= 2 {
			return errors.New("connection refused by hook-secret-42's host")
		}
		return nil
	}
	a, err := e.s.CreateAlert(ctx, buildgate.Alert{Name: "all", Enabled: true, Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerPolicyEvalFailed}}, Channels: []string{e.hook}})
	if err != nil {
		t.Fatal(err)
	}
	e.image(t, "sha256:aa", "r.example/team/app:1")
	stop := buildgate.StoredEvaluation{Digest: "sha256:aa", Tag: "r.example/team/app:1", PolicyID: "p", PolicyVersion: 1, FinalAction: "stop", EvaluatedAt: e.now}
	e.s.VerdictChanged(ctx, stop, "")
	e.s.VerdictChanged(ctx, stop, "") // the same event again: no second delivery

	steps := []struct {
		advance  time.Duration
		sent     int
		status   string
		attempts int
	}{
		{0, 1, buildgate.DeliveryPending, 1},
		{9 * time.Second, 1, buildgate.DeliveryPending, 1}, // not due yet
		{time.Second, 2, buildgate.DeliveryPending, 2},     // 10s after the first failure
		{19 * time.Second, 2, buildgate.DeliveryPending, 2},
		{time.Second, 3, buildgate.DeliveryDelivered, 3}, // 20s after the second
		{time.Hour, 3, buildgate.DeliveryDelivered, 3},
	}
	for i, st := range steps {
		e.now = e.now.Add(st.advance)
		if _, err := e.s.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		ds := e.deliveries(t, a.ID)
		if len(ds) != 1 || len(e.sender.msgs) != st.sent || ds[0].Status != st.status || ds[0].Attempts != st.attempts {
			t.Fatalf("step %d: %d deliveries, %d sent, %+v", i, len(ds), len(e.sender.msgs), ds)
		}
	}
	d := e.deliveries(t, a.ID)[0]
	if d.EventType != buildgate.TriggerPolicyEvalFailed || len(d.AttemptLog) != 3 || d.AttemptLog[0].OK || !d.AttemptLog[2].OK {
		t.Fatalf("delivery = %+v", d)
	}
	for _, at := range d.AttemptLog {
		if strings.Contains(at.Error+at.Answer, "hook-secret-42") {
			t.Errorf("an attempt records the channel secret: %+v", at)
		}
	}
	if string(e.sender.keys[0]) != "hook-secret-42" {
		t.Errorf("the sender got secret %q", e.sender.keys[0])
	}
	var body struct {
		DeliveryID string `json:"delivery_id"`
		Type       string `json:"type"`
		Alert      struct{ Name string }
		Image      struct{ Digest, Tag string }
		Verdict    struct {
			FinalAction string `json:"final_action"`
		}
	}
	if err := json.Unmarshal(e.sender.msgs[2].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.DeliveryID != d.ID || body.Type != "policy_eval_failed" || body.Alert.Name != "all" || body.Image.Digest != "sha256:aa" || body.Verdict.FinalAction != "stop" {
		t.Errorf("body = %s", e.sender.msgs[2].Body)
	}
}

func TestOutboxGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		attempts int
	}{
		{"permanent error", failure("410 gone"), 1},
		{"attempts exhausted", errors.New("timeout"), 4},
	}
	for _, tt := range tests {
		for _, c := range clockStarts {
			t.Run(tt.name+"/"+c.name, func(t *testing.T) { testOutboxGivesUp(t, newEnvAt(t, c.at), tt.err, tt.attempts) })
		}
	}
}

func testOutboxGivesUp(t *testing.T, e *env, sendErr error, attempts int) {
	ctx := context.Background()
	e.sender.fail = func(int) error { return sendErr }
	a, _ := e.s.CreateAlert(ctx, buildgate.Alert{Name: "all", Enabled: true, Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerVerdictChanged}}, Channels: []string{e.hook}})
	e.image(t, "sha256:aa", "r.example/team/app:1")
	e.s.VerdictChanged(ctx, buildgate.StoredEvaluation{Digest: "sha256:aa", Tag: "r.example/team/app:1", PolicyID: "p", FinalAction: "go"}, "stop")
	for range 10 {
		e.s.DeliverDue(ctx)
		e.now = e.now.Add(time.Hour)
	}
	ds := e.deliveries(t, a.ID)
	if len(ds) != 1 || ds[0].Status != buildgate.DeliveryFailed || ds[0].Attempts != attempts || len(e.sender.msgs) != attempts {
		t.Fatalf("deliveries = %+v, sent %d", ds, len(e.sender.msgs))
	}
}

func TestVerdictEventsAndScopes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk := func(name string, scope buildgate.AlertScope, triggers ...string) string {
		var tr []buildgate.AlertTrigger
		for _, x := range triggers {
			tr = append(tr, buildgate.AlertTrigger{Type: x})
		}
		a, err := e.s.CreateAlert(ctx, buildgate.Alert{Name: name, Enabled: true, Scope: scope, Triggers: tr, Channels: []string{e.hook}})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	failed := mk("failed", buildgate.AlertScope{}, buildgate.TriggerPolicyEvalFailed)
	changed := mk("changed", buildgate.AlertScope{}, buildgate.TriggerVerdictChanged)
	team := mk("team only", buildgate.AlertScope{Registry: "r.example", Repository: "team/*"}, buildgate.TriggerPolicyEvalFailed)
	other := mk("other repo", buildgate.AlertScope{Repository: "other/*"}, buildgate.TriggerPolicyEvalFailed)
	prod := mk("prod only", buildgate.AlertScope{Cluster: "prod-*"}, buildgate.TriggerPolicyEvalFailed)
	disabled, _ := e.s.CreateAlert(ctx, buildgate.Alert{Name: "off", Enabled: false, Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerPolicyEvalFailed}}, Channels: []string{e.hook}})
	sub, err := e.s.CreateSubscription(ctx, SubscriptionInput{Key: "r.example/team/app:1", Type: buildgate.SubscriptionPolicyEval, Channels: &[]string{e.hook}})
	if err != nil || !sub.Active || len(sub.Channels) != 1 {
		t.Fatalf("subscription = %+v %v", sub, err)
	}

	e.image(t, "sha256:aa", "r.example/team/app:1")
	ev := buildgate.StoredEvaluation{Digest: "sha256:aa", Tag: "r.example/team/app:1", PolicyID: "p", PolicyVersion: 1, FinalAction: "stop"}
	e.s.VerdictChanged(ctx, ev, "")
	count := func(id string) int { return len(e.deliveries(t, id)) }
	if count(failed) != 1 || count(team) != 1 || count(changed) != 0 || count(other) != 0 || count(prod) != 0 || count(disabled.ID) != 0 {
		t.Fatalf("first stop: failed %d team %d changed %d other %d prod %d disabled %d",
			count(failed), count(team), count(changed), count(other), count(prod), count(disabled.ID))
	}
	// Running in prod-eu puts the image in the prod alert's scope.
	if _, err := e.s.PushInventory(ctx, buildgate.RuntimeInventory{Cluster: "prod-eu", Containers: []buildgate.RuntimeContainer{
		{Namespace: "web", Pod: "p", Container: "c", Image: "r.example/team/app:1"}}}); err != nil {
		t.Fatal(err)
	}
	ev.FinalAction = "go"
	e.s.VerdictChanged(ctx, ev, "stop")
	ev.FinalAction, ev.PolicyVersion = "stop", 2
	e.s.VerdictChanged(ctx, ev, "go")
	if count(failed) != 2 || count(changed) != 2 || count(prod) != 1 {
		t.Errorf("after go and stop again: failed %d changed %d prod %d", count(failed), count(changed), count(prod))
	}
	subDs, _ := e.s.SubscriptionDeliveries(ctx, sub.ID, 0)
	if len(subDs) != 2 || subDs[0].EventType != buildgate.SubscriptionPolicyEval {
		t.Errorf("subscription deliveries = %+v", subDs)
	}
}

func TestInventoryUnscanned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scan, _ := e.s.CreateAlert(ctx, buildgate.Alert{Name: "scan prod", Enabled: true, Scope: buildgate.AlertScope{Cluster: "prod", Namespace: "web"},
		Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerUnscannedImage, Action: buildgate.ActionScan}}, Channels: []string{e.hook}})
	notify, _ := e.s.CreateAlert(ctx, buildgate.Alert{Name: "notify", Enabled: true,
		Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerUnscannedImage}}, Channels: []string{e.hook}})
	e.image(t, "sha256:known", "r.example/team/known:1")
	e.db.ClaimJob(ctx, "w", time.Minute, 3)
	e.db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: "sha256:known"}, SBOM: []byte("{}")})
	digest := "sha256:" + strings.Repeat("ab", 32)
	inv := buildgate.RuntimeInventory{Cluster: "prod", Containers: []buildgate.RuntimeContainer{
		{Namespace: "web", Pod: "a-1", Container: "app", Image: "r.example/team/app:2", ImageDigest: "docker-pullable://r.example/team/app@" + digest},
		{Namespace: "web", Pod: "a-2", Container: "app", Image: "r.example/team/app:2", ImageDigest: digest},
		{Namespace: "kube-system", Pod: "dns", Container: "dns", Image: "r.example/dns:1"},
		{Namespace: "web", Pod: "k", Container: "k", Image: "r.example/team/known:1"},
	}}
	res, err := e.s.PushInventory(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	if res.Containers != 4 || res.Images != 3 || res.Unscanned != 2 || res.Scans != 1 {
		t.Fatalf("result = %+v", res)
	}
	e.s.bg.Wait()
	if got := e.images.submitted(); len(got) != 1 || got[0] != "r.example/team/app:2@"+digest {
		t.Errorf("submitted = %v", got)
	}
	if n := len(e.deliveries(t, scan.ID)); n != 1 {
		t.Errorf("scan alert deliveries = %d", n)
	}
	if n := len(e.deliveries(t, notify.ID)); n != 2 {
		t.Errorf("notify alert deliveries = %d", n)
	}
	// The same inventory again notifies nobody and scans nothing new.
	if _, err := e.s.PushInventory(ctx, inv); err != nil {
		t.Fatal(err)
	}
	e.s.bg.Wait()
	if n := len(e.deliveries(t, notify.ID)); n != 2 {
		t.Errorf("after a second push: %d", n)
	}
	imgs, err := e.s.RuntimeImages(ctx, "prod", "")
	if err != nil || len(imgs) != 3 {
		t.Fatalf("runtime images = %+v %v", imgs, err)
	}
	for _, ri := range imgs {
		if (ri.Status == "analyzed") != (ri.Image == "r.example/team/known:1") || ri.Status == "analyzed" && ri.Vulnerabilities == nil {
			t.Errorf("runtime image = %+v", ri)
		}
	}
}
