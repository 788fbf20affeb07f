package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/buildgate/buildgate"
)

// The packages and licenses gates consider every package in the image,
// OS and non-OS (Anchore's packages gate saw only distro packages).

// evalRequiredPackage implements packages/required_package. Without a
// version the package must be present; with version_match_type=exact some
// package of that name must have exactly that version; with minimum, at
// least that version (see compareVersions).
func evalRequiredPackage(r *compiledRule, x *evalContext) []fired {
	name, version, matchType := r.p.str("name"), r.p.str("version"), r.p.str("version_match_type")
	var found []string
	for i := range x.in.Facts.Packages {
		p := &x.in.Facts.Packages[i]
		if p.Name != name {
			continue
		}
		switch {
		case version == "":
			return nil
		case matchType == "minimum" && compareVersions(p.Version, version) >= 0:
			return nil
		case matchType != "minimum" && p.Version == version:
			return nil
		}
		found = append(found, p.Version)
	}
	switch {
	case len(found) == 0 && version != "":
		return []fired{{msg: fmt.Sprintf("Required input package (%s,%s) is not present in container image", name, version)}}
	case len(found) == 0:
		return []fired{{msg: fmt.Sprintf("Required input package (%s) is not present in container image", name)}}
	case matchType == "minimum":
		return []fired{{msg: fmt.Sprintf("Required min-version input package (%s) is present (%s), but is lower version than what is specified in policy (%s)", name, strings.Join(found, ", "), version)}}
	}
	return []fired{{msg: fmt.Sprintf("Required input package (%s) is present (%s), but not at the version specified in policy (%s)", name, strings.Join(found, ", "), version)}}
}

// evalPackageBlacklist implements packages/blacklist (and denylist): once
// per installed package with the name (and version, if given).
func evalPackageBlacklist(r *compiledRule, x *evalContext) []fired {
	name, version := r.p.str("name"), r.p.str("version")
	var out []fired
	for i := range x.in.Facts.Packages {
		p := &x.in.Facts.Packages[i]
		if p.Name != name || (version != "" && p.Version != version) {
			continue
		}
		msg := "Package is blacklisted: " + p.Name
		if version != "" {
			msg += "-" + p.Version
		}
		out = append(out, fired{msg: msg, pkg: p})
	}
	return out
}

// Verification states of packages/verify, as Anchore names them.
const (
	verifyChanged = "changed"
	verifyMissing = "missing"
)

// evalVerify implements packages/verify as Anchore's VerifyTrigger does:
// for each file the package database lists for a package
// (Package.Files; packages without any are skipped), once per file that
// is missing from the image or whose content digest differs from the
// database's. check limits the findings to one of the two states,
// only_packages to packages of those names, only_directories to files
// whose path starts with one of the prefixes (plain string prefixes, as
// Anchore's; the path as the database lists it or as it resolves in the
// image, so "/usr/bin" also covers a merged /usr's "/bin/bash").
//
// As in Anchore, a config file (dpkg conffile, rpm %config) can be
// missing but is never changed: it is meant to be edited. Unlike Anchore,
// symbolic links in a file's directories are followed (a merged /usr's
// /bin -> usr/bin), else every file under them would be missing; a file
// is missing when nothing, not even a link, is at its path. Its content is
// compared when the path leads (through links) to a regular file whose
// digest in the database's algorithm is known: md5 (dpkg; File.MD5) or
// sha256 (rpm; File.SHA256). Other algorithms, digests the analysis did
// not record, directories and links are never changed; modes and sizes,
// which Anchore also compared, are not recorded and not compared. Without
// a file listing (an image known only from an uploaded SBOM) nothing can
// be decided and the trigger does not fire.
func evalVerify(r *compiledRule, x *evalContext) []fired {
	if len(x.in.Facts.Files) == 0 {
		return nil
	}
	var only map[string]bool
	if names := r.p.list("only_packages"); len(names) > 0 {
		only = make(map[string]bool, len(names))
		for _, n := range names {
			only[n] = true
		}
	}
	dirs, check := r.p.list("only_directories"), r.p.str("check")
	inDirs := func(paths ...string) bool {
		if len(dirs) == 0 {
			return true
		}
		for _, d := range dirs {
			for _, p := range paths {
				if strings.HasPrefix(p, d) {
					return true
				}
			}
		}
		return false
	}
	idx := x.fileIndex()
	var out []fired
	for i := range x.in.Facts.Packages {
		p := &x.in.Facts.Packages[i]
		if len(p.Files) == 0 || (only != nil && !only[p.Name]) {
			continue
		}
		for j := range p.Files {
			pf := &p.Files[j]
			entry, resolved := resolvePath(idx, pf.Path, false)
			if !inDirs(pf.Path, resolved) {
				continue
			}
			status := verifyFile(idx, pf, entry, resolved)
			if status == "" || (check != "" && status != check) {
				continue
			}
			out = append(out, fired{
				msg: fmt.Sprintf("VERIFY check against package db for package '%s' failed on entry '%s' with status: '%s'", p.Name, pf.Path, status),
				pkg: p,
			})
		}
	}
	return out
}

// verifyFile returns the state of one package file (its entry in the
// image, nil if none, and the path that entry is at): verifyMissing,
// verifyChanged or "" when it verifies or cannot be checked.
func verifyFile(idx map[string]*buildgate.File, pf *buildgate.PackageFile, entry *buildgate.File, at string) string {
	if entry == nil {
		return verifyMissing
	}
	if pf.IsConfig || pf.Digest == "" {
		return ""
	}
	if entry.Type == "symlink" {
		if entry, _ = resolvePath(idx, at, true); entry == nil {
			return "" // a dangling link: there is no content to compare
		}
	}
	if entry.Type != "file" && entry.Type != "hardlink" {
		return ""
	}
	var have string
	switch strings.ToLower(pf.Algorithm) {
	case buildgate.DigestMD5:
		have = entry.MD5
	case buildgate.DigestSHA256:
		have = strings.TrimPrefix(entry.SHA256, "sha256:")
	}
	if have == "" || strings.EqualFold(have, pf.Digest) {
		return ""
	}
	return verifyChanged
}

// maxLinks bounds the symbolic links followed resolving one path, as
// Linux's ELOOP does.
const maxLinks = 40

// resolvePath finds the entry of the image's files at p the way the
// kernel would: symbolic links among p's directories are followed, within
// the image's root, and so is a link at p itself when followLast is set.
// It returns the entry (nil when there is none, or a loop) and the path
// it resolved p to. A directory that has no entry of its own (the root; one
// a layer leaves implicit) is taken to be a plain directory.
func resolvePath(idx map[string]*buildgate.File, p string, followLast bool) (*buildgate.File, string) {
	rest := strings.Split(p, "/")
	cur, links := "/", 0
	var entry *buildgate.File
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur, entry = path.Dir(cur), nil
			continue
		}
		next := path.Join(cur, c)
		e := idx[next]
		last := !slices.ContainsFunc(rest, func(s string) bool { return s != "" && s != "." })
		if e != nil && e.Type == "symlink" && (!last || followLast) {
			if links++; links > maxLinks {
				return nil, next
			}
			if strings.HasPrefix(e.LinkDest, "/") {
				cur = "/"
			}
			rest = append(strings.Split(e.LinkDest, "/"), rest...)
			entry = nil
			continue
		}
		if e == nil && last {
			return nil, next
		}
		cur, entry = next, e
	}
	if entry == nil { // the root, or a directory reached through ".."
		entry = &buildgate.File{Path: cur, Type: "dir"}
	}
	return entry, cur
}

// eachLicense calls fn with each license name of a package: each license
// as given and, for SPDX expressions ("MIT OR Apache-2.0"), each name in
// it. It stops when fn returns false.
func eachLicense(lics []string, fn func(string) bool) {
	for _, l := range lics {
		if !fn(l) {
			return
		}
		if !strings.ContainsAny(l, " \t()") {
			continue
		}
		for _, f := range strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == '\t' }) {
			switch strings.ToUpper(f) {
			case "AND", "OR", "WITH":
				continue
			}
			if f != l && !fn(f) {
				return
			}
		}
	}
}

func evalLicenses(r *compiledRule, x *evalContext, partial bool) []fired {
	wanted := r.p.list("licenses")
	var hits []string
	seen := map[string]bool{}
	for i := range x.in.Facts.Packages {
		p := &x.in.Facts.Packages[i]
		eachLicense(p.Licenses, func(lic string) bool {
			for _, w := range wanted {
				if (partial && strings.Contains(lic, w)) || (!partial && lic == w) {
					h := p.Name + "(" + lic + ")"
					if !seen[h] {
						seen[h] = true
						hits = append(hits, h)
					}
					break
				}
			}
			return true
		})
	}
	if len(hits) == 0 {
		return nil
	}
	prefix := "LICFULLMATCH"
	if partial {
		prefix = "LICSUBMATCH"
	}
	return []fired{{msg: prefix + " Packages are installed that have blacklisted licenses: " + strings.Join(hits, ", ")}}
}

// evalLicenseExact implements licenses/blacklist_exact_match: as Anchore,
// it fires once listing every package(license) found, licenses compared
// exactly (case-sensitive).
func evalLicenseExact(r *compiledRule, x *evalContext) []fired { return evalLicenses(r, x, false) }

// evalLicensePartial implements licenses/blacklist_partial_match: as
// blacklist_exact_match with substring matches.
func evalLicensePartial(r *compiledRule, x *evalContext) []fired { return evalLicenses(r, x, true) }
