package vulndb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/mholt/archives"

	v6 "github.com/anchore/grype/grype/db/v6"
)

// sqliteHeader starts every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// extractDB unpacks a DB archive (tar.gz, tar.zst, tar.xz, tar — anything
// grype's curator can unpack) into dir, keeping only vulnerability.db and
// import.json from the archive's top level. A bare SQLite file is accepted
// too and copied as vulnerability.db.
func extractDB(ctx context.Context, archivePath, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer f.Close()

	head := make([]byte, len(sqliteHeader))
	if n, _ := io.ReadFull(f, head); n == len(head) && bytes.Equal(head, sqliteHeader) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return writeFile(ctx, filepath.Join(dir, v6.VulnerabilityDBFileName), f)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}

	format, stream, err := archives.Identify(ctx, "", f)
	if err != nil {
		if errors.Is(err, archives.NoMatch) {
			return errors.New("not a DB archive (want a tar.gz, tar.zst or tar.xz holding vulnerability.db)")
		}
		return fmt.Errorf("identifying archive: %w", err)
	}
	extractor, ok := format.(archives.Extractor)
	if !ok {
		return fmt.Errorf("not a DB archive: %s is compressed data, not an archive", format.Extension())
	}

	found := false
	err = extractor.Extract(ctx, stream, func(ctx context.Context, fi archives.FileInfo) error {
		if fi.IsDir() || fi.LinkTarget != "" || !fi.Mode().IsRegular() {
			return nil
		}
		name := path.Clean("/" + filepath.ToSlash(fi.NameInArchive))[1:]
		if name != v6.VulnerabilityDBFileName && name != v6.ImportMetadataFileName {
			return nil
		}
		rc, err := fi.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if name == v6.VulnerabilityDBFileName {
			found = true
		}
		return writeFile(ctx, filepath.Join(dir, name), rc)
	})
	if err != nil {
		return fmt.Errorf("extracting %s archive: %w", format.Extension(), err)
	}
	if !found {
		return fmt.Errorf("archive holds no %s", v6.VulnerabilityDBFileName)
	}
	return nil
}

// writeFile creates dst (truncating any previous one) from r.
func writeFile(ctx context.Context, dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxReader{ctx: ctx, r: r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errTooLarge is returned when an archive exceeds Options.MaxArchiveSize.
var errTooLarge = errors.New("archive exceeds the size limit")

// limitedReader is io.LimitedReader that fails instead of stopping short.
type limitedReader struct {
	r    io.Reader
	left int64
}

func limitReader(r io.Reader, limit int64) io.Reader {
	if limit <= 0 {
		return r
	}
	return &limitedReader{r: r, left: limit}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// allow a final zero-length EOF probe
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
