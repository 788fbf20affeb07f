package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildgate/buildgate"
)

// lyingImage is an image of one gzip layer whose config gives the layer
// another diff ID.
type lyingImage struct {
	layer    partial.CompressedLayer
	config   []byte
	manifest []byte
}

func newLyingImage(t *testing.T, l partial.CompressedLayer, diffID v1.Hash) v1.Image {
	t.Helper()
	cf := &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}}}
	config, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := json.Marshal(&v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: configDigest, Size: configSize},
		Layers: []v1.Descriptor{{MediaType: types.OCILayer, Digest: digest, Size: size}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := partial.CompressedToImage(&lyingImage{layer: l, config: config, manifest: manifest})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (i *lyingImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *lyingImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *lyingImage) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *lyingImage) LayerByDigest(v1.Hash) (partial.CompressedLayer, error) {
	return i.layer, nil
}

// TestLayerNotItsDiffIDIsRefused: a layer whose tar does not hash to the
// diff ID the image config gives it fails the analysis, naming the layer.
func TestLayerNotItsDiffIDIsRefused(t *testing.T) {
	one := func(content string) func(tw *tar.Writer) {
		return func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
			tw.Write([]byte(content))
		}
	}
	good, _ := gzipLayer(t, one("hello\n"))
	other, _ := gzipLayer(t, one("other\n"))
	want, err := other.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	dir := writeLayout(t, newLyingImage(t, good, want))

	_, err = Catalog(context.Background(), dir, DefaultConfig())
	if err == nil {
		t.Fatal("a layer that is not its diff ID was cataloged")
	}
	if !strings.Contains(err.Error(), want.String()) || !strings.Contains(err.Error(), "not to its diff ID") {
		t.Errorf("got error %q, want one naming layer %s and its diff ID", err, want)
	}
	if buildgate.ErrorCode(err) != buildgate.EINVALID {
		t.Errorf("got error %v, want an invalid-input error", err)
	}
}

// brokenLayer is a gzip layer of a few MiB (several blocks of the
// decompressor's read-ahead) and the diff ID of its tar, with its
// compressed bytes changed by mangle.
func brokenLayer(t *testing.T, mangle func([]byte) []byte) (rawLayer, v1.Hash) {
	t.Helper()
	content := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{1}).Read(content) // incompressible: several MiB compressed too
	good, _ := gzipLayer(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "data/blob", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		tw.Write(content)
	})
	diffID, err := good.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := good.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return rawLayer(mangle(bytes.Clone(b))), diffID
}

// rawLayer is a gzip layer's compressed bytes, whatever they decompress
// to.
type rawLayer []byte

func (l rawLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l))
	return h, err
}
func (l rawLayer) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(l)), nil }
func (l rawLayer) Size() (int64, error)                { return int64(len(l)), nil }
func (l rawLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// TestBrokenGzipLayerIsRefused: a layer whose gzip stream is cut short or
// fails its checksum fails the analysis with an invalid-input error that
// names the layer.
func TestBrokenGzipLayerIsRefused(t *testing.T) {
	for name, mangle := range map[string]func([]byte) []byte{
		"cut short": func(b []byte) []byte { return b[:len(b)/2] },
		"checksum":  func(b []byte) []byte { b[len(b)-6] ^= 0xff; return b },
	} {
		t.Run(name, func(t *testing.T) {
			l, diffID := brokenLayer(t, mangle)
			dir := writeLayout(t, newLyingImage(t, l, diffID))
			_, err := Catalog(context.Background(), dir, DefaultConfig())
			if err == nil {
				t.Fatal("a broken layer was cataloged")
			}
			if !strings.Contains(err.Error(), diffID.String()) || buildgate.ErrorCode(err) != buildgate.EINVALID {
				t.Errorf("got error %q (%s), want an invalid-input error naming layer %s", err, buildgate.ErrorCode(err), diffID)
			}
		})
	}
}

// TestUncompressedClosedEarly: a layer stream closed before its end
// returns from Close (the decompressor's read-ahead stops).
func TestUncompressedClosedEarly(t *testing.T) {
	l, diffID := brokenLayer(t, func(b []byte) []byte { return b })
	layer, err := partial.CompressedToLayer(l)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := uncompressed(layer, diffID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
