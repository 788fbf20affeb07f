package catalog

import (
	"slices"
	"testing"

	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/pkg"

	"github.com/buildgate/buildgate"
)

func TestPackageFiles(t *testing.T) {
	const (
		m5  = "0123456789abcdef0123456789abcdef"
		s1  = "0123456789abcdef0123456789abcdef01234567"
		s2  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		s2U = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	)
	md5 := func(v string) *file.Digest { return &file.Digest{Algorithm: "md5", Value: v} }
	dpkg := pkg.DpkgDBEntry{Package: "p", Files: []pkg.DpkgFileRecord{
		{Path: "/usr/bin/p", Digest: md5(m5)},
		{Path: "usr/lib/relative", Digest: md5(m5)},
		{Path: "/etc/p.conf", Digest: md5(m5), IsConfigFile: true},
		{Path: "/etc/p.d/gone.conf", Digest: md5(m5 + " obsolete"), IsConfigFile: true},
		{Path: "/etc/p.d/upgrade.conf", Digest: md5(m5 + " remove-on-upgrade"), IsConfigFile: true},
		{Path: "/etc/p.d/new.conf", Digest: md5("newconffile"), IsConfigFile: true},
		{Path: "/etc/p.d/listed.conf", IsConfigFile: true}, // info/p.conffiles: no digest
		{Path: "/usr/bin/short", Digest: md5("abc")},
	}}
	wantDpkg := []buildgate.PackageFile{
		{Path: "/usr/bin/p", Digest: m5, Algorithm: "md5"},
		{Path: "/usr/lib/relative", Digest: m5, Algorithm: "md5"},
		{Path: "/etc/p.conf", Digest: m5, Algorithm: "md5", IsConfig: true},
		{Path: "/etc/p.d/upgrade.conf", Digest: m5, Algorithm: "md5", IsConfig: true},
		{Path: "/etc/p.d/new.conf", IsConfig: true},
		{Path: "/etc/p.d/listed.conf", IsConfig: true},
		{Path: "/usr/bin/short"},
	}
	rpm := pkg.RpmDBEntry{Name: "r", Files: []pkg.RpmFileRecord{
		{Path: "/usr/bin/r", Digest: file.Digest{Algorithm: "sha256", Value: s2U}},
		{Path: "/etc/r.conf", Digest: file.Digest{Algorithm: "sha256", Value: s2}, Flags: "cn"},
		{Path: "/usr/share/doc/r/README", Digest: file.Digest{Algorithm: "sha256", Value: s2}, Flags: "d"},
		{Path: "/var/log/r.log", Digest: file.Digest{Algorithm: "sha256"}, Flags: "g"},
		{Path: "/usr/share/r", Digest: file.Digest{Algorithm: "sha256"}},
		{Path: "/usr/lib/r.so", Digest: file.Digest{Algorithm: "sha1", Value: s1}},
		{Path: "/usr/lib/r2.so", Digest: file.Digest{Algorithm: "md5", Value: m5}},
		{Path: "/usr/lib/r3.so", Digest: file.Digest{Algorithm: "sha256", Value: m5}}, // wrong length
	}}
	wantRpm := []buildgate.PackageFile{
		{Path: "/usr/bin/r", Digest: s2, Algorithm: "sha256"},
		{Path: "/etc/r.conf", Digest: s2, Algorithm: "sha256", IsConfig: true},
		{Path: "/usr/share/doc/r/README", Digest: s2, Algorithm: "sha256"},
		{Path: "/usr/share/r"},
		{Path: "/usr/lib/r.so", Digest: s1, Algorithm: "sha1"},
		{Path: "/usr/lib/r2.so", Digest: m5, Algorithm: "md5"},
		{Path: "/usr/lib/r3.so"},
	}
	tests := []struct {
		name     string
		metadata any
		want     []buildgate.PackageFile
	}{
		{"dpkg", dpkg, wantDpkg},
		{"dpkg pointer", &dpkg, wantDpkg},
		{"rpm", rpm, wantRpm},
		{"rpm pointer", &rpm, wantRpm},
		{"deb archive: not installed", pkg.DpkgArchiveEntry(dpkg), nil},
		{"apk: sha1 not computed", pkg.ApkDBEntry{Files: []pkg.ApkFileRecord{{Path: "/bin/busybox", Digest: &file.Digest{Algorithm: "'Q1'+base64(sha1)", Value: "Q1abc="}}}}, nil},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := packageFiles(tt.metadata); !slices.Equal(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
