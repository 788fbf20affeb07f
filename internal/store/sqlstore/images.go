package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/buildgate/buildgate"
)

// SubmitImage records a submission. An image already known is queued again
// only when forced or when its last analysis failed; its tags, Dockerfile and
// annotations are updated. It reports whether the image was queued.
func (s *DB) SubmitImage(ctx context.Context, sub buildgate.Submission) (img *buildgate.Image, queued bool, err error) {
	now := s.now()
	ann, err := json.Marshal(orEmpty(sub.Annotations))
	if err != nil {
		return nil, false, err
	}
	err = s.tx(ctx, func(tx *Tx) error {
		// Insert-if-missing first: of gates submitting one new digest at
		// once, one inserts and the others wait for it and find the row.
		res, err := tx.ExecContext(ctx, `INSERT INTO images (digest, source, pull_ref, index_digest, status, dockerfile, annotations, created_at, updated_at, queued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
			sub.Digest, sub.Source, sub.PullRef, sub.IndexDigest, buildgate.StatusQueued, sub.Dockerfile, string(ann), now, now, now)
		if err != nil {
			return err
		}
		var status string
		if n, _ := res.RowsAffected(); n == 1 {
			queued = true
		} else {
			err = tx.QueryRowContext(ctx, `SELECT status FROM images WHERE digest = ?`, sub.Digest).Scan(&status)
		}
		switch {
		case queued:
		case err != nil:
			return err
		default:
			requeue := buildgate.Status(status) == buildgate.StatusFailed ||
				(sub.Force && buildgate.Status(status) == buildgate.StatusAnalyzed)
			set := []string{"updated_at = ?"}
			args := []any{now}
			if sub.Dockerfile != "" {
				set, args = append(set, "dockerfile = ?"), append(args, sub.Dockerfile)
			}
			if len(sub.Annotations) > 0 {
				set, args = append(set, "annotations = ?"), append(args, string(ann))
			}
			if requeue {
				// The new submission says where to get the image; an image
				// left queued or analysed keeps its own source.
				if sub.PullRef != "" {
					set, args = append(set, "pull_ref = ?", "source = ?"), append(args, sub.PullRef, sub.Source)
				}
				queued = true
				set = append(set, "status = ?", "error = ''", "queued_at = ?", "claimed_by = ''", "claimed_until = NULL", "attempts = 0")
				args = append(args, buildgate.StatusQueued, now)
			}
			args = append(args, sub.Digest)
			_, err = tx.ExecContext(ctx, `UPDATE images SET `+strings.Join(set, ", ")+` WHERE digest = ?`, args...)
		}
		if err != nil {
			return err
		}
		if sub.Tag != "" {
			// A bound tag stays bound; a label becomes bound when the
			// registry (or an admin) binds it.
			_, err = tx.ExecContext(ctx, `INSERT INTO image_tags (digest, tag, detected_at, label) VALUES (?, ?, ?, ?)
				ON CONFLICT (digest, tag) DO UPDATE SET label = 0 WHERE excluded.label = 0`, sub.Digest, sub.Tag, now, boolInt(sub.Label))
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("submitting %s: %w", sub.Digest, err)
	}
	img, err = s.Image(ctx, sub.Digest)
	return img, queued, err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

const imageCols = `digest, source, status, error, dockerfile, annotations, created_at, updated_at, analyzed_at`

func scanImage(row interface{ Scan(...any) error }) (*buildgate.Image, error) {
	var img buildgate.Image
	var ann string
	var analyzed sql.NullTime
	if err := row.Scan(&img.Digest, &img.Source, &img.Status, &img.Error, &img.Dockerfile, &ann, &img.CreatedAt, &img.UpdatedAt, &analyzed); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ann), &img.Annotations); err != nil {
		return nil, fmt.Errorf("reading annotations of %s: %w", img.Digest, err)
	}
	if analyzed.Valid {
		t := analyzed.Time.UTC()
		img.AnalyzedAt = &t
	}
	img.CreatedAt, img.UpdatedAt = img.CreatedAt.UTC(), img.UpdatedAt.UTC()
	return &img, nil
}

// Image returns one image with its tags.
func (s *DB) Image(ctx context.Context, digest string) (*buildgate.Image, error) {
	img, err := scanImage(s.db.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE digest = ?`, digest))
	if isNoRows(err) {
		return nil, notFound("image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", digest, err)
	}
	if err := s.tags(ctx, img); err != nil {
		return nil, err
	}
	return img, nil
}

// tags fills img.Tags (bound tags first, then labels) and img.Labels.
func (s *DB) tags(ctx context.Context, img *buildgate.Image) error {
	rows, err := s.db.QueryContext(ctx, `SELECT tag, label FROM image_tags WHERE digest = ? ORDER BY label, detected_at, tag`, img.Digest)
	if err != nil {
		return err
	}
	defer rows.Close()
	img.Tags = []string{}
	for rows.Next() {
		var t string
		var label int
		if err := rows.Scan(&t, &label); err != nil {
			return err
		}
		img.Tags = append(img.Tags, t)
		if label != 0 {
			img.Labels = append(img.Labels, t)
		}
	}
	return rows.Err()
}

// ListImages returns images, newest first, those with tag and status
// only when they are not empty. A tag looks up the images bound to it; its
// labels count only when no image is bound to it, so an upload or SBOM
// labelled with a tag never shadows the image the tag's registry serves.
func (s *DB) ListImages(ctx context.Context, tag string, status buildgate.Status) ([]buildgate.Image, error) {
	q := `SELECT ` + imageCols + ` FROM images WHERE 1=1`
	var args []any
	if tag != "" {
		q += ` AND digest IN (SELECT digest FROM image_tags WHERE tag = ? AND (label = 0
			OR NOT EXISTS (SELECT 1 FROM image_tags b WHERE b.tag = ? AND b.label = 0)))`
		args = append(args, tag, tag)
	}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY created_at DESC, digest`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var out []buildgate.Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing images: %w", err)
		}
		out = append(out, *img)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.tags(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteImage removes an image, its tags and its analysis.
func (s *DB) DeleteImage(ctx context.Context, digest string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM images WHERE digest = ?`, digest)
	if err != nil {
		return fmt.Errorf("deleting image %s: %w", digest, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("image", digest)
	}
	return nil
}

// ClaimJob takes the oldest job a worker may take and marks it analyzing
// for worker until now+lease: a queued image, or one whose worker let its
// lease run out (its process died). An image whose lease ran out after
// maxAttempts claims fails instead, with the reason of its last attempt.
// It returns nil when there is nothing to take. The pick and the claim are
// one transaction that skips rows another claimer holds (SKIP LOCKED on
// PostgreSQL; SQLite has one writer), so two workers, in one process or in
// several, never take the same job.
func (s *DB) ClaimJob(ctx context.Context, worker string, lease time.Duration, maxAttempts int) (*buildgate.Job, error) {
	now := s.now()
	var job *buildgate.Job
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE images SET status = ?, error = 'gave up after ' || attempts || ' attempts: ' || error,
			claimed_by = '', claimed_until = NULL, updated_at = ? WHERE status = ? AND claimed_until < ? AND attempts >= ?`,
			buildgate.StatusFailed, now, buildgate.StatusAnalyzing, now, maxAttempts); err != nil {
			return fmt.Errorf("failing exhausted jobs: %w", err)
		}
		var j buildgate.Job
		var status, owner string
		err := tx.QueryRowContext(ctx, `SELECT digest, pull_ref, source, attempts, status, claimed_by FROM images
			WHERE (status = ? AND source <> 'sbom') OR (status = ? AND claimed_until < ?) ORDER BY queued_at, digest LIMIT 1`+s.dialect.SkipLocked,
			buildgate.StatusQueued, buildgate.StatusAnalyzing, now).Scan(&j.Digest, &j.PullRef, &j.Source, &j.Attempts, &status, &owner)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		reason := ""
		if buildgate.Status(status) == buildgate.StatusAnalyzing {
			reason = fmt.Sprintf("attempt %d was interrupted: worker %s stopped renewing its lease", j.Attempts, owner)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE images SET status = ?, error = ?, claimed_by = ?, claimed_at = ?, claimed_until = ?,
			attempts = attempts + 1, updated_at = ? WHERE digest = ?`,
			buildgate.StatusAnalyzing, reason, worker, now, now.Add(lease), now, j.Digest); err != nil {
			return err
		}
		j.Attempts++
		job = &j
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claiming a job: %w", err)
	}
	return job, nil
}

// ExtendLease renews worker's claim on an image until now+lease, the
// heartbeat of a running analysis. It is a conflict when the worker no
// longer holds the claim (its lease ran out and another worker took it).
func (s *DB) ExtendLease(ctx context.Context, digest, worker string, lease time.Duration) error {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE images SET claimed_until = ? WHERE digest = ? AND status = ? AND claimed_by = ?`,
		now.Add(lease), digest, buildgate.StatusAnalyzing, worker)
	if err != nil {
		return fmt.Errorf("renewing the lease on %s: %w", digest, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return buildgate.Errorf(buildgate.ECONFLICT, "worker %s no longer holds %s", worker, digest)
	}
	return nil
}

// ReleaseJob puts an image worker holds back in the queue without counting
// the attempt, for a worker that stops before it finishes (a gate shutting
// down): any replica takes it again at once.
func (s *DB) ReleaseJob(ctx context.Context, digest, worker string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE images SET status = ?, claimed_by = '', claimed_until = NULL, attempts = attempts - 1, updated_at = ?
		WHERE digest = ? AND status = ? AND claimed_by = ?`, buildgate.StatusQueued, s.now(), digest, buildgate.StatusAnalyzing, worker)
	if err != nil {
		return fmt.Errorf("releasing %s: %w", digest, err)
	}
	return nil
}

// FailImage marks an analysis failed with a message for the user.
func (s *DB) FailImage(ctx context.Context, digest, msg string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE images SET status = ?, error = ?, claimed_by = '', claimed_until = NULL, updated_at = ? WHERE digest = ?`,
		buildgate.StatusFailed, msg, s.now(), digest)
	if err != nil {
		return fmt.Errorf("failing %s: %w", digest, err)
	}
	return nil
}

// SaveAnalysis stores an analysis and marks the image analyzed.
func (s *DB) SaveAnalysis(ctx context.Context, a *buildgate.Analysis) error {
	cols, err := analysisColumns(a)
	if err != nil {
		return fmt.Errorf("encoding analysis of %s: %w", a.Digest, err)
	}
	now := s.now()
	return s.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO analyses (digest, sbom, metadata, packages, files, secrets, content, matches, db_built, matched_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (digest) DO UPDATE SET sbom = excluded.sbom, metadata = excluded.metadata, packages = excluded.packages,
			files = excluded.files, secrets = excluded.secrets, content = excluded.content, matches = excluded.matches,
			db_built = excluded.db_built, matched_at = excluded.matched_at`,
			append([]any{a.Digest}, cols...)...)
		if err != nil {
			return fmt.Errorf("saving analysis of %s: %w", a.Digest, err)
		}
		if err := savePackageList(ctx, &tx.conn, a.Digest, a.PackageList); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE images SET status = ?, error = '', claimed_by = '', claimed_until = NULL, analyzed_at = ?, updated_at = ? WHERE digest = ?`,
			buildgate.StatusAnalyzed, now, now, a.Digest)
		return err
	})
}

// EncodeFacts encodes all SaveAnalysis stores of a but its matches, for
// SaveAnalysis to take from a.Encoded: the analysis service has it done
// while the matching runs.
func (s *DB) EncodeFacts(a *buildgate.Analysis) (any, error) {
	f, err := encodeFacts(a)
	if err != nil {
		return nil, fmt.Errorf("encoding analysis of %s: %w", a.Digest, err)
	}
	return f, nil
}

// encodedFacts are an analysis's columns but the matches, encoded.
type encodedFacts struct {
	// of is the analysis they were encoded from.
	of                     *buildgate.Analysis
	sbom, pkgs, files      []byte
	meta, secrets, content string
}

// analysisColumns encodes an analysis's columns, taking what EncodeFacts
// encoded of it from a.Encoded. The big documents are encoded and
// compressed at once, on goroutines of their own (the SBOM; the packages
// and files, with the SBOM as dictionary; the matches): a cold verdict
// waits for the slowest, not for their sum.
func analysisColumns(a *buildgate.Analysis) ([]any, error) {
	var (
		g       errgroup.Group
		f       *encodedFacts
		matches []byte
	)
	g.Go(func() (err error) { matches, err = packJSON(a.Matches); return err })
	if e, ok := a.Encoded.(*encodedFacts); ok && e.of == a {
		f = e
	} else {
		g.Go(func() (err error) { f, err = encodeFacts(a); return err })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return []any{f.sbom, f.meta, f.pkgs, f.files, f.secrets, f.content, matches, nullTime(a.DBBuilt), a.MatchedAt}, nil
}

// encodeFacts encodes the SBOM, and the packages and files with the SBOM
// as dictionary, at once.
func encodeFacts(a *buildgate.Analysis) (*encodedFacts, error) {
	meta, err := json.Marshal(a.Metadata)
	if err != nil {
		return nil, err
	}
	secrets, err := json.Marshal(a.Secrets)
	if err != nil {
		return nil, err
	}
	content, err := json.Marshal(a.ContentMatches)
	if err != nil {
		return nil, err
	}
	f := &encodedFacts{of: a, meta: string(meta), secrets: string(secrets), content: string(content)}
	var g errgroup.Group
	g.Go(func() error { f.sbom = pack(a.SBOM); return nil })
	g.Go(func() error {
		p, err := json.Marshal(a.Packages)
		if err != nil {
			return err
		}
		fl, err := json.Marshal(a.Files)
		if err != nil {
			return err
		}
		packed, err := packAllWith(a.SBOM, p, fl)
		if err != nil {
			return err
		}
		f.pkgs, f.files = packed[0], packed[1]
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return f, nil
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// UpdateMatches replaces the matches of a stored analysis (after a DB
// change), leaving everything else as it was.
func (s *DB) UpdateMatches(ctx context.Context, digest string, matches []buildgate.Match, dbBuilt, at time.Time) error {
	b, err := packJSON(matches)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE analyses SET matches = ?, db_built = ?, matched_at = ? WHERE digest = ?`, b, nullTime(dbBuilt), at, digest)
	if err != nil {
		return fmt.Errorf("updating matches of %s: %w", digest, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("analysis", digest)
	}
	return nil
}

// Analysis returns the stored analysis of an image.
func (s *DB) Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error) {
	var a buildgate.Analysis
	var sbom, pkgs, files, matches []byte
	var meta, secrets, content string
	var dbBuilt sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT sbom, metadata, packages, files, secrets, content, matches, db_built, matched_at FROM analyses WHERE digest = ?`, digest).
		Scan(&sbom, &meta, &pkgs, &files, &secrets, &content, &matches, &dbBuilt, &a.MatchedAt)
	if isNoRows(err) {
		return nil, notFound("analysis of image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading analysis of %s: %w", digest, err)
	}
	a.Digest = digest
	if a.SBOM, err = unpack(sbom); err != nil {
		return nil, fmt.Errorf("reading sbom of %s: %w", digest, err)
	}
	for _, dec := range []error{
		json.Unmarshal([]byte(meta), &a.Metadata),
		unpackJSONWith(a.SBOM, pkgs, &a.Packages),
		unpackJSONWith(a.SBOM, files, &a.Files),
		json.Unmarshal([]byte(secrets), &a.Secrets),
		json.Unmarshal([]byte(content), &a.ContentMatches),
		unpackJSON(matches, &a.Matches),
	} {
		if dec != nil {
			return nil, fmt.Errorf("decoding analysis of %s: %w", digest, dec)
		}
	}
	if dbBuilt.Valid {
		a.DBBuilt = dbBuilt.Time.UTC()
	}
	a.MatchedAt = a.MatchedAt.UTC()
	return &a, nil
}

// MatchStamp returns which matches the stored analysis of an image holds,
// without reading the analysis.
func (s *DB) MatchStamp(ctx context.Context, digest string) (buildgate.MatchStamp, error) {
	var st buildgate.MatchStamp
	var dbBuilt sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT db_built, matched_at FROM analyses WHERE digest = ?`, digest).Scan(&dbBuilt, &st.MatchedAt)
	if isNoRows(err) {
		return st, notFound("analysis of image", digest)
	}
	if err != nil {
		return st, fmt.Errorf("reading analysis of %s: %w", digest, err)
	}
	if dbBuilt.Valid {
		st.DBBuilt = dbBuilt.Time.UTC()
	}
	st.MatchedAt = st.MatchedAt.UTC()
	return st, nil
}

// AnalyzedDigests lists the digests of every analysed image.
func (s *DB) AnalyzedDigests(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest FROM analyses ORDER BY digest`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// QueueDepth counts images waiting for or under analysis.
func (s *DB) QueueDepth(ctx context.Context) (queued, analyzing int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0) FROM images`, buildgate.StatusQueued, buildgate.StatusAnalyzing).Scan(&queued, &analyzing)
	return queued, analyzing, err
}
