package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
)

// touchEvery is how often a token's last_used_at is written at most: one
// write a minute per token, not one per request.
const touchEvery = time.Minute

// CreateToken stores a token record under the hash of its secret.
func (s *DB) CreateToken(ctx context.Context, t buildgate.Token, hash string) error {
	var expires sql.NullTime
	if t.ExpiresAt != nil {
		expires = sql.NullTime{Time: t.ExpiresAt.UTC(), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, hash, t.CreatedAt, expires)
	if err != nil {
		return fmt.Errorf("creating token %q: %w", t.Name, err)
	}
	return nil
}

const tokenCols = `id, name, role, created_at, last_used_at, expires_at`

func scanToken(row interface{ Scan(...any) error }) (*buildgate.Token, error) {
	var t buildgate.Token
	var used, expires sql.NullTime
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &used, &expires); err != nil {
		return nil, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		t.LastUsedAt = &u
	}
	if expires.Valid {
		e := expires.Time.UTC()
		t.ExpiresAt = &e
	}
	return &t, nil
}

// TokenByHash finds the token whose secret hashes to hash, refuses it when
// it has expired, and records its use (at most once a minute).
func (s *DB) TokenByHash(ctx context.Context, hash string) (*buildgate.Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
	if isNoRows(err) {
		return nil, buildgate.Errorf(buildgate.EUNAUTHORIZED, "invalid token")
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	now := s.now()
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return nil, buildgate.Errorf(buildgate.EUNAUTHORIZED, "token %q expired at %s; ask an admin for a new one", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, now, t.ID); err != nil {
			return nil, fmt.Errorf("recording the use of token %q: %w", t.Name, err)
		}
		t.LastUsedAt = &now
	}
	return t, nil
}

// ListTokens returns every token record, oldest first; secrets are never
// stored, so none is shown.
func (s *DB) ListTokens(ctx context.Context) ([]buildgate.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	defer rows.Close()
	out := []buildgate.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tokens: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// RevokeToken deletes the token with id (or, when no id matches, the one
// named id): it stops being accepted at once. The last admin token is never
// revoked. It returns the revoked record.
func (s *DB) RevokeToken(ctx context.Context, id string) (*buildgate.Token, error) {
	var t *buildgate.Token
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
		if isNoRows(err) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE name = ?`, id).Scan(&n); err != nil {
				return err
			}
			if n > 1 {
				return buildgate.Errorf(buildgate.ECONFLICT, "%d tokens are named %q: revoke one by its id (gate token list)", n, id)
			}
			t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE name = ?`, id))
		}
		if isNoRows(err) {
			return notFound("token", id)
		}
		if err != nil {
			return err
		}
		if t.Role == buildgate.RoleAdmin {
			var admins int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE role = ?`, buildgate.RoleAdmin).Scan(&admins); err != nil {
				return err
			}
			if admins == 1 {
				return buildgate.Errorf(buildgate.ECONFLICT, "token %q is the last admin token: create another admin token before revoking it", t.Name)
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, t.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoking token %s: %w", id, err)
	}
	return t, nil
}

// CountTokens counts stored tokens.
func (s *DB) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n)
	return n, err
}
