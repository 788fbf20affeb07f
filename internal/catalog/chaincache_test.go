package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// plusLayers is img with layers on top, as a pipeline builds an image on
// a base.
func plusLayers(t *testing.T, img v1.Image, layers ...v1.Layer) string {
	t.Helper()
	plus, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, plus)
}

// sbomWithout returns the syft-json document doc without its descriptor,
// whose configuration syft fills in by run.
func sbomWithout(t *testing.T, doc []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "descriptor")
	return m
}

// TestChainCacheSameResult: on both shared images, an image made of the
// image plus one small layer (a directory the image has and a new file)
// is cataloged from the image's chain entry, without syft, and the result
// (packages, files, metadata, the SBOM document and the matches made from
// it) equals a full run's.
// A layer that adds a package, removes a file or adds a link is
// cataloged by syft again and its result equals a full run's too.
func TestChainCacheSameResult(t *testing.T) {
	if testing.Short() {
		t.Skip("large images")
	}
	buildInfo := func() v1.Layer {
		return layerOf(t,
			tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "etc/build-info", typ: tar.TypeReg, mode: 0o644, content: "pipeline 42\n"})
	}
	cases := []struct {
		name     string
		layer    func() v1.Layer
		fromSBOM bool
		pkg      string // a package the layer adds
	}{
		{name: "one small file", layer: buildInfo, fromSBOM: true},
		{name: "a python package", pkg: "buildgate-probe", layer: func() v1.Layer {
			return layerOf(t, tarEntry{name: "usr/lib/python3/dist-packages/buildgate_probe-1.0.dist-info/METADATA", typ: tar.TypeReg, mode: 0o644,
				content: "Metadata-Version: 2.1\nName: buildgate-probe\nVersion: 1.0\n"})
		}},
		{name: "a dpkg status change", pkg: "buildgate-probe-deb", layer: func() v1.Layer {
			return layerOf(t, tarEntry{name: "var/lib/dpkg/status", typ: tar.TypeReg, mode: 0o644,
				content: "Package: buildgate-probe-deb\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"})
		}},
		{name: "a whiteout", layer: func() v1.Layer {
			return layerOf(t, tarEntry{name: "etc/.wh.build-info-none", typ: tar.TypeReg, mode: 0o644})
		}},
		{name: "a link", layer: func() v1.Layer {
			return layerOf(t, tarEntry{name: "etc/build-info", typ: tar.TypeSymlink, linkname: "/etc/os-release"})
		}},
	}
	db := vulndbtest.Manager(t)
	for _, name := range []string{"bullseye-minbase.docker.tar", "bookworm-app.docker.tar"} {
		t.Run(name, func(t *testing.T) {
			dir := layoutFromArchive(t, name)
			img, err := openLayout(dir)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.ContentRules = []Rule{{Name: "pipeline", Regexp: `pipeline \d+`}}
			cacheDir := t.TempDir()
			if cfg.LayerCache, err = OpenLayerCache(cacheDir, 1<<30); err != nil {
				t.Fatal(err)
			}
			if _, err := Catalog(ctx, dir, cfg); err != nil {
				t.Fatal(err)
			}
			if n := countSuffix(t, cacheDir, chainSuffix); n != 1 {
				t.Fatalf("%d chain entries after cataloging the image, want 1", n)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					plus := plusLayers(t, img, tc.layer())
					full := cfg
					full.LayerCache = nil
					want, err := Catalog(ctx, plus, full)
					if err != nil {
						t.Fatal(err)
					}
					before := cfg.LayerCache.chainHits
					got, err := Catalog(ctx, plus, cfg)
					if err != nil {
						t.Fatal(err)
					}
					if hit := cfg.LayerCache.chainHits > before; hit != tc.fromSBOM {
						t.Errorf("cataloged from the chain: %v, want %v (%s)", hit, tc.fromSBOM, cfg.LayerCache.chainMiss)
					}
					if !reflect.DeepEqual(facts(got), facts(want)) {
						t.Errorf("the result differs from a full run's")
					}
					if g, w := sbomWithout(t, got.SBOM), sbomWithout(t, want.SBOM); !reflect.DeepEqual(g, w) {
						for k := range w {
							if !bytes.Equal(g[k], w[k]) {
								t.Errorf("the SBOM's %q differs from a full run's", k)
							}
						}
					}
					if tc.fromSBOM {
						// matches are made from the SBOM: the same one gives the same
						gotMatches, _, err := db.Match(ctx, got.SBOM)
						if err != nil {
							t.Fatal(err)
						}
						wantMatches, _, err := db.Match(ctx, want.SBOM)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(gotMatches, wantMatches) || len(wantMatches) == 0 {
							t.Errorf("%d matches, a full run's SBOM gives %d (or none)", len(gotMatches), len(wantMatches))
						}
					}
					if tc.pkg != "" {
						if _, ok := findPackageNamed(got.Packages, tc.pkg); !ok {
							t.Errorf("the layer's package %s is not found", tc.pkg)
						}
					}
					if tc.fromSBOM && len(got.ContentMatches["pipeline"]) != 1 {
						t.Errorf("content matches %v: the new layer's file is not in the files pass", got.ContentMatches)
					}
				})
			}

			// an image on top of the image plus a layer finds the
			// image's chain, after a restart, and reads the layers above
			// it
			plusImg, err := mutate.AppendLayers(img, buildInfo())
			if err != nil {
				t.Fatal(err)
			}
			second := plusLayers(t, plusImg, layerOf(t, tarEntry{name: "opt/app/README", typ: tar.TypeReg, mode: 0o644, content: "hello\n"}))
			want, err := Catalog(ctx, second, Config{SBOM: cfg.SBOM, ContentRules: cfg.ContentRules, SecretRules: cfg.SecretRules})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LayerCache, err = OpenLayerCache(cacheDir, 1<<30); err != nil { // and after a restart
				t.Fatal(err)
			}
			got, err := Catalog(ctx, second, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LayerCache.chainHits != 1 {
				t.Errorf("an image on the plus image: %d chain hits, want 1", cfg.LayerCache.chainHits)
			}
			if !reflect.DeepEqual(facts(got), facts(want)) || !reflect.DeepEqual(sbomWithout(t, got.SBOM), sbomWithout(t, want.SBOM)) {
				t.Errorf("an image on the plus image: the result differs from a full run's")
			}
		})
	}
}

func findPackageNamed(pkgs []buildgate.Package, name string) (buildgate.Package, bool) {
	for _, p := range pkgs {
		if p.Name == name {
			return p, true
		}
	}
	return buildgate.Package{}, false
}

// TestChainBreak: the upper layers that may change what syft's queries
// find are told apart from the ones that may not.
func TestChainBreak(t *testing.T) {
	entry := func(p, typ, link string) layerEntry {
		return layerEntry{file: buildgate.File{Path: p, Type: typ, LinkDest: link}}
	}
	lower := []*layerScan{{entries: []layerEntry{
		entry("/usr", TypeDir, ""),
		entry("/usr/lib", TypeDir, ""),
		entry("/lib", TypeSymlink, "usr/lib"),
		entry("/etc", TypeDir, ""),
		entry("/etc/os-release", TypeFile, ""),
		entry("/etc/alternatives/tool", TypeSymlink, "/opt/tool/bin/tool"),
	}}}
	e := &chainEntry{
		Paths: []string{"/lib/x86_64-linux-gnu/libfoo.so.1", "/etc/os-release"},
		Globs: []string{"**/lib/dpkg/status", "/lib/python3*/site-packages/*.dist-info/METADATA", "**/{go,go.exe}"},
		MIMEs: []string{"application/x-elf"},
		Nix:   true,
	}
	for _, tc := range []struct {
		name  string
		upper []layerEntry
		mimes map[string]string
		holds bool
	}{
		{"a text file and a directory below has", []layerEntry{entry("/etc", TypeDir, ""), entry("/etc/build-info", TypeFile, "")}, map[string]string{"/etc/build-info": "text/plain"}, true},
		{"a new directory and file", []layerEntry{entry("/srv", TypeDir, ""), entry("/srv/app.conf", TypeFile, "")}, nil, true},
		{"a path looked up through a link", []layerEntry{entry("/usr/lib/x86_64-linux-gnu", TypeDir, ""), entry("/usr/lib/x86_64-linux-gnu/libfoo.so.1", TypeFile, "")}, nil, false},
		{"a glob's match through a link", []layerEntry{entry("/usr/lib/python3.11/site-packages/a-1.0.dist-info/METADATA", TypeFile, "")}, nil, false},
		{"a glob's match", []layerEntry{entry("/var/lib/dpkg/status", TypeFile, "")}, nil, false},
		{"a glob's alternative", []layerEntry{entry("/usr/local/go/bin/go", TypeFile, "")}, nil, false},
		{"a glob's match in another case", []layerEntry{entry("/VAR/LIB/DPKG/STATUS", TypeFile, "")}, nil, false},
		{"a file a dangling link names", []layerEntry{entry("/opt/tool/bin/tool", TypeFile, "")}, nil, false},
		{"an executable", []layerEntry{entry("/srv/tool", TypeFile, "")}, map[string]string{"/srv/tool": "application/x-elf"}, false},
		{"a nix store", []layerEntry{entry("/nix/store/abc-foo-1.0/README", TypeFile, "")}, nil, false},
		{"a file replaced", []layerEntry{entry("/etc/os-release", TypeFile, "")}, nil, false},
		{"a file under a link", []layerEntry{entry("/lib/new.conf", TypeFile, "")}, nil, false},
		{"a link", []layerEntry{entry("/srv/link", TypeSymlink, "/etc")}, nil, false},
		{"a whiteout", []layerEntry{{file: buildgate.File{Path: "/srv/gone"}, whiteout: true}}, nil, false},
		{"an opaque directory", []layerEntry{{file: buildgate.File{Path: "/etc"}, opaque: true}}, nil, false},
	} {
		why := chainBreak(e, lower, []*layerScan{{entries: tc.upper}}, tc.mimes)
		if (why == "") != tc.holds {
			t.Errorf("%s: chainBreak says %q, want the chain to hold: %v", tc.name, why, tc.holds)
		}
	}
}
