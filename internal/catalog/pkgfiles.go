package catalog

import (
	"path"
	"strings"

	"github.com/anchore/syft/syft/pkg"

	"github.com/buildgate/buildgate"
)

// packageFiles returns the files a package database lists for an
// installed package, with their expected digests, for the packages gate's
// verify trigger:
//
//   - dpkg: syft's DpkgDBEntry.Files, merged from the status file's
//     Conffiles field (config files, with an MD5) and info/<pkg>.md5sums
//     (MD5s) and info/<pkg>.conffiles (config files without a digest).
//     Obsolete conffiles (dpkg no longer ships them) are left out.
//   - rpm: syft's RpmDBEntry.Files, with the database's digest algorithm;
//     %config files are config files and %ghost files (which the package
//     does not install) are left out. syft keeps only the rpm entries
//     whose path exists in the image, so an rpm file is never missing.
//
// apk is left out: its database records a base64 SHA-1 ("Q1...") and the
// files pass does not compute SHA-1. So are packages found as archives
// (a .deb or .rpm file in the image), whose files are not installed.
func packageFiles(metadata any) []buildgate.PackageFile {
	switch m := metadata.(type) {
	case pkg.DpkgDBEntry:
		return dpkgFiles(m.Files)
	case *pkg.DpkgDBEntry:
		return dpkgFiles(m.Files)
	case pkg.RpmDBEntry:
		return rpmFiles(m.Files)
	case *pkg.RpmDBEntry:
		return rpmFiles(m.Files)
	}
	return nil
}

func dpkgFiles(records []pkg.DpkgFileRecord) []buildgate.PackageFile {
	var out []buildgate.PackageFile
	for _, r := range records {
		p := cleanPackagePath(r.Path)
		if p == "" {
			continue
		}
		f := buildgate.PackageFile{Path: p, IsConfig: r.IsConfigFile}
		if r.Digest != nil {
			// a status Conffiles line is "<path> <md5> [obsolete|remove-on-upgrade]";
			// syft keeps all after the path as the digest value
			fields := strings.Fields(r.Digest.Value)
			if r.IsConfigFile && len(fields) > 1 && fields[1] == "obsolete" {
				continue
			}
			if len(fields) > 0 {
				f.Digest, f.Algorithm = digestOf(r.Digest.Algorithm, fields[0])
			}
		}
		out = append(out, f)
	}
	return out
}

func rpmFiles(records []pkg.RpmFileRecord) []buildgate.PackageFile {
	var out []buildgate.PackageFile
	for _, r := range records {
		p := cleanPackagePath(r.Path)
		if p == "" || strings.Contains(r.Flags, "g") { // %ghost
			continue
		}
		f := buildgate.PackageFile{Path: p, IsConfig: strings.Contains(r.Flags, "c")}
		f.Digest, f.Algorithm = digestOf(r.Digest.Algorithm, r.Digest.Value)
		out = append(out, f)
	}
	return out
}

// digestOf normalises a database digest: lower-case algorithm and hex
// value, both empty unless the value is hex of the algorithm's length (or
// any even length for an algorithm not known here). dpkg writes
// "newconffile" in place of a conffile's digest while unpacking it.
func digestOf(algorithm, value string) (digest, alg string) {
	alg = strings.ToLower(strings.TrimSpace(algorithm))
	value = strings.ToLower(strings.TrimSpace(value))
	want := map[string]int{buildgate.DigestMD5: 32, buildgate.DigestSHA1: 40, buildgate.DigestSHA256: 64}[alg]
	if alg == "" || value == "" || (want != 0 && len(value) != want) || len(value)%2 != 0 || !isHex(value) {
		return "", ""
	}
	return value, alg
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// cleanPackagePath makes a database path absolute and clean, "" for none.
func cleanPackagePath(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	p = path.Clean("/" + p)
	if p == "/" {
		return ""
	}
	return p
}
