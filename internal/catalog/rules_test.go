package catalog

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultSecretRules(t *testing.T) {
	rules, err := compileRules("secret", DefaultSecretRules())
	if err != nil {
		t.Fatalf("compiling default rules: %v", err)
	}
	byName := map[string]compiledRule{}
	for _, r := range rules {
		byName[r.name] = r
		if r.literal == nil {
			t.Errorf("rule %s: no required literal, every line would be tried", r.name)
		}
	}

	// want is what Anchore's Python regexes give with re.match.
	tests := []struct {
		name string
		rule string
		line string
		want bool
	}{
		{name: "access key", rule: RuleAWSAccessKey, line: "aws_access_key_id=AKIAIOSFODNN7EXAMPLE", want: true},
		{name: "access key upper with spaces", rule: RuleAWSAccessKey, line: "export AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'", want: true},
		{name: "access key 21 chars", rule: RuleAWSAccessKey, line: "aws_access_key_id=AKIAIOSFODNN7EXAMPLEX", want: false},
		{name: "access key 19 chars", rule: RuleAWSAccessKey, line: "aws_access_key_id=AKIAIOSFODNN7EXAMPL", want: false},
		{name: "access key later token", rule: RuleAWSAccessKey, line: "aws_access_key_id= x-AKIAIOSFODNN7EXAMPLE.", want: true},
		{name: "access key no equals", rule: RuleAWSAccessKey, line: "aws_access_key_id: AKIAIOSFODNN7EXAMPLE", want: false},
		{name: "secret key spaced", rule: RuleAWSSecretKey, line: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", want: true},
		// Anchore's look-behind sees the '=' (inside the key alphabet) right
		// before the key, so a key glued to '=' does not match
		{name: "secret key glued to equals", rule: RuleAWSSecretKey, line: "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", want: false},
		{name: "secret key quoted", rule: RuleAWSSecretKey, line: `AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"`, want: true},
		{name: "secret key 41 chars", rule: RuleAWSSecretKey, line: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYS", want: false},
		{name: "private key", rule: RulePrivateKey, line: "-----BEGIN RSA PRIVATE KEY-----", want: true},
		{name: "private key openssh", rule: RulePrivateKey, line: "-----BEGIN OPENSSH PRIVATE KEY-----", want: true},
		{name: "private key indented", rule: RulePrivateKey, line: "  -----BEGIN PRIVATE KEY-----", want: false},
		{name: "public key", rule: RulePrivateKey, line: "-----BEGIN PUBLIC KEY-----", want: false},
		{name: "docker auth", rule: RuleDockerAuth, line: `      "auth": "dXNlcjpwYXNz"`, want: true},
		{name: "docker auth empty", rule: RuleDockerAuth, line: `"auth": ""`, want: false},
		{name: "api key", rule: RuleAPIKey, line: "API_KEY=0123456789abcdefghijKLMN", want: true},
		{name: "api key dash", rule: RuleAPIKey, line: "x-api-key == 'abcdefghij0123456789'", want: true},
		{name: "api key too short", rule: RuleAPIKey, line: "api_key=abcdefghij012345678", want: false},
		{name: "api key too long", rule: RuleAPIKey, line: "api_key=" + strings.Repeat("a", 61), want: false},
		{name: "api key placeholder", rule: RuleAPIKey, line: "api_key = <your key here>", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := byName[tt.rule]
			if !ok {
				t.Fatalf("no rule %s", tt.rule)
			}
			var got []int
			content := []byte("first line\n" + tt.line + "\nlast line")
			eachMatchingLine(r, content, lowered(content), func(line int) bool {
				got = append(got, line)
				return true
			})
			var want []int
			if tt.want {
				want = []int{2}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s on %q: got lines %v, want %v", tt.rule, tt.line, got, want)
			}
		})
	}
}

func lowered(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lowerASCII(c)
	}
	return out
}

func TestEachMatchingLine(t *testing.T) {
	tests := []struct {
		name    string
		regexp  string
		content string
		want    []int
	}{
		{name: "literal lines", regexp: `token=\d+`, content: "a\ntoken=1\nb\r\nTOKEN=2\ntoken=3", want: []int{2, 5}},
		{name: "literal twice on a line", regexp: `(?i)token=\d+`, content: "token=x token=1\nno\n", want: []int{1}},
		{name: "no literal", regexp: `^\d+$`, content: "12\nab\n34\r\n", want: []int{1, 3}},
		{name: "no literal empty lines", regexp: `^$`, content: "a\n\nb\n", want: []int{2}},
		{name: "no match", regexp: `(?i)password`, content: "nothing here\n", want: nil},
		{name: "crlf trimmed", regexp: `end$`, content: "the end\r\nmore\r\n", want: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := compileRules("content", []Rule{{Name: "r", Regexp: tt.regexp}})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			content := []byte(tt.content)
			eachMatchingLine(rules[0], content, lowered(content), func(line int) bool {
				got = append(got, line)
				return true
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("got lines %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequiredLiteral(t *testing.T) {
	tests := []struct {
		name   string
		regexp string
		want   string
	}{
		{name: "fold case", regexp: `(?i)aws_access_key_id *=+`, want: "aws_access_key_id"},
		{name: "case sensitive", regexp: `PermitRootLogin\s+yes`, want: "permitrootlogin"},
		{name: "capture", regexp: `x(BEGIN RSA)y`, want: "begin rsa"},
		{name: "alternation", regexp: `foo|bar`, want: ""},
		{name: "too short", regexp: `ab.*`, want: ""},
		{name: "optional", regexp: `(?:password)?x`, want: ""},
		{name: "non-ASCII", regexp: `(?i)pässword`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(requiredLiteral(tt.regexp)); got != tt.want {
				t.Errorf("requiredLiteral(%q) = %q, want %q", tt.regexp, got, tt.want)
			}
		})
	}
}
