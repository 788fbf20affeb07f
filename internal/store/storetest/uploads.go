package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/testclock"
)

// testUploads: an upload larger than one chunk reads back whole; one ID
// is stored once; a deleted upload is gone with its chunks; pruning
// deletes the uploads older than the grace that no queued or analysing
// image names, and only those.
func testUploads(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ids := func() []string {
		t.Helper()
		got, err := db.UploadIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	put := func(id, digest string, body []byte) {
		t.Helper()
		if err := db.PutUpload(ctx, id, digest, bytes.NewReader(body)); err != nil {
			t.Fatalf("PutUpload %s: %v", id, err)
		}
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("empty store holds uploads %v", got)
	}
	body := bytes.Repeat([]byte("image archive "), 250_000) // 3.5 MB: several chunks
	put("sha256-a-1", "sha256:a", body)
	var got bytes.Buffer
	if err := db.ReadUpload(ctx, "sha256-a-1", &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("ReadUpload: %d bytes, %v; want the %d stored", got.Len(), err, len(body))
	}
	if err := db.PutUpload(ctx, "sha256-a-1", "sha256:a", bytes.NewReader([]byte("other"))); err == nil {
		t.Error("a second upload under one ID was stored")
	}
	if err := db.ReadUpload(ctx, "sha256-b-1", &bytes.Buffer{}); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("reading an upload never stored: %v, want not found", err)
	}

	// A deleted upload is gone, chunks too: its ID takes a new upload.
	if err := db.DeleteUpload(ctx, "sha256-a-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.ReadUpload(ctx, "sha256-a-1", &bytes.Buffer{}); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("reading a deleted upload: %v, want not found", err)
	}
	if err := db.DeleteUpload(ctx, "sha256-a-1"); err != nil {
		t.Errorf("deleting a deleted upload: %v", err)
	}
	put("sha256-a-1", "sha256:a", body[:10])

	// sha256-a-1 is queued, sha256-b-1 analysing, sha256-c-1 was never
	// queued (its gate died), sha256-d-1 was queued and then failed.
	put("sha256-b-1", "sha256:b", []byte("b"))
	put("sha256-c-1", "sha256:c", []byte("c"))
	put("sha256-d-1", "sha256:d", []byte("d"))
	submit := func(d string) {
		t.Helper()
		if _, queued, err := db.SubmitImage(ctx, buildgate.Submission{Digest: "sha256:" + d, Source: "upload", PullRef: "sha256-" + d + "-1"}); err != nil || !queued {
			t.Fatalf("submitting %s: %v %v", d, queued, err)
		}
	}
	submit("b")
	if j, err := db.ClaimJob(ctx, "w", time.Minute, 3); err != nil || j == nil || j.Digest != "sha256:b" {
		t.Fatalf("claim = %+v, %v", j, err)
	}
	submit("a")
	submit("d")
	if err := db.FailImage(ctx, "sha256:d", "catalog failed"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	put("sha256-e-1", "sha256:e", []byte("e")) // stored within the grace
	n, err := db.PruneUploads(ctx, clock.Now().Add(-time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("PruneUploads = %d, %v; want c and d deleted", n, err)
	}
	if got, want := ids(), []string{"sha256-a-1", "sha256-b-1", "sha256-e-1"}; !slices.Equal(got, want) {
		t.Fatalf("after pruning the store holds %v, want %v", got, want)
	}
	// Once the analysis ends, nothing holds the upload.
	if err := db.FailImage(ctx, "sha256:b", "catalog failed"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneUploads(ctx, clock.Now().Add(-time.Minute)); err != nil || n != 1 {
		t.Fatalf("PruneUploads after b failed = %d, %v; want b deleted", n, err)
	}
	if got, want := ids(), []string{"sha256-a-1", "sha256-e-1"}; !slices.Equal(got, want) {
		t.Fatalf("after b failed the store holds %v, want %v", got, want)
	}
}
