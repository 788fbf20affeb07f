package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SetPendingWork records that background work of a kind is due, with its
// argument (a re-match's DB build); it replaces an earlier record of the
// same kind, dropping the claim on it unless the argument is the same. The
// record survives a restart until ClearPendingWork.
func (s *DB) SetPendingWork(ctx context.Context, kind, arg string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO pending_work (kind, arg, requested_at) VALUES (?, ?, ?)
		ON CONFLICT (kind) DO UPDATE SET arg = excluded.arg, requested_at = excluded.requested_at,
		claimed_by = CASE WHEN pending_work.arg = excluded.arg THEN pending_work.claimed_by ELSE '' END,
		claimed_until = CASE WHEN pending_work.arg = excluded.arg THEN pending_work.claimed_until ELSE NULL END`,
		kind, arg, s.now())
	if err != nil {
		return fmt.Errorf("recording pending %s: %w", kind, err)
	}
	return nil
}

// PendingWork returns the argument of the pending work of a kind, and
// false when none is pending.
func (s *DB) PendingWork(ctx context.Context, kind string) (string, bool, error) {
	var arg string
	err := s.db.QueryRowContext(ctx, `SELECT arg FROM pending_work WHERE kind = ?`, kind).Scan(&arg)
	if isNoRows(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading pending %s: %w", kind, err)
	}
	return arg, true, nil
}

// ClaimPendingWork claims the pending work of a kind for owner until
// now+lease unless another owner's claim on it holds, and returns its
// argument; ok is false when none is pending or another owner holds it.
// The owner renews its claim by claiming again: of gates sharing the
// store, one does the work, and another takes it when the claim runs out.
func (s *DB) ClaimPendingWork(ctx context.Context, kind, owner string, lease time.Duration) (arg string, ok bool, err error) {
	now := s.now()
	err = s.db.QueryRowContext(ctx, `UPDATE pending_work SET claimed_by = ?, claimed_until = ?
		WHERE kind = ? AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?) RETURNING arg`,
		owner, now.Add(lease), kind, now, owner).Scan(&arg)
	if isNoRows(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("claiming pending %s: %w", kind, err)
	}
	return arg, true, nil
}

// ReleasePendingWork gives up owner's claim on the pending work of a kind,
// so another gate (or this one, restarted) takes it at once.
func (s *DB) ReleasePendingWork(ctx context.Context, kind, owner string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE pending_work SET claimed_by = '', claimed_until = NULL WHERE kind = ? AND claimed_by = ?`, kind, owner); err != nil {
		return fmt.Errorf("releasing pending %s: %w", kind, err)
	}
	return nil
}

// ClearPendingWork removes the record of pending work of a kind if its
// argument is still arg and it was last requested at or before since (when
// the work that clears it started): work requested again meanwhile stays
// pending. It reports whether it removed the record.
func (s *DB) ClearPendingWork(ctx context.Context, kind, arg string, since time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM pending_work WHERE kind = ? AND arg = ? AND requested_at <= ?`, kind, arg, since.UTC())
	if err != nil {
		return false, fmt.Errorf("clearing pending %s: %w", kind, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// DigestsNotMatchedWith lists the digests of analysed images whose matches
// do not come from the DB built at built: those a re-match against that
// DB has still to do.
func (s *DB) DigestsNotMatchedWith(ctx context.Context, built time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, db_built FROM analyses ORDER BY digest`)
	if err != nil {
		return nil, fmt.Errorf("listing analyses to re-match: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		var b sql.NullTime
		if err := rows.Scan(&d, &b); err != nil {
			return nil, fmt.Errorf("listing analyses to re-match: %w", err)
		}
		if !b.Valid || !b.Time.Equal(built) {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}
