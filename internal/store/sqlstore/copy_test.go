package sqlstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/store/postgres"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
	"github.com/buildgate/buildgate/internal/store/sqlite"
	"github.com/buildgate/buildgate/internal/store/sqlstore"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fill stores one row or more in every table.
func fill(t *testing.T, db store.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:a", Tag: "r/x:1", PullRef: "r/x@sha256:a", Source: "registry"})
	must(err)
	_, _, err = db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:b", Source: "registry"})
	must(err)
	j, err := db.ClaimJob(ctx, "w", time.Minute, 3)
	must(err)
	must(db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: j.Digest, Packages: []buildgate.Package{{Name: "openssl"}},
		Matches: []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}}, SBOM: []byte(`{"x":1}`), PackageList: []byte(`{"version":1}`), DBBuilt: t0, MatchedAt: t0}))
	must(db.CreateToken(ctx, buildgate.Token{ID: "t1", Name: "admin", Role: buildgate.RoleAdmin, CreatedAt: t0}, "hash"))
	_, err = db.SavePolicy(ctx, "p", "P", []byte(`{"v":1}`), true)
	must(err)
	_, err = db.SavePolicy(ctx, "p", "P", []byte(`{"v":2}`), true)
	must(err)
	must(db.SaveEvaluation(ctx, buildgate.StoredEvaluation{Digest: "sha256:a", Tag: "r/x:1", PolicyID: "p", PolicyVersion: 2,
		FinalAction: "stop", DBBuilt: t0, EvaluatedAt: t0, Result: []byte(`{"final":"stop"}`)}))
	must(db.CreateRegistry(ctx, buildgate.RegistryCredential{Registry: "r.example", Type: buildgate.RegistryTypeDockerV2, VerifyTLS: true}, "v1:k:sealed"))
	sub, err := db.AddSubscription(ctx, "r/x:1", buildgate.SubscriptionPolicyEval, true)
	must(err)
	ch, err := db.CreateChannel(ctx, buildgate.Channel{Name: "hook", Type: buildgate.ChannelWebhook, URL: "https://h.example"}, "v1:k:chan")
	must(err)
	_, err = db.CreateAlert(ctx, buildgate.Alert{Name: "a", Enabled: true, Triggers: []buildgate.AlertTrigger{{Type: buildgate.TriggerPolicyEvalFailed}}, Channels: []string{ch.ID}})
	must(err)
	must(db.SetSubscriptionChannels(ctx, sub.ID, []string{ch.ID}))
	_, err = db.EnqueueDeliveries(ctx, []buildgate.Delivery{{SourceType: buildgate.SourceAlert, SourceID: "a", ChannelID: ch.ID, EventType: "e", EventKey: "k",
		Message: buildgate.Message{Event: "e", Body: []byte("{}")}}})
	must(err)
	ds, err := db.ClaimDeliveries(ctx, "w", t0.Add(time.Hour), time.Minute, 1)
	must(err)
	must(db.RecordAttempt(ctx, ds[0].ID, buildgate.DeliveryAttempt{Attempt: 1, At: t0, Error: "refused"}, buildgate.DeliveryPending, t0.Add(2*time.Hour)))
	must(db.ReplaceInventory(ctx, buildgate.RuntimeInventory{Cluster: "c", ObservedAt: t0, Containers: []buildgate.RuntimeContainer{{Namespace: "n", Pod: "p", Container: "c", Image: "r/x:1"}}}))
	must(db.SaveVulnerabilityChange(ctx, buildgate.VulnerabilityChange{Digest: "sha256:a", DBBuilt: t0, ChangedAt: t0}))
	must(db.SetTagDigest(ctx, "r/x:1", "sha256:a", "", t0))
	_, err = db.ClaimRound(ctx, "tag-poll", t0, time.Minute)
	must(err)
	_, err = db.CreateAdmissionRule(ctx, buildgate.AdmissionRule{Name: "prod", Mode: "policy", OnError: "deny", Wait: time.Second})
	must(err)
	_, err = db.SaveAdmissionDecision(ctx, buildgate.AdmissionDecision{UID: "u1", Allowed: true})
	must(err)
	must(db.SetNamespaceLabels(ctx, "c", "prod", map[string]string{"env": "prod"}))
	must(db.SetPendingWork(ctx, "rematch", "build-1"))
	_, err = db.PutDBArchive(ctx, strings.NewReader("archive"), t0)
	must(err)
	must(db.SaveConsoleSession(ctx, buildgate.ConsoleSession{IDHash: "h", SealedToken: "v1:s:sealed", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(db.SaveVEXDocument(ctx, buildgate.VEXDocument{ID: "v1", Name: "openssl", Scope: "*", Format: "openvex", Statements: 1, Document: []byte(`{"statements": []}`), CreatedAt: t0}))
	must(db.PutUpload(ctx, "sha256-c-1", "sha256:c", strings.NewReader("archive")))
}

// TestCopySQLiteToPostgres copies a store that uses every table from
// SQLite to PostgreSQL: every row arrives, values read back the same, and
// a second copy into the now non-empty target is refused.
func TestCopySQLiteToPostgres(t *testing.T) {
	pgtest.Skip(t)
	ctx := context.Background()
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gate.db"), sqlite.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	dst, err := postgres.Open(ctx, srv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	counts, err := sqlstore.Copy(ctx, dst.DB, src.DB, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(sqlstore.Tables) {
		t.Fatalf("counts of %d tables, want %d", len(counts), len(sqlstore.Tables))
	}
	for _, c := range counts {
		if c.Source == 0 || c.Copied != c.Source {
			t.Errorf("%s: %d rows, %d copied; the fill should use every table", c.Table, c.Source, c.Copied)
		}
	}
	a, err := dst.Analysis(ctx, "sha256:a")
	if err != nil || string(a.SBOM) != `{"x":1}` || len(a.Matches) != 1 || a.Packages[0].Name != "openssl" {
		t.Fatalf("copied analysis = %+v %v", a, err)
	}
	e, err := dst.Evaluation(ctx, "sha256:a", "r/x:1", "p")
	if err != nil || e.FinalAction != "stop" || e.PolicyVersion != 2 || string(e.Result) != `{"final":"stop"}` {
		t.Fatalf("copied verdict = %+v %v", e, err)
	}
	if s, _ := dst.RegistrySecret(ctx, "r.example"); s != "v1:k:sealed" {
		t.Errorf("copied registry secret = %q", s)
	}
	if act, err := dst.ActivePolicy(ctx); err != nil || act.Version != 2 {
		t.Errorf("copied active policy = %+v %v", act, err)
	}
	if tok, err := dst.TokenByHash(ctx, "hash"); err != nil || tok.Name != "admin" {
		t.Errorf("copied token = %+v %v", tok, err)
	}
	// A lease in flight survives the copy: the job is still held.
	if j, _ := dst.ClaimJob(ctx, "w2", time.Minute, 3); j == nil || j.Digest != "sha256:b" {
		t.Errorf("claim in the copy = %+v, want the queued image", j)
	}

	_, err = sqlstore.Copy(ctx, dst.DB, src.DB, false)
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "--allow-non-empty") {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
	counts, err = sqlstore.Copy(ctx, dst.DB, src.DB, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Copied != 0 {
			t.Errorf("%s: %d rows copied again over the same keys", c.Table, c.Copied)
		}
	}
}
