package vulndb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/db/v6/distribution"
)

// DefaultUpdateURL is where grype itself looks for v6 DB updates: its
// distribution default (https://grype.anchore.io/databases) resolved to
// the v6 listing as grype's client does.
var DefaultUpdateURL = resolveListingURL(distribution.DefaultConfig().LatestURL)

// Listing is a grype v6 distribution listing (latest.json): it names the
// newest DB archive, relative to the listing's own location.
type Listing struct {
	// Location is where the listing was read from.
	Location      string    `json:"location"`
	Status        string    `json:"status"`
	SchemaVersion string    `json:"schema_version"`
	Built         time.Time `json:"built"`
	// Path is the archive's path relative to Location (or an absolute URL).
	Path string `json:"path"`
	// Checksum is the archive's digest, "sha256:<hex>".
	Checksum string `json:"checksum"`
}

// resolveListingURL mirrors grype's client: a URL not naming a .json file is
// a base under which v<model>/latest.json lives. Local paths are kept; a
// directory is resolved to its latest.json when read.
func resolveListingURL(u string) string {
	if !isHTTP(u) || strings.HasSuffix(u, ".json") {
		return u
	}
	return fmt.Sprintf("%s/v%d/%s", strings.TrimRight(u, "/"), v6.ModelVersion, distribution.LatestFileName)
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// localPath turns a file:// URL or plain path into a path; ok is false for
// http(s) URLs.
func localPath(loc string) (p string, ok bool, err error) {
	if isHTTP(loc) {
		return "", false, nil
	}
	if strings.HasPrefix(loc, "file:") {
		u, err := url.Parse(loc)
		if err != nil {
			return "", true, fmt.Errorf("parsing %q: %w", loc, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", true, fmt.Errorf("file URL %q names a remote host", loc)
		}
		return filepath.FromSlash(u.Path), true, nil
	}
	if strings.Contains(loc, "://") {
		return "", true, fmt.Errorf("unsupported URL scheme in %q (want http, https, file or a path)", loc)
	}
	return loc, true, nil
}

// open opens a listing or archive location for reading.
func open(ctx context.Context, client *http.Client, loc string) (io.ReadCloser, error) {
	p, local, err := localPath(loc)
	if err != nil {
		return nil, err
	}
	if local {
		return os.Open(p)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", loc, resp.Status)
	}
	return resp.Body, nil
}

// ReadListing reads the grype v6 listing (latest.json) at loc: an http(s)
// URL (one not ending in .json is a base, as in grype), a file:// URL, a
// path, or a directory holding latest.json. client may be nil.
func ReadListing(ctx context.Context, client *http.Client, loc string) (*Listing, error) {
	if client == nil {
		client = http.DefaultClient
	}
	loc = resolveListingURL(loc)
	if p, local, err := localPath(loc); err == nil && local {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			loc = filepath.Join(p, distribution.LatestFileName)
		}
	}
	rc, err := open(ctx, client, loc)
	if err != nil {
		return nil, fmt.Errorf("reading listing %s: %w", loc, err)
	}
	defer rc.Close()
	doc, err := distribution.NewLatestFromReader(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading listing %s: %w", loc, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("reading listing %s: empty", loc)
	}
	if doc.SchemaVersion.Model != v6.ModelVersion {
		return nil, fmt.Errorf("listing %s is for schema v%d, want v%d", loc, doc.SchemaVersion.Model, v6.ModelVersion)
	}
	if doc.Path == "" {
		return nil, fmt.Errorf("listing %s names no archive", loc)
	}
	return &Listing{
		Location:      loc,
		Status:        string(doc.Status),
		SchemaVersion: doc.SchemaVersion.String(),
		Built:         doc.Built.UTC(),
		Path:          doc.Path,
		Checksum:      doc.Checksum,
	}, nil
}

// ArchiveLocation resolves the archive the listing names against the
// listing's location, as grype's client does.
func (l Listing) ArchiveLocation() (string, error) {
	if isHTTP(l.Path) {
		return l.Path, nil
	}
	if p, local, err := localPath(l.Location); err != nil {
		return "", err
	} else if local {
		return filepath.Join(filepath.Dir(p), filepath.FromSlash(path.Clean(l.Path))), nil
	}
	u, err := url.Parse(l.Location)
	if err != nil {
		return "", fmt.Errorf("parsing listing URL %q: %w", l.Location, err)
	}
	u.Path = path.Join(path.Dir(u.Path), path.Clean(l.Path))
	u.RawQuery = ""
	return u.String(), nil
}

// Update fetches the listing at listingURL (see ReadListing; "" means
// DefaultUpdateURL) and, when it names a DB built after the one in use (or
// none is in use), downloads the archive, verifies its checksum against the
// listing and imports it. It reports whether the DB changed. The attempt's
// time and error are recorded in Status. On any error the DB in use is
// untouched.
func (m *Manager) Update(ctx context.Context, listingURL string) (updated bool, err error) {
	m.install.Lock()
	defer m.install.Unlock()
	started := time.Now()
	defer func() { m.recordAttempt(started, err) }()

	if listingURL == "" {
		listingURL = DefaultUpdateURL
	}
	updated, err = m.update(ctx, listingURL)
	if err != nil {
		return false, fmt.Errorf("updating db: %w", err)
	}
	return updated, nil
}

func (m *Manager) update(ctx context.Context, listingURL string) (bool, error) {
	l, err := ReadListing(ctx, m.opts.HTTPClient, listingURL)
	if err != nil {
		return false, err
	}
	if cur := m.Info(); !cur.Built.IsZero() && !l.Built.After(cur.Built) {
		return false, nil
	}
	algo, want, ok := strings.Cut(l.Checksum, ":")
	if !ok || want == "" {
		return false, fmt.Errorf("listing %s gives no archive checksum", l.Location)
	}
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	default:
		return false, fmt.Errorf("listing %s: unsupported checksum algorithm %q", l.Location, algo)
	}
	loc, err := l.ArchiveLocation()
	if err != nil {
		return false, err
	}

	staging, err := m.staging()
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(staging)

	rc, err := open(ctx, m.opts.HTTPClient, loc)
	if err != nil {
		return false, fmt.Errorf("downloading archive: %w", err)
	}
	archive := filepath.Join(staging, "archive")
	err = writeFile(ctx, archive, io.TeeReader(limitReader(rc, m.opts.MaxArchiveSize), h))
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("downloading archive %s: %w", loc, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return false, fmt.Errorf("archive %s checksum mismatch: listing says %s:%s, got %s:%s", loc, algo, want, algo, got)
	}
	if _, err := m.installArchive(ctx, staging, archive, loc); err != nil {
		if errors.Is(err, ErrClosed) {
			return false, err
		}
		return false, fmt.Errorf("installing %s: %w", loc, err)
	}
	return true, nil
}
