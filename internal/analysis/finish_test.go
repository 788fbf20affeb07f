package analysis

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

// finishingCataloger returns an analysis whose SBOM its Finish completes,
// as the gate's cataloger does while it encodes the document.
type finishingCataloger struct {
	quickCataloger
	finish func(a *buildgate.Analysis) error
}

func (c finishingCataloger) CatalogRemote(context.Context, string, *PullAuth, func()) (*buildgate.Analysis, error) {
	a := &buildgate.Analysis{Decoded: "decoded"}
	a.Finish = func() error { return c.finish(a) }
	return a, nil
}

// meetingMatcher matches the decoded SBOM with match.
type meetingMatcher struct {
	noDB
	match func() error
}

func (m meetingMatcher) Match(context.Context, []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	return nil, buildgate.DBInfo{}, errors.New("the document was matched, not the decoded SBOM")
}

func (m meetingMatcher) MatchDecoded(_ context.Context, decoded any) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	if decoded != "decoded" {
		return nil, buildgate.DBInfo{}, nil, errors.New("not the decoded SBOM")
	}
	if err := m.match(); err != nil {
		return nil, buildgate.DBInfo{}, nil, err
	}
	return []buildgate.Match{{VulnerabilityID: "CVE-2026-0002", PackageName: "p"}}, buildgate.DBInfo{}, nil, nil
}

// documentMatcher matches the SBOM's document, which must be there.
type documentMatcher struct{ noDB }

func (documentMatcher) Match(_ context.Context, sbom []byte) ([]buildgate.Match, buildgate.DBInfo, error) {
	if string(sbom) != `{"finished":true}` {
		return nil, buildgate.DBInfo{}, errors.New("matched before the document was finished: " + string(sbom))
	}
	return []buildgate.Match{{VulnerabilityID: "CVE-2026-0003", PackageName: "p"}}, buildgate.DBInfo{}, nil
}

// analyseOne runs one analysis of slowDigest with c and m and returns the
// image as it ended, and its analysis when it was stored.
func analyseOne(t *testing.T, c Cataloger, m Matcher) (*buildgate.Image, *buildgate.Analysis) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	finished := make(chan struct{}, 1)
	s := New(Config{Workers: 1, Timeout: time.Minute, Poll: 10 * time.Millisecond, UploadDir: t.TempDir()},
		db, quickRegistry{}, c, m, Observer{Finished: func(string, buildgate.Status, time.Duration) { finished <- struct{}{} }},
		slog.New(slog.DiscardHandler))
	defer runSubmitted(t, s)()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("the analysis did not end")
	}
	img, err := db.Image(ctx, slowDigest)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := db.Analysis(ctx, slowDigest)
	return img, a
}

// TestSBOMFinishedBesideMatching: the decoded SBOM is matched while the
// cataloger finishes its document (each waits for the other to have
// started), and the analysis is stored with both.
func TestSBOMFinishedBesideMatching(t *testing.T) {
	finishing, matching := make(chan struct{}), make(chan struct{})
	meet := func(mine, other chan struct{}) error {
		close(mine)
		select {
		case <-other:
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("the other side did not start: finishing and matching ran one after the other")
		}
	}
	c := finishingCataloger{finish: func(a *buildgate.Analysis) error {
		if err := meet(finishing, matching); err != nil {
			return err
		}
		a.SBOM = []byte(`{"finished":true}`)
		return nil
	}}
	img, a := analyseOne(t, c, meetingMatcher{match: func() error { return meet(matching, finishing) }})
	if img.Status != buildgate.StatusAnalyzed {
		t.Fatalf("image %s %q, want analyzed", img.Status, img.Error)
	}
	if a == nil || string(a.SBOM) != `{"finished":true}` || len(a.Matches) != 1 {
		t.Fatalf("stored analysis %+v, want the finished SBOM and one match", a)
	}
}

// TestSBOMFinishFails: the cataloger's failure to finish the SBOM (a full
// layer cache disk, say) fails the analysis with its cause.
func TestSBOMFinishFails(t *testing.T) {
	c := finishingCataloger{finish: func(*buildgate.Analysis) error { return errors.New("layer cache: the disk is full") }}
	img, _ := analyseOne(t, c, meetingMatcher{match: func() error { return nil }})
	if img.Status != buildgate.StatusFailed || img.Error != "cataloging: layer cache: the disk is full" {
		t.Errorf("image %s %q, want failed with the cause", img.Status, img.Error)
	}
}

// TestSBOMFinishedBeforeDocumentMatcher: a matcher that reads the SBOM's
// document gets it finished.
func TestSBOMFinishedBeforeDocumentMatcher(t *testing.T) {
	c := finishingCataloger{finish: func(a *buildgate.Analysis) error { a.SBOM = []byte(`{"finished":true}`); return nil }}
	img, a := analyseOne(t, c, documentMatcher{})
	if img.Status != buildgate.StatusAnalyzed || a == nil || len(a.Matches) != 1 {
		t.Fatalf("image %s %q, analysis %+v: want analyzed with one match", img.Status, img.Error, a)
	}
}
