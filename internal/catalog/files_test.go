package catalog

import (
	"archive/tar"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/anchore/syft/syft"

	"github.com/buildgate/buildgate"
)

// extractListing lists the squashed filesystem the way mutate.Extract
// writes it, in the fields both listings share.
func extractListing(t *testing.T, img v1.Image) []buildgate.File {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []buildgate.File
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading mutate.Extract: %v", err)
		}
		f := buildgate.File{Path: absPath(hdr.Name), Mode: uint32(hdr.FileInfo().Mode())}
		if f.Path == "/" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			h, m := sha256.New(), md5.New()
			if _, err := io.Copy(io.MultiWriter(h, m), tr); err != nil {
				t.Fatal(err)
			}
			f.Type, f.Size, f.SHA256, f.MD5 = TypeFile, hdr.Size, hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(m.Sum(nil))
		case tar.TypeDir:
			f.Type = TypeDir
		case tar.TypeSymlink:
			f.Type, f.LinkDest = TypeSymlink, hdr.Linkname
		case tar.TypeLink:
			f.Type, f.LinkDest = TypeHardlink, absPath(hdr.Linkname)
		default:
			f.Type = TypeOther
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b buildgate.File) int { return cmpString(a.Path, b.Path) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comparable drops what mutate.Extract does not say: a hard link's size
// and digests (those of its target) and the SUID and SGID flags.
func comparable(files []buildgate.File) []buildgate.File {
	out := make([]buildgate.File, len(files))
	for i, f := range files {
		if f.Type == TypeHardlink {
			f.Size, f.SHA256, f.MD5 = 0, "", ""
		}
		f.SUID, f.SGID = false, false
		out[i] = f
	}
	return out
}

// TestSquashLikeExtract checks that the files pass, reading the layers as
// stereoscope unpacks them, lists what mutate.Extract gives, and that
// stereoscope did feed it every layer.
func TestSquashLikeExtract(t *testing.T) {
	tests := []struct {
		name  string
		image func(t *testing.T) v1.Image
		long  bool
	}{
		{name: "synthetic", image: syntheticImage},
		{name: "bullseye-dpkgonly", image: archiveImage("bullseye-dpkgonly.docker.tar")},
		{name: "bookworm-app", image: archiveImage("bookworm-app.docker.tar"), long: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("large image")
			}
			img := tt.image(t)
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			rules, err := compileRules("secret", cfg.SecretRules)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := diffIDs(img, len(layers))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			taps := newLayerTaps(ctx, ids, func(ctx context.Context, r io.Reader) (*layerScan, error) {
				return newScanner(cfg, rules, nil).scanLayer(ctx, r)
			})
			src, err := openSource(ctx, img, "test", "sha256:0", taps, "")
			if err != nil {
				t.Fatalf("openSource: %v", err)
			}
			defer src.Close()
			scans, err := taps.finish(ctx, layers)
			if err != nil {
				t.Fatalf("finish: %v", err)
			}
			if taps.rereads != 0 {
				t.Errorf("%d of %d layers were read a second time", taps.rereads, len(layers))
			}
			got := comparable(squash(scans).files)
			want := comparable(extractListing(t, img))
			if !slices.Equal(got, want) {
				t.Errorf("listing differs from mutate.Extract: got %d entries, want %d", len(got), len(want))
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("first difference at %d:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			}

			// with no tap attached, finish reads every layer itself
			alone := newLayerTaps(ctx, ids, taps.scan)
			scans, err = alone.finish(ctx, layers)
			if err != nil {
				t.Fatalf("finish without taps: %v", err)
			}
			if alone.rereads != len(layers) {
				t.Errorf("rereads: got %d, want %d", alone.rereads, len(layers))
			}
			if again := comparable(squash(scans).files); !slices.Equal(again, got) {
				t.Errorf("reading the layers again gives another listing")
			}
		})
	}
}

func archiveImage(name string) func(t *testing.T) v1.Image {
	return func(t *testing.T) v1.Image {
		img, err := tarball.ImageFromPath(filepath.Join(imagesDir(t), name), nil)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
}

func TestSquash(t *testing.T) {
	file := func(p string) layerEntry { return layerEntry{file: buildgate.File{Path: p, Type: TypeFile}} }
	dir := func(p string) layerEntry { return layerEntry{file: buildgate.File{Path: p, Type: TypeDir}} }
	wh := func(p string) layerEntry { return layerEntry{file: buildgate.File{Path: p}, whiteout: true} }
	opq := func(p string) layerEntry { return layerEntry{file: buildgate.File{Path: p}, opaque: true} }
	tests := []struct {
		name   string
		layers [][]layerEntry
		want   []string
	}{
		{name: "upper wins", layers: [][]layerEntry{{file("/a")}, {file("/a")}}, want: []string{"/a"}},
		{name: "whiteout", layers: [][]layerEntry{{dir("/d"), file("/d/x"), file("/d/y")}, {wh("/d/x")}}, want: []string{"/d", "/d/y"}},
		{name: "whiteout dir", layers: [][]layerEntry{{dir("/d"), file("/d/x")}, {wh("/d")}}, want: nil},
		{name: "opaque", layers: [][]layerEntry{{dir("/d"), file("/d/x")}, {dir("/d"), opq("/d"), file("/d/new")}}, want: []string{"/d", "/d/new"}},
		{name: "file replaces dir", layers: [][]layerEntry{{dir("/d"), file("/d/x")}, {file("/d")}}, want: []string{"/d"}},
		{name: "recreated after whiteout", layers: [][]layerEntry{{file("/a")}, {wh("/a")}, {file("/a")}}, want: []string{"/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var scans []*layerScan
			for _, l := range tt.layers {
				scans = append(scans, &layerScan{entries: l})
			}
			var got []string
			for _, f := range squash(scans).files {
				got = append(got, f.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSourceLikeGetSource checks that cataloging through openSource finds
// what syft finds through syft.GetSource on the layout ("oci-dir"), the
// way grype reads an image.
func TestSourceLikeGetSource(t *testing.T) {
	tests := []struct {
		name    string
		archive string
		long    bool
	}{
		{name: "bullseye-dpkgonly", archive: "bullseye-dpkgonly.docker.tar"},
		{name: "bookworm-app", archive: "bookworm-app.docker.tar", long: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("large image")
			}
			dir := layoutFromArchive(t, tt.archive)
			ctx := context.Background()
			res, err := Catalog(ctx, dir, DefaultConfig())
			if err != nil {
				t.Fatalf("Catalog: %v", err)
			}
			src, err := syft.GetSource(ctx, dir, syft.DefaultGetSourceConfig().WithSources("oci-dir"))
			if err != nil {
				t.Fatalf("GetSource: %v", err)
			}
			defer src.Close()
			s, err := syft.CreateSBOM(ctx, src, DefaultSBOMConfig())
			if err != nil {
				t.Fatalf("CreateSBOM: %v", err)
			}
			want := packagesOf(s)
			if !reflect.DeepEqual(res.Packages, want) {
				t.Errorf("packages differ: got %d, want %d", len(res.Packages), len(want))
			}
			if got, want := s.Artifacts.LinuxDistribution.ID, res.Metadata.Distro; got != want {
				t.Errorf("distro: got %q, want %q", got, want)
			}
		})
	}
}
