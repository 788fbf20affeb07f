package policy

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/buildgate/buildgate"
)

// evalSecrets implements secret_scans/content_regex_checks over
// Facts.Secrets. content_regex_name limits the secret rules considered
// (any case); unset considers every rule the scanner reports (its rules
// are AWS_ACCESS_KEY, AWS_SECRET_KEY, PRIV_KEY, DOCKER_AUTH and API_KEY).
// filename_regex limits the files. match_type=found fires once per file
// and rule; notfound fires once if nothing matched. Messages name the
// file and the rule, never the secret.
func evalSecrets(r *compiledRule, x *evalContext) []fired {
	names := map[string]bool{}
	for _, n := range r.p.list("content_regex_name") {
		names[strings.ToUpper(n)] = true
	}
	fileRe := r.p.re("filename_regex")
	found := r.p.str("match_type") != "notfound"
	var out []fired
	seen := map[string]bool{}
	for _, s := range x.in.Facts.Secrets {
		if len(names) > 0 && !names[strings.ToUpper(s.Rule)] {
			continue
		}
		if fileRe != nil && !fileRe.MatchString(s.Path) {
			continue
		}
		if !found {
			return nil
		}
		key := s.Path + "\x00" + s.Rule
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, fired{msg: fmt.Sprintf("Secret content search analyzer found regexp match in container: file=%s regexp=%s", s.Path, s.Rule)})
	}
	if found {
		return out
	}
	f, n := "*", "all"
	if r.p.has("filename_regex") {
		f = r.p.str("filename_regex")
	}
	if r.p.has("content_regex_name") {
		n = strings.Join(r.p.list("content_regex_name"), ",")
	}
	return []fired{{msg: fmt.Sprintf("Secret content search analyzer did not find regexp match in container: filename_regex=%s content_regex_name=%s", f, n)}}
}

// evalContentMatch implements files/content_regex_match over
// Facts.ContentMatches: once per file and named rule (only regex_name if
// given), in rule then path order.
func evalContentMatch(r *compiledRule, x *evalContext) []fired {
	cm := x.in.Facts.ContentMatches
	var names []string
	if r.p.has("regex_name") {
		names = []string{r.p.str("regex_name")}
	} else {
		for n := range cm {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var out []fired
	for _, n := range names {
		paths := append([]string(nil), cm[n]...)
		sort.Strings(paths)
		for _, p := range slices.Compact(paths) {
			out = append(out, fired{msg: fmt.Sprintf("File content analyzer found regexp match in container: file=%s regexp=%s", p, n)})
		}
	}
	return out
}

// evalNameMatch implements files/name_match: once per file whose path
// matches regex from its start.
func evalNameMatch(r *compiledRule, x *evalContext) []fired {
	re, src := r.p.re("regex"), r.p.str("regex")
	var out []fired
	for _, f := range x.in.Facts.Files {
		if re.MatchString(f.Path) {
			out = append(out, fired{msg: fmt.Sprintf("Application of regex matched file found in container: file=%s regexp=%s", f.Path, src)})
		}
	}
	return out
}

// unixMode returns a file's permission bits with setuid, setgid and
// sticky in their Unix places (04000, 02000, 01000). buildgate.File.Mode is an
// os.FileMode, whose special bits live elsewhere; Unix bits already in
// place are kept too.
func unixMode(f *buildgate.File) uint32 {
	m := f.Mode & 0o7777
	fm := fs.FileMode(f.Mode)
	if f.SUID || fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if f.SGID || fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// unixTypeBits returns the Unix file type bits of a file, for messages
// that print the mode the way Anchore does (oct(st_mode)).
func unixTypeBits(f *buildgate.File) uint32 {
	switch f.Type {
	case "dir":
		return 0o040000
	case "symlink":
		return 0o120000
	case "file", "hardlink":
		return 0o100000
	}
	return 0
}

func parseMode(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("not an octal mode: %q", s)
	}
	return uint32(v), nil
}

// evalAttributeMatch implements files/attribute_match as Anchore does:
// if the file exists and every given attribute check (checksum, mode)
// holds, it fires once; if none is given it does not fire; if the file is
// missing it fires only with skip_missing=false. mode_op compares the
// permission bits numerically.
func evalAttributeMatch(r *compiledRule, x *evalContext) []fired {
	name := r.p.str("filename")
	var file *buildgate.File
	for i := range x.in.Facts.Files {
		if x.in.Facts.Files[i].Path == name {
			file = &x.in.Facts.Files[i]
			break
		}
	}
	if file == nil {
		if r.p.boolean("skip_missing") {
			return nil
		}
		return []fired{{msg: fmt.Sprintf("filename=%s and skip_missing=False", name)}}
	}
	var parts []string
	if r.p.has("checksum") {
		want, op := strings.ToLower(r.p.str("checksum")), r.p.str("checksum_match")
		have := strings.ToLower(strings.TrimPrefix(file.SHA256, "sha256:"))
		if (have == want) != (op == "equals") {
			return nil
		}
		parts = append(parts, fmt.Sprintf("checksum=%s op=%s specified_checksum=%s", have, op, want))
	}
	if r.p.has("mode") {
		want, _ := parseMode(r.p.str("mode"))
		have, op := unixMode(file), r.p.str("mode_op")
		if !compare(have, op, want) {
			return nil
		}
		parts = append(parts, fmt.Sprintf("mode=0o%o op=%s specified_mode=0o%o", have, op, want))
	}
	if len(parts) == 0 {
		return nil
	}
	return []fired{{msg: "filename=" + name + " and " + strings.Join(parts, " and ")}}
}

// evalSUID implements files/suid_or_guid_set: once per file with setuid
// or setgid set.
func evalSUID(_ *compiledRule, x *evalContext) []fired {
	var out []fired
	for i := range x.in.Facts.Files {
		f := &x.in.Facts.Files[i]
		m := unixMode(f)
		if m&0o6000 == 0 {
			continue
		}
		out = append(out, fired{msg: fmt.Sprintf("SUID or SGID found set on file %s. Mode: 0o%o", f.Path, unixTypeBits(f)|m)})
	}
	return out
}

var sizeRE = regexp.MustCompile(`(?i)^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?)(b?)\s*$`)

// parseSize reads a size in bytes: a number with an optional unit. K, M,
// G, T and P (with or without B: 100MB, 1G) are powers of 1000, as docker
// and registries report sizes; KiB, MiB, GiB, TiB and PiB powers of 1024.
func parseSize(s string) (float64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil || (m[3] != "" && m[2] == "") {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	base := 1000.0
	if m[3] != "" {
		base = 1024
	}
	if m[2] != "" {
		v *= math.Pow(base, float64(strings.Index("kmgtp", strings.ToLower(m[2]))+1))
	}
	return v, nil
}

// evalMetadata implements metadata/attribute. size and layer_count
// compare as numbers (size values take units, see parseSize);
// distro_version orders as a version (compareVersions); the others as
// text. like_distro is a list: a check holds if it holds for any of its
// distros (not_* checks: for none). exists holds for a non-empty, non-zero
// value. like and not_like match a regular expression from the start.
func evalMetadata(r *compiledRule, x *evalContext) []fired {
	md := &x.in.Facts.Metadata
	attr, check, value := r.p.str("attribute"), r.p.str("check"), r.p.str("value")
	re := r.p.re("value")
	var text string
	var num float64
	numeric := false
	switch attr {
	case "size":
		num, numeric, text = float64(md.Size), true, strconv.FormatInt(md.Size, 10)
	case "layer_count":
		num, numeric, text = float64(md.LayerCount), true, strconv.Itoa(md.LayerCount)
	case "architecture":
		text = md.Arch
	case "os_type":
		text = md.OS
	case "distro":
		text = md.Distro
	case "distro_version":
		text = md.DistroVersion
	case "like_distro":
		text = strings.Join(md.LikeDistro, " ")
	}

	op, negate := check, false
	switch check {
	case "not_like":
		op, negate = "like", true
	case "not_in":
		op, negate = "in", true
	case "!=":
		op, negate = "=", true
	}
	toNum := func(s string) float64 {
		if attr == "size" {
			v, _ := parseSize(s)
			return v
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return v
	}
	hit := func(v string) bool {
		switch {
		case op == "like":
			return re.MatchString(v)
		case op == "in" && numeric:
			return slices.ContainsFunc(splitList(value), func(s string) bool { return toNum(s) == num })
		case op == "in":
			return slices.Contains(splitList(value), v)
		case numeric:
			return compare(num, op, toNum(value))
		case attr == "distro_version" && op != "=":
			return compare(compareVersions(v, value), op, 0)
		}
		return compare(v, op, value)
	}
	var ok bool
	switch check {
	case "exists":
		ok = text != "" && !(numeric && num == 0)
	case "not_exists":
		ok = text == "" || (numeric && num == 0)
	default:
		ok = anyOf(attr, md, text, hit) != negate
	}
	if !ok {
		return nil
	}
	return []fired{{msg: fmt.Sprintf("Attribute check for attribute: '%s' check: '%s' check_value: '%s' matched image value: '%s'", attr, check, value, text)}}
}

// anyOf applies hit to the attribute's value, or to each of like_distro's.
func anyOf(attr string, md *buildgate.Metadata, text string, hit func(string) bool) bool {
	if attr != "like_distro" {
		return hit(text)
	}
	return slices.ContainsFunc(md.LikeDistro, hit)
}

// evalAlways implements always/always: it fires unconditionally, with
// Anchore's fixed trigger id "always".
func evalAlways(*compiledRule, *evalContext) []fired {
	return []fired{{id: "always", msg: "Unconditional trigger match"}}
}

// ContentRegexes returns the regular expressions the bundle's
// files/content_regex_match rules name in regex_name, sorted and without
// duplicates: what an image's file contents must be searched for so that
// those rules can fire. It returns the bundle's validation error if it is
// not valid.
func (b *Bundle) ContentRegexes() ([]string, error) {
	c, probs := compile(b)
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	var out []string
	for _, p := range c.policies {
		for _, r := range p.rules {
			if r.gate.Name+"/"+r.trig.Name == "files/content_regex_match" && r.p.has("regex_name") {
				out = append(out, r.p.str("regex_name"))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
