package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const schemaDir = "testdata/schemas"

var (
	schemaOnce   sync.Once
	sarifSchema  *jsonschema.Schema
	gitlabSchema *jsonschema.Schema
	schemaErr    error
)

// compileSchemas compiles the SARIF (draft-04) and GitLab (draft-07)
// schemas from their files, asserting formats (uri, date-time).
func compileSchemas(t testing.TB) {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		sarifSchema, schemaErr = c.Compile(filepath.Join(schemaDir, "sarif-schema-2.1.0.json"))
		if schemaErr != nil {
			return
		}
		gitlabSchema, schemaErr = c.Compile(filepath.Join(schemaDir, "gitlab-container-scanning-report-format.json"))
	})
	if schemaErr != nil {
		t.Fatalf("compiling schemas: %v", schemaErr)
	}
}

func validateJSON(t testing.TB, sch *jsonschema.Schema, what string, data []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", what, err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s does not validate against its schema: %v", what, err)
	}
}

// validateSARIF validates a SARIF log against the SARIF 2.1.0 schema.
func validateSARIF(t testing.TB, data []byte) {
	t.Helper()
	compileSchemas(t)
	validateJSON(t, sarifSchema, "SARIF report", data)
}

// validateGitLab validates a report against GitLab's container-scanning
// schema.
func validateGitLab(t testing.TB, data []byte) {
	t.Helper()
	compileSchemas(t)
	validateJSON(t, gitlabSchema, "GitLab report", data)
}

// xmlNode is any XML element, for checking a document's structure.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xmlNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// xsdElement is what junit.xsd says of an element: its required and
// optional attributes and the children it may hold.
type xsdElement struct {
	required, optional []string
	children           []string
	timeAttrs          []string // attributes of type SUREFIRE_TIME
}

// junitXSD mirrors testdata/schemas/junit.xsd (Jenkins xUnit junit-10).
var junitXSD = map[string]xsdElement{
	"testsuites": {optional: []string{"name", "time", "tests", "failures", "errors"}, children: []string{"testsuite"}, timeAttrs: []string{"time"}},
	"testsuite": {
		required:  []string{"name", "tests", "failures", "errors"},
		optional:  []string{"group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url", "version"},
		children:  []string{"testsuite", "properties", "testcase", "system-out", "system-err"},
		timeAttrs: []string{"time"},
	},
	"properties": {children: []string{"property"}},
	"property":   {required: []string{"name", "value"}},
	"testcase": {
		required: []string{"name"}, optional: []string{"time", "classname", "group"},
		children: []string{"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError", "system-out", "system-err"},
	},
	"failure":    {optional: []string{"type", "message"}},
	"error":      {optional: []string{"type", "message"}},
	"skipped":    {optional: []string{"type", "message"}},
	"system-out": {},
	"system-err": {},
}

var surefireTime = regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?$`)

// junitStats are the counts a JUnit document declares and holds.
type junitStats struct {
	tests, failures int
}

// checkJUnit checks a JUnit document against the structure junit.xsd
// describes (elements, required attributes, SUREFIRE_TIME) and that the
// tests and failures counts of the root and every suite are right. It
// returns the root's counts.
func checkJUnit(t testing.TB, data []byte) junitStats {
	t.Helper()
	var root xmlNode
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("JUnit report is not XML: %v", err)
	}
	if root.XMLName.Local != "testsuites" {
		t.Fatalf("JUnit root is <%s>, want <testsuites>", root.XMLName.Local)
	}
	var walk func(n *xmlNode, path string)
	walk = func(n *xmlNode, path string) {
		path += "/" + n.XMLName.Local
		def, ok := junitXSD[n.XMLName.Local]
		if !ok {
			t.Errorf("%s: element not in junit.xsd", path)
			return
		}
		allowed := map[string]bool{}
		for _, a := range append(append([]string{}, def.required...), def.optional...) {
			allowed[a] = true
		}
		for _, a := range def.required {
			if _, ok := n.attr(a); !ok {
				t.Errorf("%s: missing required attribute %q", path, a)
			}
		}
		for _, a := range n.Attrs {
			if !allowed[a.Name.Local] {
				t.Errorf("%s: attribute %q not in junit.xsd", path, a.Name.Local)
			}
		}
		for _, a := range def.timeAttrs {
			if v, ok := n.attr(a); ok && !surefireTime.MatchString(v) {
				t.Errorf("%s: %s=%q is not a SUREFIRE_TIME", path, a, v)
			}
		}
		kids := map[string]bool{}
		for _, c := range def.children {
			kids[c] = true
		}
		for i := range n.Children {
			c := &n.Children[i]
			if !kids[c.XMLName.Local] {
				t.Errorf("%s: <%s> may not appear here", path, c.XMLName.Local)
				continue
			}
			walk(c, path)
		}
	}
	walk(&root, "")

	var total junitStats
	for i := range root.Children {
		s := &root.Children[i]
		var st junitStats
		for _, c := range s.Children {
			if c.XMLName.Local != "testcase" {
				continue
			}
			st.tests++
			for _, cc := range c.Children {
				if cc.XMLName.Local == "failure" {
					st.failures++
					break
				}
			}
		}
		name, _ := s.attr("name")
		checkCount(t, "testsuite "+name, s, "tests", st.tests)
		checkCount(t, "testsuite "+name, s, "failures", st.failures)
		checkCount(t, "testsuite "+name, s, "errors", 0)
		total.tests += st.tests
		total.failures += st.failures
	}
	checkCount(t, "testsuites", &root, "tests", total.tests)
	checkCount(t, "testsuites", &root, "failures", total.failures)
	return total
}

func checkCount(t testing.TB, what string, n *xmlNode, attr string, want int) {
	t.Helper()
	v, ok := n.attr(attr)
	if !ok {
		t.Errorf("%s: no %s attribute", what, attr)
		return
	}
	got, err := strconv.Atoi(v)
	if err != nil || got != want {
		t.Errorf("%s: %s=%q, want %d", what, attr, v, want)
	}
}

// xmllint validates a JUnit document with xmllint --schema against
// junit.xsd. It reports false when xmllint is not installed (apt package
// libxml2-utils).
func xmllint(t testing.TB, data []byte) bool {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		return false
	}
	f := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--schema", filepath.Join(schemaDir, "junit.xsd"), f).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint rejects the JUnit report: %v\n%s", err, out)
	}
	return true
}

// render renders in in a format, failing the test on error.
func render(t testing.TB, format string, in Input) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(format, &buf, in); err != nil {
		t.Fatalf("Render(%s): %v", format, err)
	}
	return buf.Bytes()
}

// sarifDoc is the part of a SARIF log the tests read.
type sarifDoc struct {
	Runs []struct {
		Tool struct {
			Driver struct {
				Rules []struct {
					ID         string `json:"id"`
					Properties struct {
						SecuritySeverity string   `json:"security-severity"`
						Tags             []string `json:"tags"`
					} `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					Name string `json:"name"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Suppressions        []struct {
				Kind          string `json:"kind"`
				Status        string `json:"status"`
				Justification string `json:"justification"`
			} `json:"suppressions"`
			BaselineState string `json:"baselineState"`
			Properties    struct {
				Outcome string `json:"outcome"`
			} `json:"properties"`
		} `json:"results"`
		Properties struct {
			Baseline *struct {
				Digest string `json:"digest"`
			} `json:"baseline"`
			Verdict        string `json:"verdict"`
			Truncated      bool   `json:"truncated"`
			ResultsTotal   int    `json:"resultsTotal"`
			ResultsKept    int    `json:"resultsKept"`
			ResultsDropped int    `json:"resultsDropped"`
			Counts         struct {
				Stop        int `json:"stop"`
				Warn        int `json:"warn"`
				Go          int `json:"go"`
				Allowlisted int `json:"allowlisted"`
			} `json:"counts"`
		} `json:"properties"`
	} `json:"runs"`
}

func parseSARIF(t testing.TB, data []byte) *sarifDoc {
	t.Helper()
	var d sarifDoc
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("parsing SARIF: %v", err)
	}
	if len(d.Runs) != 1 {
		t.Fatalf("SARIF has %d runs, want 1", len(d.Runs))
	}
	return &d
}

// levels counts a SARIF run's results by level.
func (d *sarifDoc) levels() map[string]int {
	out := map[string]int{}
	for _, r := range d.Runs[0].Results {
		out[r.Level]++
	}
	return out
}

// gitlabDoc is the part of a GitLab report the tests read.
type gitlabDoc struct {
	Version string `json:"version"`
	Scan    struct {
		Status string `json:"status"`
	} `json:"scan"`
	Vulnerabilities []struct {
		ID          string `json:"id"`
		Severity    string `json:"severity"`
		Identifiers []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identifiers"`
		Location struct {
			Dependency struct {
				Package struct {
					Name string `json:"name"`
				} `json:"package"`
				Version string `json:"version"`
			} `json:"dependency"`
		} `json:"location"`
	} `json:"vulnerabilities"`
}

func parseGitLab(t testing.TB, data []byte) *gitlabDoc {
	t.Helper()
	var d gitlabDoc
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("parsing GitLab report: %v", err)
	}
	return &d
}

// checkAll renders every format of in, validates what can be validated
// and returns the outputs by format.
func checkAll(t testing.TB, in Input, lint bool) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range Formats() {
		out[f] = render(t, f, in)
	}
	validateSARIF(t, out[FormatSARIF])
	validateGitLab(t, out[FormatGitLab])
	checkJUnit(t, out[FormatJUnit])
	if lint {
		xmllint(t, out[FormatJUnit])
	}
	if !json.Valid(out[FormatJSON]) {
		t.Fatalf("JSON report is not JSON")
	}
	return out
}
