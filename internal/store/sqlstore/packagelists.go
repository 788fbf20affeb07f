package sqlstore

import (
	"context"
	"fmt"
)

// SavePackageList stores the package list of an analysed image (what the
// matcher reads from its SBOM), replacing any it had.
func (s *DB) SavePackageList(ctx context.Context, digest string, list []byte) error {
	if list == nil {
		return fmt.Errorf("saving the package list of %s: no list", digest)
	}
	return savePackageList(ctx, s.db, digest, list)
}

// savePackageList stores the package list of an analysed image, or
// removes the one it had when list is nil.
func savePackageList(ctx context.Context, c *conn, digest string, list []byte) error {
	if list == nil {
		if _, err := c.ExecContext(ctx, `DELETE FROM package_lists WHERE digest = ?`, digest); err != nil {
			return fmt.Errorf("removing the package list of %s: %w", digest, err)
		}
		return nil
	}
	res, err := c.ExecContext(ctx, `INSERT INTO package_lists (digest, list) SELECT digest, ? FROM analyses WHERE digest = ?
		ON CONFLICT (digest) DO UPDATE SET list = excluded.list`, pack(list), digest)
	if err != nil {
		return fmt.Errorf("saving the package list of %s: %w", digest, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("analysis of image", digest)
	}
	return nil
}

// PackageList returns the stored package list of an analysed image.
func (s *DB) PackageList(ctx context.Context, digest string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT list FROM package_lists WHERE digest = ?`, digest).Scan(&b)
	if isNoRows(err) {
		return nil, notFound("package list of image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the package list of %s: %w", digest, err)
	}
	list, err := unpack(b)
	if err != nil {
		return nil, fmt.Errorf("reading the package list of %s: %w", digest, err)
	}
	return list, nil
}
