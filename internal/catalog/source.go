package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	stfile "github.com/anchore/stereoscope/pkg/file"
	stimage "github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/stereoscopesource"
)

// openSource reads img with stereoscope, as syft.GetSource does for an
// "oci-dir" input, and returns it as a syft source named name at version
// digest. Every layer stereoscope decompresses also flows through taps,
// so that the files pass does not decompress it a second time.
//
// contentDir, when not empty, is where stereoscope keeps the layers' tars
// (removed when the source is closed); a layer whose tar is already there,
// as stereoscope names it (see unpackedPath), is not read again.
func openSource(ctx context.Context, img v1.Image, name, digest string, taps *layerTaps, contentDir string) (source.Source, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	tapped := make([]v1.Layer, len(layers))
	for i, l := range layers {
		tapped[i] = tappedLayer{Layer: l, idx: i, diffID: taps.diffIDs[i], taps: taps}
	}

	tmp := stfile.NewTempDirGenerator("buildgate-catalog")
	if contentDir == "" {
		if contentDir, err = tmp.NewDirectory("oci-dir-image"); err != nil {
			return nil, fmt.Errorf("creating temporary directory: %w", err)
		}
	}
	meta := []stimage.AdditionalMetadata{stimage.WithManifestDigest(digest)}
	if raw, err := img.RawManifest(); err == nil {
		meta = append(meta, stimage.WithManifest(raw))
	}
	simg := stimage.New(tappedImage{Image: img, layers: tapped}, tmp, contentDir, meta...)
	// like syft: lower layer squashes are built only if something reads them
	if err := simg.Read(stimage.WithLazyLayerSquashes(ctx)); err != nil {
		return nil, errors.Join(fmt.Errorf("unpacking layers: %w", err), simg.Cleanup())
	}
	return pooledSource{stereoscopesource.New(simg, stereoscopesource.ImageConfig{
		Reference: name,
		Alias:     source.Alias{Name: name, Version: digest},
	})}, nil
}

// pooledSource is a syft source whose files' contents copy with a pooled
// buffer: syft hashes each package-owned file with io.Copy, which
// otherwise allocates 32 KiB a file (about 170 MB of garbage an image,
// BenchmarkCatalog's -memprofile).
type pooledSource struct{ source.Source }

func (s pooledSource) FileResolver(scope source.Scope) (file.Resolver, error) {
	r, err := s.Source.FileResolver(scope)
	if err != nil {
		return nil, err
	}
	return pooledResolver{r}, nil
}

// ExcludedPaths passes on the source's exclusions, which syft reads.
func (s pooledSource) ExcludedPaths() []string { return excludedPaths(s.Source) }

// excludedPaths are src's exclusions, for a source that wraps it.
func excludedPaths(src source.Source) []string {
	if e, ok := src.(source.PathExcluder); ok {
		return e.ExcludedPaths()
	}
	return nil
}

type pooledResolver struct{ file.Resolver }

func (r pooledResolver) FileContentsByLocation(l file.Location) (io.ReadCloser, error) {
	rc, err := r.Resolver.FileContentsByLocation(l)
	if err != nil {
		return nil, err
	}
	// stereoscope's contents are a reader at, and a seeker, too, which
	// syft's binary parsers look for: keep them
	if c, ok := rc.(sectionReadCloser); ok {
		if _, ok := rc.(io.WriterTo); !ok {
			return pooledContents{c}, nil
		}
	}
	return rc, nil
}

type sectionReadCloser interface {
	io.ReadCloser
	io.ReaderAt
	io.Seeker
}

// pooledContents is a file's contents that write themselves out with a
// pooled buffer.
type pooledContents struct{ sectionReadCloser }

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// WriteTo copies the contents from where they were read up to, as io.Copy
// would, with a buffer from the pool.
func (c pooledContents) WriteTo(w io.Writer) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(w, struct{ io.Reader }{c.sectionReadCloser}, *bp)
}

// unpackedPath is where stereoscope keeps layer idx's tar in contentDir
// (stereoscope's Layer.uncompressedCache, which reuses a file it finds
// there).
func unpackedPath(contentDir string, idx int, diffID v1.Hash) string {
	return filepath.Join(contentDir, fmt.Sprintf("%d-%s", idx, strings.ReplaceAll(diffID.String(), ":", "-")))
}

// tappedImage is an image whose layers are tapped.
type tappedImage struct {
	v1.Image
	layers []v1.Layer
}

func (i tappedImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

// tappedLayer is a layer whose first uncompressed stream is also scanned,
// and every uncompressed stream checked against its diff ID.
type tappedLayer struct {
	v1.Layer
	idx    int
	diffID v1.Hash
	taps   *layerTaps
}

func (l tappedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l tappedLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := uncompressed(l.Layer, l.diffID)
	if err != nil {
		return nil, err
	}
	return l.taps.attach(l.idx, rc), nil
}

// layerTaps scans the layers' uncompressed tars while stereoscope reads
// them: what stereoscope reads is copied into a pipe that a scanner reads.
// A scanner always drains its pipe, so stereoscope is never held up for
// longer than the scan of the data it has read, and a scan that fails
// never fails stereoscope's read.
type layerTaps struct {
	ctx  context.Context
	scan func(ctx context.Context, r io.Reader) (*layerScan, error)
	// budget, when set, bounds what stereoscope unpacks: a read past a
	// limit, or after ctx ends, fails stereoscope's read.
	budget *budget
	// diffIDs are the layers' diff IDs in the image config.
	diffIDs []v1.Hash
	// cached holds the scans of layers read before (see LayerCache):
	// those layers are only counted against the budget.
	cached []*layerScan
	// unpacked marks the layers whose tar stereoscope finds unpacked
	// already: they are not read at all. Their scan is cached, or
	// finish scans the file of tars.
	unpacked []bool
	tars     []string

	wg      sync.WaitGroup
	mu      sync.Mutex
	started []bool
	results []*layerScan
	// rereads counts the layers finish had to read again.
	rereads int
}

func newLayerTaps(ctx context.Context, diffIDs []v1.Hash, scan func(context.Context, io.Reader) (*layerScan, error)) *layerTaps {
	n := len(diffIDs)
	return &layerTaps{ctx: ctx, scan: scan, diffIDs: diffIDs, cached: make([]*layerScan, n), unpacked: make([]bool, n), tars: make([]string, n), started: make([]bool, n), results: make([]*layerScan, n)}
}

// scanOf returns the scan of layer idx: t.scan, or for a cached layer one
// that only counts its entries and returns the cached scan.
func (t *layerTaps) scanOf(idx int) func(context.Context, io.Reader) (*layerScan, error) {
	cached := t.cached[idx]
	if cached == nil {
		return t.scan
	}
	return func(ctx context.Context, r io.Reader) (*layerScan, error) {
		if err := countEntries(ctx, r, t.budget); err != nil {
			return nil, err
		}
		return cached, nil
	}
}

// attach starts scanning layer idx from what is read from rc, unless it
// was started already.
func (t *layerTaps) attach(idx int, rc io.ReadCloser) io.ReadCloser {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started[idx] {
		return rc
	}
	t.started[idx] = true
	pr, pw := io.Pipe()
	scan := t.scanOf(idx)
	t.wg.Go(func() {
		res, err := scan(t.ctx, pr)
		_, _ = io.Copy(io.Discard, pr) // the tar may end before the stream
		_ = pr.Close()
		if err == nil {
			t.mu.Lock()
			t.results[idx] = res
			t.mu.Unlock()
		}
	})
	return &tapReader{rc: rc, pw: pw, ctx: t.ctx, budget: t.budget}
}

// finish waits for the scans to end and returns every layer's scan,
// reading again, from layers, the ones that were not scanned whole.
func (t *layerTaps) finish(ctx context.Context, layers []v1.Layer) ([]*layerScan, error) {
	t.wg.Wait()
	out := make([]*layerScan, len(layers))
	for i, l := range layers {
		if out[i] = t.results[i]; out[i] != nil {
			continue
		}
		if t.unpacked[i] && t.cached[i] != nil {
			out[i] = t.cached[i]
			continue
		}
		var (
			rc  io.ReadCloser
			err error
		)
		if t.unpacked[i] {
			rc, err = os.Open(t.tars[i])
		} else {
			t.rereads++
			rc, err = uncompressed(l, t.diffIDs[i])
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
		res, err := t.scanOf(i)(ctx, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
		out[i] = res
	}
	return out, nil
}

// errStreamClosed tells a scanner that the stream was closed before its
// end, so its scan is incomplete.
var errStreamClosed = errors.New("layer stream closed before its end")

// tapReader copies what is read from rc into pw.
type tapReader struct {
	rc     io.ReadCloser
	pw     *io.PipeWriter
	done   bool
	broken bool
	ctx    context.Context
	budget *budget
}

func (r *tapReader) Read(p []byte) (int, error) {
	if err := r.stop(); err != nil {
		return 0, err
	}
	n, err := r.rc.Read(p)
	if r.budget != nil {
		if berr := r.budget.read(n); berr != nil {
			n, err = 0, berr
		}
	}
	if n > 0 && !r.broken {
		if _, werr := r.pw.Write(p[:n]); werr != nil {
			r.broken = true
		}
	}
	if err != nil && !r.done {
		r.done = true
		if errors.Is(err, io.EOF) {
			r.pw.Close()
		} else {
			r.pw.CloseWithError(err)
		}
	}
	return n, err
}

// stop returns why reading must stop: the context ended or a limit was
// crossed (counted here or by the scan of the stream).
func (r *tapReader) stop() error {
	if r.ctx != nil {
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	if r.budget != nil {
		return r.budget.failed()
	}
	return nil
}

func (r *tapReader) Close() error {
	if !r.done {
		r.done = true
		r.pw.CloseWithError(errStreamClosed)
	}
	return r.rc.Close()
}
