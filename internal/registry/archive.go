package registry

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate"
)

// ImportArchive reads an image archive a client uploaded, a docker-archive
// (`docker save`) or an OCI image layout packed in a tar (an oci-archive, or
// an OCI directory the client tarred), and writes it as an OCI layout at
// dir. From an index it picks the configured platform. It returns the
// image's manifest digest.
func (c *Client) ImportArchive(path, dir string) (string, error) {
	kind, err := archiveKind(path)
	if err != nil {
		return "", err
	}
	var img v1.Image
	switch kind {
	case "docker-archive":
		img, err = tarball.ImageFromPath(path, nil)
		if err != nil {
			return "", buildgate.Errorf(buildgate.EINVALID, "reading the docker archive: %v", err)
		}
	case "oci":
		src := dir + ".src"
		defer os.RemoveAll(src)
		if err := untar(path, src); err != nil {
			return "", err
		}
		img, err = c.imageFromLayout(src)
		if err != nil {
			return "", err
		}
	}
	if err := c.CheckSize(img); err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", buildgate.Errorf(buildgate.EINVALID, "reading the archive's manifest: %v", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("creating layout %q: %w", dir, err)
	}
	if err := p.AppendImage(img); err != nil {
		return "", buildgate.Errorf(buildgate.EINVALID, "copying the archive's image (is a layer truncated or corrupt?): %v", err)
	}
	return d.String(), nil
}

// archiveKind looks at a tar's entries: manifest.json makes a docker
// archive, oci-layout and index.json an OCI layout.
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var oci, docker bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", buildgate.Errorf(buildgate.EINVALID, "the upload is not a tar archive (docker-archive, oci-archive or a tarred OCI directory): %v", err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			docker = true
		case "oci-layout", "index.json":
			oci = true
		}
	}
	switch {
	case oci:
		return "oci", nil
	case docker:
		return "docker-archive", nil
	}
	return "", buildgate.Errorf(buildgate.EINVALID, "the archive holds neither manifest.json (docker-archive) nor oci-layout and index.json (OCI layout)")
}

func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return buildgate.Errorf(buildgate.EINVALID, "reading the OCI archive: %v", err)
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
			return buildgate.Errorf(buildgate.EINVALID, "the OCI archive has an unsafe path %q", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return buildgate.Errorf(buildgate.EINVALID, "reading %s from the OCI archive: %v", h.Name, err)
			}
		}
	}
}

// imageFromLayout finds the one image (for the platform) in an OCI layout.
func (c *Client) imageFromLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the OCI layout: %v", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the OCI layout's index: %v", err)
	}
	return c.pick(idx, 0)
}

func (c *Client) pick(idx v1.ImageIndex, depth int) (v1.Image, error) {
	if depth > 3 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the OCI layout's indexes nest too deep")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the OCI index: %v", err)
	}
	var images []v1.Descriptor
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, buildgate.Errorf(buildgate.EINVALID, "reading a nested index: %v", err)
			}
			if img, err := c.pick(child, depth+1); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform == nil || d.Platform.Satisfies(c.cfg.Platform) {
				images = append(images, d)
			}
		}
	}
	if len(images) == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the OCI layout holds no %s image", c.cfg.Platform.String())
	}
	img, err := idx.Image(images[0].Digest)
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the image from the OCI layout: %v", err)
	}
	return img, nil
}
