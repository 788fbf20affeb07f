package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
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
	layer    v1.Layer
	config   []byte
	manifest []byte
}

func newLyingImage(t *testing.T, l v1.Layer, diffID v1.Hash) v1.Image {
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
