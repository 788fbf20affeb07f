package policy

import (
	"errors"
	"slices"
	"testing"
)

func TestContentRegexes(t *testing.T) {
	rule := func(gate, trigger string, params ...string) Rule {
		return Rule{Gate: gate, Trigger: trigger, Params: kv(params...)}
	}
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{name: "none", rules: []Rule{rule("files", "name_match", "regex", ".*")}, want: nil},
		{name: "each regex once, sorted", rules: []Rule{
			rule("files", "content_regex_match", "regex_name", "b+"),
			rule("files", "content_regex_match", "regex_name", "^a"),
			rule("files", "content_regex_match", "regex_name", "b+"),
		}, want: []string{"^a", "b+"}},
		{name: "a rule without regex_name adds none", rules: []Rule{rule("files", "content_regex_match")}, want: nil},
		{name: "gate and trigger in any case", rules: []Rule{rule("Files", "Content_Regex_Match", "regex_name", "x")}, want: []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oneRuleBundle(tt.rules...).ContentRegexes()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ContentRegexes() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContentRegexRefusesABadRegex(t *testing.T) {
	b := oneRuleBundle(Rule{Gate: "files", Trigger: "content_regex_match", Params: kv("regex_name", "a(")})
	_, err := b.ContentRegexes()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ContentRegexes() error = %v, want a *ValidationError naming regex_name", err)
	}
	if err := b.Validate(); err == nil {
		t.Error("a bundle whose regex_name does not compile validates")
	}
}
