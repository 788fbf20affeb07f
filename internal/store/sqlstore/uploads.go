package sqlstore

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/buildgate/buildgate"
)

// PutUpload stores the image archive read from r, uploaded for image
// digest, as upload id, in chunks of chunkSize, all in one transaction:
// readers see no upload or the whole one. Its time is the end of the
// write, so PruneUploads gives the job that names it its whole grace.
func (s *DB) PutUpload(ctx context.Context, id, digest string, r io.Reader) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO upload_archives (id, digest, checksum, size, stored_at) VALUES (?, ?, '', 0, ?)`,
			id, digest, s.now()); err != nil {
			return err
		}
		size, checksum, err := writeChunks(ctx, tx, `INSERT INTO upload_archive_chunks (upload_id, seq, data) VALUES (?, ?, ?)`, id, r)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE upload_archives SET checksum = ?, size = ?, stored_at = ? WHERE id = ?`,
			checksum, size, s.now(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("storing upload %s of image %s: %w", id, digest, err)
	}
	return nil
}

// ReadUpload writes the archive of upload id to w, chunk by chunk, and
// checks it against the size and checksum it was stored with. An upload
// deleted before or while it is read is not found.
func (s *DB) ReadUpload(ctx context.Context, id string, w io.Writer) error {
	var checksum string
	var want int64
	err := s.db.QueryRowContext(ctx, `SELECT checksum, size FROM upload_archives WHERE id = ?`, id).Scan(&checksum, &want)
	if isNoRows(err) {
		return notFound("upload", id)
	}
	if err != nil {
		return fmt.Errorf("reading upload %s: %w", id, err)
	}
	return s.readChunks(ctx, `SELECT data FROM upload_archive_chunks WHERE upload_id = ? AND seq = ?`, id, want, checksum, "upload", w)
}

// DeleteUpload deletes upload id with its chunks; an upload that is gone
// already is no error.
func (s *DB) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM upload_archives WHERE id = ?`, id); err != nil {
		return fmt.Errorf("deleting upload %s: %w", id, err)
	}
	return nil
}

// PruneUploads deletes the uploads stored before before that no queued or
// analysing image names as its pull reference: left by a gate that died
// between storing an upload and queueing it, or by an image that failed
// after too many attempts. It returns how many it deleted.
func (s *DB) PruneUploads(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM upload_archives WHERE stored_at < ? AND id NOT IN
		(SELECT pull_ref FROM images WHERE source = 'upload' AND status IN (?, ?))`,
		before.UTC(), buildgate.StatusQueued, buildgate.StatusAnalyzing)
	if err != nil {
		return 0, fmt.Errorf("pruning stored uploads: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// UploadIDs lists the uploads the store holds.
func (s *DB) UploadIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM upload_archives ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing stored uploads: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
