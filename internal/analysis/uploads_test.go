package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store/sqlite"
	"github.com/buildgate/buildgate/internal/testclock"
)

// archiveRegistry imports an archive as a layout of one file; the image's
// digest is the archive's SHA-256.
type archiveRegistry struct{ quickRegistry }

func (archiveRegistry) ImportArchive(path, dir string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), os.WriteFile(filepath.Join(dir, "index.json"), b, 0o600)
}

// noMatches matches nothing, at once.
type noMatches struct{ noDB }

func (noMatches) Match(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	return nil, buildgate.DBInfo{}, nil
}

// replicaPair is two services on one shared store, each with its own
// upload directory, as two replicas are; only the second runs workers.
type replicaPair struct {
	db                 *sqlite.DB
	clock              *testclock.Clock
	receiver, analyser *Service
	finished           chan buildgate.Status
}

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	p := &replicaPair{clock: testclock.New(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)), finished: make(chan buildgate.Status, 1)}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(p.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p.db = db
	service := func(obs Observer) *Service {
		return New(Config{Workers: 1, Poll: 10 * time.Millisecond, UploadDir: t.TempDir(), Uploads: db, Now: p.clock.Now},
			db, archiveRegistry{}, quickCataloger{}, noMatches{}, obs, slog.New(slog.DiscardHandler))
	}
	p.receiver = service(Observer{})
	p.analyser = service(Observer{Finished: func(_ string, outcome buildgate.Status, _ time.Duration) { p.finished <- outcome }})
	return p
}

// run runs the analyser's workers until its first analysis has finished.
func (p *replicaPair) run(t *testing.T) buildgate.Status {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.analyser.Run(ctx) })
	defer func() { stop(); wg.Wait() }()
	select {
	case outcome := <-p.finished:
		return outcome
	case <-time.After(time.Minute):
		t.Fatal("the analyser finished no analysis")
		return ""
	}
}

func (p *replicaPair) storedUploads(t *testing.T) []string {
	t.Helper()
	ids, err := p.db.UploadIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestUploadAnalysedByAnotherReplica: an upload accepted by one service is
// analysed by another that shares the store but not the disk; then the
// stored upload is gone, and the receiver's sweep removes its own layout,
// the stored uploads no job names and the layouts the store does not hold.
func TestUploadAnalysedByAnotherReplica(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	img, err := p.receiver.SubmitUpload(ctx, strings.NewReader("an image archive"), UploadRequest{})
	if err != nil || img.Status != buildgate.StatusQueued {
		t.Fatalf("SubmitUpload = %+v, %v", img, err)
	}
	ids := p.storedUploads(t)
	if len(ids) != 1 || !strings.HasPrefix(ids[0], dirName(img.Digest)+"-") {
		t.Fatalf("stored uploads %v, want the one of %s", ids, img.Digest)
	}
	if got := entries(t, p.receiver.cfg.UploadDir); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("the receiver's upload dir holds %v, want %s", got, ids[0])
	}

	if outcome := p.run(t); outcome != buildgate.StatusAnalyzed {
		t.Fatalf("the other replica's analysis: %s", outcome)
	}
	if got, _ := p.db.Image(ctx, img.Digest); got.Status != buildgate.StatusAnalyzed {
		t.Fatalf("image %s %q, want analysed", got.Status, got.Error)
	}
	if got := p.storedUploads(t); len(got) != 0 {
		t.Errorf("stored uploads left after the analysis: %v", got)
	}
	if got := entries(t, p.analyser.cfg.UploadDir); len(got) != 0 {
		t.Errorf("the analyser's upload dir holds %v after the analysis", got)
	}

	// A stored upload its gate never queued, once a lease has passed, and
	// a layout of an upload the store does not hold are swept; one being
	// written (tmp-) is not.
	if err := p.db.PutUpload(ctx, "sha256-00-orphan", "sha256:00", strings.NewReader("orphan")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(p.receiver.cfg.UploadDir, "tmp-writing"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := p.receiver.sweepUploadsOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.storedUploads(t); len(got) != 1 {
		t.Fatalf("the sweep deleted an upload stored within the lease: %v left", got)
	}
	p.clock.Advance(2 * p.receiver.cfg.Lease)
	if err := p.receiver.sweepUploadsOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.storedUploads(t); len(got) != 0 {
		t.Errorf("stored uploads after the sweep: %v", got)
	}
	if got := entries(t, p.receiver.cfg.UploadDir); len(got) != 1 || got[0] != "tmp-writing" {
		t.Errorf("the receiver's upload dir holds %v after the sweep, want only tmp-writing", got)
	}
}

// TestUploadMissingFromStore: an upload the store no longer holds fails
// its image naming the upload and the image.
func TestUploadMissingFromStore(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	img, err := p.receiver.SubmitUpload(ctx, strings.NewReader("an image archive"), UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := p.storedUploads(t)[0]
	if err := p.db.DeleteUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if outcome := p.run(t); outcome != buildgate.StatusFailed {
		t.Fatalf("the analysis of a missing upload: %s, want failed", outcome)
	}
	got, _ := p.db.Image(ctx, img.Digest)
	want := "upload " + id + " for image " + img.Digest + " is missing from the store; upload it again"
	if got.Status != buildgate.StatusFailed || got.Error != want {
		t.Fatalf("image %s %q, want failed %q", got.Status, got.Error, want)
	}
}

// countingUploads counts the archives stored through it.
type countingUploads struct {
	Uploads
	mu  sync.Mutex
	put int
}

func (c *countingUploads) PutUpload(ctx context.Context, id, digest string, r io.Reader) error {
	c.mu.Lock()
	c.put++
	c.mu.Unlock()
	return c.Uploads.PutUpload(ctx, id, digest, r)
}

func (c *countingUploads) puts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.put
}

// TestUploadOfAnalysedImageNotStored: the archive of an image that is
// already analysed is not written to the shared store again unless the
// upload is forced, and no layout of it is left behind.
func TestUploadOfAnalysedImageNotStored(t *testing.T) {
	ctx := context.Background()
	p := newReplicaPair(t)
	counted := &countingUploads{Uploads: p.db}
	p.receiver.cfg.Uploads = counted
	const archive = "an image archive"
	img, err := p.receiver.SubmitUpload(ctx, strings.NewReader(archive), UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if counted.puts() != 1 {
		t.Fatalf("%d archives stored for a new image, want 1", counted.puts())
	}
	if outcome := p.run(t); outcome != buildgate.StatusAnalyzed {
		t.Fatalf("analysis: %s", outcome)
	}

	// the first upload's layout stays on the receiver until its sweep
	kept := entries(t, p.receiver.cfg.UploadDir)
	again, err := p.receiver.SubmitUpload(ctx, strings.NewReader(archive), UploadRequest{Tag: "example.com/app:2"})
	if err != nil || again.Digest != img.Digest || again.Status != buildgate.StatusAnalyzed {
		t.Fatalf("SubmitUpload again = %+v, %v; want %s analysed", again, err, img.Digest)
	}
	if counted.puts() != 1 || len(p.storedUploads(t)) != 0 {
		t.Errorf("the archive of an analysed image was stored again (%d puts, %v held)", counted.puts(), p.storedUploads(t))
	}
	if got := entries(t, p.receiver.cfg.UploadDir); !slices.Equal(got, kept) {
		t.Errorf("the receiver's upload dir holds %v, want %v", got, kept)
	}

	forced, err := p.receiver.SubmitUpload(ctx, strings.NewReader(archive), UploadRequest{Force: true})
	if err != nil || forced.Status != buildgate.StatusQueued {
		t.Fatalf("forced SubmitUpload = %+v, %v; want queued", forced, err)
	}
	if counted.puts() != 2 || len(p.storedUploads(t)) != 1 {
		t.Errorf("a forced upload: %d puts, %v held; want its archive stored", counted.puts(), p.storedUploads(t))
	}
}

// decodingCataloger decodes an SBOM into a value it keeps as decoded.
type decodingCataloger struct{ quickCataloger }

type decodedSBOM struct{ doc string }

func (decodingCataloger) DecodeSBOM(r io.Reader) (*buildgate.Analysis, error) {
	b, err := io.ReadAll(r)
	return &buildgate.Analysis{SBOM: b, Decoded: &decodedSBOM{string(b)}}, err
}

// decodedMatcher matches only SBOMs decoded by decodingCataloger.
type decodedMatcher struct{ noDB }

func (decodedMatcher) Match(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	return nil, buildgate.DBInfo{}, errors.New("the document was read again")
}

func (decodedMatcher) MatchListing(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	return nil, buildgate.DBInfo{}, nil, errors.New("the document was read again")
}

func (decodedMatcher) MatchPackageList(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	return nil, buildgate.DBInfo{}, errors.New("not a re-match")
}

func (decodedMatcher) MatchDecoded(_ context.Context, decoded any) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	d, ok := decoded.(*decodedSBOM)
	if !ok {
		return nil, buildgate.DBInfo{}, nil, fmt.Errorf("decoded is a %T", decoded)
	}
	return []buildgate.Match{{VulnerabilityID: "CVE-2026-0002", PackageName: d.doc}}, buildgate.DBInfo{}, []byte(`{"list":1}`), nil
}

// TestSubmitSBOMMatchesDecoded: an uploaded SBOM is matched as the
// cataloger decoded it, when the matcher can, not read again; its matches
// and package list are stored.
func TestSubmitSBOMMatchesDecoded(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(Config{UploadDir: t.TempDir()},
		db, quickRegistry{}, decodingCataloger{}, decodedMatcher{}, Observer{}, slog.New(slog.DiscardHandler))
	const doc = `{"artifacts":[]}`
	img, err := s.SubmitSBOM(ctx, strings.NewReader(doc), UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	matches, err := db.ImageMatches(ctx, img.Digest)
	if err != nil || len(matches) != 1 || matches[0].PackageName != doc {
		t.Errorf("stored matches %+v, %v; want the decoded SBOM's", matches, err)
	}
	if list, err := db.PackageList(ctx, img.Digest); err != nil || string(list) != `{"list":1}` {
		t.Errorf("stored package list %q, %v; want the decoded SBOM's", list, err)
	}
}
