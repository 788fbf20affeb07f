package policy

import (
	"regexp"
	"strings"
)

// regexpPrefix marks a mapping or allowlist pattern as a regular
// expression instead of a glob, as in Anchore.
const regexpPrefix = "regexp:"

// pattern matches strings the way Anchore matches mapping fields and
// allowlist trigger ids: a glob where * matches any run of characters
// (including /) and every other character is literal, anchored at both
// ends; or, after "regexp:", a regular expression matched from the start
// of the string (Python's re.match, which Anchore uses).
type pattern struct {
	glob  string
	parts []string // glob split at *, when it has any
	re    *regexp.Regexp
}

func globPattern(g string) pattern {
	p := pattern{glob: g}
	if strings.Contains(g, "*") {
		p.parts = strings.Split(g, "*")
	}
	return p
}

func compilePattern(s string) (pattern, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, regexpPrefix) {
		re, err := compileRegex(t[len(regexpPrefix):])
		if err != nil {
			return pattern{}, err
		}
		return pattern{re: re}, nil
	}
	return globPattern(s), nil
}

// literal reports whether the pattern matches exactly one string.
func (p pattern) literal() bool { return p.re == nil && p.parts == nil }

func (p pattern) match(s string) bool {
	switch {
	case p.re != nil:
		return p.re.MatchString(s)
	case p.parts == nil:
		return p.glob == s
	}
	return matchParts(p.parts, s)
}

// compileRegex compiles a regular expression anchored at the start of the
// input, as Python's re.match is.
func compileRegex(s string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(s); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + s + `)`)
}

// MatchGlob reports whether s matches the glob pattern as Anchore matches
// mapping fields: "*" matches any run of characters, "/" included, every
// other character is literal, and the whole of s must match.
func MatchGlob(pattern, s string) bool { return globPattern(pattern).match(s) }

// matchParts matches s against a glob split at its stars: the first part
// is a prefix, the last a suffix, the others found leftmost in between.
func matchParts(parts []string, s string) bool {
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// ParseTag splits an image reference into registry, repository and tag
// the way Anchore does: the registry is the first path component if it
// contains "." or ":" or is "localhost", else docker.io; the tag defaults
// to "latest"; no "library/" is inserted; "dockerhub/" and
// "index.docker.io" read as docker.io. A digest ("@sha256:...") is
// dropped; a reference by digest alone has an empty tag.
func ParseTag(s string) (registry, repo, tag string) {
	s = strings.TrimSpace(s)
	hasDigest := false
	if i := strings.Index(s, "@"); i >= 0 {
		s, hasDigest = s[:i], true
	}
	if strings.HasPrefix(s, "dockerhub/") {
		s = "docker.io/" + strings.TrimPrefix(s, "dockerhub/")
	}
	registry = "docker.io"
	if i := strings.Index(s, "/"); i >= 0 {
		first := s[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			registry, s = first, s[i+1:]
		}
	}
	if registry == "index.docker.io" || registry == "registry-1.docker.io" {
		registry = "docker.io"
	}
	repo = s
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[i:], "/") {
		repo, tag = s[:i], s[i+1:]
	}
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	return registry, repo, tag
}

// FullTag returns the normalised registry/repository:tag form of a
// reference, e.g. "docker.io/nginx:latest" for "nginx".
func FullTag(s string) string {
	reg, repo, tag := ParseTag(s)
	if tag == "" {
		return reg + "/" + repo
	}
	return reg + "/" + repo + ":" + tag
}

// Glob reports whether s matches the glob g, where "*" matches any run of
// characters ("/" included) and every other character is literal; an
// empty g matches everything, as in alert and admission scopes.
func Glob(g, s string) bool {
	if g == "" {
		return true
	}
	return globPattern(g).match(s)
}
