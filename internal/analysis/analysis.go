// Package analysis is buildgate's use case: it takes submissions, keeps the
// queue (in the store), and runs workers that pull, catalog and match each
// image, deduplicated by digest. It knows its adapters only through the
// small interfaces below; gate/ wires the real ones.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/buildgate/buildgate/internal/image"
)

// Store is what the service needs from the database.
type Store interface {
	SubmitImage(ctx context.Context, sub image.Submission) (*image.Image, bool, error)
	ClaimJob(ctx context.Context, worker string) (*image.Job, error)
	RequeueInterrupted(ctx context.Context) (int, error)
	FailImage(ctx context.Context, digest, msg string) error
	SaveAnalysis(ctx context.Context, a *image.Analysis) error
	Analysis(ctx context.Context, digest string) (*image.Analysis, error)
	AnalyzedDigests(ctx context.Context) ([]string, error)
	UpdateMatches(ctx context.Context, digest string, matches []image.Match, dbBuilt, at time.Time) error
}

// Resolved is a reference resolved at submit time.
type Resolved struct {
	Digest      string
	IndexDigest string
	// PullRef is "repository@digest".
	PullRef string
	// Tag is the normalised full tag, empty for a digest reference.
	Tag string
}

// Registry resolves references and pulls images into OCI layouts.
type Registry interface {
	Resolve(ctx context.Context, ref string) (Resolved, error)
	Pull(ctx context.Context, pullRef, dir string) error
}

// Cataloger reads an image in an OCI layout into an SBOM and facts.
type Cataloger interface {
	Catalog(ctx context.Context, layoutDir string) (*image.Analysis, error)
}

// Matcher matches an SBOM against the vulnerability DB.
type Matcher interface {
	Match(ctx context.Context, sbom []byte) ([]image.Match, image.DBInfo, error)
}

// Config tunes the service.
type Config struct {
	Workers int
	// Timeout bounds one analysis.
	Timeout time.Duration
	// WorkDir holds layouts while images are analysed; UploadDir holds
	// layouts of uploaded images until they are analysed.
	WorkDir   string
	UploadDir string
	// Poll is how often idle workers look at the queue.
	Poll time.Duration
	// WorkerID names this gate's workers in claims.
	WorkerID string
}

// Observer hears about analyses, for metrics and for what follows an
// analysis (policy evaluation, alerts). Any field may be nil.
type Observer struct {
	// Finished is called after each analysis with its outcome
	// ("analyzed" or "failed") and duration.
	Finished func(digest string, outcome image.Status, d time.Duration)
	// Analyzed is called after an analysis or a re-match is stored.
	Analyzed func(ctx context.Context, digest string)
}

// Service submits and analyses images.
type Service struct {
	cfg      Config
	store    Store
	registry Registry
	catalog  Cataloger
	matcher  Matcher
	obs      Observer
	log      *slog.Logger

	wake chan struct{}
	wg   sync.WaitGroup
}

// New returns a service. Call Run to start its workers.
func New(cfg Config, store Store, reg Registry, cat Cataloger, m Matcher, obs Observer, log *slog.Logger) *Service {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.WorkerID == "" {
		host, _ := os.Hostname()
		cfg.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return &Service{cfg: cfg, store: store, registry: reg, catalog: cat, matcher: m, obs: obs, log: log, wake: make(chan struct{}, 1)}
}

// SubmitRequest is what a user submits.
type SubmitRequest struct {
	Ref         string
	Dockerfile  string
	Annotations map[string]string
	Force       bool
}

// Submit resolves the reference to a digest and queues the image unless it
// is already analysed (or queued) and not forced.
func (s *Service) Submit(ctx context.Context, req SubmitRequest) (*image.Image, error) {
	if strings.TrimSpace(req.Ref) == "" {
		return nil, image.Errorf(image.EINVALID, "ref is required")
	}
	r, err := s.registry.Resolve(ctx, req.Ref)
	if err != nil {
		return nil, err
	}
	img, queued, err := s.store.SubmitImage(ctx, image.Submission{
		Digest: r.Digest, Tag: r.Tag, PullRef: r.PullRef, IndexDigest: r.IndexDigest,
		Source: "registry", Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: req.Force,
	})
	if err != nil {
		return nil, err
	}
	if queued {
		s.log.Info("image queued", "digest", r.Digest, "tag", r.Tag, "force", req.Force)
		s.Wake()
	}
	return img, nil
}

// SubmitLayout queues an image that is already in an OCI layout at dir (an
// upload). The layout is moved under the upload directory.
func (s *Service) SubmitLayout(ctx context.Context, digest, tag, dir string, req SubmitRequest) (*image.Image, error) {
	dst := filepath.Join(s.cfg.UploadDir, dirName(digest))
	if err := os.MkdirAll(s.cfg.UploadDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating upload dir: %w", err)
	}
	os.RemoveAll(dst)
	if err := os.Rename(dir, dst); err != nil {
		return nil, fmt.Errorf("keeping upload of %s: %w", digest, err)
	}
	img, queued, err := s.store.SubmitImage(ctx, image.Submission{
		Digest: digest, Tag: tag, Source: "upload", Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: req.Force,
	})
	if err != nil {
		return nil, err
	}
	if queued {
		s.Wake()
	} else {
		os.RemoveAll(dst)
	}
	return img, nil
}

func dirName(digest string) string { return strings.ReplaceAll(digest, ":", "-") }

// Wake tells an idle worker to look at the queue now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run requeues analyses interrupted by a previous stop, then runs the
// workers until ctx ends. Analyses cut short by the end of ctx stay in the
// queue for the next start.
func (s *Service) Run(ctx context.Context) error {
	n, err := s.store.RequeueInterrupted(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("requeued interrupted analyses", "count", n)
	}
	for i := range s.cfg.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(ctx, fmt.Sprintf("%s/%d", s.cfg.WorkerID, i))
		}()
	}
	s.wg.Wait()
	return nil
}

func (s *Service) work(ctx context.Context, worker string) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		job, err := s.store.ClaimJob(ctx, worker)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claiming a job", "err", err)
			}
		}
		if job == nil {
			select {
			case <-ctx.Done():
			case <-s.wake:
			case <-t.C:
			}
			continue
		}
		s.run(ctx, job)
		s.Wake() // let a sibling look for more work
	}
}

func (s *Service) run(ctx context.Context, job *image.Job) {
	start := time.Now()
	log := s.log.With("digest", job.Digest, "attempt", job.Attempts)
	log.Info("analysis started", "ref", job.PullRef, "source", job.Source)
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	a, err := s.analyse(actx, job)
	if ctx.Err() != nil {
		// The gate is stopping: the job stays "analyzing" and is requeued
		// at the next start.
		log.Info("analysis interrupted by shutdown")
		return
	}
	outcome := image.StatusAnalyzed
	if err == nil {
		err = s.store.SaveAnalysis(ctx, a)
	}
	if err != nil {
		outcome = image.StatusFailed
		msg := failureMessage(err, s.cfg.Timeout)
		log.Error("analysis failed", "err", err)
		if ferr := s.store.FailImage(ctx, job.Digest, msg); ferr != nil {
			log.Error("recording failure", "err", ferr)
		}
	} else {
		log.Info("analysis finished", "packages", len(a.Packages), "vulnerabilities", len(a.Matches), "duration", time.Since(start).Round(time.Millisecond))
		if job.Source == "upload" {
			os.RemoveAll(filepath.Join(s.cfg.UploadDir, dirName(job.Digest)))
		}
	}
	if s.obs.Finished != nil {
		s.obs.Finished(job.Digest, outcome, time.Since(start))
	}
	if outcome == image.StatusAnalyzed && s.obs.Analyzed != nil {
		s.obs.Analyzed(ctx, job.Digest)
	}
}

func failureMessage(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("analysis timed out after %s", timeout)
	}
	return err.Error()
}

func (s *Service) analyse(ctx context.Context, job *image.Job) (*image.Analysis, error) {
	var dir string
	switch job.Source {
	case "upload":
		dir = filepath.Join(s.cfg.UploadDir, dirName(job.Digest))
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("the uploaded image is no longer on the gate; upload it again")
		}
	default:
		dir = filepath.Join(s.cfg.WorkDir, dirName(job.Digest))
		os.RemoveAll(dir)
		defer os.RemoveAll(dir)
		if err := s.registry.Pull(ctx, job.PullRef, dir); err != nil {
			return nil, fmt.Errorf("pulling %s: %w", job.PullRef, err)
		}
	}
	a, err := s.catalog.Catalog(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("cataloging: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	a.Digest = job.Digest
	matches, db, err := s.matcher.Match(ctx, a.SBOM)
	if err != nil {
		return nil, fmt.Errorf("matching vulnerabilities: %w", err)
	}
	a.Matches = matches
	a.DBBuilt = db.Built
	a.MatchedAt = time.Now().UTC()
	return a, nil
}

// Rematch matches every stored SBOM against the current DB again (no pull)
// and stores the new matches. It returns how many images it re-matched.
func (s *Service) Rematch(ctx context.Context) (int, error) {
	digests, err := s.store.AnalyzedDigests(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range digests {
		a, err := s.store.Analysis(ctx, d)
		if err != nil {
			return n, err
		}
		matches, db, err := s.matcher.Match(ctx, a.SBOM)
		if err != nil {
			return n, fmt.Errorf("re-matching %s: %w", d, err)
		}
		if err := s.store.UpdateMatches(ctx, d, matches, db.Built, time.Now().UTC()); err != nil {
			return n, err
		}
		n++
		if s.obs.Analyzed != nil {
			s.obs.Analyzed(ctx, d)
		}
	}
	return n, nil
}
