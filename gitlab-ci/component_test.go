package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/buildgate/buildgate/internal/step"
)

type gitlabJob struct {
	Extends   string            `yaml:"extends"`
	Stage     string            `yaml:"stage"`
	Variables map[string]string `yaml:"variables"`
	Rules     []struct {
		If   string `yaml:"if"`
		When string `yaml:"when"`
	} `yaml:"rules"`
	Artifacts struct {
		Reports map[string]string `yaml:"reports"`
	} `yaml:"artifacts"`
}

func readJobs(t *testing.T, data []byte) map[string]gitlabJob {
	t.Helper()
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]gitlabJob{}
	for name, n := range raw {
		if name == "include" {
			continue
		}
		var j gitlabJob
		if err := n.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		jobs[name] = j
	}
	return jobs
}

// TestTemplateReportsAndDisabled: the hidden job keeps the SBOM the step
// writes as reports: cyclonedx, and BUILDGATE_DISABLED turns it off.
func TestTemplateReportsAndDisabled(t *testing.T) {
	b, err := os.ReadFile("gate.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	job := readJobs(t, b)[".buildgate-scan"]
	if got := job.Artifacts.Reports["cyclonedx"]; got != "buildgate-reports/"+step.CycloneDXFile {
		t.Errorf("reports: cyclonedx is %q", got)
	}
	if len(job.Rules) != 2 || !strings.Contains(job.Rules[0].If, "$BUILDGATE_DISABLED") || job.Rules[0].When != "never" || job.Rules[1].When != "on_success" {
		t.Errorf("rules %+v do not honour BUILDGATE_DISABLED", job.Rules)
	}
	if _, ok := job.Variables["BUILDGATE_BASELINE"]; !ok {
		t.Error("the template does not show BUILDGATE_BASELINE")
	}
}

// TestComponent checks templates/buildgate.yml, the CI/CD component: a
// spec with inputs, then a job extending the hidden job that sets its
// variables from every input and from nothing else.
func TestComponent(t *testing.T) {
	root := ".."
	b, err := os.ReadFile(filepath.Join(root, "templates", "buildgate.yml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.SplitN(b, []byte("\n---\n"), 2)
	if len(docs) != 2 {
		t.Fatal("the component is not a spec header, ---, then the jobs")
	}
	var header struct {
		Spec struct {
			Inputs map[string]struct {
				Default *string  `yaml:"default"`
				Options []string `yaml:"options"`
			} `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(docs[0], &header); err != nil {
		t.Fatal(err)
	}
	inputs := header.Spec.Inputs
	if len(inputs) == 0 {
		t.Fatal("no spec: inputs")
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\[\[ inputs\.([a-z-]+) \]\]`).FindAllStringSubmatch(string(docs[1]), -1) {
		used[m[1]] = true
		if _, ok := inputs[m[1]]; !ok {
			t.Errorf("the job uses the undeclared input %s", m[1])
		}
	}
	for name := range inputs {
		if !used[name] {
			t.Errorf("input %s is declared but not used", name)
		}
	}
	if in := inputs["fail-on"]; !slices.Equal(in.Options, []string{"stop", "warn", "new", "none"}) {
		t.Errorf("fail-on options %v", in.Options)
	}
	var rest struct {
		Include []struct {
			Local string `yaml:"local"`
		} `yaml:"include"`
	}
	yaml.Unmarshal(docs[1], &rest)
	if len(rest.Include) != 1 || rest.Include[0].Local != "gitlab-ci/gate.gitlab-ci.yml" {
		t.Errorf("the component includes %+v, want the template", rest.Include)
	}
	job, ok := readJobs(t, docs[1])["buildgate"]
	if !ok || job.Extends != ".buildgate-scan" {
		t.Fatalf("no job buildgate extending .buildgate-scan: %+v", job)
	}
	tpl, _ := os.ReadFile("gate.gitlab-ci.yml")
	hidden := readJobs(t, tpl)[".buildgate-scan"]
	for v := range job.Variables {
		if _, ok := hidden.Variables[v]; !ok && v != "BUILDGATE_URL" {
			t.Errorf("the component sets %s, which the template does not know", v)
		}
		if !slices.Contains(mapValues(buildgateVars), v) && v != "BUILDGATE_VERSION" {
			t.Errorf("gate-gitlab does not read %s", v)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
