package catalog

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate"
)

// facts is what an analysis keeps of a catalog result besides the SBOM
// document (whose syft timestamp and tool descriptor change by run).
func facts(r *Result) Result {
	return Result{Digest: r.Digest, Packages: r.Packages, Files: r.Files, Secrets: r.Secrets, ContentMatches: r.ContentMatches, Metadata: r.Metadata}
}

// TestLayerCacheSameResult: on both shared images, a catalog with the
// layer cache, cold then warm then after a restart, finds the same
// packages, files, secrets, content matches and metadata as one without.
// (Matches and the verdict are computed from these.)
func TestLayerCacheSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("large images")
	}
	for _, name := range []string{"bullseye-minbase.docker.tar", "bookworm-app.docker.tar"} {
		t.Run(name, func(t *testing.T) {
			dir := layoutFromArchive(t, name)
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.ContentRules = []Rule{{Name: "debian", Regexp: `(?i)debian`}}
			want, err := Catalog(ctx, dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			img, err := openLayout(dir)
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := img.Layers()

			cacheDir := t.TempDir()
			cache, err := OpenLayerCache(cacheDir, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			cfg.LayerCache = cache
			for _, run := range []string{"cold", "warm", "restarted"} {
				if run == "restarted" {
					if cfg.LayerCache, err = OpenLayerCache(cacheDir, 1<<30); err != nil {
						t.Fatal(err)
					}
				}
				got, err := Catalog(ctx, dir, cfg)
				if err != nil {
					t.Fatalf("%s: %v", run, err)
				}
				if !reflect.DeepEqual(facts(got), facts(want)) {
					t.Errorf("%s cache: the result differs from the one without a cache", run)
				}
				if tars := countSuffix(t, cacheDir, tarSuffix); tars != len(layers) {
					t.Errorf("%s cache: %d unpacked tars kept, want %d", run, tars, len(layers))
				}
				hits, misses := cfg.LayerCache.Stats()
				wantHits := len(layers)
				if run == "cold" {
					wantHits = 0
				}
				if hits != wantHits || hits+misses != len(layers) || cfg.LayerCache.tarHits != wantHits {
					t.Errorf("%s cache: %d hits (%d not read at all) and %d misses, want %d hits of %d layers",
						run, hits, cfg.LayerCache.tarHits, misses, wantHits, len(layers))
				}
				cfg.LayerCache.hits, cfg.LayerCache.misses, cfg.LayerCache.tarHits = 0, 0, 0
			}

			// an image read where it is, as a registry serves it: a layer
			// whose tar is cached is not read; with an empty cache each
			// layer is read once
			for _, run := range []string{"opened, tars cached", "opened, scans dropped", "opened, cold"} {
				wantReads := int32(0)
				if run == "opened, scans dropped" {
					// the tars alone: finish scans them again
					for _, name := range cacheFiles(t, cacheDir) {
						if strings.HasSuffix(name, scanSuffix) {
							os.Remove(filepath.Join(cacheDir, name))
						}
					}
					if cfg.LayerCache, err = OpenLayerCache(cacheDir, 1<<30); err != nil {
						t.Fatal(err)
					}
				}
				if run == "opened, cold" {
					if cfg.LayerCache, err = OpenLayerCache(t.TempDir(), 1<<30); err != nil {
						t.Fatal(err)
					}
					wantReads = int32(len(layers))
				}
				counted := &countedImage{Image: img}
				r, err := StartImage(ctx, counted, cfg)
				if err == nil {
					err = r.Wait()
				}
				if err != nil {
					t.Fatalf("%s: %v", run, err)
				}
				if !reflect.DeepEqual(facts(r), facts(want)) {
					t.Errorf("%s: the result differs from the one of its layout without a cache", run)
				}
				if n := counted.reads.Load(); n != wantReads {
					t.Errorf("%s: %d layer reads, want %d", run, n, wantReads)
				}
			}
			if len(want.ContentMatches["debian"]) == 0 || len(want.Files) < 1000 {
				t.Errorf("the image gave %d files and %d content matches: the comparison compares little", len(want.Files), len(want.ContentMatches["debian"]))
			}
		})
	}
}

// TestLayerCacheRefusesUnverifiedLayer: a layer whose tar is not its diff
// ID fails the catalog and leaves nothing in the cache.
func TestLayerCacheRefusesUnverifiedLayer(t *testing.T) {
	good, _ := gzipLayer(t, oneFile("etc/motd", "hello\n"))
	other, _ := gzipLayer(t, oneFile("etc/motd", "other\n"))
	want, err := other.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	cfg := DefaultConfig()
	if cfg.LayerCache, err = OpenLayerCache(cacheDir, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := Catalog(context.Background(), writeLayout(t, newLyingImage(t, good, want)), cfg); err == nil || !strings.Contains(err.Error(), "not to its diff ID") {
		t.Fatalf("got error %v, want the layer refused", err)
	}
	if des, _ := os.ReadDir(cacheDir); len(des) != 0 || cfg.LayerCache.Size() != 0 {
		t.Errorf("the cache holds %d files, %d bytes after a refused layer", len(des), cfg.LayerCache.Size())
	}
}

func countSuffix(t *testing.T, dir, suffix string) int {
	n := 0
	for _, name := range cacheFiles(t, dir) {
		if strings.HasSuffix(name, suffix) {
			n++
		}
	}
	return n
}

// TestLayerCacheKeepsLimits: a layer whose scan and tar are cached, so
// that it is not read, still counts against the limits.
func TestLayerCacheKeepsLimits(t *testing.T) {
	l, _ := gzipLayer(t, func(tw *tar.Writer) {
		for i := range 10 {
			oneFile(fmt.Sprintf("etc/file%d", i), strings.Repeat("x", 1000))(tw)
		}
	})
	dir := writeLayout(t, imageWith(t, l))
	cfg := DefaultConfig()
	var err error
	if cfg.LayerCache, err = OpenLayerCache(t.TempDir(), 1<<20); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Catalog(ctx, dir, cfg); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		limit func(*Limits)
		flag  string
	}{
		{func(l *Limits) { l.MaxFiles = 9 }, "max-files"},
		{func(l *Limits) { l.MaxUnpackedSize = 10_000 }, "max-unpacked-size"},
		{func(l *Limits) { l.MaxFileSize = 999 }, "max-file-size"},
		{func(l *Limits) { l.MaxPathLength = 8 }, "max-path-length"},
	} {
		c := cfg
		tt.limit(&c.Limits)
		if _, err := Catalog(ctx, dir, c); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("a cached layer over --%s: got error %v", tt.flag, err)
		}
	}
	if hits, _ := cfg.LayerCache.Stats(); hits != 4 || cfg.LayerCache.tarHits != 4 {
		t.Errorf("%d cache hits, %d not read at all; want the 4 catalogs over a limit to find the layer unpacked", hits, cfg.LayerCache.tarHits)
	}
}

func oneFile(name, content string) func(tw *tar.Writer) {
	return func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
}

// scanOfSize returns a layer scan whose cache file is n bytes and some
// 850 more.
func scanOfSize(path string, n int) *layerScan {
	return &layerScan{entries: []layerEntry{{file: buildgate.File{Path: path}, content: []string{strings.Repeat("x", n)}}}}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestLayerCacheBounded: the cache drops the least recently used layers
// beyond its size, keeps that order across a restart, removes what a crash
// left half-written, and reads a corrupt file as a miss.
func TestLayerCacheBounded(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenLayerCache(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	put := func(c *LayerCache, key string) {
		t.Helper()
		if err := c.put(key, scanOfSize(key, 2500)); err != nil {
			t.Fatal(err)
		}
	}
	put(c, "a")
	put(c, "b")
	put(c, "c")
	if c.get("a") == nil { // a is now the most recently used
		t.Fatal("a is not in the cache")
	}
	put(c, "d") // over 10,000 bytes: b goes
	if c.get("b") != nil || c.get("a") == nil || c.get("c") == nil || c.get("d") == nil {
		t.Errorf("after a fourth layer: got files %v, want a, c and d", cacheFiles(t, dir))
	}
	if c.Size() > 10_000 || len(cacheFiles(t, dir)) != 3 {
		t.Errorf("the cache holds %d bytes in %v, want at most 10,000", c.Size(), cacheFiles(t, dir))
	}

	// a restart reads the order from the files' times: c is the oldest
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, k := range []string{"c", "a", "d"} {
		tm := base.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(c.path(k+scanSuffix), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "e-123.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = OpenLayerCache(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "e-123.tmp")); !os.IsNotExist(err) {
		t.Errorf("a half-written file survived the restart: %v", err)
	}
	put(c, "e")
	if c.get("c") != nil || c.get("a") == nil || c.get("d") == nil || c.get("e") == nil {
		t.Errorf("after a restart and a fifth layer: got files %v, want a, d and e", cacheFiles(t, dir))
	}

	// a smaller size at start trims at once
	small, err := OpenLayerCache(dir, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if small.Size() > 4000 || len(cacheFiles(t, dir)) != 1 {
		t.Errorf("opened with 4,000 bytes: the cache holds %d bytes in %v", small.Size(), cacheFiles(t, dir))
	}

	// a corrupt file is a miss, and is removed
	name := small.lru.Front().Value.(*cacheFile).name
	key := strings.TrimSuffix(name, scanSuffix)
	raw, err := os.ReadFile(small.path(name))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0xff
	if err := os.WriteFile(small.path(name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if small.get(key) != nil {
		t.Error("a corrupt cache file was read")
	}
	if len(cacheFiles(t, dir)) != 0 || small.Size() != 0 {
		t.Errorf("the corrupt file stayed: %v", cacheFiles(t, dir))
	}
}

// fullDisk creates temporary files whose writes fail as on a full disk
// (they write to /dev/full) while failing is set.
type fullDisk struct {
	failing int // how many files fail
}

type fullFile struct {
	*os.File
	name string
}

func (f fullFile) Name() string { return f.name }

func (d *fullDisk) create(dir, pattern string) (tempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil || d.failing == 0 {
		return f, err
	}
	d.failing--
	f.Close()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return fullFile{File: full, name: f.Name()}, nil
}

// TestLayerCacheFullDisk: a write that finds the disk full trims the
// cache to half and tries again; when the disk is still full the
// catalog fails saying so and the cache holds no partial file.
func TestLayerCacheFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	c, err := OpenLayerCache(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{}
	c.create = disk.create
	for _, k := range []string{"a", "b", "c"} {
		if err := c.put(k, scanOfSize(k, 2500)); err != nil {
			t.Fatal(err)
		}
	}
	disk.failing = 1
	if err := c.put("d", scanOfSize("d", 2500)); err != nil {
		t.Fatalf("a full disk that trimming freed: %v", err)
	}
	if got := cacheFiles(t, dir); len(got) != 2 || c.get("d") == nil || c.get("c") == nil {
		t.Errorf("after a full disk: got files %v, want c and d (the cache trimmed to half, then d)", got)
	}

	disk.failing = 2
	dpkg := layoutFromArchive(t, "bullseye-dpkgonly.docker.tar")
	cfg := DefaultConfig()
	cfg.LayerCache = c
	_, err = Catalog(context.Background(), dpkg, cfg)
	if err == nil || !strings.Contains(err.Error(), "the disk is full") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("got error %v, want one saying the disk of %s is full", err, dir)
	}
	for _, name := range cacheFiles(t, dir) {
		if !strings.HasSuffix(name, scanSuffix) && !strings.HasSuffix(name, tarSuffix) {
			t.Errorf("a full disk left %s in the cache", name)
		}
	}
	if c.Size() > 10_000 {
		t.Errorf("the cache holds %d bytes", c.Size())
	}
}

// countedImage counts the reads of its layers.
type countedImage struct {
	v1.Image
	reads atomic.Int32
}

func (i *countedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = countedLayer{Layer: l, reads: &i.reads}
	}
	return out, err
}

type countedLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l countedLayer) Compressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Compressed()
}

func (l countedLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}
