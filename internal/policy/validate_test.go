package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
)

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name  string
		rule  Rule
		param string // expected Problem.Parameter
		want  string // expected substring of the error
	}{
		{"enum not in the allowed set", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "severity", "urgent")},
			"severity", `policy "p1" rule "r1": vulnerabilities/package: parameter "severity": "urgent" is not one of unknown, negligible, low, medium, high, critical`},
		{"unknown gate", Rule{Gate: "anchoresec", Trigger: "package"},
			"", `policy "p1" rule "r1": anchoresec/package: unknown gate "anchoresec" (want one of vulnerabilities, dockerfile,`},
		{"unknown trigger", Rule{Gate: "vulnerabilities", Trigger: "pkg"},
			"", `policy "p1" rule "r1": vulnerabilities/pkg: unknown trigger "pkg" for gate vulnerabilities`},
		{"missing required parameter", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("severity", "high")},
			"package_type", `policy "p1" rule "r1": vulnerabilities/package: parameter "package_type": is required`},
		{"unknown parameter", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "colour", "red")},
			"colour", `parameter "colour": unknown parameter (want one of package_type, severity_comparison,`},
		{"parameter given twice", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "PACKAGE_TYPE", "os")},
			"package_type", `parameter "package_type": given more than once`},
		{"float out of range", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "cvss_v3_base_score", "11")},
			"cvss_v3_base_score", `parameter "cvss_v3_base_score": 11 is out of range (0 to 10)`},
		{"int out of range", Rule{Gate: "vulnerabilities", Trigger: "stale_feed_data", Params: kv("max_days_since_sync", "-1")},
			"max_days_since_sync", `parameter "max_days_since_sync": -1 is out of range (at least 0)`},
		{"not a whole number", Rule{Gate: "vulnerabilities", Trigger: "stale_feed_data", Params: kv("max_days_since_sync", "two")},
			"max_days_since_sync", `"two" is not a whole number`},
		{"not a number", Rule{Gate: "vulnerabilities", Trigger: "epss", Params: kv("threshold", "high")},
			"threshold", `parameter "threshold": "high" is not a number`},
		{"epss out of range", Rule{Gate: "vulnerabilities", Trigger: "epss", Params: kv("threshold", "1.5")},
			"threshold", `1.5 is out of range (0 to 1)`},
		{"not a bool", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "fix_available", "maybe")},
			"fix_available", `"maybe" is not true or false`},
		{"regex does not compile", Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("package_type", "all", "package_path_exclude", "(unclosed")},
			"package_path_exclude", `regular expression "(unclosed" does not compile`},
		{"python-only regex", Rule{Gate: "files", Trigger: "name_match", Params: kv("regex", `(?!tmp).*`)},
			"regex", `does not compile`},
		{"list item out of range", Rule{Gate: "dockerfile", Trigger: "exposed_ports", Params: kv("ports", "22,70000", "type", "blacklist")},
			"ports", `parameter "ports": item 70000 is out of range (0 to 65535)`},
		{"list item not a number", Rule{Gate: "dockerfile", Trigger: "exposed_ports", Params: kv("ports", "ssh", "type", "blacklist")},
			"ports", `item "ssh" is not a whole number`},
		{"bad action", Rule{Gate: "always", Trigger: "always", Action: "BLOCK"},
			"", `policy "p1" rule "r1": always/always: action "BLOCK" is not one of GO, WARN, STOP`},
		{"instruction check needs a value", Rule{Gate: "dockerfile", Trigger: "instruction", Params: kv("instruction", "FROM", "check", "=")},
			"value", `parameter "value": is required by check "="`},
		{"instruction like value compiles", Rule{Gate: "dockerfile", Trigger: "instruction", Params: kv("instruction", "FROM", "check", "like", "value", "[")},
			"value", `regular expression "[" does not compile`},
		{"metadata size needs a size", Rule{Gate: "metadata", Trigger: "attribute", Params: kv("attribute", "size", "check", ">", "value", "big")},
			"value", `"big" is not a size (e.g. 100MB, 1.5GB, 512MiB)`},
		{"metadata layer_count needs a number", Rule{Gate: "metadata", Trigger: "attribute", Params: kv("attribute", "layer_count", "check", "in", "value", "1,x")},
			"value", `"x" is not a whole number`},
		{"file mode must be octal", Rule{Gate: "files", Trigger: "attribute_match", Params: kv("filename", "/x", "mode", "0999")},
			"mode", `"0999" is not an octal file mode`},
		{"checksum must be sha256 hex", Rule{Gate: "files", Trigger: "attribute_match", Params: kv("filename", "/x", "checksum", "abc")},
			"checksum", `"abc" is not a hex sha256 digest`},
		{"required list empty", Rule{Gate: "licenses", Trigger: "blacklist_exact_match", Params: kv("licenses", " , ")},
			"licenses", `parameter "licenses": list is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rule.Action == "" {
				tt.rule.Action = "STOP"
			}
			tt.rule.ID = "r1"
			b := oneRuleBundle(tt.rule)
			err := b.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			p := ve.Problems[0]
			if p.PolicyID != "p1" || p.RuleID != "r1" || p.Parameter != tt.param {
				t.Errorf("problem %+v: want policy p1, rule r1, parameter %q", p, tt.param)
			}
			if buildgate.ErrorCode(err) != buildgate.EINVALID {
				t.Errorf("error code = %q, want %q", buildgate.ErrorCode(err), buildgate.EINVALID)
			}
		})
	}
}

func TestValidateBundle(t *testing.T) {
	tests := []struct {
		name   string
		modify func(b *Bundle)
		want   string
	}{
		{"bundle version", func(b *Bundle) { b.Version = "2_0" }, `bundle: version "2_0" is not supported (want 1_0)`},
		{"bundle id", func(b *Bundle) { b.ID = "" }, `bundle: id is empty`},
		{"policy version", func(b *Bundle) { b.Policies[0].Version = "" }, `policy "p1": version is missing (want 1_0)`},
		{"duplicate policy", func(b *Bundle) { b.Policies = append(b.Policies, b.Policies[0]) }, `policy "p1": duplicate policy id`},
		{"duplicate rule", func(b *Bundle) { b.Policies[0].Rules = append(b.Policies[0].Rules, b.Policies[0].Rules[0]) }, `policy "p1" rule "r1": duplicate rule id`},
		{"rule without id is located by index", func(b *Bundle) {
			b.Policies[0].Rules = append(b.Policies[0].Rules, Rule{Gate: "always", Trigger: "never", Action: "go"})
		}, `policy "p1" rules[1]: always/never: unknown trigger "never"`},
		{"duplicate allowlist", func(b *Bundle) { b.Allowlists = append(b.Allowlists, b.Allowlists[0]) }, `allowlist "wl1": duplicate whitelist id`},
		{"duplicate allowlist item", func(b *Bundle) {
			b.Allowlists[0].Items = []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "*"}, {ID: "i1", Gate: "vulnerabilities", TriggerID: "*"}}
		}, `allowlist "wl1" item "i1": duplicate item id`},
		{"expires_on not rfc3339", func(b *Bundle) {
			b.Allowlists[0].Items = []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "CVE-1+*", ExpiresOn: "2026-01-31"}}
		}, `allowlist "wl1" item "i1": expires_on "2026-01-31" is not an RFC 3339 time`},
		{"item trigger regexp", func(b *Bundle) {
			b.Allowlists[0].Items = []AllowlistItem{{ID: "i1", Gate: "vulnerabilities", TriggerID: "regexp:CVE-(1"}}
		}, `allowlist "wl1" item "i1": trigger_id "regexp:CVE-(1" does not compile`},
		{"item without trigger id", func(b *Bundle) {
			b.Allowlists[0].Items = []AllowlistItem{{ID: "i1", Gate: "vulnerabilities"}}
		}, `allowlist "wl1" item "i1": trigger_id is empty`},
		{"mapping names a missing policy", func(b *Bundle) { b.Mappings[0].PolicyID = "nope" }, `mapping "m1": policy "nope" does not exist`},
		{"mapping names a missing allowlist", func(b *Bundle) { b.Mappings[0].AllowlistIDs = []string{"wl9"} }, `mapping "m1": whitelist "wl9" does not exist`},
		{"mapping names no policy", func(b *Bundle) { b.Mappings[0].PolicyID = "" }, `mapping "m1": names no policy`},
		{"mapping names both forms", func(b *Bundle) { b.Mappings[0].PolicyIDs = []string{"p1"} }, `mapping "m1": sets both policy_id and policy_ids`},
		{"duplicate mapping", func(b *Bundle) { b.Mappings = append(b.Mappings, b.Mappings[0]) }, `mapping "m1": duplicate mapping id`},
		{"unknown image type", func(b *Bundle) { b.Mappings[0].Image.Type = "label" }, `mapping "m1": image type "label" is not one of tag, digest, id`},
		{"empty registry", func(b *Bundle) { b.Mappings[0].Registry = "" }, `mapping "m1": registry is empty (use * for any)`},
		{"mapping regexp", func(b *Bundle) { b.Mappings[0].Repository = "regexp:(" }, `mapping "m1": repository "regexp:(" does not compile`},
		{"image list entry", func(b *Bundle) {
			b.DenylistedImages = []ImageRef{{Name: "x", Registry: "*", Repository: "*", Image: ImageSelector{Type: "sha", Value: "x"}}}
		}, `blacklisted_images[0]: image type "sha" is not one of tag, digest, id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := oneRuleBundle(Rule{Gate: "always", Trigger: "always"})
			tt.modify(b)
			err := b.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidationErrorListsEveryProblem(t *testing.T) {
	b := oneRuleBundle(
		Rule{Gate: "vulnerabilities", Trigger: "package", Params: kv("severity", "urgent")},
		Rule{Gate: "nope", Trigger: "x"},
	)
	b.Mappings[0].PolicyIDs = []string{"p2"}
	b.Mappings[0].PolicyID = ""
	err := b.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 4 {
		t.Fatalf("problems = %+v", err)
	}
	if got := strings.Count(err.Error(), "; "); got != 3 {
		t.Errorf("error should join 4 problems: %q", err)
	}
	if _, err := json.Marshal(ve); err != nil {
		t.Errorf("ValidationError does not marshal: %v", err)
	}
}

func TestValidBundlesPass(t *testing.T) {
	for _, b := range []*Bundle{DefaultBundle(), oneRuleBundle(Rule{Gate: "ALWAYS", Trigger: "Always", Action: "go"})} {
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", b.ID, err)
		}
	}
}

func TestParseBundleSpellings(t *testing.T) {
	anchore := `{"id":"b","version":"1_0","policies":[{"id":"p","version":"1_0","rules":[{"id":"r","gate":"always","trigger":"always","action":"GO","params":[]}]}],
		"whitelists":[{"id":"w","name":"W","version":"1_0","items":[{"id":"i","gate":"always","trigger_id":"always"}]}],
		"mappings":[{"id":"m","name":"M","registry":"*","repository":"*","image":{"type":"tag","value":"*"},"policy_id":"p","whitelist_ids":["w"]}],
		"whitelisted_images":[{"name":"ok","registry":"*","repository":"good","image":{"type":"tag","value":"*"}}],
		"blacklisted_images":[{"name":"bad","registry":"*","repository":"evil","image":{"type":"tag","value":"*"}}]}`
	ours := `{"id":"b","version":"1_0","policies":[{"id":"p","version":"1_0","rules":[{"id":"r","gate":"always","trigger":"always","action":"GO","params":[]}]}],
		"allowlists":[{"id":"w","name":"W","version":"1_0","items":[{"id":"i","gate":"always","trigger_id":"always"}]}],
		"mappings":[{"id":"m","name":"M","registry":"*","repository":"*","image":{"type":"tag","value":"*"},"policy_id":"p","allowlist_ids":["w"]}],
		"allowlisted_images":[{"name":"ok","registry":"*","repository":"good","image":{"type":"tag","value":"*"}}],
		"denylisted_images":[{"name":"bad","registry":"*","repository":"evil","image":{"type":"tag","value":"*"}}]}`
	a, err := ParseBundle([]byte(anchore))
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseBundle([]byte(ours))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, o) {
		t.Errorf("spellings parse differently:\n%+v\n%+v", a, o)
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"whitelists"`, `"whitelisted_images"`, `"blacklisted_images"`, `"whitelist_ids"`} {
		if !strings.Contains(string(out), key) {
			t.Errorf("marshalled bundle lacks Anchore's %s: %s", key, out)
		}
	}
	for _, key := range []string{`"allowlists"`, `"allowlisted_images"`, `"denylisted_images"`, `"allowlist_ids"`} {
		if strings.Contains(string(out), key) {
			t.Errorf("marshalled bundle has our %s, not Anchore's: %s", key, out)
		}
	}
}

func TestParseBundleLenientValues(t *testing.T) {
	// YAML converted to JSON often carries numbers and booleans.
	b, err := ParseBundle([]byte(`{"id":"b","version":"1_0","policies":[{"id":"p","version":"1_0","rules":[
		{"id":"r","gate":"vulnerabilities","trigger":"stale_feed_data","action":"warn","params":[{"name":"max_days_since_sync","value":2}]},
		{"id":"r2","gate":"vulnerabilities","trigger":"package","action":"warn","params":[{"name":"package_type","value":"all"},{"name":"vendor_only","value":false}]}]}],
		"mappings":[{"id":"m","registry":"*","repository":"*","image":{"type":"tag","value":"*"},"policy_ids":["p"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := b.Policies[0].Rules[0].Params[0].Value; v != "2" {
		t.Errorf("number value = %q", v)
	}
	if v := b.Policies[0].Rules[1].Params[1].Value; v != "false" {
		t.Errorf("bool value = %q", v)
	}
	if _, err := ParseBundle([]byte(`{"id":"b","version":"1_0","policies":[{"id":"p","version":"1_0","rules":[{"id":"r","gate":"always","trigger":"always","action":"go","params":[{"name":"x","value":{"a":1}}]}]}]}`)); err == nil {
		t.Error("an object parameter value was accepted")
	}
}

func TestParseBundleErrors(t *testing.T) {
	for _, data := range []string{``, `[]`, `{"id": 5}`, `{`} {
		_, err := ParseBundle([]byte(data))
		if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID {
			t.Errorf("ParseBundle(%q) = %v, want an EINVALID error", data, err)
		}
	}
}

func TestDefinitions(t *testing.T) {
	defs := Definitions()
	if _, err := json.Marshal(defs); err != nil {
		t.Fatalf("definitions do not marshal: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range defs {
		for _, tr := range g.Triggers {
			key := g.Name + "/" + tr.Name
			seen[key] = true
			if evaluators[key] == nil {
				t.Errorf("%s has no evaluator", key)
			}
			if tr.Description == "" || tr.TriggerID == "" {
				t.Errorf("%s lacks a description or trigger id kind", key)
			}
			for _, p := range tr.Params {
				if p.Description == "" || p.Type == "" {
					t.Errorf("%s parameter %s lacks a description or type", key, p.Name)
				}
				if p.Type == TypeEnum && len(p.Allowed) == 0 {
					t.Errorf("%s parameter %s is an enum without values", key, p.Name)
				}
				if p.Default != "" {
					if _, _, msg := checkValue(&p, p.Default); msg != "" {
						t.Errorf("%s parameter %s: default %q is invalid: %s", key, p.Name, p.Default, msg)
					}
				}
			}
		}
	}
	for key := range evaluators {
		if !seen[key] {
			t.Errorf("evaluator %s has no definition", key)
		}
	}
	// Definitions returns a copy.
	defs[0].Triggers[0].Params[0].Allowed[0] = "changed"
	if Definitions()[0].Triggers[0].Params[0].Allowed[0] == "changed" {
		t.Error("Definitions shares memory with the registry")
	}
	if _, tr, ok := LookupTrigger("Packages", "DENYLIST"); !ok || tr.Name != "blacklist" {
		t.Errorf("LookupTrigger(packages, denylist) = %+v, %v", tr, ok)
	}
	for _, want := range []string{"vulnerabilities/package", "vulnerabilities/known_exploited", "vulnerabilities/epss", "dockerfile/instruction",
		"packages/verify", "licenses/blacklist_partial_match", "secret_scans/content_regex_checks", "files/attribute_match", "metadata/attribute", "always/always"} {
		if !seen[want] {
			t.Errorf("no definition for %s", want)
		}
	}
}
