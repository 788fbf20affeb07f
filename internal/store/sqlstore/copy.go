package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Tables lists every table of the store in an order that respects foreign
// keys: a row's parents come first. Copy refuses a store that holds a table
// this list does not name, so a new table cannot be left behind silently.
var Tables = []string{
	"images", "image_tags", "analyses", "tokens",
	"policies", "policy_versions", "evaluations",
	"registries", "subscriptions", "channels", "alerts", "alert_channels", "subscription_channels",
	"deliveries", "delivery_attempts",
	"runtime_clusters", "runtime_containers", "vulnerability_changes", "tag_digests", "rounds",
	"admission_rules", "admission_decisions", "admission_namespaces", "pending_work",
	"db_archives", "db_archive_chunks", "console_sessions", "vex_documents", "package_lists",
	"upload_archives", "upload_archive_chunks",
}

// TableCount is what Copy did with one table.
type TableCount struct {
	Table string
	// Source is the rows of the source, Copied the rows written (fewer
	// only when the target already held rows with the same keys).
	Source, Copied int
}

// Copy copies every row of src into dst in one transaction of dst: images,
// SBOMs, analyses, verdicts, policies with their versions, sealed secrets
// (still sealed: dst's gate needs the same key), tokens, subscriptions,
// alerts, runtime inventories and the outbox. It refuses a dst that holds
// rows unless allowNonEmpty, and then keeps dst's rows where keys clash.
func Copy(ctx context.Context, dst, src *DB, allowNonEmpty bool) ([]TableCount, error) {
	for _, s := range []*DB{src, dst} {
		if err := s.knownTables(ctx); err != nil {
			return nil, err
		}
	}
	if !allowNonEmpty {
		var held []string
		for _, t := range Tables {
			var n int
			if err := dst.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
				return nil, fmt.Errorf("counting %s of the target: %w", t, err)
			}
			if n > 0 {
				held = append(held, fmt.Sprintf("%s (%d)", t, n))
			}
		}
		if len(held) > 0 {
			return nil, fmt.Errorf("the target store is not empty: %s; copy into an empty store, or allow it with --allow-non-empty (rows whose keys the target holds are kept)",
				strings.Join(held, ", "))
		}
	}
	var counts []TableCount
	err := dst.tx(ctx, func(tx *Tx) error {
		for _, t := range Tables {
			c, err := copyTable(ctx, tx, src, t)
			if err != nil {
				return fmt.Errorf("copying %s: %w", t, err)
			}
			counts = append(counts, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func copyTable(ctx context.Context, tx *Tx, src *DB, table string) (TableCount, error) {
	c := TableCount{Table: table}
	rows, err := src.db.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return c, err
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `) ON CONFLICT DO NOTHING`
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return c, err
		}
		c.Source++
		res, err := tx.ExecContext(ctx, insert, vals...)
		if err != nil {
			return c, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			c.Copied++
		}
	}
	return c, rows.Err()
}

// knownTables fails when the store holds a table Copy does not know.
func (s *DB) knownTables(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, s.dialect.TablesQuery)
	if err != nil {
		return fmt.Errorf("listing the tables of the %s store: %w", s.dialect.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		if t != "schema_migrations" && !slices.Contains(Tables, t) {
			return fmt.Errorf("the %s store holds table %q, which the copy does not know: add it to sqlstore.Tables", s.dialect.Name, t)
		}
	}
	return rows.Err()
}
