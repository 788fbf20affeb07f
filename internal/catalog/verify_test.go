package catalog

import (
	"archive/tar"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// verifyFindings evaluates one packages/verify rule with the given params
// (JSON name/value objects) against a catalog result and returns the
// findings' messages.
func verifyFindings(t *testing.T, res *Result, params string) []string {
	t.Helper()
	b, err := policy.ParseBundle([]byte(`{"id":"b","name":"b","version":"1_0",
		"policies":[{"id":"p","name":"p","version":"1_0","rules":[
			{"id":"r","gate":"packages","trigger":"verify","action":"stop","params":[` + params + `]}]}],
		"mappings":[{"id":"m","name":"m","registry":"*","repository":"*","image":{"type":"tag","value":"*"},"policy_ids":["p"]}]}`))
	if err != nil {
		t.Fatalf("parsing bundle: %v", err)
	}
	in := policy.Input{Tag: "docker.io/library/test:1", Facts: buildgate.Facts{Digest: res.Digest, Packages: res.Packages, Files: res.Files}}
	ev, err := policy.Evaluate(b, in, time.Now())
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	out := []string{}
	for _, f := range ev.Findings {
		out = append(out, f.Message)
	}
	return out
}

func verifyMsg(pkg, path, status string) string {
	return fmt.Sprintf("VERIFY check against package db for package '%s' failed on entry '%s' with status: '%s'", pkg, path, status)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestVerifyDpkgOnly: bullseye-dpkgonly has dpkg's status file and no
// info/*.md5sums, so the packages' files are the conffiles the status
// lists, with their MD5s; all but /etc/debian_version are missing.
func TestVerifyDpkgOnly(t *testing.T) {
	res := catalogDpkgOnly(t)

	base, ok := findPackage(res.Packages, "deb", "base-files")
	if !ok {
		t.Fatal("no base-files package")
	}
	i := slices.IndexFunc(base.Files, func(f buildgate.PackageFile) bool { return f.Path == "/etc/debian_version" })
	if i < 0 {
		t.Fatalf("base-files files %+v: no /etc/debian_version", base.Files)
	}
	dv, _ := findFile(res.Files, "/etc/debian_version")
	if want := (buildgate.PackageFile{Path: "/etc/debian_version", Digest: dv.MD5, Algorithm: "md5", IsConfig: true}); base.Files[i] != want || len(dv.MD5) != 32 {
		t.Errorf("base-files /etc/debian_version: got %+v, want %+v (the md5 of the file in the image)", base.Files[i], want)
	}
	n := 0
	for _, p := range res.Packages {
		for _, f := range p.Files {
			n++
			if !f.IsConfig || f.Algorithm != "md5" || len(f.Digest) != 32 || !strings.HasPrefix(f.Path, "/etc/") {
				t.Errorf("%s: file %+v, want only /etc conffiles with an md5", p.Name, f)
			}
		}
	}
	if n < 20 {
		t.Errorf("got %d package files, want the conffiles of the status file", n)
	}

	all := verifyFindings(t, res, "")
	if len(all) != n-1 {
		t.Errorf("got %d findings, want one per conffile but /etc/debian_version (%d):\n%s", len(all), n-1, strings.Join(all, "\n"))
	}
	for _, m := range all {
		if !strings.HasSuffix(m, "with status: 'missing'") || strings.Contains(m, "/etc/debian_version") {
			t.Errorf("unexpected finding %q", m)
		}
	}
	if want := verifyMsg("base-files", "/etc/host.conf", "missing"); !slices.Contains(all, want) {
		t.Errorf("findings lack %q", want)
	}
	if got := verifyFindings(t, res, `{"name":"check","value":"changed"}`); len(got) != 0 {
		t.Errorf("check=changed: got %q, want none (config files are never changed)", got)
	}
	got := verifyFindings(t, res, `{"name":"only_packages","value":"base-files"},{"name":"only_directories","value":"/etc/host"}`)
	if want := []string{verifyMsg("base-files", "/etc/host.conf", "missing")}; !slices.Equal(got, want) {
		t.Errorf("only base-files /etc/host*: got %q, want %q", got, want)
	}
}

// dpkgImage is a merged-/usr image holding one dpkg package, hello, whose
// binary was changed after installation, whose man page was deleted and
// whose conffile was edited.
func dpkgImage(t *testing.T) v1.Image {
	t.Helper()
	const (
		binary = "hello, world\n"
		readme = "the README\n"
		conf   = "greeting=hello\n"
	)
	status := "Package: hello\nStatus: install ok installed\nPriority: optional\nSection: devel\nInstalled-Size: 10\n" +
		"Maintainer: Test <test@example.com>\nArchitecture: amd64\nVersion: 2.10-2\n" +
		"Conffiles:\n /etc/hello.conf " + md5hex(conf) + "\n /etc/hello.d/old.conf " + md5hex("old") + " obsolete\n" +
		"Description: says hello\n a test package\n"
	md5sums := md5hex(binary) + "  usr/bin/hello\n" +
		md5hex(binary) + "  bin/hello-compat\n" + // through /bin -> usr/bin
		md5hex(readme) + "  usr/share/doc/hello/README\n" +
		md5hex("a man page") + "  usr/share/man/man1/hello.1.gz\n"
	layer := layerOf(t,
		tarEntry{name: "bin", typ: tar.TypeSymlink, mode: 0o777, linkname: "usr/bin"},
		tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "etc/hello.conf", typ: tar.TypeReg, mode: 0o644, content: "greeting=bonjour\n"},
		tarEntry{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "usr/bin/hello", typ: tar.TypeReg, mode: 0o755, content: "hello, patched world\n"},
		tarEntry{name: "usr/bin/hello-compat", typ: tar.TypeReg, mode: 0o755, content: binary},
		tarEntry{name: "usr/share/doc/hello/README", typ: tar.TypeReg, mode: 0o644, content: readme},
		tarEntry{name: "var/lib/dpkg/status", typ: tar.TypeReg, mode: 0o644, content: status},
		tarEntry{name: "var/lib/dpkg/info/hello.md5sums", typ: tar.TypeReg, mode: 0o644, content: md5sums},
	)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestVerifyChangedDpkg(t *testing.T) {
	res, err := Catalog(context.Background(), writeLayout(t, dpkgImage(t)), DefaultConfig())
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	p, ok := findPackage(res.Packages, "deb", "hello")
	if !ok {
		t.Fatalf("no hello package in %+v", res.Packages)
	}
	wantFiles := []buildgate.PackageFile{
		{Path: "/bin/hello-compat", Digest: md5hex("hello, world\n"), Algorithm: "md5"},
		{Path: "/etc/hello.conf", Digest: md5hex("greeting=hello\n"), Algorithm: "md5", IsConfig: true},
		{Path: "/usr/bin/hello", Digest: md5hex("hello, world\n"), Algorithm: "md5"},
		{Path: "/usr/share/doc/hello/README", Digest: md5hex("the README\n"), Algorithm: "md5"},
		{Path: "/usr/share/man/man1/hello.1.gz", Digest: md5hex("a man page"), Algorithm: "md5"},
	}
	if !slices.Equal(p.Files, wantFiles) {
		t.Errorf("hello files (md5sums and status conffiles, no obsolete conffile):\n got %+v\nwant %+v", p.Files, wantFiles)
	}
	if f, _ := findFile(res.Files, "/usr/bin/hello"); f.MD5 != md5hex("hello, patched world\n") {
		t.Errorf("/usr/bin/hello: got md5 %q, want that of its content", f.MD5)
	}

	changed, missing := verifyMsg("hello", "/usr/bin/hello", "changed"), verifyMsg("hello", "/usr/share/man/man1/hello.1.gz", "missing")
	tests := []struct {
		name, params string
		want         []string
	}{
		{"both", ``, []string{changed, missing}},
		{"changed", `{"name":"check","value":"changed"}`, []string{changed}},
		{"missing", `{"name":"check","value":"missing"}`, []string{missing}},
		{"other package", `{"name":"only_packages","value":"bash"}`, []string{}},
		{"other directory", `{"name":"only_directories","value":"/etc,/bin"}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifyFindings(t, res, tt.params); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
