package main

import (
	"strings"
	"testing"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
)

// contentRuleYAML stops on files whose lines match a content regex: the
// dpkg status file of a Debian image names libc6.
const contentRuleYAML = `
id: content-rules
name: content rules
version: "1_0"
policies:
  - id: p1
    name: file content
    version: "1_0"
    rules:
      - id: r1
        gate: files
        trigger: content_regex_match
        action: STOP
        params:
          - {name: regex_name, value: "^Package: libc6$"}
      - id: r2
        gate: files
        trigger: content_regex_match
        action: WARN
        params:
          - {name: regex_name, value: "no such line in any file [0-9]{40}"}
whitelists: []
mappings:
  - {id: m1, name: all, registry: "*", repository: "*", image: {type: tag, value: "*"}, policy_id: p1, whitelist_ids: []}
`

func TestContentRegexMatchFiresOnARealImage(t *testing.T) {
	g := startGate(t, nil)
	var p api.Policy
	if code := g.do(t, "POST", "/v1/policies?activate=true", "application/yaml", contentRuleYAML, &p); code != 201 || !p.Active {
		t.Fatalf("saving the bundle = %d %+v", code, p)
	}
	ref := testRegistry(t) + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("status %s: %s", img.Status, img.Error)
	}

	v := g.check(t, img.Digest, ref)
	var fired []string
	for _, f := range v.Findings {
		if f.Gate == "files" && f.Trigger == "content_regex_match" {
			fired = append(fired, f.Message)
		}
	}
	want := "file=/var/lib/dpkg/status regexp=^Package: libc6$"
	if len(fired) != 1 || !strings.Contains(fired[0], want) {
		t.Fatalf("content_regex_match findings = %q, want one naming %q", fired, want)
	}
	if v.FinalAction != policy.ActionStop {
		t.Errorf("final action = %s, want stop", v.FinalAction)
	}
}
