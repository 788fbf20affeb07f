package step_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

// TestVEXFile gates bullseye-minbase with --vex: an OpenVEX and a
// CycloneDX document marking CVE-2024-5535 not_affected for libssl1.1
// each take that finding out of the STOP ones, and every report the step
// writes shows the justification.
func TestVEXFile(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	ref := reg.Push(t, "team/minbase:1", steptest.SharedImage(t, "bullseye-minbase"))
	root, err := steptest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	stops := func(t *testing.T, r stepRun) (int, *policy.Finding) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(r.out, report.FileName(report.FormatJSON)))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Evaluation policy.Evaluation }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for i, f := range doc.Evaluation.Findings {
			if f.TriggerID == "CVE-2024-5535+libssl1.1" {
				return doc.Evaluation.Counts().Stop, &doc.Evaluation.Findings[i]
			}
		}
		t.Fatal("no CVE-2024-5535+libssl1.1 finding in buildgate.json")
		return 0, nil
	}
	plain := runStep(t, gateEnv(g), "--image", ref)
	wantLine(t, plain, step.ExitFail, "buildgate: FAIL: policy STOP: ")
	stopsBefore, f := stops(t, plain)
	if f.Allowlisted != nil {
		t.Fatalf("CVE-2024-5535 waived without VEX: %+v", f.Allowlisted)
	}
	for _, doc := range []string{"libssl.openvex.json", "libssl.cdx.json"} {
		t.Run(doc, func(t *testing.T) {
			r := runStep(t, gateEnv(g), "--image", ref, "--vex", filepath.Join(root, "internal", "vex", "testdata", doc))
			wantLine(t, r, step.ExitFail, "buildgate: FAIL: policy STOP: ")
			n, f := stops(t, r)
			if n != stopsBefore-1 || f.Allowlisted == nil || f.VEX == nil || f.VEX.Source != "this run's VEX document" {
				t.Fatalf("%d STOP findings (without VEX %d); CVE-2024-5535: %+v %+v", n, stopsBefore, f.Allowlisted, f.VEX)
			}
			for _, format := range report.Formats() {
				b, _ := os.ReadFile(filepath.Join(r.out, report.FileName(format)))
				if !strings.Contains(string(b), "vulnerable_code_not_in_execute_path") || !strings.Contains(string(b), "no caller passes an empty ALPN list") {
					t.Errorf("%s does not show the VEX justification", report.FileName(format))
				}
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vex.yaml")
		os.WriteFile(path, []byte("statements: []\n"), 0o644)
		r := runStep(t, gateEnv(g), "--image", ref, "--vex", path)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: the VEX document "+path+" is not JSON")
	})
	t.Run("unknown status", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vex.json")
		os.WriteFile(path, []byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "statements": [
			{"vulnerability": {"name": "CVE-2024-5535"}, "products": [{"@id": "pkg:deb/debian/libssl1.1"}], "status": "fine"}]}`), 0o644)
		r := runStep(t, gateEnv(g), "--image", ref, "--vex", path)
		wantLine(t, r, step.ExitError, "buildgate: ERROR: ", `VEX statement 1 (CVE-2024-5535) has the unknown status "fine"`)
	})
}
