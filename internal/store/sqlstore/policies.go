package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/buildgate/buildgate"
)

// SavePolicy stores a new version of a bundle, creating the policy record
// if needed, and returns the record. With activate it also becomes the one
// active bundle.
func (s *DB) SavePolicy(ctx context.Context, id, name string, bundle []byte, activate bool) (*buildgate.PolicyRecord, error) {
	now := s.now()
	err := s.tx(ctx, func(tx *Tx) error {
		// Insert-if-missing then increment: the UPDATE locks the row, so
		// gates saving the same policy at once (two replicas installing the
		// default at their first start) each get their own version.
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (id, name, active, version, created_at, updated_at) VALUES (?, ?, 0, 0, ?, ?)
			ON CONFLICT (id) DO NOTHING`, id, name, now, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE policies SET name = ?, version = version + 1, updated_at = ? WHERE id = ?`, name, now, id); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRowContext(ctx, `SELECT version FROM policies WHERE id = ?`, id).Scan(&version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (policy_id, version, bundle, created_at) VALUES (?, ?, ?, ?)`,
			id, version, string(bundle), now); err != nil {
			return err
		}
		if activate {
			return activateTx(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("saving policy %q: %w", id, err)
	}
	return s.Policy(ctx, id)
}

func activateTx(ctx context.Context, tx *Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE policies SET active = 0 WHERE active <> 0 AND id <> ?`, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE policies SET active = 1 WHERE id = ?`, id)
	return err
}

// ActivatePolicy makes a policy the one active bundle.
func (s *DB) ActivatePolicy(ctx context.Context, id string) error {
	if _, err := s.Policy(ctx, id); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *Tx) error { return activateTx(ctx, tx, id) })
}

const policyCols = `p.id, p.name, p.active, p.version, p.created_at, p.updated_at, v.bundle`

func scanPolicy(row interface{ Scan(...any) error }) (*buildgate.PolicyRecord, error) {
	var p buildgate.PolicyRecord
	var active int
	var bundle string
	if err := row.Scan(&p.ID, &p.Name, &active, &p.Version, &p.CreatedAt, &p.UpdatedAt, &bundle); err != nil {
		return nil, err
	}
	p.Active = active != 0
	p.Bundle = []byte(bundle)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

// Policy returns a policy with its latest bundle.
func (s *DB) Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policies p
		JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.version WHERE p.id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("policy", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading policy %q: %w", id, err)
	}
	return p, nil
}

// ActivePolicy returns the active policy, or a not-found error when none is.
func (s *DB) ActivePolicy(ctx context.Context) (*buildgate.PolicyRecord, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policies p
		JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.version WHERE p.active <> 0`))
	if isNoRows(err) {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no policy is active")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the active policy: %w", err)
	}
	return p, nil
}

// ListPolicies returns every policy with its latest bundle.
func (s *DB) ListPolicies(ctx context.Context) ([]buildgate.PolicyRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+policyCols+` FROM policies p
		JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.version ORDER BY p.created_at, p.id`)
	if err != nil {
		return nil, fmt.Errorf("listing policies: %w", err)
	}
	defer rows.Close()
	var out []buildgate.PolicyRecord
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// PolicyVersions lists the saved versions of a policy, newest first.
func (s *DB) PolicyVersions(ctx context.Context, id string) ([]buildgate.PolicyVersion, error) {
	if _, err := s.Policy(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version, created_at, bundle FROM policy_versions WHERE policy_id = ? ORDER BY version DESC`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []buildgate.PolicyVersion
	for rows.Next() {
		var v buildgate.PolicyVersion
		var b string
		if err := rows.Scan(&v.Version, &v.CreatedAt, &b); err != nil {
			return nil, err
		}
		v.Bundle = []byte(b)
		v.CreatedAt = v.CreatedAt.UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// DeletePolicy deletes a policy and its versions; the active one cannot be
// deleted.
func (s *DB) DeletePolicy(ctx context.Context, id string) error {
	p, err := s.Policy(ctx, id)
	if err != nil {
		return err
	}
	if p.Active {
		return buildgate.Errorf(buildgate.EINVALID, "policy %q is the active bundle: activate another before deleting it", id)
	}
	return s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM policy_versions WHERE policy_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM evaluations WHERE policy_id = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE id = ?`, id)
		return err
	})
}

// CountPolicies counts stored policies.
func (s *DB) CountPolicies(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM policies`).Scan(&n)
	return n, err
}

// SaveEvaluation stores (replaces) the verdict for an image, tag and policy.
func (s *DB) SaveEvaluation(ctx context.Context, e buildgate.StoredEvaluation) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO evaluations (digest, tag, policy_id, policy_version, final_action, db_built, evaluated_at, result, inputs, valid_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (digest, tag, policy_id) DO UPDATE SET policy_version = excluded.policy_version,
		final_action = excluded.final_action, db_built = excluded.db_built, evaluated_at = excluded.evaluated_at, result = excluded.result,
		inputs = excluded.inputs, valid_until = excluded.valid_until`,
		e.Digest, e.Tag, e.PolicyID, e.PolicyVersion, e.FinalAction, nullTime(e.DBBuilt), e.EvaluatedAt, pack(e.Result), e.Inputs, nullTime(e.ValidUntil))
	if err != nil {
		return fmt.Errorf("saving evaluation of %s: %w", e.Digest, err)
	}
	return nil
}

// Evaluation returns the stored verdict for an image, tag and policy.
func (s *DB) Evaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error) {
	var e buildgate.StoredEvaluation
	var built, until sql.NullTime
	var result []byte
	err := s.db.QueryRowContext(ctx, `SELECT digest, tag, policy_id, policy_version, final_action, db_built, evaluated_at, result, inputs, valid_until
		FROM evaluations WHERE digest = ? AND tag = ? AND policy_id = ?`, digest, tag, policyID).
		Scan(&e.Digest, &e.Tag, &e.PolicyID, &e.PolicyVersion, &e.FinalAction, &built, &e.EvaluatedAt, &result, &e.Inputs, &until)
	if isNoRows(err) {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no stored evaluation of %s for %q under policy %q", digest, tag, policyID)
	}
	if err != nil {
		return nil, err
	}
	if built.Valid {
		e.DBBuilt = built.Time.UTC()
	}
	if until.Valid {
		e.ValidUntil = until.Time.UTC()
	}
	e.EvaluatedAt = e.EvaluatedAt.UTC()
	if e.Result, err = unpack(result); err != nil {
		return nil, err
	}
	return &e, nil
}
