package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// ReplaceInventory replaces what a cluster runs with inv. An inventory
// observed before the stored one is a conflict: pushes that arrive out of
// order never roll the cluster back.
func (s *DB) ReplaceInventory(ctx context.Context, inv buildgate.RuntimeInventory) error {
	err := s.tx(ctx, func(tx *Tx) error {
		var prev time.Time
		err := tx.QueryRowContext(ctx, `SELECT observed_at FROM runtime_clusters WHERE cluster = ?`, inv.Cluster).Scan(&prev)
		switch {
		case isNoRows(err):
		case err != nil:
			return err
		case inv.ObservedAt.Before(prev.UTC()):
			return buildgate.Errorf(buildgate.ECONFLICT, "cluster %q already has an inventory observed at %s, after %s",
				inv.Cluster, prev.UTC().Format(time.RFC3339), inv.ObservedAt.UTC().Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO runtime_clusters (cluster, observed_at, received_at) VALUES (?, ?, ?)
			ON CONFLICT (cluster) DO UPDATE SET observed_at = excluded.observed_at, received_at = excluded.received_at`,
			inv.Cluster, inv.ObservedAt.UTC(), s.now()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM runtime_containers WHERE cluster = ?`, inv.Cluster); err != nil {
			return err
		}
		for _, c := range inv.Containers {
			if _, err := tx.ExecContext(ctx, `INSERT INTO runtime_containers (cluster, namespace, pod, container, image, image_tag, image_digest)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cluster, namespace, pod, container) DO UPDATE SET
				image = excluded.image, image_tag = excluded.image_tag, image_digest = excluded.image_digest`,
				inv.Cluster, c.Namespace, c.Pod, c.Container, c.Image, c.Tag, c.ImageDigest); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapCoded("replacing the inventory of cluster "+inv.Cluster, err)
}

const runtimeCols = `cluster, namespace, pod, container, image, image_tag, image_digest`

func scanContainers(rows *sql.Rows) ([]buildgate.RuntimeContainer, error) {
	defer rows.Close()
	out := []buildgate.RuntimeContainer{}
	for rows.Next() {
		var c buildgate.RuntimeContainer
		if err := rows.Scan(&c.Cluster, &c.Namespace, &c.Pod, &c.Container, &c.Image, &c.Tag, &c.ImageDigest); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RuntimeContainers lists the running containers of a cluster and
// namespace (each only when not empty), by cluster, namespace, pod and
// container.
func (s *DB) RuntimeContainers(ctx context.Context, cluster, namespace string) ([]buildgate.RuntimeContainer, error) {
	q, args := `SELECT `+runtimeCols+` FROM runtime_containers WHERE 1=1`, []any{}
	if cluster != "" {
		q, args = q+` AND cluster = ?`, append(args, cluster)
	}
	if namespace != "" {
		q, args = q+` AND namespace = ?`, append(args, namespace)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY cluster, namespace, pod, container`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing running containers: %w", err)
	}
	return scanContainers(rows)
}

// RuntimeContainersOf lists the running containers whose image has one of
// digests or tags.
func (s *DB) RuntimeContainersOf(ctx context.Context, digests, tags []string) ([]buildgate.RuntimeContainer, error) {
	var conds []string
	var args []any
	in := func(col string, vals []string) {
		var ph []string
		for _, v := range vals {
			if v != "" {
				ph, args = append(ph, "?"), append(args, v)
			}
		}
		if len(ph) > 0 {
			conds = append(conds, col+` IN (`+strings.Join(ph, ", ")+`)`)
		}
	}
	in("image_digest", digests)
	in("image_tag", tags)
	if len(conds) == 0 {
		return []buildgate.RuntimeContainer{}, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runtimeCols+` FROM runtime_containers WHERE `+strings.Join(conds, " OR ")+
		` ORDER BY cluster, namespace, pod, container`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing the containers of an image: %w", err)
	}
	return scanContainers(rows)
}

// LookupImage returns the image a running container stands for: when
// digest is not empty, the one whose manifest or index digest it is (an
// image of the same tag but another digest is not the one running); else
// the newest one tagged tag. It is ENOTFOUND when the gate has none.
func (s *DB) LookupImage(ctx context.Context, digest, tag string) (*buildgate.Image, error) {
	if digest != "" {
		var d string
		err := s.db.QueryRowContext(ctx, `SELECT digest FROM images WHERE digest = ? OR index_digest = ? ORDER BY (digest = ?) DESC, updated_at DESC LIMIT 1`,
			digest, digest, digest).Scan(&d)
		switch {
		case err == nil:
			return s.Image(ctx, d)
		case !isNoRows(err):
			return nil, fmt.Errorf("looking up image %s: %w", digest, err)
		}
	} else if tag != "" {
		var d string
		err := s.db.QueryRowContext(ctx, `SELECT i.digest FROM images i JOIN image_tags t ON t.digest = i.digest WHERE t.tag = ?
			ORDER BY i.updated_at DESC LIMIT 1`, tag).Scan(&d)
		if err == nil {
			return s.Image(ctx, d)
		}
		if !isNoRows(err) {
			return nil, fmt.Errorf("looking up image %s: %w", tag, err)
		}
	}
	return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no image %s", strings.TrimSpace(tag+" "+digest))
}

// ImageMatches returns the stored matches of an analysed image without
// reading the rest of its analysis.
func (s *DB) ImageMatches(ctx context.Context, digest string) ([]buildgate.Match, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT matches FROM analyses WHERE digest = ?`, digest).Scan(&b)
	if isNoRows(err) {
		return nil, notFound("analysis of image", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading matches of %s: %w", digest, err)
	}
	var out []buildgate.Match
	if err := unpackJSON(b, &out); err != nil {
		return nil, fmt.Errorf("decoding matches of %s: %w", digest, err)
	}
	return out, nil
}

// LatestEvaluation returns the stored verdict of an image under a policy
// for tag, or, when there is none for tag, its newest verdict under the
// policy for any tag.
func (s *DB) LatestEvaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error) {
	var t string
	err := s.db.QueryRowContext(ctx, `SELECT tag FROM evaluations WHERE digest = ? AND policy_id = ?
		ORDER BY (tag = ?) DESC, evaluated_at DESC LIMIT 1`, digest, policyID, tag).Scan(&t)
	if isNoRows(err) {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "no stored evaluation of %s under policy %q", digest, policyID)
	}
	if err != nil {
		return nil, err
	}
	return s.Evaluation(ctx, digest, t, policyID)
}

// SaveVulnerabilityChange records what a re-match changed for an image.
func (s *DB) SaveVulnerabilityChange(ctx context.Context, c buildgate.VulnerabilityChange) error {
	appeared, err := packJSON(nonNilMatches(c.Appeared))
	if err != nil {
		return err
	}
	disappeared, err := packJSON(nonNilMatches(c.Disappeared))
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO vulnerability_changes (id, digest, db_built, changed_at, appeared, disappeared) VALUES (?, ?, ?, ?, ?, ?)`,
		buildgate.NewID(), c.Digest, nullTime(c.DBBuilt), c.ChangedAt.UTC(), appeared, disappeared)
	if err != nil {
		return fmt.Errorf("recording vulnerability changes of %s: %w", c.Digest, err)
	}
	return nil
}

func nonNilMatches(m []buildgate.Match) []buildgate.Match {
	if m == nil {
		return []buildgate.Match{}
	}
	return m
}

// VulnerabilityChanges returns the recorded vulnerability changes of an
// image, newest first.
func (s *DB) VulnerabilityChanges(ctx context.Context, digest string) ([]buildgate.VulnerabilityChange, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT db_built, changed_at, appeared, disappeared FROM vulnerability_changes
		WHERE digest = ? ORDER BY changed_at DESC, id`, digest)
	if err != nil {
		return nil, fmt.Errorf("listing vulnerability changes of %s: %w", digest, err)
	}
	defer rows.Close()
	out := []buildgate.VulnerabilityChange{}
	for rows.Next() {
		c := buildgate.VulnerabilityChange{Digest: digest}
		var built sql.NullTime
		var appeared, disappeared []byte
		if err := rows.Scan(&built, &c.ChangedAt, &appeared, &disappeared); err != nil {
			return nil, err
		}
		if built.Valid {
			c.DBBuilt = built.Time.UTC()
		}
		c.ChangedAt = c.ChangedAt.UTC()
		if err := unpackJSON(appeared, &c.Appeared); err != nil {
			return nil, err
		}
		if err := unpackJSON(disappeared, &c.Disappeared); err != nil {
			return nil, err
		}
		c.Appeared, c.Disappeared = nonNilMatches(c.Appeared), nonNilMatches(c.Disappeared)
		out = append(out, c)
	}
	return out, rows.Err()
}
