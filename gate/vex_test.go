package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/policy"
)

// The justification and impact statement of the VEX documents in
// internal/vex/testdata, which mark CVE-2024-5535 not_affected for
// libssl1.1.
const (
	vexJustification = "vulnerable_code_not_in_execute_path"
	vexImpact        = "no caller passes an empty ALPN list"
)

func vexDoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/vex/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// libssl5535 returns the CVE-2024-5535 finding of libssl1.1.
func libssl5535(t *testing.T, v *policy.Verdict) *policy.Finding {
	t.Helper()
	for i, f := range v.Findings {
		if f.TriggerID == "CVE-2024-5535+libssl1.1" {
			return &v.Findings[i]
		}
	}
	t.Fatal("no CVE-2024-5535+libssl1.1 finding")
	return nil
}

// TestVEX stores a VEX document for bullseye-minbase's repository and
// checks that it waives CVE-2024-5535 of libssl1.1 in the verdict and in
// every report, comes back in the exported VEX, stops applying once
// deleted, and that a run's own document does the same without being
// stored.
func TestVEX(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses bullseye-minbase")
	}
	g := startGate(t, nil)
	host := testRegistry(t)
	ref := host + "/vex/minbase:1"
	push(t, ref, sharedImage(t, "bullseye-minbase"))
	img := g.submitAndWait(t, ref)
	ctx := context.Background()
	digest := url.PathEscape(img.Digest)

	before := g.check(t, img.Digest, ref)
	if f := libssl5535(t, before); f.Action != policy.ActionStop || f.Allowlisted != nil || f.VEX != nil {
		t.Fatalf("before any VEX: %+v", f)
	}
	version0, _ := g.Verdicts.VEXVersion(ctx)

	// A document scoped to another repository does not apply.
	var other api.VEXDocument
	if err := g.c.Do(ctx, http.MethodPost, "/v1/vex?name=elsewhere&scope="+url.QueryEscape("other.example/*"), json.RawMessage(vexDoc(t, "libssl.openvex.json")), &other); err != nil {
		t.Fatal(err)
	}
	if f := libssl5535(t, g.check(t, img.Digest, ref)); f.VEX != nil {
		t.Fatalf("a document scoped to other.example/* applied: %+v", f.VEX)
	}

	var doc api.VEXDocument
	if err := g.c.Do(ctx, http.MethodPost, "/v1/vex?name=openssl&scope="+url.QueryEscape(host+"/vex/*"), json.RawMessage(vexDoc(t, "libssl.openvex.json")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != "openvex" || doc.Statements != 1 || doc.Name != "openssl" || doc.Scope != host+"/vex/*" {
		t.Fatalf("stored %+v", doc)
	}
	version1, _ := g.Verdicts.VEXVersion(ctx)
	if version1 == "" || version1 == version0 {
		t.Fatalf("the VEX version did not change: %q then %q", version0, version1)
	}

	// Storing the document re-evaluates the stored verdicts, with no check.
	deadline := time.Now().Add(time.Minute)
	for {
		stored, err := g.Store.Evaluation(ctx, img.Digest, ref, before.BundleID)
		if err == nil && strings.Contains(string(stored.Result), vexImpact) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stored verdict was not re-evaluated with the VEX document: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	after := g.check(t, img.Digest, ref)
	f := libssl5535(t, after)
	if f.VEX == nil || f.VEX.Status != "not_affected" || f.VEX.Justification != vexJustification || f.Allowlisted == nil || !f.Allowlisted.VEX {
		t.Fatalf("CVE-2024-5535 is not waived by the VEX statement: %+v %+v", f.Allowlisted, f.VEX)
	}
	if b, a := before.Counts(), after.Counts(); a.Stop != b.Stop-1 || a.Allowlisted != b.Allowlisted+1 {
		t.Fatalf("counts before %+v, after %+v: want one STOP fewer, one allowlisted more", b, a)
	}
	for _, format := range []string{"json", "junit", "sarif", "gitlab", "markdown"} {
		body, err := g.c.Raw(ctx, http.MethodGet, "/v1/images/"+digest+"/report?format="+format+"&tag="+url.QueryEscape(ref), nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), vexJustification) || !strings.Contains(string(body), vexImpact) {
			t.Errorf("the %s report does not show the VEX justification", format)
		}
	}

	exported, err := g.c.Raw(ctx, http.MethodGet, "/v1/images/"+digest+"/vex?tag="+url.QueryEscape(ref), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var ov struct {
		Context    string `json:"@context"`
		Statements []struct {
			Vulnerability struct{ Name string } `json:"vulnerability"`
			Products      []struct {
				ID            string `json:"@id"`
				Subcomponents []struct {
					ID string `json:"@id"`
				} `json:"subcomponents"`
			} `json:"products"`
			Status        string `json:"status"`
			Justification string `json:"justification"`
		} `json:"statements"`
	}
	if err := json.Unmarshal(exported, &ov); err != nil || !strings.Contains(ov.Context, "openvex") {
		t.Fatalf("the export is not OpenVEX: %v\n%s", err, exported)
	}
	found := false
	for _, s := range ov.Statements {
		if s.Vulnerability.Name == "CVE-2024-5535" && s.Status == "not_affected" && s.Justification == vexJustification &&
			len(s.Products) == 1 && strings.HasPrefix(s.Products[0].ID, "pkg:oci/minbase@sha256:") &&
			len(s.Products[0].Subcomponents) == 1 && strings.HasPrefix(s.Products[0].Subcomponents[0].ID, "pkg:deb/debian/libssl1.1@") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the export has no not_affected statement for CVE-2024-5535 of libssl1.1:\n%s", exported)
	}

	var list api.VEXDocumentList
	if err := g.c.Do(ctx, http.MethodGet, "/v1/vex", nil, &list); err != nil || len(list.Documents) != 2 || list.Documents[0].ID != doc.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	for _, id := range []string{doc.ID, other.ID} {
		if err := g.c.Do(ctx, http.MethodDelete, "/v1/vex/"+id, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f := libssl5535(t, g.check(t, img.Digest, ref)); f.VEX != nil || f.Allowlisted != nil {
		t.Fatalf("the deleted document still applies: %+v", f)
	}
	if v, _ := g.Verdicts.VEXVersion(ctx); v != version0 {
		t.Fatalf("VEX version %q after deleting every document, want %q", v, version0)
	}
	err = g.c.Do(ctx, http.MethodDelete, "/v1/vex/"+doc.ID, nil, nil)
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Fatalf("deleting again: %v", err)
	}

	// A run's CycloneDX document applies to that check alone.
	var run policy.Verdict
	if err := g.c.Do(ctx, http.MethodPost, "/v1/images/"+digest+"/check?tag="+url.QueryEscape(ref), json.RawMessage(vexDoc(t, "libssl.cdx.json")), &run); err != nil {
		t.Fatal(err)
	}
	if f := libssl5535(t, &run); f.VEX == nil || f.VEX.Justification != vexJustification || f.VEX.ImpactStatement != vexImpact || f.Allowlisted == nil {
		t.Fatalf("the run's CycloneDX VEX did not waive CVE-2024-5535: %+v", f.VEX)
	}
	stored, err := g.Store.Evaluation(ctx, img.Digest, ref, run.BundleID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.Result), vexImpact) {
		t.Fatal("the verdict of a check with a run's VEX document was stored")
	}
}

// TestVEXRefusesBadDocuments: a document that does not parse, names no
// product or uses an unknown status is refused with the reason, whether
// stored or sent with a check.
func TestVEXRefusesBadDocuments(t *testing.T) {
	g := startGate(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ name, doc, want string }{
		{"does not parse", `{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{`, "not JSON"},
		{"no product", `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "statements": [{"vulnerability": {"name": "CVE-2024-5535"}, "products": [], "status": "fixed"}]}`, "names no product"},
		{"unknown status", `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "statements": [{"vulnerability": {"name": "CVE-2024-5535"}, "products": [{"@id": "pkg:deb/debian/libssl1.1"}], "status": "fine"}]}`, `unknown status "fine"`},
		{"CycloneDX unknown state", `{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-2024-5535", "analysis": {"state": "fine"}, "affects": [{"ref": "pkg:deb/debian/libssl1.1"}]}]}`, `unknown analysis state "fine"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.c.Raw(ctx, http.MethodPost, "/v1/vex", strings.NewReader(tc.doc), "application/json")
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("POST /v1/vex = %v, want 400 saying %q", err, tc.want)
			}
			_, err = g.c.Raw(ctx, http.MethodPost, "/v1/images/sha256:"+strings.Repeat("a", 64)+"/check", strings.NewReader(tc.doc), "application/json")
			if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("POST check = %v, want 400 saying %q", err, tc.want)
			}
		})
	}
	_, err := g.c.Raw(ctx, http.MethodPost, "/v1/vex?scope="+url.QueryEscape("ghcr.io/acme/app:1.2"), bytes.NewReader(vexDoc(t, "libssl.openvex.json")), "application/json")
	if err == nil || !strings.Contains(err.Error(), "without tag or digest") {
		t.Fatalf("a scope with a tag: %v", err)
	}
	if docs, err := g.Verdicts.VEXDocuments(ctx); err != nil || len(docs) != 0 {
		t.Fatalf("refused documents were stored: %v %+v", err, docs)
	}
}
