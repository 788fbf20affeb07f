package catalog

import (
	"archive/tar"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate"
)

// Limits bound what one image may unpack to, so that a small upload or
// pull cannot fill the disk or the memory of the gate. Zero means the
// default of DefaultLimits. Each limit names the gate serve flag that
// changes it.
type Limits struct {
	// MaxUnpackedSize bounds the uncompressed bytes of all layers.
	MaxUnpackedSize int64
	// MaxFiles bounds the entries (files, directories, links) of all layers.
	MaxFiles int
	// MaxFileSize bounds one file.
	MaxFileSize int64
	// MaxPathLength bounds one entry's path, in bytes.
	MaxPathLength int
	// MaxLayers bounds the layers of an image.
	MaxLayers int
	// MaxConfigSize and MaxManifestSize bound the image config and
	// manifest documents, in bytes.
	MaxConfigSize   int64
	MaxManifestSize int64
}

// DefaultLimits returns limits that every real image we know of stays far
// below.
func DefaultLimits() Limits {
	return Limits{
		MaxUnpackedSize: 16 << 30,
		MaxFiles:        1_000_000,
		MaxFileSize:     8 << 30,
		MaxPathLength:   4096,
		MaxLayers:       256,
		MaxConfigSize:   4 << 20,
		MaxManifestSize: 4 << 20,
	}
}

func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.MaxUnpackedSize <= 0 {
		l.MaxUnpackedSize = d.MaxUnpackedSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxPathLength <= 0 {
		l.MaxPathLength = d.MaxPathLength
	}
	if l.MaxLayers <= 0 {
		l.MaxLayers = d.MaxLayers
	}
	if l.MaxConfigSize <= 0 {
		l.MaxConfigSize = d.MaxConfigSize
	}
	if l.MaxManifestSize <= 0 {
		l.MaxManifestSize = d.MaxManifestSize
	}
	return l
}

// overLimit is the error of an image over one of the limits: invalid
// input, naming the limit and the flag that raises it.
func overLimit(what string, max int64, unit, flag string) error {
	return buildgate.Errorf(buildgate.EINVALID, "%s is over the limit of %d %s: refused before unpacking further (raise it with gate serve --%s)", what, max, unit, flag)
}

// checkDocuments refuses an image whose layer count, manifest or config
// (by the size the manifest declares) is over the limits, before any of
// them is read whole.
func (l Limits) checkDocuments(img v1.Image) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	if int64(len(raw)) > l.MaxManifestSize {
		return overLimit(fmt.Sprintf("the image manifest (%d bytes)", len(raw)), l.MaxManifestSize, "bytes", "max-manifest-size")
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	if m.Config.Size > l.MaxConfigSize {
		return overLimit(fmt.Sprintf("the image config (%d bytes)", m.Config.Size), l.MaxConfigSize, "bytes", "max-config-size")
	}
	if len(m.Layers) > l.MaxLayers {
		return overLimit(fmt.Sprintf("the image's %d layers", len(m.Layers)), int64(l.MaxLayers), "layers", "max-layers")
	}
	return nil
}

// budget counts what the layers of one image unpack to, across layers and
// goroutines; the first limit crossed is kept and stops every reader.
type budget struct {
	lim Limits

	mu    sync.Mutex
	bytes int64
	files int
	err   error
}

func newBudget(l Limits) *budget { return &budget{lim: l.orDefaults()} }

// failed returns the limit crossed, if any.
func (b *budget) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *budget) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// read counts n more uncompressed bytes.
func (b *budget) read(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.bytes += int64(n)
	if b.bytes > b.lim.MaxUnpackedSize {
		return b.fail(overLimit("the image's unpacked layers", b.lim.MaxUnpackedSize, "bytes", "max-unpacked-size"))
	}
	return nil
}

// entry counts one more tar entry and checks its path and size.
func (b *budget) entry(h *tar.Header) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.files++
	switch {
	case b.files > b.lim.MaxFiles:
		return b.fail(overLimit("the image's file count", int64(b.lim.MaxFiles), "files", "max-files"))
	case len(h.Name) > b.lim.MaxPathLength || len(h.Linkname) > b.lim.MaxPathLength:
		return b.fail(overLimit(fmt.Sprintf("the path of %.64q...", h.Name), int64(b.lim.MaxPathLength), "bytes", "max-path-length"))
	case h.Size > b.lim.MaxFileSize:
		return b.fail(overLimit(fmt.Sprintf("file %.256q (%d bytes)", h.Name, h.Size), b.lim.MaxFileSize, "bytes", "max-file-size"))
	}
	return nil
}

// replay counts a layer that is not read, from its figures: size
// uncompressed bytes and the entries of s.
func (b *budget) replay(s *layerScan, size int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.bytes += size
	b.files += s.stats.Entries
	switch {
	case b.bytes > b.lim.MaxUnpackedSize:
		return b.fail(overLimit("the image's unpacked layers", b.lim.MaxUnpackedSize, "bytes", "max-unpacked-size"))
	case b.files > b.lim.MaxFiles:
		return b.fail(overLimit("the image's file count", int64(b.lim.MaxFiles), "files", "max-files"))
	case s.stats.MaxName > b.lim.MaxPathLength:
		return b.fail(overLimit(fmt.Sprintf("a path of %d bytes", s.stats.MaxName), int64(b.lim.MaxPathLength), "bytes", "max-path-length"))
	case s.stats.MaxSize > b.lim.MaxFileSize:
		return b.fail(overLimit(fmt.Sprintf("a file of %d bytes", s.stats.MaxSize), b.lim.MaxFileSize, "bytes", "max-file-size"))
	}
	return nil
}
