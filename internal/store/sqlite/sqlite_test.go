package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/buildgate/buildgate/internal/image"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSubmitDedupesByDigest(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	sub := image.Submission{Digest: "sha256:a", Tag: "r/x:1", PullRef: "r/x@sha256:a", Source: "registry"}
	_, queued, err := db.SubmitImage(ctx, sub)
	if err != nil || !queued {
		t.Fatalf("first submit: queued=%v err=%v", queued, err)
	}
	j, _ := db.ClaimJob(ctx, "w")
	if err := db.SaveAnalysis(ctx, &image.Analysis{Facts: image.Facts{Digest: j.Digest}, SBOM: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sub.Tag = "r/x:2"
	img, queued, err := db.SubmitImage(ctx, sub)
	if err != nil || queued || img.Status != image.StatusAnalyzed || len(img.Tags) != 2 {
		t.Fatalf("second tag: queued=%v img=%+v err=%v", queued, img, err)
	}
	sub.Force = true
	if _, queued, _ := db.SubmitImage(ctx, sub); !queued {
		t.Fatal("force did not queue the image again")
	}
	// A failed image is queued again on resubmit.
	j, _ = db.ClaimJob(ctx, "w")
	db.FailImage(ctx, j.Digest, "boom")
	sub.Force = false
	if _, queued, _ := db.SubmitImage(ctx, sub); !queued {
		t.Fatal("a failed image was not queued again")
	}
}

func TestClaimIsExclusiveAndRequeue(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	const n = 20
	for i := range n {
		if _, _, err := db.SubmitImage(ctx, image.Submission{Digest: fmt.Sprintf("sha256:%02d", i), Source: "registry"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := db.ClaimJob(ctx, fmt.Sprint("w", w))
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
	q, a, _ := db.QueueDepth(ctx)
	if q != 0 || a != n {
		t.Fatalf("queue depth = %d queued, %d analyzing", q, a)
	}
	requeued, err := db.RequeueInterrupted(ctx)
	if err != nil || requeued != n {
		t.Fatalf("requeued %d, %v", requeued, err)
	}
	if j, _ := db.ClaimJob(ctx, "w"); j == nil || j.Attempts != 2 {
		t.Fatalf("a requeued job = %+v, want a second attempt", j)
	}
}

func TestPolicyVersionsAndActive(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if _, err := db.ActivePolicy(ctx); image.ErrorCode(err) != image.ENOTFOUND {
		t.Fatalf("active policy of an empty store: %v", err)
	}
	db.SavePolicy(ctx, "a", "A", []byte(`{"v":1}`), true)
	db.SavePolicy(ctx, "b", "B", []byte(`{"v":1}`), false)
	p, _ := db.SavePolicy(ctx, "a", "A2", []byte(`{"v":2}`), false)
	if p.Version != 2 || !p.Active || string(p.Bundle) != `{"v":2}` {
		t.Fatalf("after update: %+v", p)
	}
	if err := db.ActivatePolicy(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	act, _ := db.ActivePolicy(ctx)
	if act.ID != "b" {
		t.Fatalf("active = %s", act.ID)
	}
	if err := db.DeletePolicy(ctx, "b"); image.ErrorCode(err) != image.EINVALID {
		t.Fatalf("deleting the active policy: %v", err)
	}
	vs, _ := db.PolicyVersions(ctx, "a")
	if len(vs) != 2 || vs[0].Version != 2 {
		t.Fatalf("versions = %+v", vs)
	}
	if err := db.DeletePolicy(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Policy(ctx, "a"); image.ErrorCode(err) != image.ENOTFOUND {
		t.Fatalf("deleted policy still there: %v", err)
	}
}
