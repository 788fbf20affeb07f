package analysis

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

var slowDigest = "sha256:" + strings.Repeat("51", 32)

// The deadline tests' timeout is long enough that the fakes' own work
// (a catalog that does nothing, a save to SQLite) ends well inside
// it under the race detector on a loaded machine: only the phase a test
// holds may meet the deadline. slack is how late past it an end may come.
const deadlineTimeout, deadlineSlack = 2 * time.Second, time.Second

// quickRegistry resolves every reference to slowDigest and pulls nothing.
type quickRegistry struct{}

func (quickRegistry) Resolve(context.Context, string) (Resolved, error) {
	return Resolved{Digest: slowDigest, PullRef: "r.example/slow@" + slowDigest, Tag: "r.example/slow:1"}, nil
}
func (r quickRegistry) ResolveFor(ctx context.Context, ref, _ string, _ *PullAuth) (Resolved, error) {
	return r.Resolve(ctx, ref)
}
func (quickRegistry) ImportArchive(string, string) (string, error) { return "", nil }
func (quickRegistry) NormalizeTag(tag string) (string, error)      { return tag, nil }

// quickCataloger catalogs every image and layout at once into an empty
// SBOM.
type quickCataloger struct{}

func (quickCataloger) CatalogRemote(_ context.Context, _ string, _ *PullAuth, pulled func()) (*buildgate.Analysis, error) {
	pulled()
	return &buildgate.Analysis{SBOM: []byte(`{}`)}, nil
}
func (quickCataloger) Catalog(context.Context, string) (*buildgate.Analysis, error) {
	return &buildgate.Analysis{SBOM: []byte(`{}`)}, nil
}
func (quickCataloger) DecodeSBOM(r io.Reader) (*buildgate.Analysis, error) {
	_, err := io.Copy(io.Discard, r)
	return &buildgate.Analysis{SBOM: []byte(`{}`)}, err
}

// deafMatcher matches as grype's SBOM reader does: it does not heed its
// context. It returns a match once release is closed.
type deafMatcher struct {
	noDB
	entered, release, returned chan struct{}
}

// noDB is what the test matchers say of the DB loaded: nothing, so no
// analysis of theirs asks for a re-match.
type noDB struct{}

func (noDB) Info() buildgate.DBInfo { return buildgate.DBInfo{} }

func (m deafMatcher) Match(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	close(m.entered)
	<-m.release
	defer close(m.returned)
	return []buildgate.Match{{VulnerabilityID: "CVE-2026-0001", PackageName: "p"}}, buildgate.DBInfo{Built: time.Now()}, nil
}

// TestDeadlineHoldsDuringMatching: a matcher that ignores its context
// cannot hold an analysis past --analysis-timeout. The job is failed at the
// deadline (measured from the start of the analysis) with an error naming
// the timeout and the phase, and when the matcher returns later nothing of
// its result is stored.
func TestDeadlineHoldsDuringMatching(t *testing.T) {
	t.Parallel()
	const timeout, slack = deadlineTimeout, deadlineSlack
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := deafMatcher{entered: make(chan struct{}), release: make(chan struct{}), returned: make(chan struct{})}
	type finish struct {
		outcome buildgate.Status
		d       time.Duration
	}
	finished := make(chan finish, 1)
	s := New(Config{Workers: 1, Timeout: timeout, Poll: 10 * time.Millisecond, UploadDir: t.TempDir()},
		db, quickRegistry{}, quickCataloger{}, m, Observer{
			Finished: func(_ string, outcome buildgate.Status, d time.Duration) { finished <- finish{outcome, d} },
		}, testLog(t))
	stop := runSubmitted(t, s)
	<-m.entered
	var f finish
	select {
	case f = <-finished:
	case <-time.After(time.Minute):
		close(m.release)
		t.Fatal("the analysis did not end while its matcher ran")
	}
	t.Logf("analysis with a deaf matcher ended %s after it started (timeout %s)", f.d, timeout)
	if f.outcome != buildgate.StatusFailed {
		t.Fatalf("outcome %s, want failed", f.outcome)
	}
	if f.d > timeout+slack {
		t.Errorf("the analysis ended %s after it started, past the %s timeout and %s of slack", f.d, timeout, slack)
	}
	img, err := db.Image(ctx, slowDigest)
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != buildgate.StatusFailed || img.Error != "analysis exceeded --analysis-timeout 2s during matching" {
		t.Errorf("image %s %q, want failed naming the timeout and the phase", img.Status, img.Error)
	}

	// The matcher returns its result after the deadline: it is dropped.
	close(m.release)
	<-m.returned
	stop()
	img, _ = db.Image(ctx, slowDigest)
	if img.Status != buildgate.StatusFailed {
		t.Errorf("after the late matcher returned the image is %s", img.Status)
	}
	if a, err := db.Analysis(ctx, slowDigest); err == nil && len(a.Matches) > 0 {
		t.Errorf("the late matcher's matches were stored: %+v", a.Matches)
	}
}

// runSubmitted runs s and submits r.example/slow:1 to it. stop ends the
// run and waits for it; the test's cleanup calls it too.
func runSubmitted(t *testing.T, s *Service) (stop func()) {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(runCtx) })
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	if _, err := s.Submit(context.Background(), SubmitRequest{Ref: "r.example/slow:1"}); err != nil {
		t.Fatal(err)
	}
	return stop
}

// dbBuilt serves Verdicts a DB build.
type dbBuilt struct{}

func (dbBuilt) Info() buildgate.DBInfo {
	return buildgate.DBInfo{Built: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
}

// TestDeadlineHoldsDuringPolicyEvaluation: the evaluation of the verdicts
// after an analysis is its last phase and ends at the same deadline. A slow
// evaluation (here one that waits for its context) is cut at the deadline,
// measured from the start of the analysis, and stores nothing after it;
// the verdict is evaluated at its next check.
func TestDeadlineHoldsDuringPolicyEvaluation(t *testing.T) {
	t.Parallel()
	const timeout, slack = deadlineTimeout, deadlineSlack
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := testLog(t)
	verdicts := NewVerdicts(db, dbBuilt{}, log)
	if err := verdicts.InstallDefault(ctx); err != nil {
		t.Fatal(err)
	}
	type finish struct {
		outcome buildgate.Status
		start   time.Time
	}
	finished := make(chan finish, 1)
	started := make(chan time.Time, 1)
	type cut struct {
		after time.Duration
		err   error
	}
	evaluated := make(chan cut, 1)
	m := deafMatcher{entered: make(chan struct{}), release: make(chan struct{}), returned: make(chan struct{})}
	close(m.release)
	s := New(Config{Workers: 1, Timeout: timeout, Poll: 10 * time.Millisecond, UploadDir: t.TempDir()},
		db, quickRegistry{}, quickCataloger{}, m, Observer{
			Finished: func(_ string, outcome buildgate.Status, d time.Duration) {
				start := time.Now().Add(-d)
				finished <- finish{outcome, start}
				started <- start
			},
			Analyzed: func(ctx context.Context, digest string) {
				start := <-started
				<-ctx.Done() // a slow evaluation
				evaluated <- cut{time.Since(start), ctx.Err()}
				verdicts.Reevaluate(ctx, digest)
			},
		}, log)
	stop := runSubmitted(t, s)
	select {
	case f := <-finished:
		if f.outcome != buildgate.StatusAnalyzed {
			img, _ := db.Image(ctx, slowDigest)
			t.Fatalf("the analysis ended %s (%q) %s after it started, before its evaluation",
				f.outcome, img.Error, time.Since(f.start))
		}
	case <-time.After(time.Minute):
		t.Fatal("the analysis did not end")
	}
	var c cut
	select {
	case c = <-evaluated:
	case <-time.After(time.Minute):
		t.Fatal("the evaluation was not cut")
	}
	stop()
	t.Logf("a slow evaluation was cut %s after the analysis started (timeout %s): %v", c.after, timeout, c.err)
	if !errors.Is(c.err, context.DeadlineExceeded) || c.after > timeout+slack {
		t.Errorf("evaluation cut %s after the start with %v, want the deadline within %s", c.after, c.err, timeout+slack)
	}
	img, _ := db.Image(ctx, slowDigest)
	if img.Status != buildgate.StatusAnalyzed {
		t.Fatalf("image %s %q, want analyzed", img.Status, img.Error)
	}
	rec, err := db.ActivePolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := db.Evaluation(ctx, slowDigest, img.Tags[0], rec.ID); err == nil {
		t.Fatalf("an evaluation was stored after the deadline: %+v", e)
	}
	// The next evaluation, with time, stores it.
	verdicts.Reevaluate(ctx, slowDigest)
	if _, err := db.Evaluation(ctx, slowDigest, img.Tags[0], rec.ID); err != nil {
		t.Fatalf("evaluating again: %v", err)
	}
}

// patientMatcher heeds its context: it matches nothing until it ends.
type patientMatcher struct{ noDB }

func (patientMatcher) Match(ctx context.Context, _ []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	<-ctx.Done()
	return nil, buildgate.DBInfo{}, ctx.Err()
}

// TestDeadlineHoldsForUploadedSBOMs: an uploaded SBOM is matched in its
// request, under the same timeout, and fails naming it.
func TestDeadlineHoldsForUploadedSBOMs(t *testing.T) {
	t.Parallel()
	const timeout, slack = deadlineTimeout, deadlineSlack
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(Config{Timeout: timeout, UploadDir: t.TempDir()},
		db, quickRegistry{}, quickCataloger{}, patientMatcher{}, Observer{}, testLog(t))
	start := time.Now()
	_, err = s.SubmitSBOM(ctx, strings.NewReader(`{"artifacts":[]}`), UploadRequest{})
	took := time.Since(start)
	t.Logf("an SBOM upload under a matcher that waits for its context ended after %s: %v", took, err)
	const want = "analysis exceeded --analysis-timeout 2s during matching"
	if err == nil || !strings.Contains(err.Error(), want) || took > timeout+slack {
		t.Fatalf("SubmitSBOM = %v after %s, want %q within %s", err, took, want, timeout+slack)
	}
	list, err := db.ListImages(ctx, "", "")
	if err != nil || len(list) != 1 || list[0].Status != buildgate.StatusFailed || list[0].Error != want {
		t.Fatalf("images after the upload = %+v %v, want one failed naming the timeout", list, err)
	}
}

// testLog logs to the test's output, which go test shows when it fails.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
