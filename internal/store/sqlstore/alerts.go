package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Channels keep their secret only sealed (internal/secret), in a column
// no record query reads.

// channelConfig is the JSON of a channel's non-secret settings.
type channelConfig struct {
	URL      string   `json:"url,omitempty"`
	SMTPHost string   `json:"smtp_host,omitempty"`
	SMTPPort int      `json:"smtp_port,omitempty"`
	TLS      string   `json:"tls,omitempty"`
	CACert   string   `json:"ca_cert,omitempty"`
	Username string   `json:"username,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
}

const channelCols = `id, name, type, config, secret_set_at, created_at, updated_at`

func scanChannel(row interface{ Scan(...any) error }) (*buildgate.Channel, error) {
	var c buildgate.Channel
	var cfg string
	var set sql.NullTime
	if err := row.Scan(&c.ID, &c.Name, &c.Type, &cfg, &set, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	var cc channelConfig
	if err := json.Unmarshal([]byte(cfg), &cc); err != nil {
		return nil, fmt.Errorf("reading channel %q: %w", c.ID, err)
	}
	c.URL, c.SMTPHost, c.SMTPPort, c.TLS, c.CACert, c.Username, c.From, c.To =
		cc.URL, cc.SMTPHost, cc.SMTPPort, cc.TLS, cc.CACert, cc.Username, cc.From, cc.To
	if set.Valid {
		t := set.Time.UTC()
		c.SecretSetAt = &t
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func channelConfigJSON(c buildgate.Channel) (string, error) {
	b, err := json.Marshal(channelConfig{
		URL: c.URL, SMTPHost: c.SMTPHost, SMTPPort: c.SMTPPort, TLS: c.TLS, CACert: c.CACert,
		Username: c.Username, From: c.From, To: c.To,
	})
	return string(b), err
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "unique")
}

// CreateChannel stores a new channel with its sealed secret (empty when it
// has none) and returns it; c.ID is made when empty. A channel of the same
// name is a conflict.
func (s *DB) CreateChannel(ctx context.Context, c buildgate.Channel, sealed string) (*buildgate.Channel, error) {
	now := s.now()
	if c.ID == "" {
		c.ID = buildgate.NewID()
	}
	cfg, err := channelConfigJSON(c)
	if err != nil {
		return nil, err
	}
	var setAt sql.NullTime
	if sealed != "" {
		setAt = sql.NullTime{Time: now, Valid: true}
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO channels (`+channelCols+`, secret_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Type, cfg, setAt, now, now, sealed)
	if isUnique(err) {
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "a channel named %q already exists", c.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("storing channel %q: %w", c.Name, err)
	}
	return s.Channel(ctx, c.ID)
}

// UpdateChannel replaces a channel's name and settings; its type does not
// change. An empty sealed keeps the stored secret and the time it was set.
func (s *DB) UpdateChannel(ctx context.Context, c buildgate.Channel, sealed string) (*buildgate.Channel, error) {
	cfg, err := channelConfigJSON(c)
	if err != nil {
		return nil, err
	}
	now := s.now()
	q, args := `UPDATE channels SET name = ?, config = ?, updated_at = ?`, []any{c.Name, cfg, now}
	if sealed != "" {
		q, args = q+`, secret_sealed = ?, secret_set_at = ?`, append(args, sealed, now)
	}
	res, err := s.db.ExecContext(ctx, q+` WHERE id = ?`, append(args, c.ID)...)
	if isUnique(err) {
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "a channel named %q already exists", c.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("updating channel %q: %w", c.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, notFound("channel", c.ID)
	}
	return s.Channel(ctx, c.ID)
}

// Channel returns one channel, without its secret.
func (s *DB) Channel(ctx context.Context, id string) (*buildgate.Channel, error) {
	c, err := scanChannel(s.db.QueryRowContext(ctx, `SELECT `+channelCols+` FROM channels WHERE id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("channel", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading channel %q: %w", id, err)
	}
	return c, nil
}

// ChannelSecret returns a channel's sealed secret ("" when it has none).
func (s *DB) ChannelSecret(ctx context.Context, id string) (string, error) {
	var sealed string
	err := s.db.QueryRowContext(ctx, `SELECT secret_sealed FROM channels WHERE id = ?`, id).Scan(&sealed)
	if isNoRows(err) {
		return "", notFound("channel", id)
	}
	if err != nil {
		return "", fmt.Errorf("reading the secret of channel %q: %w", id, err)
	}
	return sealed, nil
}

// SetChannelURL stores a channel's sealed URL and the redacted form its
// record shows.
func (s *DB) SetChannelURL(ctx context.Context, id, sealed, display string) error {
	// The config is rewritten here, not with a JSON function of the SQL
	// dialect, so the statement stays portable.
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT config FROM channels WHERE id = ?`, id).Scan(&raw)
	if isNoRows(err) {
		return notFound("channel", id)
	}
	if err != nil {
		return fmt.Errorf("reading the config of channel %q: %w", id, err)
	}
	cfg := map[string]any{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return fmt.Errorf("reading the config of channel %q: %w", id, err)
		}
	}
	cfg["url"] = display
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE channels SET url_sealed = ?, config = ? WHERE id = ?`, sealed, string(b), id)
	if err != nil {
		return fmt.Errorf("storing the url of channel %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("channel", id)
	}
	return nil
}

// ChannelURL returns a channel's sealed URL ("" when it has none sealed).
func (s *DB) ChannelURL(ctx context.Context, id string) (string, error) {
	var sealed string
	err := s.db.QueryRowContext(ctx, `SELECT url_sealed FROM channels WHERE id = ?`, id).Scan(&sealed)
	if isNoRows(err) {
		return "", notFound("channel", id)
	}
	if err != nil {
		return "", fmt.Errorf("reading the url of channel %q: %w", id, err)
	}
	return sealed, nil
}

// ListChannels returns every channel, by name.
func (s *DB) ListChannels(ctx context.Context) ([]buildgate.Channel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+channelCols+` FROM channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing channels: %w", err)
	}
	defer rows.Close()
	out := []buildgate.Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// DeleteChannel deletes a channel. A channel an alert or a subscription
// still names is a conflict.
func (s *DB) DeleteChannel(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *Tx) error {
		var users []string
		rows, err := tx.QueryContext(ctx, `SELECT 'alert ' || a.name FROM alert_channels ac JOIN alerts a ON a.id = ac.alert_id WHERE ac.channel_id = ?
			UNION ALL SELECT 'subscription ' || sc.subscription_id FROM subscription_channels sc WHERE sc.channel_id = ?`, id, id)
		if err != nil {
			return fmt.Errorf("looking up the users of channel %q: %w", id, err)
		}
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return err
			}
			users = append(users, u)
		}
		rows.Close()
		if len(users) > 0 {
			return buildgate.Errorf(buildgate.ECONFLICT, "channel %q is in use by %s: remove it from them first", id, strings.Join(users, ", "))
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM channels WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("deleting channel %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("channel", id)
		}
		return nil
	})
}

const alertCols = `id, name, description, enabled, scope, triggers, created_at, updated_at`

func scanAlert(row interface{ Scan(...any) error }) (*buildgate.Alert, error) {
	var a buildgate.Alert
	var enabled int
	var scope, triggers string
	if err := row.Scan(&a.ID, &a.Name, &a.Description, &enabled, &scope, &triggers, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.Enabled = enabled != 0
	if err := json.Unmarshal([]byte(scope), &a.Scope); err != nil {
		return nil, fmt.Errorf("reading the scope of alert %q: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(triggers), &a.Triggers); err != nil {
		return nil, fmt.Errorf("reading the triggers of alert %q: %w", a.ID, err)
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	a.Channels = []string{}
	return &a, nil
}

// setChannels replaces the channels of an alert or a subscription.
func setChannels(ctx context.Context, tx *Tx, table, col, id string, channels []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+` = ?`, id); err != nil {
		return err
	}
	for i, ch := range channels {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM channels WHERE id = ?`, ch).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return buildgate.Errorf(buildgate.EINVALID, "channel %q does not exist", ch)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (`+col+`, channel_id, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, ch, i); err != nil {
			return err
		}
	}
	return nil
}

// channelsOf returns the channel ids of alerts or subscriptions by owner id.
func (s *DB) channelsOf(ctx context.Context, table, col string) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+col+`, channel_id FROM `+table+` ORDER BY `+col+`, position`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, ch string
		if err := rows.Scan(&id, &ch); err != nil {
			return nil, err
		}
		out[id] = append(out[id], ch)
	}
	return out, rows.Err()
}

func alertJSON(a buildgate.Alert) (scope, triggers string, err error) {
	sb, err := json.Marshal(a.Scope)
	if err != nil {
		return "", "", err
	}
	tr := a.Triggers
	if tr == nil {
		tr = []buildgate.AlertTrigger{}
	}
	tb, err := json.Marshal(tr)
	return string(sb), string(tb), err
}

// CreateAlert stores a new alert (a.ID is made when empty) and returns
// it. Its channels must exist; an alert of the same name is a conflict.
func (s *DB) CreateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error) {
	if a.ID == "" {
		a.ID = buildgate.NewID()
	}
	scope, triggers, err := alertJSON(a)
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alerts (`+alertCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, a.Description, boolInt(a.Enabled), scope, triggers, now, now)
		if isUnique(err) {
			return buildgate.Errorf(buildgate.ECONFLICT, "an alert named %q already exists", a.Name)
		}
		if err != nil {
			return err
		}
		return setChannels(ctx, tx, "alert_channels", "alert_id", a.ID, a.Channels)
	})
	if err != nil {
		return nil, wrapCoded("storing alert", err)
	}
	return s.Alert(ctx, a.ID)
}

// wrapCoded wraps err with what, keeping coded errors as they are.
func wrapCoded(what string, err error) error {
	if buildgate.ErrorCode(err) != buildgate.EINTERNAL {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// UpdateAlert replaces an alert's fields and channels.
func (s *DB) UpdateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error) {
	scope, triggers, err := alertJSON(a)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET name = ?, description = ?, enabled = ?, scope = ?, triggers = ?, updated_at = ? WHERE id = ?`,
			a.Name, a.Description, boolInt(a.Enabled), scope, triggers, s.now(), a.ID)
		if isUnique(err) {
			return buildgate.Errorf(buildgate.ECONFLICT, "an alert named %q already exists", a.Name)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("alert", a.ID)
		}
		return setChannels(ctx, tx, "alert_channels", "alert_id", a.ID, a.Channels)
	})
	if err != nil {
		return nil, wrapCoded("updating alert", err)
	}
	return s.Alert(ctx, a.ID)
}

// Alert returns one alert with its channels.
func (s *DB) Alert(ctx context.Context, id string) (*buildgate.Alert, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if isNoRows(err) {
		return nil, notFound("alert", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert %q: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT channel_id FROM alert_channels WHERE alert_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ch string
		if err := rows.Scan(&ch); err != nil {
			return nil, err
		}
		a.Channels = append(a.Channels, ch)
	}
	return a, rows.Err()
}

// ListAlerts returns every alert with its channels, by name.
func (s *DB) ListAlerts(ctx context.Context) ([]buildgate.Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing alerts: %w", err)
	}
	out := []buildgate.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	chans, err := s.channelsOf(ctx, "alert_channels", "alert_id")
	if err != nil {
		return nil, err
	}
	for i := range out {
		if c := chans[out[i].ID]; c != nil {
			out[i].Channels = c
		}
	}
	return out, nil
}

// DeleteAlert deletes an alert and its deliveries.
func (s *DB) DeleteAlert(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("deleting alert %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("alert", id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM deliveries WHERE source_type = ? AND source_id = ?`, buildgate.SourceAlert, id)
		return err
	})
}

// SetSubscriptionChannels replaces the channels a subscription notifies.
func (s *DB) SetSubscriptionChannels(ctx context.Context, id string, channels []string) error {
	err := s.tx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscriptions WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("subscription", id)
		}
		return setChannels(ctx, tx, "subscription_channels", "subscription_id", id, channels)
	})
	return wrapCoded("setting the channels of subscription "+id, err)
}

// SubscriptionChannels returns the channel ids of every subscription that
// has any, by subscription id.
func (s *DB) SubscriptionChannels(ctx context.Context) (map[string][]string, error) {
	m, err := s.channelsOf(ctx, "subscription_channels", "subscription_id")
	if err != nil {
		return nil, fmt.Errorf("listing subscription channels: %w", err)
	}
	return m, nil
}

// TagDigest returns the digest a tag pointed at when it was last polled
// ("" when it never was).
func (s *DB) TagDigest(ctx context.Context, tag string) (string, error) {
	var d string
	err := s.db.QueryRowContext(ctx, `SELECT digest FROM tag_digests WHERE tag = ?`, tag).Scan(&d)
	if isNoRows(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the last digest of %q: %w", tag, err)
	}
	return d, nil
}

// SetTagDigest records the result of polling a tag: the digest it points
// at, or the error that kept it from being resolved (which keeps the last
// digest).
func (s *DB) SetTagDigest(ctx context.Context, tag, digest, pollErr string, at time.Time) error {
	var err error
	if digest == "" {
		_, err = s.db.ExecContext(ctx, `INSERT INTO tag_digests (tag, digest, checked_at, error) VALUES (?, '', ?, ?)
			ON CONFLICT (tag) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error`, tag, at, pollErr)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT INTO tag_digests (tag, digest, checked_at, error) VALUES (?, ?, ?, '')
			ON CONFLICT (tag) DO UPDATE SET digest = excluded.digest, checked_at = excluded.checked_at, error = ''`, tag, digest, at)
	}
	if err != nil {
		return fmt.Errorf("recording the digest of %q: %w", tag, err)
	}
	return nil
}
