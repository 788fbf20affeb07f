package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

// TestImageWait: GET /v1/images/{digest}?wait= holds its answer until the
// image's status changes, answers a finished image at once, and refuses a
// wait that is not a duration; WaitAnalyzed sees the verdict through it.
func TestImageWait(t *testing.T) {
	g := startGate(t, nil)
	ref, hold, blobRequests := holdingRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var bad *client.Error
	if _, err := g.c.ImageWaiting(ctx, "sha256:"+strings.Repeat("0", 64), time.Second); !errors.As(err, &bad) || bad.Status != http.StatusNotFound {
		t.Fatalf("waiting on an unknown image: %v, want 404", err)
	}
	var got api.Image
	err := g.c.Do(ctx, http.MethodGet, "/v1/images/sha256:"+strings.Repeat("0", 64)+"?wait=soon", nil, &got)
	if !errors.As(err, &bad) || bad.Status != http.StatusBadRequest || !strings.Contains(bad.Message, `wait must be a duration such as 20s, not "soon"`) {
		t.Fatalf("?wait=soon: %v, want a 400 naming the wait", err)
	}

	sub, err := g.c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the gate to start pulling", time.Minute, func() bool { return blobRequests.Load() > 0 })
	img, err := g.c.Image(ctx, sub.Digest)
	if err != nil || img.Status != api.StatusAnalyzing {
		t.Fatalf("while the pull is held: %+v %v", img, err)
	}
	// Nothing changes while the registry holds the blobs: the answer
	// comes when the wait is over.
	asked := time.Now()
	img, err = g.c.ImageWaiting(ctx, sub.Digest, 300*time.Millisecond)
	if err != nil || img.Status != api.StatusAnalyzing {
		t.Fatalf("waiting while held: %+v %v", img, err)
	}
	if waited := time.Since(asked); waited < 300*time.Millisecond {
		t.Fatalf("the gate answered after %s, before the wait of 300ms was over", waited)
	}

	// A long wait ends with the analysis: WaitAnalyzed asks with ?wait=
	// and returns the finished image.
	done := make(chan *api.Image, 1)
	go func() {
		img, err := g.c.WaitAnalyzed(ctx, sub.Digest, time.Hour, nil)
		if err != nil {
			t.Error(err)
		}
		done <- img
	}()
	hold.Store(false)
	if img := <-done; img == nil || img.Status != api.StatusAnalyzed {
		t.Fatalf("WaitAnalyzed: %+v, want analyzed", img)
	}
	// A finished image is answered at once, whatever the wait.
	img, err = g.c.ImageWaiting(ctx, sub.Digest, 30*time.Second)
	if err != nil || img.Status != api.StatusAnalyzed {
		t.Fatalf("waiting on an analysed image: %+v %v", img, err)
	}
}
