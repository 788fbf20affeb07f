package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// Two CI jobs uploading the same archive at once: neither upload may
// disturb the other's layout, and the image ends analysed.
func TestConcurrentUploadsOfOneImage(t *testing.T) {
	g := startGate(t, nil)
	shared, _ := vulndbtest.SharedDir()
	archive := filepath.Join(shared, "images", "bullseye-dpkgonly.docker.tar")
	var wg sync.WaitGroup
	digests := make([]string, 4)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(archive)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			b, err := g.c.Raw(context.Background(), http.MethodPost, "/v1/images/upload?tag=team/app:v1", f, "application/x-tar")
			if err != nil {
				t.Error(err)
				return
			}
			var img api.Image
			json.Unmarshal(b, &img)
			digests[i] = img.Digest
		}()
	}
	wg.Wait()
	for _, d := range digests[1:] {
		if d != digests[0] || d == "" {
			t.Fatalf("uploads of one archive gave digests %v", digests)
		}
	}
	img, err := g.c.WaitAnalyzed(context.Background(), digests[0], time.Minute, nil)
	if err != nil || img.Status != api.StatusAnalyzed {
		t.Fatalf("after concurrent uploads: %v %+v", err, img)
	}
	left, _ := filepath.Glob(filepath.Join(g.Config.DataDir, "uploads", "*"))
	if len(left) != 0 {
		t.Errorf("upload directories left behind: %v", left)
	}
}
