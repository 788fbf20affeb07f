package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
)

const admissionRuleCols = `id, name, position, namespaces, namespace_labels, scope, mode, policy, wait_ms, on_error, created_at, updated_at`

func scanAdmissionRule(row interface{ Scan(...any) error }) (*buildgate.AdmissionRule, error) {
	var r buildgate.AdmissionRule
	var namespaces, labels, scope string
	var waitMS int64
	if err := row.Scan(&r.ID, &r.Name, &r.Position, &namespaces, &labels, &scope, &r.Mode, &r.Policy, &waitMS, &r.OnError, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		raw string
		v   any
	}{{namespaces, &r.Namespaces}, {labels, &r.NamespaceLabels}, {scope, &r.Scope}} {
		if err := json.Unmarshal([]byte(f.raw), f.v); err != nil {
			return nil, fmt.Errorf("reading admission rule %q: %w", r.ID, err)
		}
	}
	r.Wait = time.Duration(waitMS) * time.Millisecond
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

func admissionRuleJSON(r buildgate.AdmissionRule) (namespaces, labels, scope string, err error) {
	if r.Namespaces == nil {
		r.Namespaces = []string{}
	}
	if r.NamespaceLabels == nil {
		r.NamespaceLabels = map[string]string{}
	}
	var b [3][]byte
	for i, v := range []any{r.Namespaces, r.NamespaceLabels, r.Scope} {
		if b[i], err = json.Marshal(v); err != nil {
			return "", "", "", err
		}
	}
	return string(b[0]), string(b[1]), string(b[2]), nil
}

// CreateAdmissionRule stores a new admission rule (r.ID is made when
// empty). A rule of the same name is a conflict.
func (s *DB) CreateAdmissionRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error) {
	if r.ID == "" {
		r.ID = buildgate.NewID()
	}
	ns, labels, scope, err := admissionRuleJSON(r)
	if err != nil {
		return nil, err
	}
	now := s.now()
	_, err = s.db.ExecContext(ctx, `INSERT INTO admission_rules (`+admissionRuleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Position, ns, labels, scope, r.Mode, r.Policy, r.Wait.Milliseconds(), r.OnError, now, now)
	if isUnique(err) {
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "an admission rule named %q already exists", r.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("storing admission rule %q: %w", r.Name, err)
	}
	return s.AdmissionRule(ctx, r.ID)
}

// UpdateAdmissionRule replaces an admission rule's settings.
func (s *DB) UpdateAdmissionRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error) {
	ns, labels, scope, err := admissionRuleJSON(r)
	if err != nil {
		return nil, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE admission_rules SET name = ?, position = ?, namespaces = ?, namespace_labels = ?, scope = ?,
		mode = ?, policy = ?, wait_ms = ?, on_error = ?, updated_at = ? WHERE id = ?`,
		r.Name, r.Position, ns, labels, scope, r.Mode, r.Policy, r.Wait.Milliseconds(), r.OnError, s.now(), r.ID)
	if isUnique(err) {
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "an admission rule named %q already exists", r.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("updating admission rule %q: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("admission rule", r.ID)
	}
	return s.AdmissionRule(ctx, r.ID)
}

// AdmissionRule returns one admission rule.
func (s *DB) AdmissionRule(ctx context.Context, id string) (*buildgate.AdmissionRule, error) {
	r, err := scanAdmissionRule(s.db.QueryRowContext(ctx, `SELECT `+admissionRuleCols+` FROM admission_rules WHERE id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("admission rule", id)
	}
	return r, err
}

// ListAdmissionRules returns the admission rules in the order they are
// tried: by position, then by creation.
func (s *DB) ListAdmissionRules(ctx context.Context) ([]buildgate.AdmissionRule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+admissionRuleCols+` FROM admission_rules ORDER BY position, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("listing admission rules: %w", err)
	}
	defer rows.Close()
	out := []buildgate.AdmissionRule{}
	for rows.Next() {
		r, err := scanAdmissionRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// DeleteAdmissionRule deletes an admission rule; decisions keep its name.
func (s *DB) DeleteAdmissionRule(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM admission_rules WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting admission rule %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("admission rule", id)
	}
	return nil
}

// SaveAdmissionDecision stores a decision; d.ID is made when empty and
// d.CreatedAt stamped when zero.
func (s *DB) SaveAdmissionDecision(ctx context.Context, d buildgate.AdmissionDecision) (*buildgate.AdmissionDecision, error) {
	if d.ID == "" {
		d.ID = buildgate.NewID()
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.now()
	}
	if d.Images == nil {
		d.Images = []buildgate.AdmissionImage{}
	}
	if d.Warnings == nil {
		d.Warnings = []string{}
	}
	imgs, err := json.Marshal(d.Images)
	if err != nil {
		return nil, err
	}
	warns, err := json.Marshal(d.Warnings)
	if err != nil {
		return nil, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO admission_decisions (id, created_at, uid, cluster, namespace, kind, name, operation, username,
		allowed, would_deny, rule_id, rule_name, mode, message, warnings, images) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.CreatedAt.UTC(), d.UID, d.Cluster, d.Namespace, d.Kind, d.Name, d.Operation, d.User,
		boolInt(d.Allowed), boolInt(d.WouldDeny), d.RuleID, d.RuleName, d.Mode, d.Message, string(warns), string(imgs))
	if err != nil {
		return nil, fmt.Errorf("storing admission decision: %w", err)
	}
	return &d, nil
}

// ListAdmissionDecisions returns decisions, newest first.
func (s *DB) ListAdmissionDecisions(ctx context.Context, f buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error) {
	q := `SELECT id, created_at, uid, cluster, namespace, kind, name, operation, username, allowed, would_deny,
		rule_id, rule_name, mode, message, warnings, images FROM admission_decisions WHERE 1 = 1`
	var args []any
	if f.Cluster != "" {
		q, args = q+` AND cluster = ?`, append(args, f.Cluster)
	}
	if f.Namespace != "" {
		q, args = q+` AND namespace = ?`, append(args, f.Namespace)
	}
	if f.Allowed != nil {
		q, args = q+` AND allowed = ?`, append(args, *f.Allowed)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q, args = q+` ORDER BY created_at DESC, id LIMIT ?`, append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing admission decisions: %w", err)
	}
	defer rows.Close()
	out := []buildgate.AdmissionDecision{}
	for rows.Next() {
		var d buildgate.AdmissionDecision
		var warns, imgs string
		var allowed, wouldDeny int
		if err := rows.Scan(&d.ID, &d.CreatedAt, &d.UID, &d.Cluster, &d.Namespace, &d.Kind, &d.Name, &d.Operation, &d.User,
			&allowed, &wouldDeny, &d.RuleID, &d.RuleName, &d.Mode, &d.Message, &warns, &imgs); err != nil {
			return nil, err
		}
		d.Allowed, d.WouldDeny = allowed != 0, wouldDeny != 0
		if err := json.Unmarshal([]byte(warns), &d.Warnings); err != nil {
			return nil, fmt.Errorf("reading admission decision %q: %w", d.ID, err)
		}
		if err := json.Unmarshal([]byte(imgs), &d.Images); err != nil {
			return nil, fmt.Errorf("reading admission decision %q: %w", d.ID, err)
		}
		if len(d.Warnings) == 0 {
			d.Warnings = nil
		}
		d.CreatedAt = d.CreatedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetNamespaceLabels records the labels of a cluster's namespace, as the
// last reviewed Namespace object carried them.
func (s *DB) SetNamespaceLabels(ctx context.Context, cluster, namespace string, labels map[string]string) error {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO admission_namespaces (cluster, name, labels, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (cluster, name) DO UPDATE SET labels = excluded.labels, updated_at = excluded.updated_at`,
		cluster, namespace, string(b), s.now())
	if err != nil {
		return fmt.Errorf("recording labels of namespace %q: %w", namespace, err)
	}
	return nil
}

// NamespaceLabels returns the recorded labels of a cluster's namespace;
// ENOTFOUND when the gate has not seen it.
func (s *DB) NamespaceLabels(ctx context.Context, cluster, namespace string) (map[string]string, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT labels FROM admission_namespaces WHERE cluster = ? AND name = ?`, cluster, namespace).Scan(&raw)
	if isNoRows(err) {
		return nil, notFound("namespace", namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("reading labels of namespace %q: %w", namespace, err)
	}
	labels := map[string]string{}
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return nil, fmt.Errorf("reading labels of namespace %q: %w", namespace, err)
	}
	return labels, nil
}
