// Package storetest is the conformance suite of store.Store: every adapter
// runs Run against a fresh store of its own, so SQLite and PostgreSQL keep
// one behaviour (dedupe, exclusive claims, leases, analyses the size of an
// image's, policy versions, sealed secrets, the outbox, subscriptions,
// alerts, runtime inventories, tokens, the shared vulnerability DB archive,
// claims on pending work, console sessions, uploaded archives).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/testclock"
)

// Opener opens a fresh, empty, migrated store that stamps rows with now;
// it closes the store when t ends.
type Opener func(t *testing.T, now func() time.Time) store.Store

// t0 is the suite's epoch: a fixed time, never today's.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, db store.Store, clock *testclock.Clock)
	}{
		{"SubmitDedupesByDigest", testSubmitDedupes},
		{"ConcurrentSubmits", testConcurrentSubmits},
		{"ImagesListAndDelete", testImagesListAndDelete},
		{"ClaimIsExclusive", testClaimIsExclusive},
		{"Leases", testLeases},
		{"AttemptsLimit", testAttemptsLimit},
		{"AnalysisRoundTrip", testAnalysisRoundTrip},
		{"BigAnalyses", testBigAnalyses},
		{"FactsEncodedAhead", testFactsEncodedAhead},
		{"PackageLists", testPackageLists},
		{"PolicyVersionsAndActive", testPolicyVersions},
		{"ConcurrentPolicySaves", testConcurrentPolicySaves},
		{"Evaluations", testEvaluations},
		{"RegistriesCRUD", testRegistriesCRUD},
		{"ResealIsAllOrNothing", testResealAllOrNothing},
		{"ChannelsAndAlerts", testChannelsAndAlerts},
		{"Outbox", testOutbox},
		{"OutboxClaimIsExclusive", testOutboxExclusive},
		{"Subscriptions", testSubscriptions},
		{"TagDigests", testTagDigests},
		{"ImageOriginAndMetadata", testOriginAndMetadata},
		{"RuntimeInventory", testRuntimeInventory},
		{"Tokens", testTokens},
		{"Rounds", testRounds},
		{"DBArchives", testDBArchives},
		{"PendingWorkClaims", testPendingWorkClaims},
		{"ConsoleSessions", testConsoleSessions},
		{"VEXDocuments", testVEXDocuments},
		{"Uploads", testUploads},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(t0)
			tt.run(t, open(t, clock.Now), clock)
		})
	}
}

func submit(t *testing.T, db store.Store, digests ...string) {
	t.Helper()
	for _, d := range digests {
		if _, _, err := db.SubmitImage(context.Background(), buildgate.Submission{Digest: d, PullRef: "r.example/x@" + d, Source: "registry"}); err != nil {
			t.Fatal(err)
		}
	}
}

func claim(t *testing.T, db store.Store, worker string) *buildgate.Job {
	t.Helper()
	j, err := db.ClaimJob(context.Background(), worker, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func testSubmitDedupes(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	sub := buildgate.Submission{Digest: "sha256:a", Tag: "r/x:1", PullRef: "r/x@sha256:a", Source: "registry", Annotations: map[string]string{"team": "a"}}
	_, queued, err := db.SubmitImage(ctx, sub)
	if err != nil || !queued {
		t.Fatalf("first submit: queued=%v err=%v", queued, err)
	}
	if _, queued, _ := db.SubmitImage(ctx, sub); queued {
		t.Fatal("a queued image was queued twice")
	}
	j := claim(t, db, "w")
	if err := db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: j.Digest}, SBOM: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sub.Tag = "r/x:2"
	img, queued, err := db.SubmitImage(ctx, sub)
	if err != nil || queued || img.Status != buildgate.StatusAnalyzed || len(img.Tags) != 2 || img.Annotations["team"] != "a" {
		t.Fatalf("second tag: queued=%v img=%+v err=%v", queued, img, err)
	}
	sub.Force = true
	if _, queued, _ := db.SubmitImage(ctx, sub); !queued {
		t.Fatal("force did not queue the image again")
	}
	// A failed image is queued again on resubmit.
	j = claim(t, db, "w")
	if err := db.FailImage(ctx, j.Digest, "boom"); err != nil {
		t.Fatal(err)
	}
	if img, _ := db.Image(ctx, j.Digest); img.Status != buildgate.StatusFailed || img.Error != "boom" {
		t.Fatalf("failed image = %+v", img)
	}
	sub.Force = false
	if _, queued, _ := db.SubmitImage(ctx, sub); !queued {
		t.Fatal("a failed image was not queued again")
	}
}

// testConcurrentSubmits: clients of several gates submitting one new
// digest at once all succeed, and exactly one of them queues it.
func testConcurrentSubmits(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	queuedBy := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, queued, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:a", Tag: fmt.Sprintf("r/x:%d", i), Source: "registry"})
			if err != nil {
				t.Error(err)
			}
			if queued {
				mu.Lock()
				queuedBy++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	img, err := db.Image(ctx, "sha256:a")
	if err != nil || queuedBy != 1 || len(img.Tags) != 8 {
		t.Fatalf("queued by %d submissions, image %+v %v; want one and 8 tags", queuedBy, img, err)
	}
}

func testImagesListAndDelete(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	for i, tag := range []string{"r/x:1", "r/y:1", "r/x:1"} {
		clock.Advance(time.Second)
		if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: fmt.Sprintf("sha256:%d", i), Tag: tag, Source: "registry"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.ListImages(ctx, "", "")
	if err != nil || len(all) != 3 || all[0].Digest != "sha256:2" {
		t.Fatalf("all images, newest first = %+v %v", all, err)
	}
	if !all[0].CreatedAt.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("created at %s, want the store's clock %s", all[0].CreatedAt, t0.Add(3*time.Second))
	}
	byTag, _ := db.ListImages(ctx, "r/x:1", "")
	if len(byTag) != 2 {
		t.Errorf("by tag = %+v", byTag)
	}
	claim(t, db, "w")
	if q, _ := db.ListImages(ctx, "", buildgate.StatusQueued); len(q) != 2 {
		t.Errorf("queued = %+v", q)
	}
	if q, a, err := db.QueueDepth(ctx); q != 2 || a != 1 || err != nil {
		t.Errorf("queue depth = %d queued, %d analyzing, %v", q, a, err)
	}
	if err := db.DeleteImage(ctx, "sha256:1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteImage(ctx, "sha256:1"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("deleting twice: %v", err)
	}
	if _, err := db.Image(ctx, "sha256:1"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("a deleted image: %v", err)
	}
}

func testClaimIsExclusive(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	const n = 20
	for i := range n {
		submit(t, db, fmt.Sprintf("sha256:%02d", i))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := db.ClaimJob(ctx, fmt.Sprint("w", w), time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				seen[j.Digest]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d of %d jobs", len(seen), n)
	}
	for d, c := range seen {
		if c != 1 {
			t.Errorf("%s claimed %d times", d, c)
		}
	}
	if q, a, _ := db.QueueDepth(ctx); q != 0 || a != n {
		t.Fatalf("queue depth = %d queued, %d analyzing", q, a)
	}
}

func testLeases(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a", "sha256:b")
	a := claim(t, db, "gate1/0")
	if a == nil || a.Digest != "sha256:a" || a.Attempts != 1 {
		t.Fatalf("first claim = %+v", a)
	}
	b := claim(t, db, "gate1/1")
	if b == nil || b.Digest != "sha256:b" {
		t.Fatalf("second claim = %+v", b)
	}
	// A replica that starts while gate1 lives takes nothing gate1 holds.
	clock.Advance(40 * time.Second)
	if j := claim(t, db, "gate2/0"); j != nil {
		t.Fatalf("a live lease was taken: %+v", j)
	}
	// gate1 renews a's lease; b's runs out (gate1 died while holding it).
	if err := db.ExtendLease(ctx, a.Digest, "gate1/0", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.ExtendLease(ctx, a.Digest, "gate2/0", time.Minute); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("another worker renewed a's lease: %v", err)
	}
	clock.Advance(21 * time.Second)
	j := claim(t, db, "gate2/0")
	if j == nil || j.Digest != "sha256:b" || j.Attempts != 2 {
		t.Fatalf("after b's lease ran out = %+v", j)
	}
	if j := claim(t, db, "gate2/1"); j != nil {
		t.Fatalf("a renewed lease was taken: %+v", j)
	}
	if err := db.ExtendLease(ctx, b.Digest, "gate1/1", time.Minute); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Errorf("the worker that lost b renewed it: %v", err)
	}
	// A worker that stops releases its job: it is queued again at once,
	// without counting the attempt.
	if err := db.ReleaseJob(ctx, a.Digest, "gate1/0"); err != nil {
		t.Fatal(err)
	}
	if img, _ := db.Image(ctx, a.Digest); img.Status != buildgate.StatusQueued {
		t.Fatalf("released image = %+v", img)
	}
	if j := claim(t, db, "gate2/1"); j == nil || j.Digest != a.Digest || j.Attempts != 1 {
		t.Fatalf("claim after release = %+v", j)
	}
	if err := db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: a.Digest}, SBOM: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if j := claim(t, db, "gate3/0"); j == nil || j.Digest != b.Digest {
		t.Fatalf("an analysed image was claimed, or b was not: %+v", j)
	}
	if j := claim(t, db, "gate3/1"); j != nil {
		t.Fatalf("an analysed image was claimed: %+v", j)
	}
}

func testAttemptsLimit(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a")
	for i := 1; i <= 3; i++ {
		j, err := db.ClaimJob(ctx, fmt.Sprintf("gate%d/0", i), time.Minute, 3)
		if err != nil || j == nil || j.Attempts != i {
			t.Fatalf("claim %d = %+v %v", i, j, err)
		}
		clock.Advance(2 * time.Minute) // the worker dies
	}
	j, err := db.ClaimJob(ctx, "gate4/0", time.Minute, 3)
	if err != nil || j != nil {
		t.Fatalf("claimed after the last attempt: %+v %v", j, err)
	}
	img, _ := db.Image(ctx, "sha256:a")
	want := "gave up after 3 attempts: attempt 2 was interrupted: worker gate2/0 stopped renewing its lease"
	if img.Status != buildgate.StatusFailed || img.Error != want {
		t.Fatalf("image = %s %q, want failed %q", img.Status, img.Error, want)
	}
	// A resubmit starts over.
	if _, queued, _ := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:a", Source: "registry"}); !queued {
		t.Fatal("a failed image was not queued again")
	}
	if j := claim(t, db, "gate4/0"); j == nil || j.Attempts != 1 {
		t.Fatalf("claim after resubmit = %+v", j)
	}
}

func testAnalysisRoundTrip(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a")
	claim(t, db, "w")
	built := t0.Add(-24 * time.Hour)
	a := &buildgate.Analysis{
		Facts: buildgate.Facts{Digest: "sha256:a", Metadata: buildgate.Metadata{Distro: "debian"},
			Packages: []buildgate.Package{{Name: "openssl", Version: "1.1"}},
			Matches:  []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}},
		SBOM:    []byte(`{"artifacts":[]}`),
		DBBuilt: built, MatchedAt: t0,
	}
	if err := db.SaveAnalysis(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.Analysis(ctx, "sha256:a")
	if err != nil || string(got.SBOM) != `{"artifacts":[]}` || len(got.Packages) != 1 || got.Packages[0].Name != "openssl" ||
		len(got.Matches) != 1 || !got.DBBuilt.Equal(built) || !got.MatchedAt.Equal(t0) || got.Metadata.Distro != "debian" {
		t.Fatalf("analysis = %+v %v", got, err)
	}
	img, _ := db.Image(ctx, "sha256:a")
	if img.Status != buildgate.StatusAnalyzed || img.AnalyzedAt == nil || !img.AnalyzedAt.Equal(t0) {
		t.Fatalf("image = %+v", img)
	}
	if err := db.UpdateMatches(ctx, "sha256:a", nil, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ms, _ := db.ImageMatches(ctx, "sha256:a"); len(ms) != 0 {
		t.Errorf("matches after update = %+v", ms)
	}
	got, _ = db.Analysis(ctx, "sha256:a")
	if !got.DBBuilt.Equal(t0) || len(got.Packages) != 1 {
		t.Errorf("after update = %+v", got)
	}
	if err := db.UpdateMatches(ctx, "sha256:none", nil, t0, t0); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("updating an unknown analysis: %v", err)
	}
	if ds, _ := db.AnalyzedDigests(ctx); len(ds) != 1 || ds[0] != "sha256:a" {
		t.Errorf("analysed digests = %v", ds)
	}
	if _, err := db.Analysis(ctx, "sha256:none"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("unknown analysis: %v", err)
	}
}

// testFactsEncodedAhead: an analysis whose facts EncodeFacts encoded
// while it was matched is stored as SaveAnalysis stores it without, with
// the matches found after; an encoding of another analysis is not taken.
func testFactsEncodedAhead(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a", "sha256:b")
	claim(t, db, "w")
	claim(t, db, "w")
	analysisOf := func(digest, pkg string) *buildgate.Analysis {
		return &buildgate.Analysis{
			Facts: buildgate.Facts{Digest: digest, Metadata: buildgate.Metadata{Distro: "debian"},
				Packages: []buildgate.Package{{Name: pkg, Version: "1.1"}},
				Files:    []buildgate.File{{Path: "/etc/" + pkg, SHA256: "00"}},
				Secrets:  []buildgate.Secret{{Rule: "key", Path: "/root/" + pkg, Line: 2}}},
			SBOM: []byte(`{"artifacts":[{"name":"` + pkg + `"}]}`),
		}
	}
	a := analysisOf("sha256:a", "openssl")
	enc, err := db.EncodeFacts(a)
	if err != nil {
		t.Fatal(err)
	}
	a.Encoded = enc
	a.Matches = []buildgate.Match{{VulnerabilityID: "CVE-1", Severity: buildgate.SeverityHigh}}
	b := analysisOf("sha256:b", "zlib")
	b.Encoded = enc // a's: not b's
	for _, an := range []*buildgate.Analysis{a, b} {
		if err := db.SaveAnalysis(ctx, an); err != nil {
			t.Fatal(err)
		}
		got, err := db.Analysis(ctx, an.Digest)
		if err != nil {
			t.Fatal(err)
		}
		want := an.Packages[0].Name
		if string(got.SBOM) != string(an.SBOM) || len(got.Packages) != 1 || got.Packages[0].Name != want ||
			len(got.Files) != 1 || got.Files[0].Path != "/etc/"+want || len(got.Secrets) != 1 || got.Secrets[0].Path != "/root/"+want ||
			got.Metadata.Distro != "debian" || len(got.Matches) != len(an.Matches) {
			t.Errorf("%s stored as %+v, want %+v", an.Digest, got, an)
		}
	}
}

// testPackageLists: an analysis is stored with its package list or
// without one (removing the one it had), a list is kept for an analysed
// image only, and goes with its image.
func testPackageLists(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a")
	a := &buildgate.Analysis{Facts: buildgate.Facts{Digest: "sha256:a"}, SBOM: []byte(`{}`), PackageList: []byte(`{"version":1}`), MatchedAt: t0}
	if err := db.SaveAnalysis(ctx, a); err != nil {
		t.Fatal(err)
	}
	if l, err := db.PackageList(ctx, "sha256:a"); err != nil || string(l) != `{"version":1}` {
		t.Fatalf("package list = %q %v", l, err)
	}
	a.PackageList = nil
	if err := db.SaveAnalysis(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PackageList(ctx, "sha256:a"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Fatalf("package list of an analysis saved without one: %v, want not found", err)
	}
	if err := db.SavePackageList(ctx, "sha256:a", []byte(`{"version":2}`)); err != nil {
		t.Fatal(err)
	}
	if l, err := db.PackageList(ctx, "sha256:a"); err != nil || string(l) != `{"version":2}` {
		t.Fatalf("package list = %q %v", l, err)
	}
	if err := db.SavePackageList(ctx, "sha256:none", []byte(`{}`)); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("package list of an unknown analysis: %v, want not found", err)
	}
	if err := db.DeleteImage(ctx, "sha256:a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PackageList(ctx, "sha256:a"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("package list of a deleted image: %v, want not found", err)
	}
}

func testPolicyVersions(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	if _, err := db.ActivePolicy(ctx); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Fatalf("active policy of an empty store: %v", err)
	}
	for _, p := range []struct {
		id, name, bundle string
		activate         bool
	}{{"a", "A", `{"v":1}`, true}, {"b", "B", `{"v":1}`, false}} {
		if _, err := db.SavePolicy(ctx, p.id, p.name, []byte(p.bundle), p.activate); err != nil {
			t.Fatal(err)
		}
	}
	p, err := db.SavePolicy(ctx, "a", "A2", []byte(`{"v":2}`), false)
	if err != nil || p.Version != 2 || !p.Active || string(p.Bundle) != `{"v":2}` || p.Name != "A2" {
		t.Fatalf("after update: %+v %v", p, err)
	}
	if err := db.ActivatePolicy(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.ActivatePolicy(ctx, "nosuch"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("activating an unknown policy: %v", err)
	}
	if act, _ := db.ActivePolicy(ctx); act.ID != "b" {
		t.Fatalf("active = %s", act.ID)
	}
	if list, _ := db.ListPolicies(ctx); len(list) != 2 {
		t.Errorf("policies = %+v", list)
	}
	if n, _ := db.CountPolicies(ctx); n != 2 {
		t.Errorf("count = %d", n)
	}
	if err := db.DeletePolicy(ctx, "b"); buildgate.ErrorCode(err) != buildgate.EINVALID {
		t.Fatalf("deleting the active policy: %v", err)
	}
	vs, _ := db.PolicyVersions(ctx, "a")
	if len(vs) != 2 || vs[0].Version != 2 || string(vs[1].Bundle) != `{"v":1}` {
		t.Fatalf("versions = %+v", vs)
	}
	if err := db.DeletePolicy(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Policy(ctx, "a"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Fatalf("deleted policy still there: %v", err)
	}
}

// testConcurrentPolicySaves: gates saving one new policy at once (replicas
// installing the default at their first start) all succeed, each with its
// own version.
func testConcurrentPolicySaves(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.SavePolicy(ctx, "default", "Default", []byte(`{"v":1}`), true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	vs, err := db.PolicyVersions(ctx, "default")
	if err != nil || len(vs) != 4 || vs[0].Version != 4 || vs[3].Version != 1 {
		t.Fatalf("versions = %+v %v", vs, err)
	}
	if act, err := db.ActivePolicy(ctx); err != nil || act.ID != "default" || act.Version != 4 {
		t.Fatalf("active = %+v %v", act, err)
	}
}

func testEvaluations(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	submit(t, db, "sha256:a")
	e := buildgate.StoredEvaluation{Digest: "sha256:a", Tag: "r/x:1", PolicyID: "p", PolicyVersion: 1, FinalAction: "stop",
		DBBuilt: t0, EvaluatedAt: t0, Result: []byte(`{"final":"stop"}`)}
	if err := db.SaveEvaluation(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.PolicyVersion, e.FinalAction, e.EvaluatedAt, e.Result = 2, "go", t0.Add(time.Minute), []byte(`{"final":"go"}`)
	if err := db.SaveEvaluation(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := db.Evaluation(ctx, "sha256:a", "r/x:1", "p")
	if err != nil || got.PolicyVersion != 2 || got.FinalAction != "go" || string(got.Result) != `{"final":"go"}` || !got.DBBuilt.Equal(t0) {
		t.Fatalf("evaluation = %+v %v", got, err)
	}
	if got, err := db.LatestEvaluation(ctx, "sha256:a", "r/other:1", "p"); err != nil || got.Tag != "r/x:1" {
		t.Errorf("latest evaluation under another tag = %+v %v", got, err)
	}
	if _, err := db.Evaluation(ctx, "sha256:a", "r/x:2", "p"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("unknown evaluation: %v", err)
	}
}

func testRegistriesCRUD(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	c := buildgate.RegistryCredential{Registry: "gcr.io/my-project", Name: "gcr", Username: "_json_key", Type: buildgate.RegistryTypeDockerV2, VerifyTLS: true}
	if err := db.CreateRegistry(ctx, c, "v1:aa:sealed-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRegistry(ctx, c, "v1:aa:sealed-2"); buildgate.ErrorCode(err) != buildgate.ECONFLICT {
		t.Fatalf("second create: %v, want a conflict", err)
	}
	got, err := db.Registry(ctx, c.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != c.Username || !got.VerifyTLS || got.PasswordSetAt.IsZero() || got.CreatedAt.IsZero() {
		t.Fatalf("record %+v", got)
	}
	set := got.PasswordSetAt

	c.Username, c.VerifyTLS, c.CACert = "other", false, "PEM"
	if err := db.UpdateRegistry(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Registry(ctx, c.Registry)
	if got.Username != "other" || got.VerifyTLS || got.CACert != "PEM" || !got.PasswordSetAt.Equal(set) {
		t.Fatalf("after an update keeping the secret: %+v", got)
	}
	if s, _ := db.RegistrySecret(ctx, c.Registry); s != "v1:aa:sealed-1" {
		t.Fatalf("secret %q after an update that kept it", s)
	}
	if err := db.UpdateRegistry(ctx, c, "v1:aa:sealed-3"); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.RegistrySecret(ctx, c.Registry); s != "v1:aa:sealed-3" {
		t.Fatalf("secret %q after an update that set it", s)
	}
	if err := db.CreateRegistry(ctx, buildgate.RegistryCredential{Registry: "docker.io", Type: buildgate.RegistryTypeDockerV2}, "v1:aa:hub"); err != nil {
		t.Fatal(err)
	}
	list, _ := db.ListRegistries(ctx)
	if len(list) != 2 || list[0].Registry != "docker.io" || list[1].Registry != "gcr.io/my-project" {
		t.Fatalf("list %+v", list)
	}
	secrets, _ := db.RegistrySecrets(ctx)
	if len(secrets) != 2 || secrets["docker.io"] != "v1:aa:hub" {
		t.Fatalf("secrets %v", secrets)
	}
	if err := db.DeleteRegistry(ctx, "docker.io"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := db.Registry(ctx, "docker.io"); return err }(),
		"secret": func() error { _, err := db.RegistrySecret(ctx, "docker.io"); return err }(),
		"delete": db.DeleteRegistry(ctx, "docker.io"),
		"update": db.UpdateRegistry(ctx, buildgate.RegistryCredential{Registry: "docker.io"}, ""),
	} {
		if buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
			t.Errorf("%s of a deleted record: %v, want not found", name, err)
		}
	}
}

func testResealAllOrNothing(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	for _, r := range []string{"a.example", "b.example", "c.example"} {
		if err := db.CreateRegistry(ctx, buildgate.RegistryCredential{Registry: r, Type: buildgate.RegistryTypeDockerV2}, "old-"+r); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.ResealSecrets(ctx, func(s string, _ secret.Record) (string, error) {
		if s == "old-b.example" {
			return "", errors.New("cannot open")
		}
		return "new-" + s, nil
	})
	if err == nil {
		t.Fatal("ResealSecrets succeeded")
	}
	secrets, _ := db.RegistrySecrets(ctx)
	for r, s := range secrets {
		if s != "old-"+r {
			t.Fatalf("after a failed reseal %s holds %q", r, s)
		}
	}
	// Each value comes with the record it is sealed for; a value given
	// back unchanged is neither written nor counted.
	n, err := db.ResealSecrets(ctx, func(s string, rec secret.Record) (string, error) {
		if want := secret.RegistryPassword(strings.TrimPrefix(s, "old-")); rec != want {
			t.Errorf("%q came with record %v, want %v", s, rec, want)
		}
		if s == "old-c.example" {
			return s, nil
		}
		return "new-" + s, nil
	})
	if err != nil || n != 2 {
		t.Fatalf("reseal: %d, %v, want 2 rewritten", n, err)
	}
	secrets, _ = db.RegistrySecrets(ctx)
	for r, s := range secrets {
		want := "new-old-" + r
		if r == "c.example" {
			want = "old-" + r
		}
		if s != want {
			t.Fatalf("after a reseal %s holds %q, want %q", r, s, want)
		}
	}
}

func testVEXDocuments(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	if docs, err := db.VEXDocuments(ctx); err != nil || len(docs) != 0 {
		t.Fatalf("empty store: %v %+v", err, docs)
	}
	if ids, err := db.VEXDocumentIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("empty store: %v %v", err, ids)
	}
	older := buildgate.VEXDocument{ID: "a", Name: "older", Scope: "*", Format: "openvex", Statements: 2, Document: []byte(`{"x": 1}`), CreatedAt: t0}
	newer := buildgate.VEXDocument{ID: "b", Name: "newer", Scope: "ghcr.io/acme/*", Format: "cyclonedx", Statements: 1, Document: []byte(`{"y": 2}`), CreatedAt: t0.Add(time.Minute)}
	for _, d := range []buildgate.VEXDocument{older, newer} {
		if err := db.SaveVEXDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := db.VEXDocumentIDs(ctx); err != nil || strings.Join(ids, ",") != "a,b" {
		t.Fatalf("IDs: %v %v, want a,b (sorted)", ids, err)
	}
	docs, err := db.VEXDocuments(ctx)
	if err != nil || len(docs) != 2 {
		t.Fatalf("list: %v %+v", err, docs)
	}
	for i, want := range []buildgate.VEXDocument{newer, older} {
		got := docs[i]
		if got.ID != want.ID || got.Name != want.Name || got.Scope != want.Scope || got.Format != want.Format ||
			got.Statements != want.Statements || string(got.Document) != string(want.Document) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("document %d = %+v, want %+v (newest first)", i, got, want)
		}
	}
	if err := db.DeleteVEXDocument(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteVEXDocument(ctx, "b"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Fatalf("deleting a deleted document: %v", err)
	}
	if docs, _ := db.VEXDocuments(ctx); len(docs) != 1 || docs[0].ID != "a" {
		t.Fatalf("after delete: %+v", docs)
	}
	if ids, err := db.VEXDocumentIDs(ctx); err != nil || strings.Join(ids, ",") != "a" {
		t.Fatalf("IDs after delete: %v %v", ids, err)
	}
}
