package sqlstore

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/buildgate/buildgate"
)

// PutDBArchive stores the vulnerability DB archive read from r, built at
// built, as the newest generation and drops the older ones, all in one
// transaction: readers see the old archive or the whole new one.
func (s *DB) PutDBArchive(ctx context.Context, r io.Reader, built time.Time) (*buildgate.DBArchive, error) {
	a := &buildgate.DBArchive{ID: buildgate.NewID(), Built: built.UTC(), StoredAt: s.now()}
	err := s.tx(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(generation), 0) + 1 FROM db_archives`).Scan(&a.Generation); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO db_archives (id, generation, built, checksum, size, stored_at) VALUES (?, ?, ?, '', 0, ?)`,
			a.ID, a.Generation, a.Built, a.StoredAt); err != nil {
			return err
		}
		var err error
		a.Size, a.Checksum, err = writeChunks(ctx, tx, `INSERT INTO db_archive_chunks (archive_id, seq, data) VALUES (?, ?, ?)`, a.ID, r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE db_archives SET checksum = ?, size = ? WHERE id = ?`, a.Checksum, a.Size, a.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM db_archive_chunks WHERE archive_id <> ?`, a.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM db_archives WHERE id <> ?`, a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storing the vulnerability DB archive: %w", err)
	}
	return a, nil
}

// LatestDBArchive describes the newest stored DB archive; it is nil when
// none is stored.
func (s *DB) LatestDBArchive(ctx context.Context) (*buildgate.DBArchive, error) {
	var a buildgate.DBArchive
	err := s.db.QueryRowContext(ctx, `SELECT id, generation, built, checksum, size, stored_at FROM db_archives
		ORDER BY generation DESC LIMIT 1`).Scan(&a.ID, &a.Generation, &a.Built, &a.Checksum, &a.Size, &a.StoredAt)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stored vulnerability DB archive: %w", err)
	}
	a.Built, a.StoredAt = a.Built.UTC(), a.StoredAt.UTC()
	return &a, nil
}

// ReadDBArchive writes the stored archive a to w, chunk by chunk, and
// checks it against a's size and checksum. An archive replaced meanwhile
// is not found.
func (s *DB) ReadDBArchive(ctx context.Context, a *buildgate.DBArchive, w io.Writer) error {
	return s.readChunks(ctx, `SELECT data FROM db_archive_chunks WHERE archive_id = ? AND seq = ?`, a.ID, a.Size, a.Checksum, "vulnerability DB archive", w)
}
