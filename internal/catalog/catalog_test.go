package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/anchore/syft/syft"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/shareddir"
)

// imagesDir returns the directory of the shared test images
// (docker-archive tarballs).
func imagesDir(tb testing.TB) string {
	tb.Helper()
	dir, err := shareddir.Dir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, "images")
}

// writeLayout writes img as the one image of an OCI layout in a new
// temporary directory.
func writeLayout(tb testing.TB, img v1.Image) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		tb.Fatalf("writing layout: %v", err)
	}
	if err := p.AppendImage(img); err != nil {
		tb.Fatalf("appending image to layout: %v", err)
	}
	return dir
}

// layoutFromArchive converts a shared docker-archive image into an OCI
// layout.
func layoutFromArchive(tb testing.TB, name string) string {
	tb.Helper()
	img, err := tarball.ImageFromPath(filepath.Join(imagesDir(tb), name), nil)
	if err != nil {
		tb.Fatalf("loading %s: %v", name, err)
	}
	return writeLayout(tb, img)
}

var dpkgOnly struct {
	once sync.Once
	res  *Result
	err  error
}

// catalogDpkgOnly catalogs bullseye-dpkgonly once for all the tests that
// read it.
func catalogDpkgOnly(t *testing.T) *Result {
	t.Helper()
	dpkgOnly.once.Do(func() {
		dir := layoutFromArchive(t, "bullseye-dpkgonly.docker.tar")
		dpkgOnly.res, dpkgOnly.err = Catalog(context.Background(), dir, DefaultConfig())
	})
	if dpkgOnly.err != nil {
		t.Fatalf("Catalog: %v", dpkgOnly.err)
	}
	return dpkgOnly.res
}

func findPackage(pkgs []buildgate.Package, typ, name string) (buildgate.Package, bool) {
	for _, p := range pkgs {
		if p.Type == typ && p.Name == name {
			return p, true
		}
	}
	return buildgate.Package{}, false
}

func findFile(files []buildgate.File, path string) (buildgate.File, bool) {
	for _, f := range files {
		if f.Path == path {
			return f, true
		}
	}
	return buildgate.File{}, false
}

func TestCatalogDpkgOnly(t *testing.T) {
	res := catalogDpkgOnly(t)

	if n := len(res.Packages); n <= 50 {
		t.Errorf("got %d packages, want > 50", n)
	}
	for _, p := range res.Packages {
		if p.Type != "deb" {
			t.Errorf("package %s has type %q, want deb", p.Name, p.Type)
		}
		if p.ID == "" || p.Version == "" || p.PURL == "" || p.Path != "/var/lib/dpkg/status" {
			t.Errorf("package %+v: want ID, version, purl and path /var/lib/dpkg/status", p)
		}
	}
	if !slices.IsSortedFunc(res.Packages, func(a, b buildgate.Package) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("packages of one type are not sorted by name")
	}

	tests := []struct {
		name, pkg, version, origin string
	}{
		{name: "libc6", pkg: "libc6", version: "2.31-13+deb11u11", origin: "glibc"},
		{name: "bash", pkg: "bash", version: "5.1-2+deb11u1", origin: ""},
		{name: "libgcc-s1", pkg: "libgcc-s1", version: "10.2.1-6", origin: "gcc-10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := findPackage(res.Packages, "deb", tt.pkg)
			if !ok {
				t.Fatalf("no deb package %s", tt.pkg)
			}
			if p.Version != tt.version || p.Origin != tt.origin {
				t.Errorf("%s: got version %q origin %q, want %q %q", tt.pkg, p.Version, p.Origin, tt.version, tt.origin)
			}
			if p.Size <= 0 {
				t.Errorf("%s: got size %d, want the installed size", tt.pkg, p.Size)
			}
		})
	}

	md := res.Metadata
	if md.Distro != "debian" || md.DistroVersion != "11" {
		t.Errorf("distro: got %q %q, want debian 11", md.Distro, md.DistroVersion)
	}
	if md.OS != "linux" || md.Arch != "amd64" || md.LayerCount != 1 || md.Size <= 0 {
		t.Errorf("metadata: got os %q arch %q layers %d size %d, want linux amd64 1 >0", md.OS, md.Arch, md.LayerCount, md.Size)
	}
	if !strings.HasPrefix(res.Digest, "sha256:") {
		t.Errorf("digest: got %q", res.Digest)
	}

	if f, ok := findFile(res.Files, "/etc/os-release"); !ok || f.Type != TypeSymlink || f.LinkDest != "../usr/lib/os-release" {
		t.Errorf("/etc/os-release: got %+v, want a symlink to ../usr/lib/os-release", f)
	}
	for _, path := range []string{"/usr/lib/os-release", "/etc/debian_version", "/var/lib/dpkg/status"} {
		f, ok := findFile(res.Files, path)
		if !ok {
			t.Errorf("no file %s in %v", path, res.Files)
			continue
		}
		if f.Type != TypeFile || len(f.SHA256) != 64 || f.Size <= 0 {
			t.Errorf("%s: got %+v, want a regular file with size and sha256", path, f)
		}
	}
	if f, ok := findFile(res.Files, "/etc"); !ok || f.Type != TypeDir {
		t.Errorf("/etc: got %+v, want a directory", f)
	}
	if len(res.Files) != 10 {
		t.Errorf("got %d files, want the 10 entries of the layer (without the root)", len(res.Files))
	}
	if len(res.Secrets) != 0 {
		t.Errorf("secrets: got %v, want none", res.Secrets)
	}

	var doc struct {
		Artifacts []json.RawMessage `json:"artifacts"`
		Source    struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"source"`
		Distro struct {
			ID string `json:"id"`
		} `json:"distro"`
	}
	if err := json.Unmarshal(res.SBOM, &doc); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	if len(doc.Artifacts) != len(res.Packages) || doc.Distro.ID != "debian" {
		t.Errorf("SBOM: got %d artifacts distro %q, want %d debian", len(doc.Artifacts), doc.Distro.ID, len(res.Packages))
	}
	if doc.Source.Name != res.Digest || doc.Source.Version != res.Digest {
		t.Errorf("SBOM source: got %q %q, want the digest %q", doc.Source.Name, doc.Source.Version, res.Digest)
	}
}

func TestCatalogName(t *testing.T) {
	dir := layoutFromArchive(t, "bullseye-dpkgonly.docker.tar")
	cfg := DefaultConfig()
	cfg.Name = "registry.example.com/team/app:1.2"
	res, err := Catalog(context.Background(), dir, cfg)
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	var doc struct {
		Source struct {
			Name     string `json:"name"`
			Version  string `json:"version"`
			Metadata struct {
				UserInput string `json:"userInput"`
			} `json:"metadata"`
		} `json:"source"`
	}
	if err := json.Unmarshal(res.SBOM, &doc); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	if doc.Source.Name != cfg.Name || doc.Source.Version != res.Digest || doc.Source.Metadata.UserInput != cfg.Name {
		t.Errorf("SBOM source: got %+v, want name and user input %q, version %q", doc.Source, cfg.Name, res.Digest)
	}
	if bytes.Contains(res.SBOM, []byte(dir)) {
		t.Errorf("SBOM mentions the layout directory %s", dir)
	}
}

// tarEntry is one entry of a test layer.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	content  string
	linkname string
}

func layerOf(tb testing.TB, entries ...tarEntry) v1.Layer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, ModTime: time.Unix(0, 0)}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatalf("writing tar header %s: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.content); err != nil {
			tb.Fatalf("writing tar %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatalf("closing tar: %v", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		tb.Fatalf("making layer: %v", err)
	}
	return l
}

// Fake secrets of the synthetic image. None may appear in a Result.
const (
	fakeAccessKey = "AKIAIOSFODNN7EXAMPLE"
	fakeSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	fakePEMBody   = "MIIEowIBAAKCAQEA7bq98Fz1fakefakefakefakefake"
	fakeAuth      = "dXNlcjpzM2NyM3QtcGFzc3dvcmQ="
	fakeAPIKey    = "Zx9QkL2mN4pR7sT1vW3yB5"
	fakeEnvValue  = "hunter2-env-value"
	fakeArgValue  = "build-arg-token-value"
	fakeRemoved   = "AKIAREMOVEDREMOVED00"
	fakeBinary    = "AKIABINARYBINARY0000"
	fakeLarge     = "AKIALARGELARGELARGE0"
)

// syntheticImage is a random base layer plus two layers with secrets, odd
// file modes and links, and a whiteout.
func syntheticImage(t *testing.T) v1.Image {
	t.Helper()
	base, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("making random image: %v", err)
	}
	files := layerOf(t,
		tarEntry{name: "app/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "app/.env", typ: tar.TypeReg, mode: 0o600, content: "APP_ENV=prod\n" +
			"AWS_ACCESS_KEY_ID=" + fakeAccessKey + "\n" +
			"aws_secret_access_key = " + fakeSecretKey + "\n"},
		tarEntry{name: "app/settings.ini", typ: tar.TypeReg, mode: 0o644, content: "[main]\r\napi_key = " + fakeAPIKey + "\r\n"},
		tarEntry{name: "app/link", typ: tar.TypeSymlink, mode: 0o777, linkname: ".env"},
		tarEntry{name: "app/hard", typ: tar.TypeLink, linkname: "app/.env"},
		tarEntry{name: "app/big.txt", typ: tar.TypeReg, mode: 0o644, content: strings.Repeat("x", 2048) + "\naws_access_key_id=" + fakeLarge + "\n"},
		tarEntry{name: "app/tool.bin", typ: tar.TypeReg, mode: 0o755, content: "\x7fELF\x00\x00\naws_access_key_id=" + fakeBinary + "\n"},
		tarEntry{name: "root/.ssh/id_rsa", typ: tar.TypeReg, mode: 0o600, content: "-----BEGIN RSA PRIVATE KEY-----\n" + fakePEMBody + "\n-----END RSA PRIVATE KEY-----\n"},
		tarEntry{name: "root/.docker/config.json", typ: tar.TypeReg, mode: 0o600, content: "{\n  \"auths\": {\n    \"registry.example.com\": {\n      \"auth\": \"" + fakeAuth + "\"\n    }\n  }\n}\n"},
		tarEntry{name: "usr/bin/su", typ: tar.TypeReg, mode: 0o4755, content: "su"},
		tarEntry{name: "usr/bin/wall", typ: tar.TypeReg, mode: 0o2755, content: "wall"},
		tarEntry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		tarEntry{name: "tmp/removed.txt", typ: tar.TypeReg, mode: 0o644, content: "aws_access_key_id=" + fakeRemoved + "\n"},
		tarEntry{name: "etc/policy.conf", typ: tar.TypeReg, mode: 0o644, content: "# settings\nPermitRootLogin yes\n"},
	)
	whiteout := layerOf(t,
		tarEntry{name: "tmp/.wh.removed.txt", typ: tar.TypeReg, mode: 0o644},
	)
	img, err := mutate.AppendLayers(base, files, whiteout)
	if err != nil {
		t.Fatalf("appending layers: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	cf.Config.User = "app"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin", "DB_PASSWORD=" + fakeEnvValue}
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "443": {}}
	cf.Config.Labels = map[string]string{"maintainer": "team@example.com"}
	cf.Config.Entrypoint = []string{"/app/run"}
	cf.Config.Cmd = []string{"--serve"}
	cf.Config.WorkingDir = "/app"
	cf.History = []v1.History{
		{CreatedBy: "random base"},
		{CreatedBy: "ENV DB_PASSWORD=" + fakeEnvValue, EmptyLayer: true},
		{CreatedBy: "RUN |1 TOKEN=" + fakeArgValue + " /bin/sh -c make"},
		{CreatedBy: "COPY app/ /app/"},
		{CreatedBy: "RUN /bin/sh -c rm /tmp/removed.txt"},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("setting config: %v", err)
	}
	return img
}

func TestCatalogSynthetic(t *testing.T) {
	dir := writeLayout(t, syntheticImage(t))
	cfg := DefaultConfig()
	cfg.MaxSecretFileSize = 1024
	cfg.ContentRules = []Rule{
		{Name: "root_login", Regexp: `^PermitRootLogin\s+yes`},
		{Name: "aws_anywhere", Regexp: `(?i)aws_`},
		{Name: "never", Regexp: `no-such-content`},
	}
	res, err := Catalog(context.Background(), dir, cfg)
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}

	wantSecrets := []buildgate.Secret{
		{Rule: RuleAWSAccessKey, Path: "/app/.env", Line: 2},
		{Rule: RuleAWSSecretKey, Path: "/app/.env", Line: 3},
		{Rule: RuleAPIKey, Path: "/app/settings.ini", Line: 2},
		{Rule: RuleDockerAuth, Path: "/root/.docker/config.json", Line: 4},
		{Rule: RulePrivateKey, Path: "/root/.ssh/id_rsa", Line: 1},
	}
	if !slices.Equal(res.Secrets, wantSecrets) {
		t.Errorf("secrets:\n got %v\nwant %v", res.Secrets, wantSecrets)
	}

	wantContent := map[string][]string{
		"root_login":   {"/etc/policy.conf"},
		"aws_anywhere": {"/app/.env"},
	}
	if len(res.ContentMatches) != len(wantContent) {
		t.Errorf("content matches: got %v, want %v", res.ContentMatches, wantContent)
	}
	for name, want := range wantContent {
		if got := res.ContentMatches[name]; !slices.Equal(got, want) {
			t.Errorf("content rule %s: got %v, want %v", name, got, want)
		}
	}

	fileTests := []struct {
		name string
		path string
		want buildgate.File
	}{
		{name: "suid", path: "/usr/bin/su", want: buildgate.File{Path: "/usr/bin/su", Size: 2, Mode: uint32(0o755 | os.ModeSetuid), Type: TypeFile, SUID: true}},
		{name: "sgid", path: "/usr/bin/wall", want: buildgate.File{Path: "/usr/bin/wall", Size: 4, Mode: uint32(0o755 | os.ModeSetgid), Type: TypeFile, SGID: true}},
		{name: "sticky dir", path: "/tmp", want: buildgate.File{Path: "/tmp", Mode: uint32(0o777 | os.ModeSticky | os.ModeDir), Type: TypeDir}},
		{name: "symlink", path: "/app/link", want: buildgate.File{Path: "/app/link", Mode: uint32(0o777 | os.ModeSymlink), Type: TypeSymlink, LinkDest: ".env"}},
		{name: "hardlink", path: "/app/hard", want: buildgate.File{Path: "/app/hard", Mode: 0, Type: TypeHardlink, LinkDest: "/app/.env"}},
	}
	for _, tt := range fileTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findFile(res.Files, tt.path)
			if !ok {
				t.Fatalf("no file %s", tt.path)
			}
			got.SHA256, got.MD5 = "", ""
			if tt.want.Type == TypeHardlink {
				tt.want.Size = got.Size
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	env, _ := findFile(res.Files, "/app/.env")
	hard, _ := findFile(res.Files, "/app/hard")
	if len(env.SHA256) != 64 || hard.SHA256 != env.SHA256 || hard.Size != env.Size {
		t.Errorf("hard link: got %+v, want the sha256 and size of %+v", hard, env)
	}
	if len(env.MD5) != 32 || hard.MD5 != env.MD5 {
		t.Errorf("hard link: got %+v, want the md5 of %+v", hard, env)
	}
	if f, ok := findFile(res.Files, "/tmp/removed.txt"); ok {
		t.Errorf("whited-out file listed: %+v", f)
	}
	for _, f := range res.Files {
		if strings.Contains(f.Path, ".wh.") {
			t.Errorf("whiteout marker listed: %+v", f)
		}
	}
	if !slices.IsSortedFunc(res.Files, func(a, b buildgate.File) int { return strings.Compare(a.Path, b.Path) }) {
		t.Errorf("files are not sorted by path")
	}

	md := res.Metadata
	if want := []string{"443/tcp", "53/udp", "8080/tcp"}; !slices.Equal(md.ExposedPorts, want) {
		t.Errorf("exposed ports: got %v, want %v", md.ExposedPorts, want)
	}
	if want := []string{"PATH", "DB_PASSWORD"}; !slices.Equal(md.Env, want) {
		t.Errorf("env: got %v, want %v", md.Env, want)
	}
	if md.User != "app" || md.WorkingDir != "/app" || md.Labels["maintainer"] != "team@example.com" ||
		!slices.Equal(md.Entrypoint, []string{"/app/run"}) || !slices.Equal(md.Cmd, []string{"--serve"}) {
		t.Errorf("config metadata: got %+v", md)
	}
	if md.LayerCount != 3 || md.Size <= 0 || md.Created == nil || len(md.History) != 5 || md.OS != "linux" {
		t.Errorf("image metadata: got layers %d size %d created %v history %d os %q", md.LayerCount, md.Size, md.Created, len(md.History), md.OS)
	}
	if got := md.History[1].CreatedBy; got != "ENV DB_PASSWORD=<redacted>" {
		t.Errorf("history ENV: got %q", got)
	}

	// no secret value may leave the package, wherever it was found
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshalling result: %v", err)
	}
	for _, v := range []string{fakeAccessKey, fakeSecretKey, fakePEMBody, fakeAuth, fakeAPIKey, fakeEnvValue, fakeArgValue, fakeRemoved, fakeBinary, fakeLarge} {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("result carries secret value %q", v)
		}
		for _, s := range res.Secrets {
			if strings.Contains(s.Rule+s.Path, v) {
				t.Errorf("secret %+v carries value %q", s, v)
			}
		}
	}
	for _, v := range []string{fakeAccessKey, fakeSecretKey, fakePEMBody, fakeAuth, fakeAPIKey} {
		if bytes.Contains(res.SBOM, []byte(v)) {
			t.Errorf("SBOM carries secret value %q", v)
		}
	}
}

func TestCatalogErrors(t *testing.T) {
	twoImages := filepath.Join(t.TempDir(), "two")
	p, err := layout.Write(twoImages, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := layoutFromArchive(t, "bullseye-dpkgonly.docker.tar")

	tests := []struct {
		name    string
		dir     string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "missing layout", dir: filepath.Join(t.TempDir(), "nope"), wantErr: "reading OCI layout"},
		{name: "two images", dir: twoImages, wantErr: "holds 2 images, want exactly 1"},
		{name: "bad secret rule", dir: dpkg, mutate: func(c *Config) { c.SecretRules = []Rule{{Name: "broken", Regexp: "("}} }, wantErr: `compiling secret rule "broken"`},
		{name: "unnamed content rule", dir: dpkg, mutate: func(c *Config) { c.ContentRules = []Rule{{Regexp: "x"}} }, wantErr: "content rule with regexp \"x\" has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			_, err := Catalog(context.Background(), tt.dir, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Catalog(ctx, dpkg, DefaultConfig()); err == nil {
			t.Fatal("got no error for a cancelled context")
		}
	})
}

func TestCatalogBookwormApp(t *testing.T) {
	if testing.Short() {
		t.Skip("bookworm-app takes seconds to catalog")
	}
	dir := layoutFromArchive(t, "bookworm-app.docker.tar")
	res, err := Catalog(context.Background(), dir, DefaultConfig())
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	tests := []struct {
		name, typ, pkg, version string
	}{
		{name: "npm lodash", typ: "npm", pkg: "lodash", version: "4.17.15"},
		{name: "go x/net", typ: "go-module", pkg: "golang.org/x/net"},
		{name: "deb libc6", typ: "deb", pkg: "libc6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := findPackage(res.Packages, tt.typ, tt.pkg)
			if !ok {
				t.Fatalf("no %s package %s", tt.typ, tt.pkg)
			}
			if tt.version != "" && p.Version != tt.version {
				t.Errorf("got version %q, want %q", p.Version, tt.version)
			}
			if p.Path == "" || p.PURL == "" {
				t.Errorf("got %+v, want a path and a purl", p)
			}
		})
	}
	md := res.Metadata
	if want := []string{"22/tcp", "8080/tcp"}; !slices.Equal(md.ExposedPorts, want) {
		t.Errorf("exposed ports: got %v, want %v", md.ExposedPorts, want)
	}
	if md.Distro != "debian" || md.DistroVersion != "12" || md.LayerCount != 2 || md.WorkingDir != "/app" {
		t.Errorf("metadata: got %+v", md)
	}
	if f, ok := findFile(res.Files, "/usr/local/bin/goapp"); !ok || f.Type != TypeFile || f.SHA256 == "" || f.Mode != 0o755 {
		t.Errorf("/usr/local/bin/goapp: got %+v, want an executable regular file", f)
	}
	if p, _ := findPackage(res.Packages, "go-module", "golang.org/x/net"); p.Path != "/usr/local/bin/goapp" {
		t.Errorf("golang.org/x/net: got path %q, want /usr/local/bin/goapp", p.Path)
	}

	// an untouched debootstrap with merged /usr (/bin -> usr/bin) verifies
	// against its dpkg database: thousands of files, none missing or changed
	if p, _ := findPackage(res.Packages, "deb", "bash"); !slices.ContainsFunc(p.Files, func(f buildgate.PackageFile) bool {
		return f.Path == "/bin/bash" && f.Algorithm == "md5" && len(f.Digest) == 32 && !f.IsConfig
	}) {
		t.Errorf("bash files: got %d, want /bin/bash with its md5 from bash.md5sums", len(p.Files))
	}
	if got := verifyFindings(t, res, ""); len(got) != 0 {
		t.Errorf("packages/verify on an untouched image: got %d findings, want none:\n%s", len(got), strings.Join(got[:min(len(got), 20)], "\n"))
	}
}

// BenchmarkCatalog catalogs bullseye-minbase cold: stereoscope unpacks
// the layer afresh each time; "layer-cached" with the layer's files pass
// in a LayerCache. "syft" times syft alone on the same layout
// (syft.GetSource and CreateSBOM, with the license scanner already built),
// "grype-syft" what grype's CLI runs for its SBOM (the same, building the
// license scanner each time), "files" the files pass alone, decompressing the layer
// itself: what it would cost as a second read. cpu-ms/op is the process's
// CPU time, steadier than wall time on a shared machine.
func BenchmarkCatalog(b *testing.B) {
	dir := layoutFromArchive(b, "bullseye-minbase.docker.tar")
	ctx := context.Background()
	cfg := DefaultConfig()
	// a gate builds the license scanner once, for its first image
	if _, err := withLicenseScanner(ctx, cfg.SBOM.Licenses); err != nil {
		b.Fatal(err)
	}

	b.Run("catalog", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := Catalog(ctx, dir, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("layer-cached", func(b *testing.B) {
		cached := cfg
		var err error
		if cached.LayerCache, err = OpenLayerCache(b.TempDir(), 1<<30); err != nil {
			b.Fatal(err)
		}
		if _, err := Catalog(ctx, dir, cached); err != nil {
			b.Fatal(err)
		}
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := Catalog(ctx, dir, cached); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("syft", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			src, err := syft.GetSource(ctx, dir, syft.DefaultGetSourceConfig().WithSources("oci-dir"))
			if err != nil {
				b.Fatal(err)
			}
			s, err := createSBOM(ctx, src, cfg.SBOM)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := encodeSyftJSON(s); err != nil {
				b.Fatal(err)
			}
			src.Close()
		}
	})
	b.Run("grype-syft", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			src, err := syft.GetSource(ctx, dir, syft.DefaultGetSourceConfig().WithSources("oci-dir"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := syft.CreateSBOM(ctx, src, DefaultSBOMConfig()); err != nil {
				b.Fatal(err)
			}
			src.Close()
		}
	})
	b.Run("files", func(b *testing.B) {
		img, err := openLayout(dir)
		if err != nil {
			b.Fatal(err)
		}
		rules, err := compileRules("secret", cfg.SecretRules)
		if err != nil {
			b.Fatal(err)
		}
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := scanFilesAlone(ctx, img, cfg, rules); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU starts measuring CPU time; the function it returns reports it
// per operation.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
		}
	}
}

// scanFilesAlone runs the files pass on its own, reading every layer.
func scanFilesAlone(ctx context.Context, img v1.Image, cfg Config, rules []compiledRule) (*fileScan, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	ids, err := diffIDs(img, len(layers))
	if err != nil {
		return nil, err
	}
	taps := newLayerTaps(ctx, ids, func(ctx context.Context, r io.Reader) (*layerScan, error) {
		return newScanner(cfg, rules, nil).scanLayer(ctx, r)
	})
	scans, err := taps.finish(ctx, layers)
	if err != nil {
		return nil, err
	}
	return squash(scans), nil
}
