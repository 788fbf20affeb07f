package policy

import (
	"slices"
	"testing"

	"github.com/buildgate/buildgate/internal/image"
)

func pkgInput(pkgs ...image.Package) Input {
	return Input{Facts: image.Facts{Digest: "sha256:p", Packages: pkgs}}
}

func TestRequiredPackage(t *testing.T) {
	in := pkgInput(
		image.Package{Name: "openssl", Version: "1.1.1n-0+deb11u5", Type: "deb"},
		image.Package{Name: "tzdata", Version: "2024a-0+deb12u1", Type: "deb"},
		image.Package{Name: "express", Version: "4.18.2", Type: "npm"},
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
		image.Package{Name: "openssh-server", Version: "1:9.2p1-2", Type: "deb"},
		image.Package{Name: "curl", Version: "7.88.1-10", Type: "deb"},
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

func TestPackageVerifyNeverFires(t *testing.T) {
	in := pkgInput(image.Package{Name: "bash", Version: "5", Type: "deb"})
	for _, params := range [][]Param{nil, kv("check", "missing"), kv("check", "changed", "only_packages", "bash", "only_directories", "/usr")} {
		if got := fire(t, "packages", "verify", params, in); len(got) != 0 {
			t.Errorf("verify %v fired: %q", params, messages(got))
		}
	}
}

func TestLicenses(t *testing.T) {
	in := pkgInput(
		image.Package{Name: "bash", Licenses: []string{"GPL-3.0-or-later"}},
		image.Package{Name: "libgcc", Licenses: []string{"GPL-3.0-only WITH GCC-exception-3.1"}},
		image.Package{Name: "zlib", Licenses: []string{"Zlib"}},
		image.Package{Name: "dual", Licenses: []string{"(MIT OR GPL-2.0-only)"}},
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
