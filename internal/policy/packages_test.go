package policy

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
)

func pkgInput(pkgs ...buildgate.Package) Input {
	return Input{Facts: buildgate.Facts{Digest: "sha256:p", Packages: pkgs}}
}

func TestRequiredPackage(t *testing.T) {
	in := pkgInput(
		buildgate.Package{Name: "openssl", Version: "1.1.1n-0+deb11u5", Type: "deb"},
		buildgate.Package{Name: "tzdata", Version: "2024a-0+deb12u1", Type: "deb"},
		buildgate.Package{Name: "express", Version: "4.18.2", Type: "npm"},
	)
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"present", kv("name", "openssl"), []string{}},
		{"absent", kv("name", "ca-certificates"), []string{"Required input package (ca-certificates) is not present in container image"}},
		{"absent with version", kv("name", "ca-certificates", "version", "1"), []string{"Required input package (ca-certificates,1) is not present in container image"}},
		{"exact match", kv("name", "openssl", "version", "1.1.1n-0+deb11u5"), []string{}},
		{"exact mismatch (default)", kv("name", "openssl", "version", "1.1.1n-0+deb11u6"),
			[]string{"Required input package (openssl) is present (1.1.1n-0+deb11u5), but not at the version specified in policy (1.1.1n-0+deb11u6)"}},
		{"minimum met", kv("name", "openssl", "version", "1.1.1k", "version_match_type", "minimum"), []string{}},
		{"minimum equal", kv("name", "express", "version", "4.18.2", "version_match_type", "minimum"), []string{}},
		{"minimum unmet", kv("name", "express", "version", "4.19.0", "version_match_type", "minimum"),
			[]string{"Required min-version input package (express) is present (4.18.2), but is lower version than what is specified in policy (4.19.0)"}},
		{"minimum numeric ordering", kv("name", "express", "version", "4.9", "version_match_type", "minimum"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "packages", "required_package", tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPackageDenylist(t *testing.T) {
	in := pkgInput(
		buildgate.Package{Name: "openssh-server", Version: "1:9.2p1-2", Type: "deb"},
		buildgate.Package{Name: "curl", Version: "7.88.1-10", Type: "deb"},
	)
	tests := []struct {
		name    string
		trigger string
		params  []Param
		want    []string
	}{
		{"by name", "blacklist", kv("name", "openssh-server"), []string{"Package is blacklisted: openssh-server"}},
		{"denylist alias", "denylist", kv("name", "openssh-server"), []string{"Package is blacklisted: openssh-server"}},
		{"by name and version", "blacklist", kv("name", "curl", "version", "7.88.1-10"), []string{"Package is blacklisted: curl-7.88.1-10"}},
		{"other version", "blacklist", kv("name", "curl", "version", "8.0"), []string{}},
		{"absent", "blacklist", kv("name", "telnetd"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := fire(t, "packages", tt.trigger, tt.params, in)
			if got := messages(fs); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
			for _, f := range fs {
				if f.Package == nil || f.Trigger != tt.trigger {
					t.Errorf("finding %+v: want its package and trigger %q", f, tt.trigger)
				}
			}
		})
	}
}

func md5hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha256hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// verifyInput is a merged-/usr image with a dpkg bash and dash and an rpm
// openssl, some of whose files are missing or changed.
func verifyInput() Input {
	reg := func(p, content string) buildgate.File {
		return buildgate.File{Path: p, Type: "file", MD5: md5hex(content), SHA256: sha256hex(content)}
	}
	dm := func(p, content string) buildgate.PackageFile {
		return buildgate.PackageFile{Path: p, Digest: md5hex(content), Algorithm: "md5"}
	}
	ds := func(p, content string) buildgate.PackageFile {
		return buildgate.PackageFile{Path: p, Digest: sha256hex(content), Algorithm: "sha256"}
	}
	conf := func(f buildgate.PackageFile) buildgate.PackageFile { f.IsConfig = true; return f }
	hard := reg("/usr/lib64/libcrypto.so.3", "crypto-patched")
	hard.Type, hard.LinkDest = "hardlink", "/usr/lib64/libcrypto.so.3.0"
	old := reg("/usr/bin/old", "old")
	old.MD5 = "" // analysed before MD5s were recorded
	return Input{Facts: buildgate.Facts{
		Digest: "sha256:v",
		Files: []buildgate.File{
			{Path: "/bin", Type: "symlink", LinkDest: "usr/bin"},
			{Path: "/etc", Type: "dir"},
			reg("/etc/bash.bashrc", "edited by the admin"),
			reg("/etc/pki/tls/openssl.cnf", "edited too"),
			{Path: "/loop", Type: "symlink", LinkDest: "/loop"},
			{Path: "/usr/bin", Type: "dir"},
			reg("/usr/bin/bash", "bash"),
			reg("/usr/bin/dash", "dash-patched"),
			old,
			reg("/usr/bin/openssl", "openssl-patched"),
			{Path: "/usr/bin/sh", Type: "symlink", LinkDest: "dash"},
			{Path: "/usr/bin/sh-abs", Type: "symlink", LinkDest: "/bin/dash"},
			hard,
			reg("/usr/lib64/libssl.so.3", "ssl-patched"),
			{Path: "/usr/share/doc/openssl", Type: "dir"},
			reg("/usr/share/doc/bash/README", "readme"),
		},
		Packages: []buildgate.Package{
			{ID: "p-bash", Name: "bash", Version: "5.2", Type: "deb", Files: []buildgate.PackageFile{
				dm("/bin/bash", "bash"),                        // through /bin -> usr/bin
				dm("/bin/rbash", "rbash"),                      // missing, under a link
				conf(dm("/etc/bash.bashrc", "bashrc")),         // config: never changed
				conf(dm("/etc/skel/.bashrc", "skel")),          // config: missing
				dm("/usr/share/doc/bash/README", "readme"),     // verifies
				dm("/usr/share/man/man1/bash.1.gz", "manpage"), // missing
			}},
			{ID: "p-dash", Name: "dash", Version: "0.5", Type: "deb", Files: []buildgate.PackageFile{
				{Path: "/bin/sh"},             // no digest: present
				dm("/usr/bin/dash", "dash"),   // changed
				dm("/usr/bin/old", "not old"), // no MD5 recorded: undecided
				dm("/usr/bin/sh", "dash"),     // a link to a changed file
				dm("/usr/bin/sh-abs", "dash"), // the same, through an absolute link and /bin
				dm("/loop/x", "x"),            // a link loop: nothing there
			}},
			{ID: "p-ssl", Name: "openssl", Version: "3.0", Type: "rpm", Files: []buildgate.PackageFile{
				conf(ds("/etc/pki/tls/openssl.cnf", "cnf")),
				ds("/usr/bin/openssl", "openssl"),         // changed
				ds("/usr/lib64/libcrypto.so.3", "crypto"), // a hard link, changed
				{Path: "/usr/lib64/libssl.so.3", Digest: "0123456789abcdef0123456789abcdef01234567", Algorithm: "sha1"}, // not computed
				{Path: "/usr/share/doc/openssl"}, // a directory
			}},
			{ID: "p-tz", Name: "tzdata", Version: "2024a", Type: "deb"}, // no files recorded
		},
	}}
}

func TestPackageVerify(t *testing.T) {
	msg := func(pkg, path, status string) string {
		return "VERIFY check against package db for package '" + pkg + "' failed on entry '" + path + "' with status: '" + status + "'"
	}
	var (
		rbash  = msg("bash", "/bin/rbash", "missing")
		skel   = msg("bash", "/etc/skel/.bashrc", "missing")
		man    = msg("bash", "/usr/share/man/man1/bash.1.gz", "missing")
		dash   = msg("dash", "/usr/bin/dash", "changed")
		sh     = msg("dash", "/usr/bin/sh", "changed")
		shAbs  = msg("dash", "/usr/bin/sh-abs", "changed")
		loop   = msg("dash", "/loop/x", "missing")
		ossl   = msg("openssl", "/usr/bin/openssl", "changed")
		crypto = msg("openssl", "/usr/lib64/libcrypto.so.3", "changed")
	)
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"check absent: both", nil, []string{rbash, skel, man, dash, sh, shAbs, loop, ossl, crypto}},
		{"missing", kv("check", "missing"), []string{rbash, skel, man, loop}},
		{"changed", kv("check", "changed"), []string{dash, sh, shAbs, ossl, crypto}},
		{"only_packages", kv("only_packages", "openssl, dash"), []string{dash, sh, shAbs, loop, ossl, crypto}},
		{"only_packages without files", kv("only_packages", "tzdata,nosuch"), []string{}},
		{"only_directories by database or resolved path", kv("only_directories", "/usr/bin"), []string{rbash, dash, sh, shAbs, ossl}},
		{"only_directories plain prefixes", kv("only_directories", "/etc/sk,/usr/share"), []string{skel, man}},
		{"only_directories counts a file once", kv("only_directories", "/usr,/usr/bin", "check", "missing"), []string{rbash, man}},
		{"all filters", kv("only_packages", "bash", "only_directories", "/bin", "check", "missing"), []string{rbash}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := fire(t, "packages", "verify", tt.params, verifyInput())
			if got := messages(fs); !slices.Equal(got, tt.want) {
				t.Errorf("messages =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, f := range fs {
				if f.TriggerID != hashTriggerID("packages", "verify", f.Message) {
					t.Errorf("trigger id %s of %q is not the hash id", f.TriggerID, f.Message)
				}
				if f.Package == nil || !strings.Contains(f.Message, "'"+f.Package.Name+"'") || f.Package.Files != nil {
					t.Errorf("finding %q: package %+v, want the named package without its files", f.Message, f.Package)
				}
			}
		})
	}

	t.Run("input untouched", func(t *testing.T) {
		in := verifyInput()
		fire(t, "packages", "verify", nil, in)
		if !reflect.DeepEqual(in, verifyInput()) {
			t.Error("evaluation changed its input")
		}
	})
	t.Run("no file listing", func(t *testing.T) {
		in := verifyInput()
		in.Facts.Files = nil // an image known from an uploaded SBOM
		if got := fire(t, "packages", "verify", nil, in); len(got) != 0 {
			t.Errorf("fired without a file listing: %q", messages(got))
		}
	})
	t.Run("no package files", func(t *testing.T) {
		in := pkgInput(buildgate.Package{Name: "bash", Version: "5", Type: "deb"})
		in.Facts.Files = []buildgate.File{{Path: "/usr", Type: "dir"}}
		for _, params := range [][]Param{nil, kv("check", "missing"), kv("check", "changed", "only_packages", "bash", "only_directories", "/usr")} {
			if got := fire(t, "packages", "verify", params, in); len(got) != 0 {
				t.Errorf("verify %v fired: %q", params, messages(got))
			}
		}
	})
}

func TestResolvePath(t *testing.T) {
	idx := map[string]*buildgate.File{}
	for _, f := range []buildgate.File{
		{Path: "/bin", Type: "symlink", LinkDest: "usr/bin"},
		{Path: "/usr/bin/a", Type: "file"},
		{Path: "/usr/bin/up", Type: "symlink", LinkDest: "../lib/b"},
		{Path: "/usr/lib/b", Type: "file"},
		{Path: "/usr/lib/dangling", Type: "symlink", LinkDest: "/nowhere"},
		{Path: "/escape", Type: "symlink", LinkDest: "../../../usr/bin"},
		{Path: "/a", Type: "symlink", LinkDest: "b"},
		{Path: "/b", Type: "symlink", LinkDest: "a"},
	} {
		idx[f.Path] = &f
	}
	tests := []struct {
		path       string
		followLast bool
		want       string // the entry's path, "" for none
		at         string
	}{
		{"/bin/a", false, "/usr/bin/a", "/usr/bin/a"},
		{"/bin/up", false, "/usr/bin/up", "/usr/bin/up"},
		{"/bin/up", true, "/usr/lib/b", "/usr/lib/b"},
		{"/bin/nope", false, "", "/usr/bin/nope"},
		{"/usr/lib/dangling", false, "/usr/lib/dangling", "/usr/lib/dangling"},
		{"/usr/lib/dangling", true, "", "/nowhere"},
		{"/escape/a", false, "/usr/bin/a", "/usr/bin/a"}, // ".." stops at the root
		{"/a/x", false, "", ""},                          // a loop
		{"/implicit/dir/..", false, "/implicit", "/implicit"},
		{"/", false, "/", "/"},
	}
	for _, tt := range tests {
		e, at := resolvePath(idx, tt.path, tt.followLast)
		got := ""
		if e != nil {
			got = e.Path
		}
		if got != tt.want || (tt.at != "" && at != tt.at) {
			t.Errorf("resolvePath(%q, %v) = %q at %q, want %q at %q", tt.path, tt.followLast, got, at, tt.want, tt.at)
		}
	}
}

func TestLicenses(t *testing.T) {
	in := pkgInput(
		buildgate.Package{Name: "bash", Licenses: []string{"GPL-3.0-or-later"}},
		buildgate.Package{Name: "libgcc", Licenses: []string{"GPL-3.0-only WITH GCC-exception-3.1"}},
		buildgate.Package{Name: "zlib", Licenses: []string{"Zlib"}},
		buildgate.Package{Name: "dual", Licenses: []string{"(MIT OR GPL-2.0-only)"}},
	)
	tests := []struct {
		name    string
		trigger string
		params  []Param
		want    []string
	}{
		{"exact", "blacklist_exact_match", kv("licenses", "GPL-3.0-or-later,Zlib"),
			[]string{"LICFULLMATCH Packages are installed that have blacklisted licenses: bash(GPL-3.0-or-later), zlib(Zlib)"}},
		{"exact inside spdx expression", "blacklist_exact_match", kv("licenses", "GPL-2.0-only"),
			[]string{"LICFULLMATCH Packages are installed that have blacklisted licenses: dual(GPL-2.0-only)"}},
		{"exact is case-sensitive", "blacklist_exact_match", kv("licenses", "zlib"), []string{}},
		{"partial", "blacklist_partial_match", kv("licenses", "GPL-3"),
			[]string{"LICSUBMATCH Packages are installed that have blacklisted licenses: bash(GPL-3.0-or-later), libgcc(GPL-3.0-only WITH GCC-exception-3.1), libgcc(GPL-3.0-only)"}},
		{"partial none", "denylist_partial_match", kv("licenses", "AGPL"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "licenses", tt.trigger, tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       int
	}{
		{"equal", "1.2.3", "1.2.3", 0},
		{"numeric not lexical", "1.10", "1.9", 1},
		{"leading zeros", "1.01", "1.1", 0},
		{"epoch wins", "1:0.1", "9.9", 1},
		{"missing epoch is 0", "0:1.0", "1.0", 0},
		{"debian revision", "1.1.1n-0+deb11u5", "1.1.1n-0+deb11u4", 1},
		{"letters after digits", "1.1.1n", "1.1.1k", 1},
		{"tilde before release", "1.0~rc1", "1.0", -1},
		{"semver prerelease", "1.0.0-rc.1", "1.0.0", -1},
		{"semver prerelease order", "1.0.0-alpha", "1.0.0-beta", -1},
		{"v prefix", "v1.2.3", "1.2.3", 0},
		{"alpine revision", "1.35.0-r29", "1.35.0-r7", 1},
		{"longer is newer", "1.2.3.1", "1.2.3", 1},
		{"letter suffix after dot", "1.2a", "1.2", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareVersions(tt.a, tt.b)
			if sign(got) != tt.want {
				t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
			}
			if back := compareVersions(tt.b, tt.a); sign(back) != -tt.want {
				t.Errorf("compareVersions(%q, %q) = %d, not antisymmetric", tt.b, tt.a, back)
			}
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
