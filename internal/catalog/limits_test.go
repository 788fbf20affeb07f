package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// gzipLayer returns a layer of the gzip-compressed tar that write makes.
func gzipLayer(tb testing.TB, write func(tw *tar.Writer)) (v1.Layer, int) {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	write(tw)
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	zw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	return l, len(b)
}

// zeros writes n files of size bytes of zeros: a gzip bomb.
func zeros(n int, size int64) func(tw *tar.Writer) {
	return func(tw *tar.Writer) {
		chunk := make([]byte, 1<<20)
		for i := range n {
			tw.WriteHeader(&tar.Header{Name: "bomb/" + strings.Repeat("z", i%50) + string(rune('a'+i%26)) + time.Unix(int64(i), 0).UTC().Format("150405"), Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
			for left := size; left > 0; left -= int64(len(chunk)) {
				tw.Write(chunk[:min(left, int64(len(chunk)))])
			}
		}
	}
}

func imageWith(tb testing.TB, layers ...v1.Layer) v1.Image {
	tb.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// watch samples f until stop is closed and returns the largest value.
func watch(f func() int64) (stop func() int64) {
	done := make(chan struct{})
	var peak int64
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, f())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		return max(peak, f())
	}
}

// TestLimitGzipBomb: a layer of about 1 MB that unpacks to 1 GiB of zeros
// is refused once 64 MiB are unpacked; the disk stereoscope used stays
// near the limit (measured), and the error names the flag.
func TestLimitGzipBomb(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	layer, compressed := gzipLayer(t, zeros(64, 16<<20))
	dir := writeLayout(t, imageWith(t, layer))
	const limit = 64 << 20
	stop := watch(func() int64 { return dirSize(tmp) })
	cfg := DefaultConfig()
	cfg.Limits.MaxUnpackedSize = limit
	_, err := Catalog(context.Background(), dir, cfg)
	peak := stop()
	t.Logf("compressed layer %d bytes; peak temporary disk %d bytes (limit %d)", compressed, peak, limit)
	if err == nil || !strings.Contains(err.Error(), "--max-unpacked-size") {
		t.Fatalf("Catalog = %v, want a refusal naming --max-unpacked-size", err)
	}
	if peak > 2*limit {
		t.Errorf("the bomb took %d bytes of disk, over twice the %d limit", peak, limit)
	}
}

// TestLimitManyFiles: a small layer of 200,000 empty files is refused at
// the 10,000 file limit with the heap staying small (measured).
func TestLimitManyFiles(t *testing.T) {
	layer, compressed := gzipLayer(t, func(tw *tar.Writer) {
		for i := range 200_000 {
			tw.WriteHeader(&tar.Header{Name: "many/" + time.Unix(int64(i), 0).UTC().Format("2006/01/02/150405"), Typeflag: tar.TypeReg, Mode: 0o644})
		}
	})
	dir := writeLayout(t, imageWith(t, layer))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := watch(func() int64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	})
	cfg := DefaultConfig()
	cfg.Limits.MaxFiles = 10_000
	_, err := Catalog(context.Background(), dir, cfg)
	peak := stop()
	grew := peak - int64(before.HeapAlloc)
	t.Logf("compressed layer %d bytes; heap grew by at most %d bytes", compressed, grew)
	if err == nil || !strings.Contains(err.Error(), "--max-files") {
		t.Fatalf("Catalog = %v, want a refusal naming --max-files", err)
	}
	if grew > 256<<20 {
		t.Errorf("the heap grew by %d bytes before the refusal", grew)
	}
}

func TestLimitsOfDocumentsAndEntries(t *testing.T) {
	long := strings.Repeat("d/", 40) + "file"
	small := layerOf(t, tarEntry{name: long, typ: tar.TypeReg, mode: 0o644, content: strings.Repeat("x", 100)})
	cfgFile := &v1.ConfigFile{Config: v1.Config{Labels: map[string]string{"big": strings.Repeat("l", 4096)}}}
	bigConfig, err := mutate.ConfigFile(imageWith(t, small), cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		img  v1.Image
		lim  Limits
		flag string
	}{
		{name: "config", img: bigConfig, lim: Limits{MaxConfigSize: 1024}, flag: "--max-config-size"},
		{name: "manifest", img: imageWith(t, small), lim: Limits{MaxManifestSize: 100}, flag: "--max-manifest-size"},
		{name: "layers", img: imageWith(t, small, small, small), lim: Limits{MaxLayers: 2}, flag: "--max-layers"},
		{name: "path", img: imageWith(t, small), lim: Limits{MaxPathLength: 50}, flag: "--max-path-length"},
		{name: "file", img: imageWith(t, small), lim: Limits{MaxFileSize: 10}, flag: "--max-file-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Limits = tt.lim
			_, err := Catalog(context.Background(), writeLayout(t, tt.img), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "limit") {
				t.Fatalf("Catalog = %v, want a refusal naming %s", err, tt.flag)
			}
		})
	}
	// Under the limits, the same image catalogs.
	if _, err := Catalog(context.Background(), writeLayout(t, imageWith(t, small)), DefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

// TestDeadlineDuringUnpack: the analysis deadline stops stereoscope in
// the middle of a layer, not after it.
func TestDeadlineDuringUnpack(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	layer, _ := gzipLayer(t, zeros(64, 16<<20))
	dir := writeLayout(t, imageWith(t, layer))
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := Catalog(ctx, dir, DefaultConfig())
	took := time.Since(start)
	t.Logf("a %s deadline ended the catalog after %s", deadline, took)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Catalog = %v, want the deadline", err)
	}
	if took > deadline+2*time.Second {
		t.Errorf("the catalog ran %s past a %s deadline", took-deadline, deadline)
	}
}
