package sqlstore

import (
	"context"
	"fmt"

	"github.com/buildgate/buildgate"
)

// SaveVEXDocument stores a new VEX document.
func (s *DB) SaveVEXDocument(ctx context.Context, d buildgate.VEXDocument) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vex_documents (id, name, scope, format, statements, document, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Name, d.Scope, d.Format, d.Statements, string(d.Document), d.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("storing VEX document %q: %w", d.Name, err)
	}
	return nil
}

// VEXDocuments returns every stored VEX document, newest first.
func (s *DB) VEXDocuments(ctx context.Context) ([]buildgate.VEXDocument, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, scope, format, statements, document, created_at FROM vex_documents ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("listing VEX documents: %w", err)
	}
	defer rows.Close()
	var out []buildgate.VEXDocument
	for rows.Next() {
		var d buildgate.VEXDocument
		var doc string
		if err := rows.Scan(&d.ID, &d.Name, &d.Scope, &d.Format, &d.Statements, &doc, &d.CreatedAt); err != nil {
			return nil, fmt.Errorf("listing VEX documents: %w", err)
		}
		d.Document, d.CreatedAt = []byte(doc), d.CreatedAt.UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing VEX documents: %w", err)
	}
	return out, nil
}

// VEXDocumentIDs returns the IDs of every stored VEX document, sorted:
// what a check needs to know whether the set changed, without reading the
// documents.
func (s *DB) VEXDocumentIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM vex_documents ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing VEX documents: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing VEX documents: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing VEX documents: %w", err)
	}
	return ids, nil
}

// DeleteVEXDocument deletes a VEX document.
func (s *DB) DeleteVEXDocument(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM vex_documents WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting VEX document %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return buildgate.Errorf(buildgate.ENOTFOUND, "VEX document %q not found", id)
	}
	return nil
}
