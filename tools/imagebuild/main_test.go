package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testEpoch = 1764633600 // 2025-12-02T00:00:00Z

// fakeBin lays out stand-in binaries for both platforms.
func fakeBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"linux_amd64", "linux_arm64"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"gate", "gate-jenkins", "gate-action", "gate-gitlab"} {
			if err := os.WriteFile(filepath.Join(dir, p, b), []byte("#!/bin/false "+p+" "+b+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func fakeCA(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func buildInto(t *testing.T, bin, ca string, epoch int64, sbom bool) string {
	t.Helper()
	out := t.TempDir()
	args := []string{"-bin", bin, "-out", out, "-ca", ca, "-version", "v1.2.3", "-revision", "0123abc",
		"-epoch", strconv.FormatInt(epoch, 10), "-sbom=" + strconv.FormatBool(sbom)}
	if err := run(context.Background(), args); err != nil {
		t.Fatalf("imagebuild %v: %v", args, err)
	}
	return out
}

func digestOf(t *testing.T, out, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, name+".digest"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSameInputsSameDigests(t *testing.T) {
	bin, ca := fakeBin(t), fakeCA(t)
	a := buildInto(t, bin, ca, testEpoch, false)
	b := buildInto(t, bin, ca, testEpoch, false)
	later := buildInto(t, bin, ca, testEpoch+1, false)
	for _, s := range images {
		da, db, dl := digestOf(t, a, s.name), digestOf(t, b, s.name), digestOf(t, later, s.name)
		if da != db {
			t.Errorf("%s: two builds of the same inputs made %s and %s", s.name, da, db)
		}
		if da == dl {
			t.Errorf("%s: a different SOURCE_DATE_EPOCH made the same digest %s", s.name, da)
		}
		ta, err := os.ReadFile(filepath.Join(a, s.name+".docker.tar"))
		if err != nil {
			t.Fatal(err)
		}
		tb, err := os.ReadFile(filepath.Join(b, s.name+".docker.tar"))
		if err != nil {
			t.Fatal(err)
		}
		if string(ta) != string(tb) {
			t.Errorf("%s: two builds made different docker archives", s.name)
		}
	}
}

func TestImageContents(t *testing.T) {
	out := buildInto(t, fakeBin(t), fakeCA(t), testEpoch, true)
	created := time.Unix(testEpoch, 0).UTC()
	for _, s := range images {
		t.Run(s.name, func(t *testing.T) {
			p, err := layout.FromPath(filepath.Join(out, s.name+".oci"))
			if err != nil {
				t.Fatal(err)
			}
			top, err := p.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			tm, err := top.IndexManifest()
			if err != nil || len(tm.Manifests) != 1 || !tm.Manifests[0].MediaType.IsIndex() {
				t.Fatalf("layout index.json = %+v, %v; want one multi-arch index (what crane push takes)", tm, err)
			}
			if got := tm.Manifests[0].Digest.String(); got != digestOf(t, out, s.name) {
				t.Errorf("layout holds %s, .digest says %s", got, digestOf(t, out, s.name))
			}
			idx, err := top.ImageIndex(tm.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var platforms []string
			for _, d := range im.Manifests {
				platforms = append(platforms, d.Platform.String())
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				checkImage(t, s, img, d.Platform.Architecture, created)
			}
			if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
				t.Errorf("index platforms = %v, want linux/amd64 and linux/arm64", platforms)
			}

			// The docker archive is the linux/amd64 image, tagged.
			img, err := tarball.ImageFromPath(filepath.Join(out, s.name+".docker.tar"), nil)
			if err != nil {
				t.Fatalf("reading the docker archive: %v", err)
			}
			checkImage(t, s, img, "amd64", created)
			mf, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(filepath.Join(out, s.name+".docker.tar")) })
			if err != nil || len(mf) != 1 || len(mf[0].RepoTags) != 1 || mf[0].RepoTags[0] != "ghcr.io/buildgate/"+s.name+":v1.2.3" {
				t.Errorf("docker archive manifest.json = %+v, %v; want one image tagged ghcr.io/buildgate/%s:v1.2.3", mf, err, s.name)
			}

			for _, f := range []string{".sbom.spdx.json", ".sbom.syft.json"} {
				var doc map[string]any
				b, err := os.ReadFile(filepath.Join(out, s.name+f))
				if err == nil {
					err = json.Unmarshal(b, &doc)
				}
				if err != nil || len(doc) == 0 {
					t.Errorf("SBOM %s%s: %v", s.name, f, err)
				}
			}
		})
	}
}

// checkImage checks the config and the one layer of img.
func checkImage(t *testing.T, s spec, img v1.Image, arch string, created time.Time) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != arch || cf.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if !cf.Created.Equal(created) {
		t.Errorf("created %v, want %v", cf.Created, created)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source": "https://github.com/buildgate/buildgate", "org.opencontainers.image.version": "v1.2.3",
		"org.opencontainers.image.revision": "0123abc", "org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created": "2025-12-02T00:00:00Z",
	} {
		if cf.Config.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], want)
		}
	}
	if _, ok := cf.Config.Volumes["/data"]; ok != s.data {
		t.Errorf("VOLUME /data: %v, want %v", ok, s.data)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(created) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, created)
		}
		b, _ := io.ReadAll(tr)
		entries[h.Name], contents[h.Name] = h, string(b)
	}
	if !strings.Contains(contents["etc/passwd"], ":65532:65532:") || !strings.Contains(contents["etc/group"], ":65532:") {
		t.Errorf("/etc/passwd %q, /etc/group %q: want user and group 65532", contents["etc/passwd"], contents["etc/group"])
	}
	if !strings.Contains(contents["etc/ssl/certs/ca-certificates.crt"], "BEGIN CERTIFICATE") {
		t.Errorf("no CA bundle in /etc/ssl/certs/ca-certificates.crt")
	}
	if d := entries["data/"]; s.data && (d == nil || d.Uid != 65532 || d.Gid != 65532 || d.Typeflag != tar.TypeDir) {
		t.Errorf("/data = %+v, want a directory owned by 65532:65532", d)
	}
	for _, b := range s.binaries {
		h := entries["usr/local/bin/"+b]
		if h == nil || h.Mode&0o111 == 0 || contents["usr/local/bin/"+b] != "#!/bin/false linux_"+arch+" "+b+"\n" {
			t.Errorf("/usr/local/bin/%s = %+v, want the %s binary, executable", b, h, arch)
		}
	}
}

func TestBadInput(t *testing.T) {
	bin, ca := fakeBin(t), fakeCA(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no epoch", []string{"-epoch", "-1"}, "SOURCE_DATE_EPOCH"},
		{"bad platform", []string{"-platforms", "linux"}, `platform "linux"`},
		{"missing binary", []string{"-platforms", "linux/s390x"}, "run make cross first"},
		{"no CA bundle", []string{"-ca", filepath.Join(t.TempDir(), "none")}, "CA bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-bin", bin, "-out", t.TempDir(), "-ca", ca, "-epoch", "0", "-sbom=false"}, tt.args...)
			err := run(context.Background(), args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) = %v, want an error naming %q", tt.args, err, tt.want)
			}
		})
	}
}
