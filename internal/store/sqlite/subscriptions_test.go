package sqlite

import (
	"context"
	"testing"

	"github.com/buildgate/buildgate/internal/image"
)

func TestSubscriptions(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	const key = "docker.io/nginx:latest"
	types := image.SubscriptionTypes()
	if err := db.EnsureSubscriptions(ctx, key, types, nil); err != nil {
		t.Fatal(err)
	}
	// Ensuring again creates nothing new and activates what is asked.
	if err := db.EnsureSubscriptions(ctx, key, types, []string{image.SubscriptionTagUpdate}); err != nil {
		t.Fatal(err)
	}
	subs, err := db.ListSubscriptions(ctx, key, "")
	if err != nil || len(subs) != 4 {
		t.Fatalf("list = %+v %v", subs, err)
	}
	for _, s := range subs {
		if s.Active != (s.Type == image.SubscriptionTagUpdate) || s.ID == "" || s.CreatedAt.IsZero() {
			t.Errorf("subscription %+v", s)
		}
	}
	vu, err := db.ListSubscriptions(ctx, key, image.SubscriptionVulnUpdate)
	if err != nil || len(vu) != 1 {
		t.Fatalf("by type = %+v %v", vu, err)
	}
	s, err := db.SetSubscriptionActive(ctx, vu[0].ID, true)
	if err != nil || !s.Active {
		t.Fatalf("activate = %+v %v", s, err)
	}
	if _, err := db.AddSubscription(ctx, key, image.SubscriptionVulnUpdate, false); image.ErrorCode(err) != image.ECONFLICT {
		t.Errorf("adding a duplicate: %v", err)
	}
	added, err := db.AddSubscription(ctx, "docker.io/other:1", image.SubscriptionPolicyEval, true)
	if err != nil || !added.Active {
		t.Fatalf("add = %+v %v", added, err)
	}
	if err := db.DeleteSubscription(ctx, added.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Subscription(ctx, added.ID); image.ErrorCode(err) != image.ENOTFOUND {
		t.Errorf("deleted subscription: %v", err)
	}
	if _, err := db.SetSubscriptionActive(ctx, "nosuch", true); image.ErrorCode(err) != image.ENOTFOUND {
		t.Errorf("unknown subscription: %v", err)
	}
	all, _ := db.ListSubscriptions(ctx, "", "")
	if len(all) != 4 {
		t.Errorf("all = %d", len(all))
	}
}

func TestImageOriginAndMetadata(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	sub := image.Submission{Digest: "sha256:a", Tag: "r.example/x:1", PullRef: "r.example/x@sha256:a", IndexDigest: "sha256:i", Source: "registry"}
	if _, _, err := db.SubmitImage(ctx, sub); err != nil {
		t.Fatal(err)
	}
	o, err := db.ImageOrigin(ctx, "sha256:a")
	if err != nil || o.IndexDigest != "sha256:i" || o.PullRef != sub.PullRef || o.TagsSeen["r.example/x:1"].IsZero() {
		t.Fatalf("origin = %+v %v", o, err)
	}
	if _, err := db.ImageMetadata(ctx, "sha256:a"); image.ErrorCode(err) != image.ENOTFOUND {
		t.Errorf("metadata before analysis: %v", err)
	}
	j, _ := db.ClaimJob(ctx, "w")
	md := image.Metadata{ImageID: "sha256:c", Distro: "debian", LayerCount: 2}
	if err := db.SaveAnalysis(ctx, &image.Analysis{Facts: image.Facts{Digest: j.Digest, Metadata: md}, SBOM: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	got, err := db.ImageMetadata(ctx, "sha256:a")
	if err != nil || got.ImageID != "sha256:c" || got.Distro != "debian" || got.LayerCount != 2 {
		t.Fatalf("metadata = %+v %v", got, err)
	}
	if _, err := db.ImageOrigin(ctx, "sha256:nosuch"); image.ErrorCode(err) != image.ENOTFOUND {
		t.Errorf("unknown image: %v", err)
	}
}
