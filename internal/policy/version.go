package policy

import (
	"strings"
)

// compareVersions orders two package versions: negative when a < b, 0
// when equal, positive when a > b. It follows dpkg's ordering, which is
// good enough for rpm, apk and semver-like versions too:
//
//   - an optional numeric epoch ("1:") compares first;
//   - then the upstream version and the revision (after the last "-")
//     compare with dpkg's algorithm: runs of digits numerically, other
//     runs character by character, letters before non-letters, "~" before
//     everything, even the end of the string;
//   - a leading "v" before a digit is ignored (v1.2.3 = 1.2.3);
//   - a semver pre-release ("1.0.0-rc.1", "-alpha", "-beta", "-pre",
//     "-dev", "-snapshot", "-preview") sorts before the release, as "~".
func compareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := verrevcmp(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

var preRelease = []string{"alpha", "beta", "rc", "pre", "dev", "snapshot", "preview", "canary", "next"}

func splitVersion(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	epoch = "0"
	if i := strings.Index(v, ":"); i >= 0 && isDigits(v[:i]) {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.Index(v, "-"); i >= 0 {
		rest := strings.ToLower(v[i+1:])
		for _, p := range preRelease {
			if strings.HasPrefix(rest, p) {
				return epoch, v[:i] + "~" + v[i+1:], ""
			}
		}
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// order is dpkg's character weight: ~ lowest, then the end of a part,
// then letters, then everything else.
func order(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// verrevcmp is dpkg's comparison of version parts.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := 0, 0
			if i < len(a) {
				ac = order(a[i])
			}
			if j < len(b) {
				bc = order(b[j])
			}
			if ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return firstDiff
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
