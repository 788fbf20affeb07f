package catalog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/flate"
	gzip "github.com/klauspost/pgzip"

	"github.com/buildgate/buildgate"
)

// Magic numbers of the compressed layer formats.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// uncompressed returns the layer's tar, checked against diffID, its diff ID
// in the image config: the read that reaches the end of a tar that does not
// hash to it fails. gzip is decompressed with klauspost/pgzip: klauspost/compress's
// inflater, about twice as fast as compress/gzip, on a goroutine of its
// own that reads ahead, so that the reader's work (hashing, writing the
// tar, the files pass) runs beside it (0.45 s off a cold bullseye-minbase
// catalog on 2 cores, BenchmarkCatalog); zstd as go-containerregistry
// does.
func uncompressed(l v1.Layer, diffID v1.Hash) (io.ReadCloser, error) {
	if diffID.Algorithm != "sha256" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "layer diff ID %s: only sha256 diff IDs are supported", diffID)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(len(zstdMagic))
	var (
		r      io.Reader = br
		closer io.Closer = rc
	)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, buildgate.Errorf(buildgate.EINVALID, "layer %s: %v", diffID, err)
		}
		r, closer = formatErrors{zr, diffID}, closeBoth{rc, zr}
	case bytes.HasPrefix(magic, zstdMagic):
		rc.Close()
		u, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		r, closer = u, u
	}
	return &verifyingReader{r: r, c: closer, want: diffID, h: sha256.New()}, nil
}

// formatErrors reports what a gzip stream that is not valid gzip fails
// with as invalid input naming the layer: a stream cut short, a corrupt
// one, one that fails its checksum.
type formatErrors struct {
	r      io.Reader
	diffID v1.Hash
}

func (f formatErrors) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	var corrupt flate.CorruptInputError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt) {
		err = buildgate.Errorf(buildgate.EINVALID, "layer %s: its gzip stream is broken: %v", f.diffID, err)
	}
	return n, err
}

// closeBoth closes the blob, then the decompressor, which waits for its
// read-ahead to stop (a read of the closed blob returns at once).
type closeBoth struct {
	blob io.Closer
	zr   io.Closer
}

func (c closeBoth) Close() error { return errors.Join(c.blob.Close(), c.zr.Close()) }

// verifyingReader hashes what it reads and fails at the end when the hash
// is not the diff ID.
type verifyingReader struct {
	r    io.Reader
	c    io.Closer
	want v1.Hash
	h    hash.Hash
	err  error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := fmt.Sprintf("%x", v.h.Sum(nil)); got != v.want.Hex {
			v.err = buildgate.Errorf(buildgate.EINVALID, "layer %s: its content hashes to sha256:%s, not to its diff ID: refused", v.want, got)
			return n, v.err
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }

// diffIDs returns the diff IDs the image config gives its layers, one a
// layer.
func diffIDs(img v1.Image, layers int) ([]v1.Hash, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	if n := len(cf.RootFS.DiffIDs); n != layers {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the image config lists %d diff IDs for %d layers", n, layers)
	}
	return cf.RootFS.DiffIDs, nil
}
