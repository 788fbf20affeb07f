package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// chunkSize is the size of the rows an archive is stored in: small enough
// that neither side holds a whole archive in memory.
const chunkSize = 1 << 20

// writeChunks stores what r holds in rows of chunkSize with insert, whose
// arguments are owner, the chunk's sequence number and its bytes, and
// returns the size and the checksum ("sha256:...") of what it stored.
func writeChunks(ctx context.Context, tx *Tx, insert, owner string, r io.Reader) (int64, string, error) {
	h := sha256.New()
	var size int64
	buf := make([]byte, chunkSize)
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if _, err := tx.ExecContext(ctx, insert, owner, seq, buf[:n]); err != nil {
				return 0, "", err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, "", fmt.Errorf("reading the archive: %w", err)
		}
	}
	return size, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// readChunks writes to w the chunks of owner that query (arguments owner
// and sequence number) selects, in order, until size bytes, and checks
// them against size and checksum. what names the stored thing in errors;
// a missing chunk is not found.
func (s *DB) readChunks(ctx context.Context, query, owner string, size int64, checksum, what string, w io.Writer) error {
	h := sha256.New()
	var got int64
	for seq := 0; got < size; seq++ {
		var data []byte
		err := s.db.QueryRowContext(ctx, query, owner, seq).Scan(&data)
		if isNoRows(err) {
			return notFound(what, owner)
		}
		if err != nil {
			return fmt.Errorf("reading the stored %s %s: %w", what, owner, err)
		}
		h.Write(data)
		got += int64(len(data))
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if sum := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != size || sum != checksum {
		return fmt.Errorf("the stored %s %s is %d bytes with checksum %s, want %d bytes with %s", what, owner, got, sum, size, checksum)
	}
	return nil
}
