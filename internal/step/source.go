package step

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Kinds of image source.
const (
	sourceRegistry      = "registry"
	sourceDockerArchive = "docker-archive"
	sourceOCIArchive    = "oci-archive"
	sourceOCIDir        = "oci-dir"
	sourceDocker        = "docker"
)

// source is where the image comes from.
type source struct {
	kind string
	// arg is the reference, path or daemon image name.
	arg string
}

// parseSource reads --image.
func parseSource(s string) (source, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return source{}, errors.New("--image is empty")
	}
	if kind, arg, ok := strings.Cut(s, ":"); ok {
		switch kind {
		case sourceDockerArchive, sourceOCIArchive, sourceOCIDir, sourceDocker:
			if arg == "" {
				want := "PATH"
				if kind == sourceDocker {
					want = "NAME"
				}
				return source{}, fmt.Errorf("--image %q: want %s:%s", s, kind, want)
			}
			return source{kind: kind, arg: arg}, nil
		}
	}
	if strings.ContainsAny(s, " \t\n") {
		return source{}, fmt.Errorf("--image %q: a registry reference has no spaces", s)
	}
	return source{kind: sourceRegistry, arg: s}, nil
}

// local reports whether the step streams the image to the gate.
func (s source) local() bool { return s.kind != sourceRegistry }

// describe names the source in messages.
func (s source) describe() string {
	switch s.kind {
	case sourceRegistry:
		return s.arg
	case sourceDocker:
		return "the local image " + s.arg
	}
	return s.kind + " " + s.arg
}

// open returns the image as a tar stream (docker-archive or OCI layout,
// the gate tells which) and its size, -1 when unknown. It can be called
// again to send the image again.
func (s source) open(ctx context.Context, dockerHost string) (io.ReadCloser, int64, error) {
	switch s.kind {
	case sourceDockerArchive, sourceOCIArchive:
		return openArchive(s.arg)
	case sourceOCIDir:
		rc, err := tarDir(s.arg)
		return rc, -1, err
	case sourceDocker:
		rc, err := dockerSave(ctx, dockerHost, s.arg)
		return rc, -1, err
	}
	return nil, 0, fmt.Errorf("%s is not a local image", s.arg)
}

// openArchive opens an image archive, decompressing it on the fly when it
// is gzipped (docker save | gzip).
func openArchive(path string) (io.ReadCloser, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening the image archive: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening the image archive: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("the image archive %s is a directory (use oci-dir:%s for an OCI layout)", path, path)
	}
	if fi.Size() == 0 {
		f.Close()
		return nil, 0, fmt.Errorf("the image archive %s is empty", path)
	}
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("reading the gzipped image archive %s: %w", path, err)
		}
		return readCloser{zr, f}, -1, nil
	}
	return readCloser{br, f}, fi.Size(), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// tarDir checks that dir is an OCI image layout and returns a tar of it,
// written while it is read.
func tarDir(dir string) (io.ReadCloser, error) {
	for _, name := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("%s is not an OCI image layout (no %s): %w", dir, name, err)
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(pw, dir))
	}()
	return pr, nil
}

// writeTar writes the tree at dir as a tar with paths relative to dir.
// Symbolic links are followed, so a layout whose blobs link elsewhere
// arrives whole.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if fi.IsDir() {
			h.Name += "/"
			return tw.WriteHeader(h)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("packing the OCI layout %s: %w", dir, err)
	}
	return tw.Close()
}

// defaultDockerHost is the Docker daemon's socket when DOCKER_HOST is
// unset.
const defaultDockerHost = "unix:///var/run/docker.sock"

// dockerSave streams an image from the Docker daemon (GET
// /images/{name}/get, a docker-archive), over its unix socket or plain
// TCP, with net/http only.
func dockerSave(ctx context.Context, host, name string) (io.ReadCloser, error) {
	if host == "" {
		host = defaultDockerHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	tr := &http.Transport{}
	base := "http://docker"
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: want unix:///path or tcp://host:port (TLS daemons are not supported; use docker save and docker-archive:PATH)", host)
	}
	segs := strings.Split(name, "/")
	for i := range segs {
		segs[i] = url.PathEscape(segs[i])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/images/"+strings.Join(segs, "/")+"/get", nil)
	if err != nil {
		return nil, fmt.Errorf("asking the Docker daemon for %s: %w", name, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("the Docker daemon at %s is unreachable: %w", host, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		return nil, fmt.Errorf("the Docker daemon cannot export %s (%d): %s", name, resp.StatusCode, msg)
	}
	return resp.Body, nil
}

// unwrapURLError drops net/http's "Get \"url\":" prefix.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
