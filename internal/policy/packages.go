package policy

import (
	"fmt"
	"strings"
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

// evalVerify implements packages/verify, which checks package files
// against the digests and modes the package database records. buildgate
// does not record which files a package owns nor their expected digests
// (image.Package has neither), so neither "changed" nor "missing" can be
// decided and the trigger never fires rather than guess. The parameters
// are still validated so bundles using it load.
func evalVerify(*compiledRule, *evalContext) []fired { return nil }

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
