package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
)

// The outbox: deliveries wait in the deliveries table until a worker
// claims one for a lease, sends it and records the attempt. A claim whose
// lease ran out (its gate died while sending) is taken again.

// EnqueueDeliveries stores new pending deliveries, due at once; one whose
// (source, channel, event key) is already stored is skipped. It returns
// how many it stored.
func (s *DB) EnqueueDeliveries(ctx context.Context, ds []buildgate.Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	now := s.now()
	n := 0
	err := s.tx(ctx, func(tx *Tx) error {
		for _, d := range ds {
			if d.ID == "" {
				d.ID = buildgate.NewID()
			}
			msg, err := json.Marshal(d.Message)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, source_type, source_id, channel_id, event_type, event_key, message, body,
				status, attempts, created_at, updated_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
				ON CONFLICT (source_type, source_id, channel_id, event_key) DO NOTHING`,
				d.ID, d.SourceType, d.SourceID, d.ChannelID, d.EventType, d.EventKey, string(msg), d.Message.Body,
				buildgate.DeliveryPending, now, now, now)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queueing deliveries: %w", err)
	}
	return n, nil
}

const deliveryCols = `id, source_type, source_id, channel_id, event_type, event_key, message, body, status, attempts,
	created_at, next_attempt_at, delivered_at, last_error`

func scanDelivery(row interface{ Scan(...any) error }) (*buildgate.Delivery, error) {
	var d buildgate.Delivery
	var msg string
	var body []byte
	var next, delivered sql.NullTime
	if err := row.Scan(&d.ID, &d.SourceType, &d.SourceID, &d.ChannelID, &d.EventType, &d.EventKey, &msg, &body,
		&d.Status, &d.Attempts, &d.CreatedAt, &next, &delivered, &d.LastError); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(msg), &d.Message); err != nil {
		return nil, fmt.Errorf("reading delivery %q: %w", d.ID, err)
	}
	d.Message.Body, d.Message.DeliveryID = body, d.ID
	d.CreatedAt = d.CreatedAt.UTC()
	if next.Valid {
		t := next.Time.UTC()
		d.NextAttemptAt = &t
	}
	if delivered.Valid {
		t := delivered.Time.UTC()
		d.DeliveredAt = &t
	}
	d.AttemptLog = []buildgate.DeliveryAttempt{}
	return &d, nil
}

// ClaimDeliveries claims up to limit pending deliveries that are due at
// now and not claimed by a live lease, for worker until now+lease, oldest
// first. Each claim is a conditional UPDATE, so workers of several gates
// never take the same delivery while its lease runs.
func (s *DB) ClaimDeliveries(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]buildgate.Delivery, error) {
	now = now.UTC()
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM deliveries WHERE status = ? AND next_attempt_at <= ?
		AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_attempt_at, created_at, id LIMIT ?`,
		buildgate.DeliveryPending, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("listing due deliveries: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []buildgate.Delivery
	for _, id := range ids {
		res, err := s.db.ExecContext(ctx, `UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id = ? AND status = ?
			AND (claimed_until IS NULL OR claimed_until < ?)`, worker, now.Add(lease), id, buildgate.DeliveryPending, now)
		if err != nil {
			return nil, fmt.Errorf("claiming delivery %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // another worker took it
		}
		d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, id))
		if err != nil {
			return nil, fmt.Errorf("reading delivery %q: %w", id, err)
		}
		out = append(out, *d)
	}
	return out, nil
}

// RecordAttempt stores one attempt at a delivery and releases the claim:
// the delivery becomes status (delivered, failed for good, or pending
// again until next).
func (s *DB) RecordAttempt(ctx context.Context, id string, a buildgate.DeliveryAttempt, status string, next time.Time) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, at, ok, status_code, answer, error, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO NOTHING`,
			id, a.Attempt, a.At.UTC(), boolInt(a.OK), a.StatusCode, a.Answer, a.Error, a.DurationMS); err != nil {
			return err
		}
		var delivered, nextAt sql.NullTime
		if status == buildgate.DeliveryDelivered {
			delivered = sql.NullTime{Time: a.At.UTC(), Valid: true}
		}
		if status == buildgate.DeliveryPending {
			nextAt = sql.NullTime{Time: next.UTC(), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, delivered_at = ?,
			claimed_by = '', claimed_until = NULL, updated_at = ? WHERE id = ?`,
			status, a.Attempt, a.Error, nextAt, delivered, s.now(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording an attempt at delivery %q: %w", id, err)
	}
	return nil
}

// Deliveries returns the deliveries of an alert or a subscription, newest
// first, at most limit, each with its attempts.
func (s *DB) Deliveries(ctx context.Context, sourceType, sourceID string, limit int) ([]buildgate.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE source_type = ? AND source_id = ?
		ORDER BY created_at DESC, id LIMIT ?`, sourceType, sourceID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	out := []buildgate.Delivery{}
	index := map[string]int{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		index[d.ID] = len(out)
		out = append(out, *d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	arows, err := s.db.QueryContext(ctx, `SELECT da.delivery_id, da.attempt, da.at, da.ok, da.status_code, da.answer, da.error, da.duration_ms
		FROM delivery_attempts da JOIN deliveries d ON d.id = da.delivery_id
		WHERE d.source_type = ? AND d.source_id = ? ORDER BY da.delivery_id, da.attempt`, sourceType, sourceID)
	if err != nil {
		return nil, fmt.Errorf("listing delivery attempts: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var id string
		var a buildgate.DeliveryAttempt
		var ok int
		if err := arows.Scan(&id, &a.Attempt, &a.At, &ok, &a.StatusCode, &a.Answer, &a.Error, &a.DurationMS); err != nil {
			return nil, err
		}
		a.OK, a.At = ok != 0, a.At.UTC()
		if i, found := index[id]; found {
			out[i].AttemptLog = append(out[i].AttemptLog, a)
		}
	}
	return out, arows.Err()
}
