package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
)

func TestWorkersNeverClaimSBOMUploads(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:sbom", Source: "sbom"}); err != nil {
		t.Fatal(err)
	}
	if j, err := db.ClaimJob(ctx, "w", time.Minute, 3); err != nil || j != nil {
		t.Fatalf("ClaimJob = %+v, %v; want no job for an SBOM upload", j, err)
	}
	if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:pulled", Source: "registry", PullRef: "r@sha256:pulled"}); err != nil {
		t.Fatal(err)
	}
	if j, err := db.ClaimJob(ctx, "w", time.Minute, 3); err != nil || j == nil || j.Digest != "sha256:pulled" {
		t.Fatalf("ClaimJob = %+v, %v; want the registry image", j, err)
	}
}

func TestPendingWorkSurvivesReopenAndClearsOnlyItsArgument(t *testing.T) {
	path := t.TempDir() + "/b.db"
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetPendingWork(ctx, "rematch", "build-1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if arg, ok, err := db.PendingWork(ctx, "rematch"); err != nil || !ok || arg != "build-1" {
		t.Fatalf("after reopening: PendingWork = %q, %v, %v", arg, ok, err)
	}
	// A newer request replaces the record; clearing the older one keeps it.
	if err := db.SetPendingWork(ctx, "rematch", "build-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClearPendingWork(ctx, "rematch", "build-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if arg, ok, _ := db.PendingWork(ctx, "rematch"); !ok || arg != "build-2" {
		t.Fatalf("after clearing the older request: %q, %v; want build-2 pending", arg, ok)
	}
	if _, err := db.ClearPendingWork(ctx, "rematch", "build-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.PendingWork(ctx, "rematch"); ok {
		t.Fatal("still pending after clearing it")
	}
}

func TestDigestsNotMatchedWith(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	old, cur := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"sha256:a", "sha256:b", "sha256:c"} {
		if _, _, err := db.SubmitImage(ctx, buildgate.Submission{Digest: d, Source: "sbom"}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveAnalysis(ctx, &buildgate.Analysis{Facts: buildgate.Facts{Digest: d}, SBOM: []byte("{}"), DBBuilt: old, MatchedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UpdateMatches(ctx, "sha256:b", nil, cur, cur); err != nil {
		t.Fatal(err)
	}
	got, err := db.DigestsNotMatchedWith(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "sha256:a" || got[1] != "sha256:c" {
		t.Fatalf("DigestsNotMatchedWith = %v, want [sha256:a sha256:c]", got)
	}
}

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
