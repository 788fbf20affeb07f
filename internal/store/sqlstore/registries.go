package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// The store keeps a registry's secret only sealed (internal/secret): it
// never sees the plain secret, and never returns the sealed one with the
// record.

const registryCols = `registry, name, username, type, verify_tls, ca_cert, created_at, updated_at, password_set_at`

func scanRegistry(row interface{ Scan(...any) error }) (*buildgate.RegistryCredential, error) {
	var c buildgate.RegistryCredential
	var verify int
	if err := row.Scan(&c.Registry, &c.Name, &c.Username, &c.Type, &verify, &c.CACert, &c.CreatedAt, &c.UpdatedAt, &c.PasswordSetAt); err != nil {
		return nil, err
	}
	c.VerifyTLS = verify != 0
	c.CreatedAt, c.UpdatedAt, c.PasswordSetAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC(), c.PasswordSetAt.UTC()
	return &c, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateRegistry stores a new registry record with its sealed secret; a
// record for the same registry is a conflict.
func (s *DB) CreateRegistry(ctx context.Context, c buildgate.RegistryCredential, sealed string) error {
	now := s.now()
	return s.tx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registries WHERE registry = ?`, c.Registry).Scan(&n); err != nil {
			return fmt.Errorf("looking up registry %q: %w", c.Registry, err)
		}
		if n > 0 {
			return buildgate.Errorf(buildgate.ECONFLICT, "registry %q already has credentials: change them with PUT /v1/registries/%s", c.Registry, c.Registry)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO registries (`+registryCols+`, password_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Registry, c.Name, c.Username, c.Type, boolInt(c.VerifyTLS), c.CACert, now, now, now, sealed)
		if err != nil {
			return fmt.Errorf("storing registry %q: %w", c.Registry, err)
		}
		return nil
	})
}

// UpdateRegistry replaces a record's fields. An empty sealed keeps the
// stored secret and the time it was set.
func (s *DB) UpdateRegistry(ctx context.Context, c buildgate.RegistryCredential, sealed string) error {
	now := s.now()
	var res sql.Result
	var err error
	if sealed == "" {
		res, err = s.db.ExecContext(ctx, `UPDATE registries SET name = ?, username = ?, type = ?, verify_tls = ?, ca_cert = ?, updated_at = ? WHERE registry = ?`,
			c.Name, c.Username, c.Type, boolInt(c.VerifyTLS), c.CACert, now, c.Registry)
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE registries SET name = ?, username = ?, type = ?, verify_tls = ?, ca_cert = ?, updated_at = ?, password_sealed = ?, password_set_at = ? WHERE registry = ?`,
			c.Name, c.Username, c.Type, boolInt(c.VerifyTLS), c.CACert, now, sealed, now, c.Registry)
	}
	if err != nil {
		return fmt.Errorf("updating registry %q: %w", c.Registry, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("registry", c.Registry)
	}
	return nil
}

// Registry returns a registry record, without its secret.
func (s *DB) Registry(ctx context.Context, registry string) (*buildgate.RegistryCredential, error) {
	c, err := scanRegistry(s.db.QueryRowContext(ctx, `SELECT `+registryCols+` FROM registries WHERE registry = ?`, registry))
	if isNoRows(err) {
		return nil, notFound("registry", registry)
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry %q: %w", registry, err)
	}
	return c, nil
}

// RegistrySecret returns a registry's sealed secret.
func (s *DB) RegistrySecret(ctx context.Context, registry string) (string, error) {
	var sealed string
	err := s.db.QueryRowContext(ctx, `SELECT password_sealed FROM registries WHERE registry = ?`, registry).Scan(&sealed)
	if isNoRows(err) {
		return "", notFound("registry", registry)
	}
	if err != nil {
		return "", fmt.Errorf("reading registry %q: %w", registry, err)
	}
	return sealed, nil
}

// ListRegistries returns every registry record, by registry, without
// secrets.
func (s *DB) ListRegistries(ctx context.Context) ([]buildgate.RegistryCredential, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+registryCols+` FROM registries ORDER BY registry`)
	if err != nil {
		return nil, fmt.Errorf("listing registries: %w", err)
	}
	defer rows.Close()
	out := []buildgate.RegistryCredential{}
	for rows.Next() {
		c, err := scanRegistry(rows)
		if err != nil {
			return nil, fmt.Errorf("listing registries: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// RegistrySecrets returns every registry's sealed secret, by registry.
func (s *DB) RegistrySecrets(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT registry, password_sealed FROM registries`)
	if err != nil {
		return nil, fmt.Errorf("reading registry secrets: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var r, sealed string
		if err := rows.Scan(&r, &sealed); err != nil {
			return nil, err
		}
		out[r] = sealed
	}
	return out, rows.Err()
}

// DeleteRegistry deletes a registry record and its secret.
func (s *DB) DeleteRegistry(ctx context.Context, registry string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM registries WHERE registry = ?`, registry)
	if err != nil {
		return fmt.Errorf("deleting registry %q: %w", registry, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("registry", registry)
	}
	return nil
}

// ResealSecrets rewrites every sealed secret the store holds with fn
// (open under the old key, seal under the new one; or bind a legacy value
// to its record), in one transaction: either every secret is re-sealed or
// none is. A value fn returns unchanged is left alone, and a row is written
// only while it still holds the value fn was given, so gates sharing the
// store may run it at once. It returns how many values it rewrote.
func (s *DB) ResealSecrets(ctx context.Context, fn func(sealed string, rec secret.Record) (string, error)) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		n, err = resealColumn(ctx, tx, "registries", "registry", "password_sealed", secret.RegistryPassword, fn)
		if err != nil {
			return err
		}
		// Alert channels' secrets (a webhook's signing secret, a Slack
		// URL, an SMTP password) and webhook URLs are sealed under the
		// same key.
		for _, c := range []struct {
			col string
			rec func(string) secret.Record
		}{{"secret_sealed", secret.ChannelSecret}, {"url_sealed", secret.ChannelURL}} {
			m, err := resealColumn(ctx, tx, "channels", "id", c.col, c.rec, fn)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// resealColumn re-seals one sealed column of a table, whose rows key
// names; table, key and col are ours.
func resealColumn(ctx context.Context, tx *Tx, table, key, col string, record func(string) secret.Record, fn func(string, secret.Record) (string, error)) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+key+`, `+col+` FROM `+table+` WHERE `+col+` <> '' ORDER BY `+key)
	if err != nil {
		return 0, err
	}
	type rec struct{ id, sealed string }
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.id, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		resealed, err := fn(r.sealed, record(r.id))
		if err != nil {
			return 0, fmt.Errorf("re-sealing %s: %w", record(r.id), err)
		}
		if resealed == r.sealed {
			continue
		}
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+col+` = ? WHERE `+key+` = ? AND `+col+` = ?`, resealed, r.id, r.sealed)
		if err != nil {
			return 0, err
		}
		if m, _ := res.RowsAffected(); m > 0 {
			n++
		}
	}
	return n, nil
}
