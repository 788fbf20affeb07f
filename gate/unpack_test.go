package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
)

// bombArchive writes a docker-archive (docker save) of one image whose
// only layer is the gzip of the tar that write makes, and returns its
// path and size.
func bombArchive(t *testing.T, write func(tw *tar.Writer)) (string, int64) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	write(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	gz := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bomb.tar")
	tag, _ := name.NewTag("team/bomb:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, fi.Size()
}

// peakRSS is the process's peak resident set (VmHWM), in bytes; resetPeakRSS
// starts a new peak from the current resident set.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status to read the peak resident set from")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("/proc/self/status has no VmHWM")
	return 0
}

func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident set: %v", err)
	}
}

// sampleMax calls f until the returned stop is called, and returns the
// largest value f gave.
func sampleMax(f func() int64) (stop func() int64) {
	done := make(chan struct{})
	var peak int64
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, f())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		return max(peak, f())
	}
}

// TestUnpackBombsAreRefused is finding 6 against a real gate: an uploaded
// image archive whose layer is a small gzip of 1 GiB of zeros, and one
// whose small layer holds 300,000 files, each fail their analysis with an
// error naming the limit and the flag that raises it. Meanwhile the disk
// used under the data directory and $TMPDIR stays near the limit and the
// process's peak resident set stays bounded (both measured).
func TestUnpackBombsAreRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and unpacks bombs")
	}
	const unpackLimit, fileLimit = 64 << 20, 10_000
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	g := startGate(t, func(c *Config) {
		c.Unpack.MaxUnpackedSize, c.Unpack.MaxFiles = unpackLimit, fileLimit
	})
	zeros := func(tw *tar.Writer) {
		chunk := make([]byte, 1<<20)
		for i := range 64 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("bomb/%02d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 16 << 20})
			for range 16 {
				tw.Write(chunk)
			}
		}
	}
	many := func(tw *tar.Writer) {
		for i := range 300_000 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("many/%03d/%06d", i/1000, i), Typeflag: tar.TypeReg, Mode: 0o644})
		}
	}
	for _, tt := range []struct {
		name       string
		write      func(*tar.Writer)
		want       []string
		diskBound  int64
		unpackedTo string
	}{
		{"gzip bomb", zeros, []string{fmt.Sprintf("over the limit of %d bytes", unpackLimit), "--max-unpacked-size"}, 2 * unpackLimit, "1 GiB"},
		{"many files", many, []string{fmt.Sprintf("over the limit of %d", fileLimit), "--max-files"}, 2 * unpackLimit, "300,000 files"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			archive, size := bombArchive(t, tt.write)
			resetPeakRSS(t)
			rssBefore := peakRSS(t)
			used := func() int64 { return dirBytes(t, g.Config.DataDir) + dirBytes(t, tmp) }
			base := used() // the vulnerability DB
			stop := sampleMax(used)
			f, err := os.Open(archive)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := g.c.Raw(context.Background(), http.MethodPost, "/v1/images/upload?tag=team/bomb:1", f, "application/x-tar")
			if err != nil {
				t.Fatal(err)
			}
			var up api.Image
			json.Unmarshal(b, &up)
			img, err := g.c.WaitAnalyzed(context.Background(), up.Digest, time.Minute, nil)
			disk := stop() - base
			rss := peakRSS(t)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("archive %d bytes (%s unpacked); peak disk written under the data dir and $TMPDIR %d bytes; peak RSS %d MiB (%d MiB at the start); failure %q",
				size, tt.unpackedTo, disk, rss>>20, rssBefore>>20, img.Error)
			if img.Status != api.StatusFailed {
				t.Fatalf("the bomb's analysis = %s, want failed", img.Status)
			}
			for _, w := range tt.want {
				if !strings.Contains(img.Error, w) {
					t.Errorf("failure %q does not say %q", img.Error, w)
				}
			}
			if disk > tt.diskBound {
				t.Errorf("the bomb took %d bytes of disk, over %d", disk, tt.diskBound)
			}
			if rss-rssBefore > 512<<20 {
				t.Errorf("the peak resident set grew by %d MiB", (rss-rssBefore)>>20)
			}
			if left, _ := filepath.Glob(filepath.Join(g.Config.DataDir, "uploads", "*")); len(left) != 0 {
				t.Errorf("upload directories left behind: %v", left)
			}
		})
	}
}
