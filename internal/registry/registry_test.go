package registry

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildgate/buildgate"
)

func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Host
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		fullTag string
	}{
		{name: "short", in: "nginx", fullTag: "docker.io/nginx:latest"},
		{name: "library", in: "library/nginx:1", fullTag: "docker.io/library/nginx:1"},
		{name: "host", in: "127.0.0.1:5000/team/app:v1", fullTag: "127.0.0.1:5000/team/app:v1"},
		{name: "digest", in: "quay.io/a/b@sha256:" + strings.Repeat("a", 64), fullTag: ""},
		{name: "empty", in: " ", wantErr: "empty"},
		{name: "scheme", in: "https://host/repo:tag", wantErr: "without a scheme"},
		{name: "bad chars", in: "Host/UPPER:tag", wantErr: "invalid image reference"},
		{name: "bad tag", in: "repo:tag:more", wantErr: "invalid image reference"},
		{name: "dot-dot segment", in: "host.example/team-a/../team-b/app:1", wantErr: "path components"},
		{name: "dot segment", in: "host.example/team-a/./app:1", wantErr: "path components"},
		{name: "empty segment", in: "host.example/team-a//app:1", wantErr: "invalid image reference"},
		{name: "leading separator", in: "host.example/-team/app:1", wantErr: "invalid image reference"},
		{name: "double dot in component", in: "host.example/team..a/app:1", wantErr: "invalid image reference"},
		{name: "tag too long", in: "host.example/app:" + strings.Repeat("t", 129), wantErr: "invalid image reference"},
		{name: "separators", in: "host.example/team_a/app.x__y-z:v1.2_3-rc", fullTag: "host.example/team_a/app.x__y-z:v1.2_3-rc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseReference(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || buildgate.ErrorCode(err) != buildgate.EINVALID {
					t.Fatalf("ParseReference(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := FullTag(tt.in, ref); got != tt.fullTag {
				t.Errorf("FullTag = %q, want %q", got, tt.fullTag)
			}
		})
	}
}

func TestResolveAndOpen(t *testing.T) {
	host := testRegistry(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	// An index with an arm64 and an amd64 image: amd64 is chosen.
	arm, _ := random.Image(512, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	iref, _ := name.ParseReference(host + "/team/multi:v1")
	if err := remote.WriteIndex(iref, idx); err != nil {
		t.Fatal(err)
	}
	armOnly := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	aref, _ := name.ParseReference(host + "/team/armonly:v1")
	if err := remote.WriteIndex(aref, armOnly); err != nil {
		t.Fatal(err)
	}
	// A non-image artifact: a manifest whose config is not an image config.
	art := mutate.ConfigMediaType(img, types.MediaType("application/vnd.cncf.helm.config.v1+json"))
	artRef, _ := name.ParseReference(host + "/team/chart:v1")
	if err := remote.Write(artRef, art); err != nil {
		t.Fatal(err)
	}

	c := New(DefaultConfig())
	ctx := context.Background()
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr string
	}{
		{name: "tag", ref: host + "/team/app:v1", want: want.String()},
		{name: "index picks amd64", ref: host + "/team/multi:v1", want: want.String()},
		{name: "index without amd64", ref: host + "/team/armonly:v1", wantErr: "no linux/amd64 image"},
		{name: "missing tag", ref: host + "/team/app:nope", wantErr: "not found in registry"},
		{name: "missing repo", ref: host + "/team/none:v1", wantErr: "not found in registry"},
		{name: "not an image", ref: host + "/team/chart:v1", wantErr: "not a container image"},
		{name: "unknown host", ref: "no-such-host.invalid/team/app:v1", wantErr: "no-such-host.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseReference(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve(ctx, ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Digest != tt.want {
				t.Fatalf("digest = %s, want %s", r.Digest, tt.want)
			}
			got, err := c.Open(ctx, r)
			if err == nil {
				err = readLayers(got)
			}
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := got.Digest(); d != want {
				t.Fatalf("opened image digest %s", d)
			}
		})
	}
}

// FuzzParseReference: whatever ParseReference accepts has a repository of
// distribution path components only (no empty or dot segment), and a
// credential for "host/team-a" matches it only when its path starts with
// the segment team-a.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"nginx", "library/nginx:1", "127.0.0.1:5000/team-a/app:v1", "host.example/team-a/../team-b/app:1",
		"host.example/team-ab/app", "quay.io/a/b@sha256:" + strings.Repeat("a", 64), "host.example/team-a/app:1@sha256:" + strings.Repeat("b", 64),
		"[::1]:5000/team-a/x", "Host/UPPER:tag", "a/./b", "a//b", "localhost/team-a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if buildgate.ErrorCode(err) != buildgate.EINVALID {
				t.Fatalf("ParseReference(%q) error %v is not EINVALID", s, err)
			}
			return
		}
		repo := ref.Context().RepositoryStr()
		for _, seg := range strings.Split(repo, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
				t.Fatalf("ParseReference(%q) accepted repository %q with segment %q", s, repo, seg)
			}
		}
		host := ref.Context().RegistryStr()
		path := host + "/" + repo
		creds := []Credential{{Registry: host + "/team-a", Username: "a"}}
		_, ok := Match(creds, path)
		want := strings.HasPrefix(repo, "team-a/") || repo == "team-a"
		if ok != want {
			t.Fatalf("Match(host/team-a, %q) = %v, want %v", path, ok, want)
		}
		if full := FullTag(s, ref); full != "" {
			if _, err := ParseReference(full); err != nil {
				t.Fatalf("FullTag %q of %q does not parse again: %v", full, s, err)
			}
		}
	})
}

// TestOpen: an opened image reads its layers from the registry, each
// checked against its digest: a registry that serves other bytes for a
// blob fails the read with an error naming the image; a layer over the
// limit is refused before anything is read.
func TestOpen(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var lie atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, "config") {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff // the same length, other bytes
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := random.Image(4096, 2)
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := New(DefaultConfig())
	r, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	read := func() error {
		opened, err := c.Open(ctx, r)
		if err != nil {
			return err
		}
		if d, _ := opened.Digest(); d.String() != r.Digest {
			t.Fatalf("opened image %s, want %s", d, r.Digest)
		}
		layers, err := opened.Layers()
		if err != nil {
			return err
		}
		wantLayers, _ := img.Layers()
		for i, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			wrc, _ := wantLayers[i].Compressed()
			want, _ := io.ReadAll(wrc)
			wrc.Close()
			if !bytes.Equal(got, want) {
				t.Fatalf("layer %d read other bytes than were pushed", i)
			}
		}
		return nil
	}
	if err := read(); err != nil {
		t.Fatal(err)
	}
	lie.Store(true)
	err = read()
	if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), "pulling "+ref.String()) {
		t.Fatalf("reading a blob the registry changed: %v, want an invalid-input error naming the image", err)
	}
	lie.Store(false)

	cfg := DefaultConfig()
	cfg.MaxLayerSize = 100
	if _, err := New(cfg).Open(ctx, r); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("Open of a layer over the limit: %v, want a size limit error", err)
	}
}

// readLayers reads every layer of img as it downloads, as the cataloger
// does: the blob requests an open image has not made yet.
func readLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
