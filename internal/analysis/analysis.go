// Package analysis is buildgate's use case: it takes submissions, keeps the
// queue (in the store), and runs workers that pull, catalog and match each
// image, deduplicated by digest. It knows its adapters only through the
// small interfaces below; gate/ wires the real ones.
package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Store is what the service needs from the database.
type Store interface {
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	SubmitImage(ctx context.Context, sub buildgate.Submission) (*buildgate.Image, bool, error)
	// ClaimJob takes a queued job, or one whose lease ran out, for worker
	// until now+lease; after maxAttempts claims the image fails instead.
	ClaimJob(ctx context.Context, worker string, lease time.Duration, maxAttempts int) (*buildgate.Job, error)
	// ExtendLease renews a claim; it is a conflict when the claim was lost.
	ExtendLease(ctx context.Context, digest, worker string, lease time.Duration) error
	// ReleaseJob queues a claimed job again without counting the attempt.
	ReleaseJob(ctx context.Context, digest, worker string) error
	FailImage(ctx context.Context, digest, msg string) error
	SaveAnalysis(ctx context.Context, a *buildgate.Analysis) error
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	AnalyzedDigests(ctx context.Context) ([]string, error)
	UpdateMatches(ctx context.Context, digest string, matches []buildgate.Match, dbBuilt, at time.Time) error
	// ImageMatches returns the stored matches of an analysed image.
	ImageMatches(ctx context.Context, digest string) ([]buildgate.Match, error)
	// PackageList returns the stored package list of an analysed image
	// (buildgate.Analysis.PackageList); it is ENOTFOUND when it has none.
	PackageList(ctx context.Context, digest string) ([]byte, error)
	SavePackageList(ctx context.Context, digest string, list []byte) error
	DigestsNotMatchedWith(ctx context.Context, dbBuilt time.Time) ([]string, error)
	SetPendingWork(ctx context.Context, kind, arg string) error
	PendingWork(ctx context.Context, kind string) (arg string, ok bool, err error)
	// ClaimPendingWork claims pending work for owner until now+lease
	// unless another owner's claim holds; claiming again renews it.
	ClaimPendingWork(ctx context.Context, kind, owner string, lease time.Duration) (arg string, ok bool, err error)
	ReleasePendingWork(ctx context.Context, kind, owner string) error
	// ClearPendingWork removes pending work unless it was requested
	// again after since; it reports whether it did.
	ClearPendingWork(ctx context.Context, kind, arg string, since time.Time) (bool, error)
}

// FactsEncoder is a Store that encodes an analysis's SBOM and facts, all
// it saves but the matches, ahead of SaveAnalysis: the service has it do
// so while the matching runs, and SaveAnalysis takes the result from
// buildgate.Analysis.Encoded.
type FactsEncoder interface {
	EncodeFacts(a *buildgate.Analysis) (any, error)
}

// Uploads keeps the archives of uploaded images in a store the replicas
// share, so that whichever replica claims an upload's job can analyse it.
// An upload's ID is the pull reference of its job.
type Uploads interface {
	// PutUpload stores the archive read from r as upload id of image digest.
	PutUpload(ctx context.Context, id, digest string, r io.Reader) error
	// ReadUpload writes upload id to w, checked against its checksum; an
	// upload the store does not hold is not found.
	ReadUpload(ctx context.Context, id string, w io.Writer) error
	// DeleteUpload deletes upload id; one that is gone is no error.
	DeleteUpload(ctx context.Context, id string) error
	// PruneUploads deletes the uploads stored before before that no queued
	// or analysing image names, and says how many.
	PruneUploads(ctx context.Context, before time.Time) (int, error)
	// UploadIDs lists the uploads the store holds.
	UploadIDs(ctx context.Context) ([]string, error)
}

// Resolved is a reference resolved at submit time (buildgate.Resolved, which
// alert uses too without importing this package).
type Resolved = buildgate.Resolved

// Registry resolves references and pulls images into OCI layouts.
type Registry interface {
	Resolve(ctx context.Context, ref string) (Resolved, error)
	// ResolveFor resolves like Resolve, picking the image of platform
	// ("os/arch[/variant]"; "": the gate's) from an index, and, when auth
	// is not nil, authenticating to the reference's registry with auth
	// alone (its Host is the reference's).
	ResolveFor(ctx context.Context, ref, platform string, auth *PullAuth) (Resolved, error)
	// ImportArchive turns an uploaded image archive into an OCI layout at
	// dir and returns the image's digest.
	ImportArchive(path, dir string) (digest string, err error)
	// NormalizeTag returns the full tag a user's "repo:tag" stands for.
	NormalizeTag(tag string) (string, error)
}

// Cataloger reads an image into an SBOM and facts, and reads SBOM
// documents users upload.
type Cataloger interface {
	// CatalogRemote reads the image pullRef names where its registry
	// serves it, each layer once as it downloads. auth, when not nil, is
	// the submission's own authorization: the pull reference's registry is
	// authenticated to with it alone (no stored credentials), and it is
	// sent to no other host. pulled is called once every layer it reads
	// has been read.
	CatalogRemote(ctx context.Context, pullRef string, auth *PullAuth, pulled func()) (*buildgate.Analysis, error)
	// Catalog reads the image of an OCI layout (an uploaded archive's).
	Catalog(ctx context.Context, layoutDir string) (*buildgate.Analysis, error)
	// DecodeSBOM reads a syft, CycloneDX or SPDX document into an analysis
	// whose SBOM is syft-json.
	DecodeSBOM(r io.Reader) (*buildgate.Analysis, error)
}

// Matcher matches an SBOM against the vulnerability DB.
type Matcher interface {
	Match(ctx context.Context, sbom []byte) ([]buildgate.Match, buildgate.DBInfo, error)
	// Info describes the DB loaded now.
	Info() buildgate.DBInfo
}

// ListMatcher is a Matcher that keeps the packages of an SBOM it matches
// as a package list, and matches such a list as it matches the SBOM: a
// re-match then reads neither the SBOM nor the rest of the analysis.
type ListMatcher interface {
	// MatchListing matches like Match and returns the SBOM's package
	// list too, or nil when a list cannot hold its packages.
	MatchListing(ctx context.Context, sbom []byte) ([]buildgate.Match, buildgate.DBInfo, []byte, error)
	MatchPackageList(ctx context.Context, list []byte) ([]buildgate.Match, buildgate.DBInfo, error)
}

// DecodedMatcher is a ListMatcher that matches an SBOM as the Cataloger
// decoded it (buildgate.Analysis.Decoded) without reading the document.
type DecodedMatcher interface {
	// MatchDecoded matches like MatchListing on the document decoded
	// was decoded from; it fails for what it does not know as an SBOM.
	MatchDecoded(ctx context.Context, decoded any) ([]buildgate.Match, buildgate.DBInfo, []byte, error)
}

// matchAnalysis matches the SBOM of a: as the cataloger decoded it when
// it kept it so and the matcher reads it, else its document.
func (s *Service) matchAnalysis(ctx context.Context, a *buildgate.Analysis) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	if dm, ok := s.matcher.(DecodedMatcher); ok && a.Decoded != nil {
		return dm.MatchDecoded(ctx, a.Decoded)
	}
	return s.match(ctx, a.SBOM)
}

// matchEncoding is matchAnalysis that meanwhile finishes a's SBOM
// (a.Finish) and has the store encode a (a.Encoded), when it can. A
// failure of either fails the analysis: the matching's is returned as
// matchErr, the other's as err.
func (s *Service) matchEncoding(ctx context.Context, a *buildgate.Analysis) (m matched, matchErr, err error) {
	if _, ok := s.matcher.(DecodedMatcher); !ok || a.Decoded == nil {
		// the matcher reads the SBOM's document: it must be there first
		if err := finish(a); err != nil {
			return matched{}, nil, err
		}
	}
	done := make(chan error, 1)
	go func() {
		err := finish(a)
		if enc, ok := s.store.(FactsEncoder); ok && err == nil {
			a.Encoded, err = enc.EncodeFacts(a)
		}
		done <- err
	}()
	m.matches, m.db, m.list, matchErr = s.matchAnalysis(ctx, a)
	return m, matchErr, <-done
}

// matched is what matching an analysis gives.
type matched struct {
	matches []buildgate.Match
	db      buildgate.DBInfo
	list    []byte
}

// finish completes a's SBOM when the cataloger still encodes it; once it
// has, a.Finish is nil, so that a second call writes nothing (the matcher
// may be reading the SBOM meanwhile).
func finish(a *buildgate.Analysis) error {
	if a.Finish == nil {
		return nil
	}
	if err := a.Finish(); err != nil {
		return fmt.Errorf("cataloging: %w", err)
	}
	a.Finish = nil
	return nil
}

// match matches an SBOM, and lists its packages when the matcher can.
func (s *Service) match(ctx context.Context, sbom []byte) ([]buildgate.Match, buildgate.DBInfo, []byte, error) {
	if lm, ok := s.matcher.(ListMatcher); ok {
		return lm.MatchListing(ctx, sbom)
	}
	matches, db, err := s.matcher.Match(ctx, sbom)
	return matches, db, nil, err
}

// Config tunes the service.
type Config struct {
	Workers int
	// Timeout bounds one analysis.
	Timeout time.Duration
	// UploadDir holds layouts of uploaded images until they are analysed.
	UploadDir string
	// Poll is how often idle workers look at the queue.
	Poll time.Duration
	// WorkerID names this gate's workers in claims.
	WorkerID string
	// Lease is how long a claim holds without a heartbeat: the work of a
	// gate that died is taken again by another one after it. Workers
	// renew their claims every third of it.
	Lease time.Duration
	// MaxAttempts bounds the claims of one image whose analyses keep
	// being interrupted; then the image fails with the last reason.
	MaxAttempts int
	// Now is the gate's clock (default: the wall clock, in UTC).
	Now func() time.Time
	// Uploads, when set (a store replicas share), keeps each queued
	// upload's archive until its analysis is recorded: a replica that
	// claims an upload another one accepted brings it into its UploadDir
	// from there.
	Uploads Uploads
}

// Observer hears about analyses, for metrics and for what follows an
// analysis (policy evaluation, alerts). Any field may be nil.
type Observer struct {
	// Finished is called after each analysis with its outcome
	// ("analyzed" or "failed") and duration.
	Finished func(digest string, outcome buildgate.Status, d time.Duration)
	// Analyzed is called after an analysis or a re-match is stored.
	Analyzed func(ctx context.Context, digest string)
	// AnalyzedWith, when set, is called instead of Analyzed after an
	// analysis this service made is stored, with the analysis as stored:
	// what follows need not read it back.
	AnalyzedWith func(ctx context.Context, a *buildgate.Analysis)
	// Rematched is called after a re-match is stored, before Analyzed,
	// with the matches it replaced and the new ones (alerts diff them).
	Rematched func(ctx context.Context, digest string, before, after []buildgate.Match, db buildgate.DBInfo)
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

	wake    chan struct{}
	wg      sync.WaitGroup
	rematch *Trigger

	// held are the authorizations of queued SubmitAuthorized jobs, by
	// digest: in memory only, taken by the job's pull.
	heldMu sync.Mutex
	held   map[string]PullAuth
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
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.WorkerID == "" {
		host, _ := os.Hostname()
		cfg.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	return &Service{cfg: cfg, store: store, registry: reg, catalog: cat, matcher: m, obs: obs, log: log, wake: make(chan struct{}, 1), rematch: NewTrigger(), held: map[string]PullAuth{}}
}

// SubmitRequest is what a user submits (buildgate.SubmitRequest, which alert
// uses too without importing this package).
type SubmitRequest = buildgate.SubmitRequest

// Submit resolves the reference to a digest and queues the image unless it
// is already analysed (or queued) and not forced.
func (s *Service) Submit(ctx context.Context, req SubmitRequest) (*buildgate.Image, error) {
	return s.submit(ctx, req, nil)
}

// SubmitWithAuth is Submit with registry credentials of this submission
// alone (a CI job's): the reference is resolved and, if the image is
// queued, pulled with auth, sent to the reference's registry only. Like
// SubmitAuthorized's, the authorization is held in memory until the pull
// takes it and is never stored or logged.
func (s *Service) SubmitWithAuth(ctx context.Context, req SubmitRequest, auth PullAuth) (*buildgate.Image, error) {
	if auth.Authorization == "" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the registry credentials of the submission are empty")
	}
	return s.submit(ctx, req, &auth)
}

func (s *Service) submit(ctx context.Context, req SubmitRequest, auth *PullAuth) (*buildgate.Image, error) {
	if strings.TrimSpace(req.Ref) == "" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "ref is required")
	}
	r, err := s.registry.ResolveFor(ctx, req.Ref, req.Platform, auth)
	if err != nil {
		return nil, err
	}
	label := false
	if req.Tag != "" {
		tag, err := s.normalizeTag(req.Tag)
		if err != nil {
			return nil, err
		}
		if tag != r.Tag && !req.BindTag {
			label = !s.serves(ctx, tag, r)
		}
		r.Tag = tag
	}
	sub := buildgate.Submission{
		Digest: r.Digest, Tag: r.Tag, Label: label, PullRef: r.PullRef, IndexDigest: r.IndexDigest,
		Source: "registry", Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: req.Force,
	}
	if auth != nil {
		a := *auth
		a.Host = r.Registry
		return s.submitHeld(ctx, sub, a)
	}
	img, queued, err := s.store.SubmitImage(ctx, sub)
	if err != nil {
		return nil, err
	}
	if queued {
		s.log.Info("image queued", "digest", r.Digest, "tag", r.Tag, "force", req.Force)
		s.Wake()
	}
	return img, nil
}

// sourceAuthorized is the source of jobs submitted with an authorization
// of their own (SubmitAuthorized).
const sourceAuthorized = "harbor"

// sourceRunAuth is the source of registry images submitted with
// credentials of their own (SubmitWithAuth: a CI job's).
const sourceRunAuth = "registry-credentials"

// PullAuth is a registry authorization that comes with one submission
// (Harbor's scan request): the HTTP Authorization header to send to Host,
// and only to Host, for that image's pull. It is never stored.
type PullAuth struct {
	// Host is the registry's "host[:port]".
	Host string
	// Authorization is "Basic <base64>" or "Bearer <token>".
	Authorization secret.Secret
	// PlainHTTP pulls over http:// (the registry URL said so).
	PlainHTTP bool
}

// AuthorizedRequest is an image named by digest, with the authorization to
// pull it.
type AuthorizedRequest struct {
	// PullRef is "host/repository@sha256:...", host being Auth.Host.
	PullRef string
	Digest  string
	Auth    PullAuth
}

// SubmitAuthorized queues the image req names, to be pulled with
// req.Auth, unless it is already analysed (or queued). Nothing is asked of
// the registry now: the pull verifies the digest. The authorization is
// held in this process's memory until the job's pull takes it, and is
// never written to the store or logged; a job whose authorization is gone
// (this gate restarted, or another replica claimed the job) fails saying
// so, and is never pulled without it.
func (s *Service) SubmitAuthorized(ctx context.Context, req AuthorizedRequest) (*buildgate.Image, error) {
	if req.PullRef == "" || req.Digest == "" || req.Auth.Host == "" || req.Auth.Authorization == "" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "an authorized submission needs a pull reference, a digest, a registry host and an authorization")
	}
	return s.submitHeld(ctx, buildgate.Submission{Digest: req.Digest, PullRef: req.PullRef, Source: sourceAuthorized}, req.Auth)
}

// submitHeld queues a submission whose pull takes auth from memory.
func (s *Service) submitHeld(ctx context.Context, sub buildgate.Submission, auth PullAuth) (*buildgate.Image, error) {
	if sub.Source != sourceAuthorized {
		sub.Source = sourceRunAuth
	}
	s.heldMu.Lock()
	s.held[sub.Digest] = auth
	s.heldMu.Unlock()
	img, queued, err := s.store.SubmitImage(ctx, sub)
	if err != nil || !queued && (img.Status != buildgate.StatusQueued || img.Source != sub.Source) {
		// Nothing will pull it with this authorization. A job still queued
		// (by an earlier submission) takes the fresher one.
		s.heldMu.Lock()
		if a, ok := s.held[sub.Digest]; ok && a == auth {
			delete(s.held, sub.Digest)
		}
		s.heldMu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	if queued {
		s.log.Info("image queued with a registry authorization of its own", "digest", sub.Digest, "registry", auth.Host, "source", sub.Source)
		s.Wake()
	}
	return img, nil
}

// takeAuth returns and forgets the authorization held for digest.
func (s *Service) takeAuth(digest string) (PullAuth, bool) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	a, ok := s.held[digest]
	delete(s.held, digest)
	return a, ok
}

// errAuthGone is the failure of an authorized job whose authorization is
// not in this process's memory.
var errAuthGone = buildgate.Errorf(buildgate.EINVALID, "the registry authorization sent with this scan request is gone: "+
	"the gate holds it only in the memory of the process that accepted the request, which stopped (or another replica took the job); "+
	"the image was not pulled; request the scan again")

// errRunAuthGone is errAuthGone of an image submitted with registry
// credentials of its own.
var errRunAuthGone = buildgate.Errorf(buildgate.EINVALID, "the registry credentials sent with this submission are gone: "+
	"the gate holds them only in the memory of the process that accepted the submission, which stopped (or another replica took the job); "+
	"the image was not pulled; submit it again")

// serves reports whether tag's registry serves the image r resolved to
// (the tag names its digest, or the index it came from).
func (s *Service) serves(ctx context.Context, tag string, r Resolved) bool {
	got, err := s.registry.Resolve(ctx, tag)
	if err != nil {
		s.log.Info("keeping a tag as a label: its registry does not answer for it", "tag", tag, "digest", r.Digest, "err", err)
		return false
	}
	if got.Digest == r.Digest || (got.IndexDigest != "" && got.IndexDigest == r.IndexDigest) || got.IndexDigest == r.Digest {
		return true
	}
	s.log.Info("keeping a tag as a label: its registry serves another digest", "tag", tag, "digest", r.Digest, "registry_digest", got.Digest)
	return false
}

// UploadRequest describes an uploaded image archive or SBOM.
type UploadRequest struct {
	// Tag is the "repo:tag" the upload stands for, for policy mappings.
	// It is kept as a label (see buildgate.Submission.Label) unless BindTag.
	Tag string
	// BindTag binds Tag to the upload's digest (an admin's upload).
	BindTag     bool
	Dockerfile  string
	Annotations map[string]string
	Force       bool
	// MaxSize bounds the upload in bytes; 0 means no bound.
	MaxSize int64
}

// SubmitUpload reads an image archive (docker-archive, oci-archive or a
// tarred OCI directory) from r, keeps it as an OCI layout and queues it
// like a pulled image.
func (s *Service) SubmitUpload(ctx context.Context, r io.Reader, req UploadRequest) (*buildgate.Image, error) {
	tag, err := s.normalizeTag(req.Tag)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.cfg.UploadDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating upload dir: %w", err)
	}
	tmp := filepath.Join(s.cfg.UploadDir, "tmp-"+buildgate.NewID()[:16])
	defer os.RemoveAll(tmp + ".tar")
	defer os.RemoveAll(tmp)
	f, err := os.OpenFile(tmp+".tar", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	src := r
	if req.MaxSize > 0 {
		src = io.LimitReader(r, req.MaxSize+1)
	}
	n, err := io.Copy(f, src)
	f.Close()
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the upload after %d bytes: %v", n, err)
	}
	if req.MaxSize > 0 && n > req.MaxSize {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the upload is over the limit of %d bytes", req.MaxSize)
	}
	if n == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the upload is empty")
	}
	digest, err := s.registry.ImportArchive(tmp+".tar", tmp)
	if err != nil {
		return nil, err
	}
	return s.submitLayout(ctx, digest, tag, tmp, tmp+".tar", req)
}

func (s *Service) normalizeTag(tag string) (string, error) {
	if tag == "" {
		return "", nil
	}
	return s.registry.NormalizeTag(tag)
}

// SubmitSBOM reads an SBOM document a user made elsewhere, matches it and
// stores the result as an analysed image whose digest is the document's
// SHA-256. No image is pulled.
func (s *Service) SubmitSBOM(ctx context.Context, r io.Reader, req UploadRequest) (*buildgate.Image, error) {
	tag, err := s.normalizeTag(req.Tag)
	if err != nil {
		return nil, err
	}
	if req.MaxSize > 0 {
		r = io.LimitReader(r, req.MaxSize)
	}
	h := sha256.New()
	a, err := s.catalog.DecodeSBOM(io.TeeReader(r, h))
	if err != nil {
		return nil, err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	a.Digest = digest
	img, _, err := s.store.SubmitImage(ctx, buildgate.Submission{
		Digest: digest, Tag: tag, Label: tag != "" && !req.BindTag, Source: "sbom", Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: true,
	})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	mctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	m, matchErr, err := s.matchEncoding(mctx, a)
	if matchErr != nil {
		msg := "matching vulnerabilities: " + matchErr.Error()
		if errors.Is(mctx.Err(), context.DeadlineExceeded) {
			msg = s.exceeded("matching")
		}
		if ferr := s.store.FailImage(ctx, digest, msg); ferr != nil {
			s.log.Error("recording failure", "digest", digest, "err", ferr)
		}
		return nil, fmt.Errorf("%s: %w", msg, matchErr)
	}
	if err != nil {
		// the SBOM could not be encoded or stored: the image is not left
		// analysing
		if ferr := s.store.FailImage(ctx, digest, "storing the SBOM: "+err.Error()); ferr != nil {
			s.log.Error("recording failure", "digest", digest, "err", ferr)
		}
		return nil, err
	}
	a.Matches, a.DBBuilt, a.MatchedAt, a.PackageList = m.matches, storedTime(m.db.Built), storedTime(s.cfg.Now()), m.list
	if err := s.store.SaveAnalysis(ctx, a); err != nil {
		return nil, err
	}
	if s.obs.Finished != nil {
		s.obs.Finished(digest, buildgate.StatusAnalyzed, time.Since(start))
	}
	deadline, _ := mctx.Deadline()
	s.evaluate(ctx, deadline, a, s.log.With("digest", digest))
	s.log.Info("sbom analysed", "digest", digest, "tag", tag, "packages", len(a.Packages), "vulnerabilities", len(m.matches))
	return s.store.Image(ctx, img.Digest)
}

// submitLayout queues an image that is already in an OCI layout at dir (an
// upload of archive). The layout moves under the upload directory, in a
// directory of its own that the queue records (as the job's pull
// reference): two uploads of one digest at once never share, or delete,
// each other's layout. With a shared store the archive is stored first,
// under the same name, for the replica that claims the job.
//
// An image that is analysed, queued or being analysed, and not forced, is
// not queued again: its archive is not stored (only its tags, Dockerfile
// and annotations change).
func (s *Service) submitLayout(ctx context.Context, digest, tag, dir, archive string, req UploadRequest) (*buildgate.Image, error) {
	name := dirName(digest) + "-" + buildgate.NewID()[:16]
	stored := false
	if s.cfg.Uploads != nil && (req.Force || s.mayQueue(ctx, digest)) {
		if err := s.storeUpload(ctx, name, digest, archive); err != nil {
			return nil, err
		}
		stored = true
	}
	dst := filepath.Join(s.cfg.UploadDir, name)
	if err := os.Rename(dir, dst); err != nil {
		s.deleteStoredUpload(ctx, name)
		return nil, fmt.Errorf("keeping upload of %s: %w", digest, err)
	}
	img, queued, err := s.store.SubmitImage(ctx, buildgate.Submission{
		Digest: digest, Tag: tag, Label: tag != "" && !req.BindTag, PullRef: name, Source: "upload", Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: req.Force,
	})
	if err != nil {
		os.RemoveAll(dst)
		s.deleteStoredUpload(ctx, name)
		return nil, err
	}
	if queued {
		if s.cfg.Uploads != nil && !stored {
			// it failed since mayQueue looked: store the archive now,
			// for the replica that claims the job
			if err := s.storeUpload(ctx, name, digest, archive); err != nil {
				s.log.Warn("storing an upload queued again; only this replica can analyse it", "digest", digest, "err", err)
			}
		}
		s.log.Info("uploaded image queued", "digest", digest, "tag", tag)
		s.Wake()
	} else {
		// analysed or queued already, from another layout
		os.RemoveAll(dst)
		s.deleteStoredUpload(ctx, name)
	}
	return img, nil
}

// mayQueue says whether a submission of digest that is not forced would
// queue it: it is unknown, or its last analysis failed. When the store
// cannot say, it may.
func (s *Service) mayQueue(ctx context.Context, digest string) bool {
	img, err := s.store.Image(ctx, digest)
	return err != nil || img.Status == buildgate.StatusFailed
}

// storeUpload stores the archive at path as upload name of digest.
func (s *Service) storeUpload(ctx context.Context, name, digest, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.cfg.Uploads.PutUpload(ctx, name, digest, f)
}

// deleteStoredUpload deletes upload name from a shared store, if any. One
// it fails to delete is pruned later (see sweepUploads).
func (s *Service) deleteStoredUpload(ctx context.Context, name string) {
	if s.cfg.Uploads == nil {
		return
	}
	if err := s.cfg.Uploads.DeleteUpload(context.WithoutCancel(ctx), name); err != nil {
		s.log.Warn("deleting a stored upload; it is pruned later", "upload", name, "err", err)
	}
}

// uploadName is the name of a queued upload: its layout's directory under
// UploadDir, and its ID in a shared store.
func uploadName(job *buildgate.Job) string { return filepath.Base(job.PullRef) }

// uploadDir is where a queued upload's layout is kept.
func (s *Service) uploadDir(job *buildgate.Job) string {
	return filepath.Join(s.cfg.UploadDir, uploadName(job))
}

// fetchUpload brings the layout of an upload another replica accepted
// into dir, from the archive the shared store keeps.
func (s *Service) fetchUpload(ctx context.Context, job *buildgate.Job, dir string) error {
	name := uploadName(job)
	if err := os.MkdirAll(s.cfg.UploadDir, 0o700); err != nil {
		return fmt.Errorf("creating upload dir: %w", err)
	}
	tmp := filepath.Join(s.cfg.UploadDir, "tmp-"+buildgate.NewID()[:16])
	defer os.RemoveAll(tmp + ".tar")
	defer os.RemoveAll(tmp)
	f, err := os.OpenFile(tmp+".tar", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = s.cfg.Uploads.ReadUpload(ctx, name, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return buildgate.Errorf(buildgate.ENOTFOUND, "upload %s for image %s is missing from the store; upload it again", name, job.Digest)
	}
	if err != nil {
		return fmt.Errorf("reading upload %s for image %s from the store: %w", name, job.Digest, err)
	}
	digest, err := s.registry.ImportArchive(tmp+".tar", tmp)
	if err != nil {
		return fmt.Errorf("unpacking upload %s for image %s from the store: %w", name, job.Digest, err)
	}
	if digest != job.Digest {
		return fmt.Errorf("upload %s in the store holds image %s, not %s", name, digest, job.Digest)
	}
	return os.Rename(tmp, dir)
}

func dirName(digest string) string { return strings.ReplaceAll(digest, ":", "-") }

// Wake tells an idle worker to look at the queue now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx ends. Analyses cut short by the end of
// ctx go back to the queue, for this gate's next start or another replica;
// the analyses of a gate that died are taken again when their leases run
// out.
func (s *Service) Run(ctx context.Context) error {
	for i := range s.cfg.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(ctx, fmt.Sprintf("%s/%d", s.cfg.WorkerID, i))
		}()
	}
	if s.cfg.Uploads != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sweepUploads(ctx)
		}()
	}
	s.wg.Wait()
	return nil
}

// sweepUploads, every lease until ctx ends, deletes the stored uploads no
// job needs any more and the layouts here of uploads the store no longer
// holds: those another replica analysed.
func (s *Service) sweepUploads(ctx context.Context) {
	every(ctx, s.cfg.Lease, func() {
		if err := s.sweepUploadsOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping uploads", "err", err)
		}
	})
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// sweepUploadsOnce deletes the uploads a shared store holds that were
// stored more than a lease ago and that no queued or analysing image names
// (their gate died before it queued them, or the image failed after too
// many attempts), then removes the layouts under UploadDir whose uploads
// the store no longer holds.
func (s *Service) sweepUploadsOnce(ctx context.Context) error {
	n, err := s.cfg.Uploads.PruneUploads(ctx, s.cfg.Now().Add(-s.cfg.Lease))
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("stored uploads no job needs deleted", "uploads", n)
	}
	// The layouts are listed before the store's uploads: a layout is
	// moved into place after its upload is stored, so one listed here
	// and not in the store was deleted from it.
	entries, err := os.ReadDir(s.cfg.UploadDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ids, err := s.cfg.Uploads.UploadIDs(ctx)
	if err != nil {
		return err
	}
	stored := make(map[string]bool, len(ids))
	for _, id := range ids {
		stored[id] = true
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, "tmp-") && !stored[name] {
			if err := os.RemoveAll(filepath.Join(s.cfg.UploadDir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) work(ctx context.Context, worker string) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		job, err := s.store.ClaimJob(ctx, worker, s.cfg.Lease, s.cfg.MaxAttempts)
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
		s.run(ctx, worker, job)
		s.Wake() // let a sibling look for more work
	}
}

func (s *Service) run(ctx context.Context, worker string, job *buildgate.Job) {
	start := time.Now()
	log := s.log.With("digest", job.Digest, "attempt", job.Attempts)
	log.Info("analysis started", "ref", job.PullRef, "source", job.Source)
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	lost := s.heartbeat(actx, cancel, worker, job.Digest, log)
	var ph phase
	a, late, err := s.analyseWithin(actx, job, &ph)
	if late != nil {
		// The worker owns the abandoned phase: it takes no other job
		// until the phase has returned, and drops its result.
		defer func() { <-late }()
	}
	timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
	deadline, _ := actx.Deadline()
	cancel()
	if <-lost {
		// Another worker holds the job now: its outcome is that worker's.
		log.Warn("analysis abandoned: the lease on the job was lost")
		return
	}
	if ctx.Err() != nil {
		// The gate is stopping: the job goes back to the queue.
		log.Info("analysis interrupted by shutdown")
		if rerr := s.store.ReleaseJob(context.WithoutCancel(ctx), job.Digest, worker); rerr != nil {
			log.Error("releasing the job", "err", rerr)
		}
		return
	}
	if job.Source == "upload" {
		// Analysed or failed, the upload is done with; a failed upload is
		// uploaded again.
		os.RemoveAll(s.uploadDir(job))
	}
	outcome := buildgate.StatusAnalyzed
	if err == nil {
		err = s.store.SaveAnalysis(ctx, a)
	}
	recorded := err == nil
	if err != nil {
		outcome = buildgate.StatusFailed
		msg := err.Error()
		if timedOut {
			msg = s.exceeded(ph.get())
		}
		log.Error("analysis failed", "err", err)
		if ferr := s.store.FailImage(ctx, job.Digest, msg); ferr != nil {
			log.Error("recording failure", "err", ferr)
		} else {
			recorded = true
		}
	} else {
		log.Info("analysis finished", "packages", len(a.Packages), "vulnerabilities", len(a.Matches), "duration", time.Since(start).Round(time.Millisecond))
	}
	if job.Source == "upload" && recorded {
		// The stored copy goes once the outcome is recorded: until then
		// the job may be taken again, here or on another replica.
		s.deleteStoredUpload(ctx, uploadName(job))
	}
	if s.obs.Finished != nil {
		s.obs.Finished(job.Digest, outcome, time.Since(start))
	}
	if outcome == buildgate.StatusAnalyzed {
		s.evaluate(ctx, deadline, a, log)
	}
	if cur := s.matcher.Info().Built; outcome == buildgate.StatusAnalyzed && !cur.IsZero() && !a.DBBuilt.Equal(cur) {
		// The DB changed while it ran: the re-match brings it up to date.
		if err := s.RequestRematch(ctx, cur); err != nil {
			log.Error("requesting a re-match after the DB changed", "err", err)
		}
	}
}

// exceeded is the error of an analysis its deadline cut during phase.
func (s *Service) exceeded(phase string) string {
	return fmt.Sprintf("analysis exceeded --analysis-timeout %s during %s", s.cfg.Timeout, phase)
}

// evaluate runs the AnalyzedWith or Analyzed hook (the evaluation of the
// stored verdicts) on a, just stored, as the last phase of an analysis:
// it ends at the analysis's deadline, but not sooner when ctx ends (a
// request answered, a gate stopping). A verdict it had no time to store
// is evaluated at its next check.
func (s *Service) evaluate(ctx context.Context, deadline time.Time, a *buildgate.Analysis, log *slog.Logger) {
	if s.obs.Analyzed == nil && s.obs.AnalyzedWith == nil {
		return
	}
	ectx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if s.obs.AnalyzedWith != nil {
		s.obs.AnalyzedWith(ectx, a)
	} else {
		s.obs.Analyzed(ectx, a.Digest)
	}
	if errors.Is(ectx.Err(), context.DeadlineExceeded) {
		log.Warn("policy evaluation after the analysis was cut by --analysis-timeout; verdicts not stored are evaluated at their next check", "timeout", s.cfg.Timeout)
	}
}

// heartbeat renews worker's lease on digest every third of the lease until
// ctx ends. When the claim is lost it cancels the analysis; the channel
// then says whether it was lost, once ctx has ended.
func (s *Service) heartbeat(ctx context.Context, cancel context.CancelFunc, worker, digest string, log *slog.Logger) <-chan bool {
	lost := make(chan bool, 1)
	go func() {
		t := time.NewTicker(s.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				lost <- false
				return
			case <-t.C:
			}
			err := s.store.ExtendLease(ctx, digest, worker, s.cfg.Lease)
			switch {
			case buildgate.ErrorCode(err) == buildgate.ECONFLICT:
				cancel()
				lost <- true
				return
			case err != nil && ctx.Err() == nil:
				log.Warn("renewing the lease on the job", "err", err)
			}
		}
	}()
	return lost
}

// phase names the part of an analysis that is running, for the error of
// an analysis cut by its deadline.
type phase struct{ name atomic.Value }

func (p *phase) set(name string) { p.name.Store(name) }

func (p *phase) get() string {
	if n, ok := p.name.Load().(string); ok {
		return n
	}
	return "starting"
}

// analyseWithin runs analyse and returns when it returns or when ctx ends,
// whichever comes first, so that a phase that does not heed ctx (grype
// reads an SBOM and its matches are converted without one) cannot hold
// the job past its deadline. When ctx ends first, late is closed once
// analyse has returned; its result is dropped.
func (s *Service) analyseWithin(ctx context.Context, job *buildgate.Job, ph *phase) (a *buildgate.Analysis, late <-chan struct{}, err error) {
	type result struct {
		a   *buildgate.Analysis
		err error
	}
	done := make(chan result, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		a, err := s.analyse(ctx, job, ph)
		done <- result{a, err}
	}()
	select {
	case r := <-done:
		<-returned
		return r.a, nil, r.err
	case <-ctx.Done():
		return nil, returned, ctx.Err()
	}
}

func (s *Service) analyse(ctx context.Context, job *buildgate.Job, ph *phase) (*buildgate.Analysis, error) {
	if job.Source != "upload" {
		var auth *PullAuth
		if job.Source == sourceAuthorized || job.Source == sourceRunAuth {
			a, ok := s.takeAuth(job.Digest)
			if !ok && job.Source == sourceRunAuth {
				return nil, errRunAuthGone
			}
			if !ok {
				return nil, errAuthGone
			}
			auth = &a
		}
		ph.set("pulling")
		a, err := s.catalog.CatalogRemote(ctx, job.PullRef, auth, func() { ph.set("cataloging") })
		if err != nil {
			return nil, remoteError(job.PullRef, err)
		}
		return s.matched(ctx, job, a, ph)
	}
	ph.set("reading the upload")
	dir := s.uploadDir(job)
	_, err := os.Stat(dir)
	switch {
	case job.PullRef == "" || (err != nil && s.cfg.Uploads == nil):
		return nil, fmt.Errorf("the uploaded image is no longer on the gate; upload it again")
	case err != nil:
		if err := s.fetchUpload(ctx, job, dir); err != nil {
			return nil, err
		}
	}
	ph.set("cataloging")
	a, err := s.catalog.Catalog(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("cataloging: %w", err)
	}
	return s.matched(ctx, job, a, ph)
}

// remoteError is the error of an image CatalogRemote failed to read:
// the registry's or the image's own, described for the user, or an
// internal one.
func remoteError(pullRef string, err error) error {
	var e *buildgate.Error
	if errors.As(err, &e) && e.Code != buildgate.EINTERNAL {
		return e // names the image, or the layer and what is wrong with it
	}
	return fmt.Errorf("pulling and cataloging %s: %w", pullRef, err)
}

// matched matches a, which the cataloger made of job's image.
func (s *Service) matched(ctx context.Context, job *buildgate.Job, a *buildgate.Analysis, ph *phase) (*buildgate.Analysis, error) {
	if ctx.Err() != nil {
		_ = finish(a) // its goroutine ends before the analysis does
		return nil, ctx.Err()
	}
	a.Digest = job.Digest
	ph.set("matching")
	m, matchErr, err := s.matchEncoding(ctx, a)
	if matchErr != nil {
		return nil, fmt.Errorf("matching vulnerabilities: %w", matchErr)
	}
	if err != nil {
		return nil, err
	}
	a.Matches, a.PackageList = m.matches, m.list
	a.DBBuilt = storedTime(m.db.Built)
	a.MatchedAt = storedTime(s.cfg.Now())
	return a, nil
}

// storedTime is t as every store reads it back: in UTC, to the
// microsecond (PostgreSQL's precision), so that the analysis an
// evaluation reads in memory (Observer.AnalyzedWith) is the stored one.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// rematchWork is the kind of pending work a re-match is recorded as; its
// argument is the DB build to match against.
const rematchWork = "rematch"

// RequestRematch records that every stored SBOM must be matched against
// the DB built at built and wakes RunRematches. The record is in the
// store, so a re-match cut short by a restart resumes at the next start.
func (s *Service) RequestRematch(ctx context.Context, built time.Time) error {
	if err := s.store.SetPendingWork(ctx, rematchWork, built.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("requesting a re-match: %w", err)
	}
	s.rematch.Request()
	return nil
}

// RunRematches runs requested re-matches until ctx ends, first resuming
// one left pending by an earlier run of the gate. Requests made while a
// re-match runs make one more re-match after it. It looks again every
// lease: a re-match whose gate died is taken over when its claim runs out.
func (s *Service) RunRematches(ctx context.Context) {
	s.rematch.Request()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, s.cfg.Lease, s.rematch.Request)
	}()
	s.rematch.Run(ctx, s.rematchPending)
	wg.Wait()
}

// errClaimLost stops a re-match whose claim another gate holds now.
var errClaimLost = errors.New("the claim on the re-match was lost")

// rematchPending re-matches the images not yet matched against the DB of
// the pending re-match, then clears it. Of gates sharing the store, one
// that has that DB loaded claims it: the re-match runs once, and never
// with another DB. Cut short, it leaves the record (and what it has not
// re-matched yet) for the next run, of this gate or another.
func (s *Service) rematchPending(ctx context.Context) {
	arg, ok, err := s.store.PendingWork(ctx, rematchWork)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			s.log.Error("reading the pending re-match", "err", err)
		}
		return
	}
	built, err := time.Parse(time.RFC3339Nano, arg)
	if err != nil {
		s.log.Error("dropping a pending re-match with an unreadable DB build", "build", arg, "err", err)
		if _, err := s.store.ClearPendingWork(ctx, rematchWork, arg, s.cfg.Now()); err != nil {
			s.log.Error("clearing the pending re-match", "err", err)
		}
		return
	}
	if loaded := s.matcher.Info().Built; !loaded.Equal(built) {
		s.log.Debug("leaving the pending re-match to a gate with its DB", "db_built", arg, "loaded", loaded)
		return
	}
	owner := s.cfg.WorkerID + "/rematch"
	claimed, ok, err := s.store.ClaimPendingWork(ctx, rematchWork, owner, s.cfg.Lease)
	if err != nil || !ok || claimed != arg {
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming the pending re-match", "err", err)
		}
		if ok {
			// Requested again meanwhile: look at the new request.
			s.release(ctx, owner)
			s.rematch.Request()
		}
		return
	}
	start, since := time.Now(), s.cfg.Now()
	renewed := start
	n, err := s.rematchWith(ctx, built, func() error {
		if time.Since(renewed) < s.cfg.Lease/3 {
			return nil
		}
		got, ok, err := s.store.ClaimPendingWork(ctx, rematchWork, owner, s.cfg.Lease)
		if err != nil {
			return err
		}
		if !ok || got != arg {
			return errClaimLost
		}
		renewed = time.Now()
		return nil
	})
	switch {
	case ctx.Err() != nil:
		s.log.Info("re-match interrupted; it resumes at the next start", "db_built", arg, "images", n)
		s.release(ctx, owner)
		return
	case errors.Is(err, errClaimLost):
		s.log.Info("re-match left to another gate", "db_built", arg, "images", n)
		return
	case err != nil:
		s.log.Error("re-matching stored SBOMs; it is retried within a lease, here or on another gate", "db_built", arg, "images", n, "err", err)
		s.release(ctx, owner)
		return
	}
	cleared, err := s.store.ClearPendingWork(ctx, rematchWork, arg, since)
	if err != nil {
		s.log.Error("clearing the pending re-match", "err", err)
		return
	}
	if !cleared {
		// Requested again while it ran (analyses another gate finished
		// with an older DB): one more pass takes what this one missed.
		s.release(ctx, owner)
		s.rematch.Request()
	}
	s.log.Info("re-matched stored SBOMs", "db_built", arg, "images", n, "duration", time.Since(start).Round(time.Millisecond))
}

// release gives up this gate's claim on the pending re-match, so it is
// taken again at once.
func (s *Service) release(ctx context.Context, owner string) {
	if err := s.store.ReleasePendingWork(context.WithoutCancel(ctx), rematchWork, owner); err != nil {
		s.log.Error("releasing the pending re-match", "err", err)
	}
}

// Rematch matches every stored SBOM not yet matched against the DB built
// at built again (no pull) and stores the new matches. It stops between
// two images when ctx ends and returns how many images it re-matched.
func (s *Service) Rematch(ctx context.Context, built time.Time) (int, error) {
	return s.rematchWith(ctx, built, func() error { return nil })
}

// rematchWith is Rematch calling keep before each image; an error from
// keep stops it. It re-matches with a worker per core (the matcher
// matches a package shared by several images once per DB).
func (s *Service) rematchWith(ctx context.Context, built time.Time, keep func() error) (int, error) {
	digests, err := s.store.DigestsNotMatchedWith(ctx, built)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan string)
	g.Go(func() error {
		defer close(work)
		for _, d := range digests {
			if err := keep(); err != nil {
				return err
			}
			select {
			case work <- d:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for d := range work {
				done, err := s.rematchOne(gctx, d)
				if err != nil {
					return err
				}
				if done {
					n.Add(1)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return int(n.Load()), err
}

// rematchOne matches the stored package list of an image again (its SBOM
// when it has none, keeping the list for the next time) and stores the
// matches; it reports false for an image deleted meanwhile.
func (s *Service) rematchOne(ctx context.Context, d string) (bool, error) {
	before, matches, db, err := s.rematchList(ctx, d)
	if errors.Is(err, errNoList) {
		before, matches, db, err = s.rematchSBOM(ctx, d)
	}
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return false, nil // deleted since it was listed
	}
	if err != nil {
		return false, fmt.Errorf("re-matching %s: %w", d, err)
	}
	err = s.store.UpdateMatches(ctx, d, matches, db.Built, s.cfg.Now())
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if s.obs.Rematched != nil {
		s.obs.Rematched(ctx, d, before, matches, db)
	}
	if s.obs.Analyzed != nil {
		s.obs.Analyzed(ctx, d)
	}
	return true, nil
}

// errNoList is rematchList's for an image without a package list it can
// match.
var errNoList = errors.New("no package list")

// rematchList matches the stored package list of an image and returns
// its stored matches and the new ones.
func (s *Service) rematchList(ctx context.Context, d string) (before, after []buildgate.Match, db buildgate.DBInfo, err error) {
	lm, ok := s.matcher.(ListMatcher)
	if !ok {
		return nil, nil, db, errNoList
	}
	list, err := s.store.PackageList(ctx, d)
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return nil, nil, db, errNoList
	}
	if err != nil {
		return nil, nil, db, err
	}
	if before, err = s.store.ImageMatches(ctx, d); err != nil {
		return nil, nil, db, err
	}
	after, db, err = lm.MatchPackageList(ctx, list)
	if err != nil && ctx.Err() == nil {
		// A list this gate cannot read (of another version): the SBOM
		// is matched and its list made again.
		s.log.Warn("re-matching from the SBOM: the package list cannot be matched", "digest", d, "err", err)
		return nil, nil, db, errNoList
	}
	if err != nil {
		return nil, nil, db, err
	}
	return before, after, db, nil
}

// rematchSBOM matches the stored SBOM of an image, keeps its package
// list, and returns its stored matches and the new ones.
func (s *Service) rematchSBOM(ctx context.Context, d string) (before, after []buildgate.Match, db buildgate.DBInfo, err error) {
	a, err := s.store.Analysis(ctx, d)
	if err != nil {
		return nil, nil, db, err
	}
	after, db, list, err := s.match(ctx, a.SBOM)
	if err != nil {
		return nil, nil, db, err
	}
	if list != nil {
		if err := s.store.SavePackageList(ctx, d, list); err != nil {
			return nil, nil, db, err
		}
	}
	return a.Matches, after, db, nil
}
