package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/store/sqlite"
	"github.com/buildgate/buildgate/internal/testclock"
)

// countingStore counts the analyses read (each a fresh evaluation) and,
// when hideStored is set, finds no stored verdict.
type countingStore struct {
	*sqlite.DB
	mu         sync.Mutex
	analyses   int
	hideStored bool
}

func (s *countingStore) Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error) {
	s.mu.Lock()
	s.analyses++
	s.mu.Unlock()
	return s.DB.Analysis(ctx, digest)
}

func (s *countingStore) Evaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error) {
	if s.hideStored {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "hidden")
	}
	return s.DB.Evaluation(ctx, digest, tag, policyID)
}

func (s *countingStore) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.analyses
}

// fakeDB describes a DB whose distros a test changes.
type fakeDB struct {
	mu   sync.Mutex
	info buildgate.DBInfo
}

func (d *fakeDB) Info() buildgate.DBInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

func (d *fakeDB) set(info buildgate.DBInfo) {
	d.mu.Lock()
	d.info = info
	d.mu.Unlock()
}

// checkBundle stops on critical vulnerabilities and on an image whose
// distro the DB has no data for; allowlist is the JSON of the items of
// its one allowlist.
func checkBundle(allowlist string) []byte {
	return fmt.Appendf(nil, `{"id": "b", "name": "b", "version": "1_0",
  "policies": [{"id": "p", "name": "p", "version": "1_0", "rules": [
    {"id": "crit", "gate": "vulnerabilities", "trigger": "package", "action": "STOP",
     "params": [{"name": "package_type", "value": "all"}, {"name": "severity_comparison", "value": ">="}, {"name": "severity", "value": "critical"}]},
    {"id": "nodata", "gate": "vulnerabilities", "trigger": "vulnerability_data_unavailable", "action": "STOP", "params": []}]}],
  "whitelists": [{"id": "w", "name": "w", "version": "1_0", "items": %s}],
  "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}, "policy_id": "p", "whitelist_ids": ["w"]}],
  "whitelisted_images": [], "blacklisted_images": []}`, allowlist)
}

// TestCheckAnswersFromStoredVerdict checks that a check answers from the
// stored verdict while nothing it depends on changed, that the answer
// equals a fresh evaluation, and that it evaluates again when an
// allowlist item expires (on the gate's clock), the policy changes, the
// DB changes or the image is matched again.
func TestCheckAnswersFromStoredVerdict(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	now := clk.Now() // the start
	clock, advance := clk.Now, clk.Advance
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &countingStore{DB: db}
	vdb := &fakeDB{info: buildgate.DBInfo{SchemaVersion: "v6", Built: now.Add(-time.Hour), Distros: []string{"debian:12"}}}
	v := NewVerdicts(store, vdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.Now = clock

	digest := "sha256:" + strings.Repeat("ab", 32)
	const tag = "r.example/app:1"
	if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: digest, Tag: tag, Source: "sbom"}); err != nil {
		t.Fatal(err)
	}
	crit := buildgate.Match{VulnerabilityID: "CVE-2026-1", Severity: buildgate.SeverityOf("critical"), PackageName: "openssl", PackageVersion: "3.0.1", PackageType: "deb"}
	if err := db.SaveAnalysis(ctx, &buildgate.Analysis{
		Facts: buildgate.Facts{Digest: digest, Metadata: buildgate.Metadata{Distro: "debian", DistroVersion: "12"},
			Packages: []buildgate.Package{{Name: "openssl", Version: "3.0.1", Type: "deb"}}, Matches: []buildgate.Match{crit}},
		SBOM: []byte(`{}`), DBBuilt: now.Add(-time.Hour), MatchedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	expires := now.Add(time.Hour).Format(time.RFC3339)
	if _, err := v.Save(ctx, "", checkBundle(`[{"id": "i1", "gate": "vulnerabilities", "trigger_id": "CVE-2026-1+openssl", "expires_on": "`+expires+`"}]`), true); err != nil {
		t.Fatal(err)
	}

	check := func(want string, fresh bool) *policy.Verdict {
		t.Helper()
		before := store.reads()
		got, err := v.Check(ctx, digest, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if got.FinalAction.String() != want {
			t.Fatalf("final action = %s, want %s: %+v", got.FinalAction, want, got.Findings)
		}
		if evaluated := store.reads() > before; evaluated != fresh {
			t.Fatalf("evaluated = %v, want %v", evaluated, fresh)
		}
		return got
	}
	first := check("go", true) // allowlisted until the item expires
	cached := check("go", false)
	// A gate with an empty cache answers from the store alike.
	other := NewVerdicts(store, vdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	other.Now = clock
	fromStore, err := other.Check(ctx, digest, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if store.reads() != 1 {
		t.Fatalf("a second gate evaluated again (%d analyses read)", store.reads())
	}
	// And both equal a fresh evaluation, but for when it was made.
	advance(time.Minute)
	store.hideStored = true
	third := NewVerdicts(store, vdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	third.Now = clock
	fresh, err := third.Check(ctx, digest, "", "")
	store.hideStored = false
	if err != nil {
		t.Fatal(err)
	}
	if !fresh.EvaluatedAt.After(first.EvaluatedAt) {
		t.Fatalf("the fresh evaluation was not made anew: %s", fresh.EvaluatedAt)
	}
	for _, vd := range []*policy.Verdict{cached, fromStore} {
		if a, b := verdictJSON(t, vd, fresh.EvaluatedAt), verdictJSON(t, fresh, fresh.EvaluatedAt); a != b {
			t.Fatalf("stored verdict\n%s\ndiffers from a fresh one\n%s", a, b)
		}
	}
	check("go", false) // the fresh gate stored the same inputs

	// The allowlist item expires one hour after the first check.
	advance(time.Hour - time.Minute - time.Nanosecond)
	check("go", false)
	advance(time.Nanosecond)
	stopped := check("stop", true)
	if f := stopped.Findings[0]; f.Expired == nil || f.Allowlisted != nil {
		t.Fatalf("finding %+v: want the expired item", f)
	}
	check("stop", false)

	// A new version of the policy: the item no longer expires.
	if _, err := v.Save(ctx, "", checkBundle(`[{"id": "i1", "gate": "vulnerabilities", "trigger_id": "CVE-2026-1+openssl"}]`), true); err != nil {
		t.Fatal(err)
	}
	check("go", true)
	check("go", false)

	// The DB changes: it has no data for debian 12 any more.
	vdb.set(buildgate.DBInfo{SchemaVersion: "v6", Built: clk.Now(), Distros: []string{"debian:11"}})
	check("stop", true)
	check("stop", false)
	vdb.set(buildgate.DBInfo{SchemaVersion: "v6", Built: clk.Now(), Distros: []string{"debian:11", "debian:12"}})
	check("go", true)

	// A policy without the allowlist, then a re-match that finds nothing.
	if _, err := v.Save(ctx, "", checkBundle(`[]`), true); err != nil {
		t.Fatal(err)
	}
	check("stop", true)
	advance(time.Second)
	if err := db.UpdateMatches(ctx, digest, nil, clk.Now(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	check("go", true)
	check("go", false)
}

// verdictJSON is a verdict's JSON as if evaluated at at.
func verdictJSON(t *testing.T, v *policy.Verdict, at time.Time) string {
	t.Helper()
	c := *v
	c.EvaluatedAt = at
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
