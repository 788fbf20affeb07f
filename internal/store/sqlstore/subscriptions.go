package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/buildgate/buildgate"
)

const subscriptionCols = `id, sub_key, sub_type, active, created_at, updated_at`

func scanSubscription(row interface{ Scan(...any) error }) (*buildgate.Subscription, error) {
	var s buildgate.Subscription
	var active int
	if err := row.Scan(&s.ID, &s.Key, &s.Type, &active, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	s.Active = active != 0
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, nil
}

// EnsureSubscriptions creates, inactive, each subscription of key whose
// type is in types and that does not exist yet, then activates those whose
// type is in activate.
func (s *DB) EnsureSubscriptions(ctx context.Context, key string, types, activate []string) error {
	now := s.now()
	err := s.tx(ctx, func(tx *Tx) error {
		for _, t := range types {
			if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (`+subscriptionCols+`) VALUES (?, ?, ?, 0, ?, ?)
				ON CONFLICT (sub_key, sub_type) DO NOTHING`, buildgate.NewID(), key, t, now, now); err != nil {
				return err
			}
		}
		for _, t := range activate {
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET active = 1, updated_at = ? WHERE sub_key = ? AND sub_type = ? AND active = 0`,
				now, key, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating subscriptions of %q: %w", key, err)
	}
	return nil
}

// AddSubscription creates one subscription; it is a conflict if the key
// already has one of that type.
func (s *DB) AddSubscription(ctx context.Context, key, typ string, active bool) (*buildgate.Subscription, error) {
	now := s.now()
	id := buildgate.NewID()
	_, err := s.db.ExecContext(ctx, `INSERT INTO subscriptions (`+subscriptionCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		id, key, typ, activeFlag(active), now, now)
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unique") {
			return nil, buildgate.Errorf(buildgate.ECONFLICT, "a %s subscription for %q already exists", typ, key)
		}
		return nil, fmt.Errorf("adding subscription: %w", err)
	}
	return s.Subscription(ctx, id)
}

// activeFlag stores a subscription's active flag.
func activeFlag(active bool) int {
	if active {
		return 1
	}
	return 0
}

// Subscription returns one subscription.
func (s *DB) Subscription(ctx context.Context, id string) (*buildgate.Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, `SELECT `+subscriptionCols+` FROM subscriptions WHERE id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("subscription", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading subscription %q: %w", id, err)
	}
	return sub, nil
}

// ListSubscriptions returns subscriptions, those with key and type only
// when they are not empty, by key then type.
func (s *DB) ListSubscriptions(ctx context.Context, key, typ string) ([]buildgate.Subscription, error) {
	q := `SELECT ` + subscriptionCols + ` FROM subscriptions WHERE 1=1`
	var args []any
	if key != "" {
		q += ` AND sub_key = ?`
		args = append(args, key)
	}
	if typ != "" {
		q += ` AND sub_type = ?`
		args = append(args, typ)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY sub_key, sub_type`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", err)
	}
	defer rows.Close()
	out := []buildgate.Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *sub)
	}
	return out, rows.Err()
}

// SetSubscriptionActive activates or deactivates a subscription.
func (s *DB) SetSubscriptionActive(ctx context.Context, id string, active bool) (*buildgate.Subscription, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE subscriptions SET active = ?, updated_at = ? WHERE id = ?`, activeFlag(active), s.now(), id)
	if err != nil {
		return nil, fmt.Errorf("updating subscription %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("subscription", id)
	}
	return s.Subscription(ctx, id)
}

// DeleteSubscription deletes a subscription.
func (s *DB) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting subscription %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("subscription", id)
	}
	return nil
}
