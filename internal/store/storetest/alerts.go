package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/testclock"
)

func testChannelsAndAlerts(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	hook, err := db.CreateChannel(ctx, buildgate.Channel{Name: "sec", Type: buildgate.ChannelWebhook, URL: "https://hooks.example/x"}, "sealed-1")
	if err != nil || hook.ID == "" || hook.SecretSetAt == nil || hook.URL != "https://hooks.example/x" {
		t.Fatalf("create = %+v %v", hook, err)
	}
	if _, err := db.CreateChannel(ctx, buildgate.Channel{Name: "sec", Type: buildgate.ChannelSlack}, ""); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("same name: %v", err)
	}
	mail, err := db.CreateChannel(ctx, buildgate.Channel{Name: "mail", Type: buildgate.ChannelEmail, SMTPHost: "smtp.example", SMTPPort: 587, From: "a@example.com", To: []string{"b@example.com"}}, "")
	if err != nil || mail.SecretSetAt != nil || len(mail.To) != 1 {
		t.Fatalf("create mail = %+v %v", mail, err)
	}
	// An update without a secret keeps it.
	hook.URL = "https://hooks.example/y"
	up, err := db.UpdateChannel(ctx, *hook, "")
	if err != nil || up.URL != "https://hooks.example/y" || up.SecretSetAt == nil {
		t.Fatalf("update = %+v %v", up, err)
	}
	if s, _ := db.ChannelSecret(ctx, hook.ID); s != "sealed-1" {
		t.Errorf("secret after update = %q", s)
	}

	a, err := db.CreateAlert(ctx, buildgate.Alert{Name: "prod", Enabled: true, Scope: buildgate.AlertScope{Repository: "team/*"},
		Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerPolicyEvalFailed}}, Channels: []string{mail.ID, hook.ID}})
	if err != nil || len(a.Channels) != 2 || a.Channels[0] != mail.ID || a.Scope.Repository != "team/*" {
		t.Fatalf("alert = %+v %v", a, err)
	}
	if _, err := db.CreateAlert(ctx, buildgate.Alert{Name: "bad", Channels: []string{"nosuch"}}); buildgate.ErrorCode(err) != buildgate.EINVALID {
		t.Errorf("unknown channel: %v", err)
	}
	if _, err := db.Alert(ctx, "bad"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("a refused alert was stored: %v", err)
	}
	if err := db.DeleteChannel(ctx, hook.ID); buildgate.ErrorCode(err) != buildgate.ECONFLICT || !strings.Contains(err.Error(), "prod") {
		t.Errorf("deleting a channel in use: %v", err)
	}
	a.Channels = []string{mail.ID}
	if a, err = db.UpdateAlert(ctx, *a); err != nil || len(a.Channels) != 1 {
		t.Fatalf("update alert = %+v %v", a, err)
	}
	if err := db.DeleteChannel(ctx, hook.ID); err != nil {
		t.Errorf("deleting an unused channel: %v", err)
	}
	list, _ := db.ListAlerts(ctx)
	if len(list) != 1 || len(list[0].Channels) != 1 {
		t.Errorf("alerts = %+v", list)
	}

	// Subscription channels, and a reseal that covers channel secrets.
	sub, _ := db.AddSubscription(ctx, "docker.io/nginx:latest", buildgate.SubscriptionPolicyEval, true)
	if err := db.SetSubscriptionChannels(ctx, sub.ID, []string{mail.ID}); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.SubscriptionChannels(ctx); len(m[sub.ID]) != 1 {
		t.Errorf("subscription channels = %v", m)
	}
	if _, err := db.UpdateChannel(ctx, *mail, "sealed-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetChannelURL(ctx, mail.ID, "sealed-url", "https://hooks.example/x?token=[REDACTED]"); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Channel(ctx, mail.ID); c.URL != "https://hooks.example/x?token=[REDACTED]" {
		t.Errorf("channel url after SetChannelURL = %q, want the redacted form", c.URL)
	}
	recs := map[string]secret.Record{"sealed-2": secret.ChannelSecret(mail.ID), "sealed-url": secret.ChannelURL(mail.ID)}
	n, err := db.ResealSecrets(ctx, func(s string, rec secret.Record) (string, error) { return "new-" + s, wantRecord(t, s, rec, recs[s]) })
	if err != nil || n != 2 {
		t.Fatalf("reseal = %d %v, want the channel secret and the url", n, err)
	}
	if s, _ := db.ChannelSecret(ctx, mail.ID); s != "new-sealed-2" {
		t.Errorf("resealed channel secret = %q", s)
	}
	if s, _ := db.ChannelURL(ctx, mail.ID); s != "new-sealed-url" {
		t.Errorf("resealed channel url = %q", s)
	}
	if err := db.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.SubscriptionChannels(ctx); len(m) != 0 {
		t.Errorf("channels of a deleted subscription remain: %v", m)
	}
}

func testOutbox(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	now := clock.Now()
	d := buildgate.Delivery{SourceType: buildgate.SourceAlert, SourceID: "a1", ChannelID: "c1", EventType: "policy_eval_failed", EventKey: "k1",
		Message: buildgate.Message{Event: "policy_eval_failed", Title: "t", Body: []byte(`{"x":1}`)}}
	n, err := db.EnqueueDeliveries(ctx, []buildgate.Delivery{d, d})
	if err != nil || n != 1 {
		t.Fatalf("enqueue the same event twice = %d %v", n, err)
	}
	d2 := d
	d2.ChannelID = "c2"
	if n, _ := db.EnqueueDeliveries(ctx, []buildgate.Delivery{d, d2}); n != 1 {
		t.Errorf("another channel = %d", n)
	}

	claimed, err := db.ClaimDeliveries(ctx, "w1", now, time.Minute, 10)
	if err != nil || len(claimed) != 2 || string(claimed[0].Message.Body) != `{"x":1}` || claimed[0].Message.Title != "t" {
		t.Fatalf("claim = %+v %v", claimed, err)
	}
	if again, _ := db.ClaimDeliveries(ctx, "w2", now.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Errorf("a leased delivery was claimed again: %d", len(again))
	}
	// w1 died: its lease runs out and w2 takes the deliveries.
	later := now.Add(61 * time.Second)
	retaken, _ := db.ClaimDeliveries(ctx, "w2", later, time.Minute, 10)
	if len(retaken) != 2 {
		t.Fatalf("after the lease: %d", len(retaken))
	}
	id := retaken[0].ID
	next := later.Add(10 * time.Second)
	if err := db.RecordAttempt(ctx, id, buildgate.DeliveryAttempt{Attempt: 1, At: later, Error: "refused"}, buildgate.DeliveryPending, next); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.ClaimDeliveries(ctx, "w2", next.Add(-time.Millisecond), time.Minute, 10); len(due) != 0 {
		t.Errorf("claimed before it was due: %d", len(due))
	}
	due, _ := db.ClaimDeliveries(ctx, "w2", next.Add(time.Millisecond), time.Minute, 10)
	if len(due) != 1 || due[0].ID != id || due[0].Attempts != 1 {
		t.Fatalf("due = %+v", due)
	}
	if err := db.RecordAttempt(ctx, id, buildgate.DeliveryAttempt{Attempt: 2, At: next, OK: true, StatusCode: 200, Answer: "ok"}, buildgate.DeliveryDelivered, time.Time{}); err != nil {
		t.Fatal(err)
	}
	list, err := db.Deliveries(ctx, buildgate.SourceAlert, "a1", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("deliveries = %+v %v", list, err)
	}
	for _, x := range list {
		if x.ID != id {
			continue
		}
		if x.Status != buildgate.DeliveryDelivered || x.DeliveredAt == nil || len(x.AttemptLog) != 2 || x.AttemptLog[0].Error != "refused" || !x.AttemptLog[1].OK {
			t.Errorf("delivery = %+v", x)
		}
	}
	if err := db.DeleteAlert(ctx, "a1"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("deleting an unknown alert: %v", err)
	}
}

func testRuntimeInventory(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	inv := buildgate.RuntimeInventory{Cluster: "prod-1", ObservedAt: t0, Containers: []buildgate.RuntimeContainer{
		{Namespace: "web", Pod: "p1", Container: "app", Image: "r.example/team/app:1", Tag: "r.example/team/app:1"},
		{Namespace: "db", Pod: "p2", Container: "pg", Image: "postgres:16", Tag: "docker.io/postgres:16", ImageDigest: "sha256:idx"},
	}}
	if err := db.ReplaceInventory(ctx, inv); err != nil {
		t.Fatal(err)
	}
	old := inv
	old.ObservedAt = t0.Add(-time.Minute)
	if err := db.ReplaceInventory(ctx, old); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("an older inventory: %v", err)
	}
	inv.ObservedAt = t0.Add(time.Minute)
	inv.Containers = inv.Containers[1:]
	if err := db.ReplaceInventory(ctx, inv); err != nil {
		t.Fatal(err)
	}
	all, _ := db.RuntimeContainers(ctx, "", "")
	if len(all) != 1 || all[0].Pod != "p2" || all[0].Cluster != "prod-1" {
		t.Fatalf("after replacing: %+v", all)
	}
	if web, _ := db.RuntimeContainers(ctx, "prod-1", "web"); len(web) != 0 {
		t.Errorf("namespace filter: %+v", web)
	}

	// An image is found by its index digest, and by tag.
	if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:man", IndexDigest: "sha256:idx", Tag: "docker.io/postgres:16", Source: "registry"}); err != nil {
		t.Fatal(err)
	}
	if img, err := db.LookupImage(ctx, "sha256:idx", ""); err != nil || img.Digest != "sha256:man" {
		t.Errorf("by index digest = %+v %v", img, err)
	}
	if img, err := db.LookupImage(ctx, "", "docker.io/postgres:16"); err != nil || img.Digest != "sha256:man" {
		t.Errorf("by tag = %+v %v", img, err)
	}
	if _, err := db.LookupImage(ctx, "sha256:none", "x/y:1"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("unknown: %v", err)
	}
	if cs, _ := db.RuntimeContainersOf(ctx, []string{"sha256:man", "sha256:idx"}, nil); len(cs) != 1 {
		t.Errorf("containers of an image = %+v", cs)
	}

	// Vulnerability changes go with their image.
	if err := db.SaveVulnerabilityChange(ctx, buildgate.VulnerabilityChange{Digest: "sha256:man", DBBuilt: t0, ChangedAt: t0,
		Appeared: []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}}); err != nil {
		t.Fatal(err)
	}
	ch, err := db.VulnerabilityChanges(ctx, "sha256:man")
	if err != nil || len(ch) != 1 || ch[0].Appeared[0].VulnerabilityID != "CVE-1" || ch[0].Disappeared == nil || !ch[0].DBBuilt.Equal(t0) {
		t.Fatalf("changes = %+v %v", ch, err)
	}
	if err := db.DeleteImage(ctx, "sha256:man"); err != nil {
		t.Fatal(err)
	}
	if ch, _ := db.VulnerabilityChanges(ctx, "sha256:man"); len(ch) != 0 {
		t.Errorf("changes of a deleted image remain")
	}
}

func testSubscriptions(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	const key = "docker.io/nginx:latest"
	types := buildgate.SubscriptionTypes()
	if err := db.EnsureSubscriptions(ctx, key, types, nil); err != nil {
		t.Fatal(err)
	}
	// Ensuring again creates nothing new and activates what is asked.
	if err := db.EnsureSubscriptions(ctx, key, types, []string{buildgate.SubscriptionTagUpdate}); err != nil {
		t.Fatal(err)
	}
	subs, err := db.ListSubscriptions(ctx, key, "")
	if err != nil || len(subs) != 4 {
		t.Fatalf("list = %+v %v", subs, err)
	}
	for _, s := range subs {
		if s.Active != (s.Type == buildgate.SubscriptionTagUpdate) || s.ID == "" || s.CreatedAt.IsZero() {
			t.Errorf("subscription %+v", s)
		}
	}
	vu, err := db.ListSubscriptions(ctx, key, buildgate.SubscriptionVulnUpdate)
	if err != nil || len(vu) != 1 {
		t.Fatalf("by type = %+v %v", vu, err)
	}
	s, err := db.SetSubscriptionActive(ctx, vu[0].ID, true)
	if err != nil || !s.Active {
		t.Fatalf("activate = %+v %v", s, err)
	}
	if _, err := db.AddSubscription(ctx, key, buildgate.SubscriptionVulnUpdate, false); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("adding a duplicate: %v", err)
	}
	added, err := db.AddSubscription(ctx, "docker.io/other:1", buildgate.SubscriptionPolicyEval, true)
	if err != nil || !added.Active {
		t.Fatalf("add = %+v %v", added, err)
	}
	if err := db.DeleteSubscription(ctx, added.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Subscription(ctx, added.ID); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("deleted subscription: %v", err)
	}
	if _, err := db.SetSubscriptionActive(ctx, "nosuch", true); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("unknown subscription: %v", err)
	}
	all, _ := db.ListSubscriptions(ctx, "", "")
	if len(all) != 4 {
		t.Errorf("all = %d", len(all))
	}
}

func testOriginAndMetadata(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	sub := buildgate.Submission{Digest: "sha256:a", Tag: "r.example/x:1", PullRef: "r.example/x@sha256:a", IndexDigest: "sha256:i", Source: "registry"}
	if _, _, err := db.SubmitImage(ctx, sub); err != nil {
		t.Fatal(err)
	}
	o, err := db.ImageOrigin(ctx, "sha256:a")
	if err != nil || o.IndexDigest != "sha256:i" || o.PullRef != sub.PullRef || o.TagsSeen["r.example/x:1"].IsZero() {
		t.Fatalf("origin = %+v %v", o, err)
	}
	if _, err := db.ImageMetadata(ctx, "sha256:a"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("metadata before analysis: %v", err)
	}
	j := claim(t, db, "w")
	md := buildgate.Metadata{ImageID: "sha256:c", Distro: "debian", LayerCount: 2}
	if err := db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: j.Digest, Metadata: md}, SBOM: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	got, err := db.ImageMetadata(ctx, "sha256:a")
	if err != nil || got.ImageID != "sha256:c" || got.Distro != "debian" || got.LayerCount != 2 {
		t.Fatalf("metadata = %+v %v", got, err)
	}
	if _, err := db.ImageOrigin(ctx, "sha256:nosuch"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("unknown image: %v", err)
	}
}

func testOutboxExclusive(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	var ds []buildgate.Delivery
	for i := range 30 {
		ds = append(ds, buildgate.Delivery{SourceType: buildgate.SourceAlert, SourceID: "a1", ChannelID: "c1", EventType: "e",
			EventKey: strings.Repeat("k", i+1), Message: buildgate.Message{Event: "e", Body: []byte("{}")}})
	}
	if n, err := db.EnqueueDeliveries(ctx, ds); err != nil || n != 30 {
		t.Fatalf("enqueue = %d %v", n, err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := db.ClaimDeliveries(ctx, "w"+strings.Repeat("x", w), clock.Now(), time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 30 {
		t.Fatalf("claimed %d of 30 deliveries", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
}

func testTagDigests(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	if d, err := db.TagDigest(ctx, "r/x:1"); err != nil || d != "" {
		t.Fatalf("unknown tag = %q %v", d, err)
	}
	if err := db.SetTagDigest(ctx, "r/x:1", "sha256:a", "", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.SetTagDigest(ctx, "r/x:1", "", "registry down", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d, _ := db.TagDigest(ctx, "r/x:1"); d != "sha256:a" {
		t.Errorf("a failed poll forgot the digest: %q", d)
	}
	if err := db.SetTagDigest(ctx, "r/x:1", "sha256:b", "", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d, _ := db.TagDigest(ctx, "r/x:1"); d != "sha256:b" {
		t.Errorf("digest = %q", d)
	}
}

func testTokens(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	if n, err := db.CountTokens(ctx); err != nil || n != 0 {
		t.Fatalf("tokens of an empty store = %d %v", n, err)
	}
	tok := buildgate.Token{ID: "t1", Name: "ci", Role: buildgate.RoleAdmin, CreatedAt: t0}
	if err := db.CreateToken(ctx, tok, "hash-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, buildgate.Token{ID: "t2", Name: "dup", Role: buildgate.RoleAdmin, CreatedAt: t0}, "hash-1"); err == nil {
		t.Error("two tokens with one hash")
	}
	got, err := db.TokenByHash(ctx, "hash-1")
	if err != nil || got.ID != "t1" || got.Name != "ci" || got.Role != buildgate.RoleAdmin || !got.CreatedAt.Equal(t0) ||
		got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0) {
		t.Fatalf("token = %+v %v", got, err)
	}
	if _, err := db.TokenByHash(ctx, "hash-2"); buildgate.ErrorCode(err) != buildgate.EUNAUTHORIZED {
		t.Errorf("unknown token: %v", err)
	}
	exp := t0.Add(time.Hour)
	if err := db.CreateToken(ctx, buildgate.Token{ID: "t3", Name: "short", Role: buildgate.RoleCI, CreatedAt: t0, ExpiresAt: &exp}, "hash-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenByHash(ctx, "hash-3"); err != nil {
		t.Errorf("a token before it expires: %v", err)
	}
	clock.Set(exp)
	if _, err := db.TokenByHash(ctx, "hash-3"); buildgate.ErrorCode(err) != buildgate.EUNAUTHORIZED {
		t.Errorf("an expired token: %v", err)
	}
	if list, _ := db.ListTokens(ctx); len(list) != 2 {
		t.Errorf("tokens = %+v", list)
	}
	if _, err := db.RevokeToken(ctx, "t1"); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("revoking the last admin token: %v", err)
	}
	if _, err := db.RevokeToken(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountTokens(ctx); n != 1 {
		t.Errorf("count after a revoke = %d", n)
	}
}

func testRounds(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	claim := func(at time.Time) bool {
		t.Helper()
		ok, err := db.ClaimRound(ctx, "tag-poll", at, 9*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim(t0) {
		t.Fatal("the first round was not claimed")
	}
	if claim(t0.Add(3 * time.Minute)) {
		t.Error("a replica ticking 3 minutes later claimed the same round")
	}
	if !claim(t0.Add(9 * time.Minute)) {
		t.Error("the next round was not claimed")
	}
	if ok, _ := db.ClaimRound(ctx, "other", t0.Add(9*time.Minute), 9*time.Minute); !ok {
		t.Error("another kind of work shares the round")
	}
	// Of replicas claiming together, one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.ClaimRound(ctx, "tag-poll", t0.Add(20*time.Minute), 9*time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 4 concurrent claims won the round", won)
	}
}

// wantRecord fails the test when ResealSecrets gave sealed with another
// record than want.
func wantRecord(t *testing.T, sealed string, got, want secret.Record) error {
	t.Helper()
	if got != want {
		t.Errorf("%q came with record %v, want %v", sealed, got, want)
	}
	return nil
}
