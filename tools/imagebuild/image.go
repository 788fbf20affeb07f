package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonroot is the user and group every image runs as (distroless's
// "nonroot"); the gate's /data belongs to it.
const nonroot = 65532

// spec describes one image: which binaries it holds and how it starts.
type spec struct {
	// name is the image's short name: gate or gate-step.
	name string
	// binaries are taken from <bin>/<os>_<arch>/ into /usr/local/bin.
	binaries   []string
	entrypoint []string
	cmd        []string
	// data makes /data, owned by nonroot, the image's volume.
	data  bool
	ports []string
}

// images are the images make image builds.
var images = []spec{
	{
		name:       "gate",
		binaries:   []string{"gate"},
		entrypoint: []string{"/usr/local/bin/gate"},
		cmd:        []string{"serve", "--addr", "0.0.0.0:8080", "--data", "/data"},
		data:       true,
		ports:      []string{"8080/tcp"},
	},
	{
		name:     "gate-step",
		binaries: []string{"gate-jenkins", "gate-action", "gate-gitlab"},
		cmd:      []string{"/usr/local/bin/gate-jenkins", "--help"},
	},
}

// build says what every image of one build shares.
type build struct {
	// bin holds <os>_<arch>/<binary> for each platform.
	bin string
	// caCerts is the CA bundle copied to /etc/ssl/certs/ca-certificates.crt.
	caCerts []byte
	// created stamps every file, the config and the history: the commit
	// time (SOURCE_DATE_EPOCH), so that one commit makes one digest.
	created time.Time
	// labels are the OCI annotations of the config (source, version,
	// revision, licenses, created).
	labels    map[string]string
	platforms []v1.Platform
}

// file is one entry of the image's only layer.
type file struct {
	name     string
	mode     int64
	uid      int
	dir      bool
	contents []byte
}

// layerFiles lists what the layer of s holds for platform p.
func (b build) layerFiles(s spec, p v1.Platform) ([]file, error) {
	files := []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, contents: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot))},
		{name: "etc/group", mode: 0o644, contents: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot))},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, contents: b.caCerts},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
	}
	if s.data {
		files = append(files, file{name: "data/", mode: 0o755, uid: nonroot, dir: true})
	}
	for _, name := range s.binaries {
		path := filepath.Join(b.bin, p.OS+"_"+p.Architecture, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading binary %s for %s: %w (run make cross first)", name, p.String(), err)
		}
		files = append(files, file{name: "usr/local/bin/" + name, mode: 0o755, contents: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// layerTar writes files as a tar stream with fixed times and owners.
func (b build) layerTar(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid,
			ModTime: b.created, Format: tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.contents); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer: %w", err)
	}
	return buf.Bytes(), nil
}

// image builds s for one platform: one layer on an empty base.
func (b build) image(s spec, p v1.Platform) (v1.Image, error) {
	files, err := b.layerFiles(s, p)
	if err != nil {
		return nil, err
	}
	raw, err := b.layerTar(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making the layer of %s: %w", s.name, err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: b.created}, CreatedBy: "buildgate tools/imagebuild", Comment: s.name},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer of %s: %w", s.name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", s.name, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: b.created}
	cf.Author = "buildgate"
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/home/nonroot"},
		Entrypoint: s.entrypoint,
		Cmd:        s.cmd,
		Labels:     b.labels,
		WorkingDir: "/home/nonroot",
	}
	if s.data {
		cf.Config.Volumes = map[string]struct{}{"/data": {}}
		cf.Config.WorkingDir = "/data"
	}
	if len(s.ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range s.ports {
			cf.Config.ExposedPorts[port] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the config of %s: %w", s.name, err)
	}
	return img, nil
}

// index builds s for every platform into one multi-arch index; it also
// returns the image of each platform, in the order of b.platforms.
func (b build) index(s spec) (v1.ImageIndex, []v1.Image, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var imgs []v1.Image
	for _, p := range b.platforms {
		img, err := b.image(s, p)
		if err != nil {
			return nil, nil, err
		}
		imgs = append(imgs, img)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}},
		})
	}
	idx = mutate.Annotations(idx, b.labels).(v1.ImageIndex)
	return idx, imgs, nil
}
