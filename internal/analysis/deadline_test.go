package analysis

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/image"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

var slowDigest = "sha256:" + strings.Repeat("51", 32)

// quickRegistry resolves every reference to slowDigest and pulls nothing.
type quickRegistry struct{}

func (quickRegistry) Resolve(context.Context, string) (Resolved, error) {
	return Resolved{Digest: slowDigest, PullRef: "r.example/slow@" + slowDigest, Tag: "r.example/slow:1"}, nil
}
func (quickRegistry) Pull(context.Context, string, string) error   { return nil }
func (quickRegistry) ImportArchive(string, string) (string, error) { return "", nil }
func (quickRegistry) NormalizeTag(tag string) (string, error)      { return tag, nil }

// quickCataloger catalogs every layout at once into an empty SBOM.
type quickCataloger struct{}

func (quickCataloger) Catalog(context.Context, string) (*image.Analysis, error) {
	return &image.Analysis{SBOM: []byte(`{}`)}, nil
}
func (quickCataloger) DecodeSBOM(io.Reader) (*image.Analysis, error) { return nil, nil }

// deafMatcher matches as grype's SBOM reader does: it does not heed its
// context. It returns a match once release is closed.
type deafMatcher struct {
	entered, release, returned chan struct{}
}

func (m deafMatcher) Match(context.Context, []byte) ([]image.Match, image.DBInfo, error) {
	close(m.entered)
	<-m.release
	defer close(m.returned)
	return []image.Match{{VulnerabilityID: "CVE-2026-0001", PackageName: "p"}}, image.DBInfo{Built: time.Now()}, nil
}

// TestDeadlineHoldsDuringMatching: a matcher that ignores its context
// cannot hold an analysis past --analysis-timeout. The job is failed at the
// deadline (measured from the start of the analysis) with an error naming
// the timeout and the phase, and when the matcher returns later nothing of
// its result is stored.
func TestDeadlineHoldsDuringMatching(t *testing.T) {
	const timeout, slack = 300 * time.Millisecond, 700 * time.Millisecond
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := deafMatcher{entered: make(chan struct{}), release: make(chan struct{}), returned: make(chan struct{})}
	type finish struct {
		outcome image.Status
		d       time.Duration
	}
	finished := make(chan finish, 1)
	s := New(Config{Workers: 1, Timeout: timeout, Poll: 10 * time.Millisecond, WorkDir: t.TempDir(), UploadDir: t.TempDir()},
		db, quickRegistry{}, quickCataloger{}, m, Observer{
			Finished: func(_ string, outcome image.Status, d time.Duration) { finished <- finish{outcome, d} },
		}, slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(runCtx) })
	defer func() { stop(); wg.Wait() }()

	if _, err := s.Submit(ctx, SubmitRequest{Ref: "r.example/slow:1"}); err != nil {
		t.Fatal(err)
	}
	<-m.entered
	var f finish
	select {
	case f = <-finished:
	case <-time.After(time.Minute):
		close(m.release)
		t.Fatal("the analysis did not end while its matcher ran")
	}
	t.Logf("analysis with a deaf matcher ended %s after it started (timeout %s)", f.d, timeout)
	if f.outcome != image.StatusFailed {
		t.Fatalf("outcome %s, want failed", f.outcome)
	}
	if f.d > timeout+slack {
		t.Errorf("the analysis ended %s after it started, past the %s timeout and %s of slack", f.d, timeout, slack)
	}
	img, err := db.Image(ctx, slowDigest)
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != image.StatusFailed || img.Error != "analysis exceeded --analysis-timeout 300ms during matching" {
		t.Errorf("image %s %q, want failed naming the timeout and the phase", img.Status, img.Error)
	}

	// The matcher returns its result after the deadline: it is dropped.
	close(m.release)
	<-m.returned
	stop()
	wg.Wait()
	img, _ = db.Image(ctx, slowDigest)
	if img.Status != image.StatusFailed {
		t.Errorf("after the late matcher returned the image is %s", img.Status)
	}
	if a, err := db.Analysis(ctx, slowDigest); err == nil && len(a.Matches) > 0 {
		t.Errorf("the late matcher's matches were stored: %+v", a.Matches)
	}
}
