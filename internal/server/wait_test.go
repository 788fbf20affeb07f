package server

import (
	"context"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
)

// statusStore answers Image with the status it holds now.
type statusStore struct {
	Store
	status chan buildgate.Status
}

func (s statusStore) Image(_ context.Context, digest string) (*buildgate.Image, error) {
	st := <-s.status
	s.status <- st
	return &buildgate.Image{Digest: digest, Status: st}, nil
}

// TestWaitWokenByChanges: a request waiting for an image's status reads it
// again when the gate notifies a change, without waiting for its poll (an
// hour here), and answers the new status.
func TestWaitWokenByChanges(t *testing.T) {
	st := statusStore{status: make(chan buildgate.Status, 1)}
	st.status <- buildgate.StatusAnalyzing
	s := &Server{store: st, Changes: &Changes{}, poll: time.Hour}
	got := make(chan *buildgate.Image, 1)
	go func() {
		img, err := s.awaitChange(context.Background(), &buildgate.Image{Digest: "sha256:a", Status: buildgate.StatusAnalyzing}, time.Hour)
		if err != nil {
			t.Error(err)
		}
		got <- img
	}()
	<-st.status
	st.status <- buildgate.StatusAnalyzed
	deadline := time.After(time.Minute)
	for {
		s.Changes.Notify() // until the request is waiting
		select {
		case img := <-got:
			if img == nil || img.Status != buildgate.StatusAnalyzed {
				t.Fatalf("answered %+v, want the analysed image", img)
			}
			return
		case <-deadline:
			t.Fatal("a notified change did not wake the waiting request")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
