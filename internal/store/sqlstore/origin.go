package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/buildgate/buildgate"
)

// ImageOrigin returns where an image came from and when each of its tags
// was first seen.
func (s *DB) ImageOrigin(ctx context.Context, digest string) (*buildgate.Origin, error) {
	var o buildgate.Origin
	err := s.db.QueryRowContext(ctx, `SELECT index_digest, pull_ref FROM images WHERE digest = ?`, digest).Scan(&o.IndexDigest, &o.PullRef)
	if isNoRows(err) {
		return nil, notFound("image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", digest, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT tag, detected_at FROM image_tags WHERE digest = ?`, digest)
	if err != nil {
		return nil, fmt.Errorf("reading tags of %s: %w", digest, err)
	}
	defer rows.Close()
	o.TagsSeen = map[string]time.Time{}
	for rows.Next() {
		var tag string
		var at time.Time
		if err := rows.Scan(&tag, &at); err != nil {
			return nil, err
		}
		o.TagsSeen[tag] = at.UTC()
	}
	return &o, rows.Err()
}

// ImageMetadata returns the metadata of an analysed image without reading
// the rest of its analysis.
func (s *DB) ImageMetadata(ctx context.Context, digest string) (*buildgate.Metadata, error) {
	var meta string
	err := s.db.QueryRowContext(ctx, `SELECT metadata FROM analyses WHERE digest = ?`, digest).Scan(&meta)
	if isNoRows(err) {
		return nil, notFound("analysis of image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", digest, err)
	}
	var m buildgate.Metadata
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return nil, fmt.Errorf("decoding metadata of %s: %w", digest, err)
	}
	return &m, nil
}
