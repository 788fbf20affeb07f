package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anchore/grype/grype"
	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/matcher"
	"github.com/anchore/grype/grype/pkg"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func (g *testGate) do(t *testing.T, method, path, contentType, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (g *testGate) check(t *testing.T, digest, tag string) *policy.Verdict {
	t.Helper()
	var v policy.Verdict
	if code := g.get(t, "/v1/images/"+url.PathEscape(digest)+"/check?tag="+url.QueryEscape(tag), &v); code != 200 {
		t.Fatalf("check %s: %d", digest, code)
	}
	return &v
}

const passAllYAML = `
id: pass-all
name: pass all
version: "1_0"
policies:
  - id: p1
    name: only warn
    version: "1_0"
    rules:
      - id: r1
        gate: vulnerabilities
        trigger: package
        action: WARN
        params:
          - {name: package_type, value: all}
          - {name: severity_comparison, value: ">="}
          - {name: severity, value: critical}
whitelists: []
mappings:
  - {id: m1, name: all, registry: "*", repository: "*", image: {type: tag, value: "*"}, policy_id: p1, whitelist_ids: []}
`

func TestPolicyLifecycleAndReevaluation(t *testing.T) {
	g := startGate(t, nil)
	host := testRegistry(t)
	ref := host + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)

	// The default bundle is installed and active.
	var list api.PolicyList
	g.do(t, "GET", "/v1/policies", "", "", &list)
	if len(list.Policies) != 1 || !list.Policies[0].Active {
		t.Fatalf("policies on first start = %+v", list.Policies)
	}
	defaultID := list.Policies[0].ID
	before := g.check(t, img.Digest, ref)
	if before.FinalAction != policy.ActionStop || before.BundleID != defaultID {
		t.Fatalf("default verdict = %s under %s", before.FinalAction, before.BundleID)
	}

	// Invalid bundles are refused with the policy, rule and parameter named,
	// and nothing stored changes.
	bad := strings.Replace(passAllYAML, "value: critical", "value: urgent", 1)
	var er api.ErrorResponse
	if code := g.do(t, "POST", "/v1/policies", "application/yaml", bad, &er); code != 400 ||
		!strings.Contains(er.Error.Message, `"p1"`) || !strings.Contains(er.Error.Message, `"r1"`) || !strings.Contains(er.Error.Message, "severity") {
		t.Fatalf("invalid bundle = %d %q", code, er.Error.Message)
	}
	g.do(t, "GET", "/v1/policies", "", "", &list)
	if len(list.Policies) != 1 {
		t.Fatalf("a refused bundle was stored: %+v", list.Policies)
	}

	// A YAML bundle, saved then updated, keeps versions.
	var p api.Policy
	if code := g.do(t, "POST", "/v1/policies", "application/yaml", passAllYAML, &p); code != 201 || p.ID != "pass-all" || p.Version != 1 || p.Active {
		t.Fatalf("create = %d %+v", code, p)
	}
	renamed := strings.Replace(passAllYAML, "name: pass all", "name: pass all, renamed", 1)
	if code := g.do(t, "PUT", "/v1/policies/pass-all", "application/yaml", renamed, &p); code != 200 || p.Version != 2 {
		t.Fatalf("update = %d %+v", code, p)
	}
	var versions api.PolicyVersionList
	g.do(t, "GET", "/v1/policies/pass-all/versions", "", "", &versions)
	if len(versions.Versions) != 2 || versions.Versions[0].Version != 2 {
		t.Fatalf("versions = %+v", versions)
	}
	// A named policy evaluates without being active.
	var v policy.Verdict
	g.get(t, "/v1/images/"+url.PathEscape(img.Digest)+"/check?tag="+url.QueryEscape(ref)+"&policy=pass-all", &v)
	if v.FinalAction != policy.ActionWarn || v.BundleVersion != 2 {
		t.Fatalf("check under pass-all = %s v%d", v.FinalAction, v.BundleVersion)
	}

	// Activating it recomputes the stored verdict without a new pull.
	if code := g.do(t, "POST", "/v1/policies/pass-all/activate", "", "", nil); code != 200 {
		t.Fatalf("activate = %d", code)
	}
	waitFor(t, "the stored verdict to follow the new active bundle", 30*time.Second, func() bool {
		e, err := g.Store.Evaluation(context.Background(), img.Digest, ref, "pass-all")
		return err == nil && e.FinalAction == "warn" && e.PolicyVersion == 2
	})
	if code := g.do(t, "DELETE", "/v1/policies/pass-all", "", "", &er); code != 400 || !strings.Contains(er.Error.Message, "active") {
		t.Fatalf("deleting the active bundle = %d %q", code, er.Error.Message)
	}
	if code := g.do(t, "DELETE", "/v1/policies/"+defaultID, "", "", nil); code != 204 {
		t.Fatalf("deleting an inactive bundle = %d", code)
	}
}

func TestReevaluationAfterDBImport(t *testing.T) {
	g := startGate(t, nil)
	host := testRegistry(t)
	ref := host + "/team/dpkg:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)
	stored := func() *policy.Verdict {
		g.check(t, img.Digest, ref)
		e, err := g.Store.Evaluation(context.Background(), img.Digest, ref, "2c53a13c-1765-11e8-82ef-23527761d060")
		if err != nil {
			t.Fatal(err)
		}
		var v policy.Verdict
		json.Unmarshal(e.Result, &v)
		return &v
	}
	if v := stored(); v.FinalAction != policy.ActionStop {
		t.Fatalf("before: %s", v.FinalAction)
	}

	// A DB without Debian's records, built later: the stored verdict is
	// recomputed from the stored SBOM and no longer stops on vulnerabilities.
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	vd := filepath.Join(shared, "vulndata", "workspaces")
	res, err := vulndb.Build(context.Background(), vulndb.BuildConfig{OutDir: out, Timestamp: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		Providers: []vulndb.ProviderDir{{Name: "nvd", Dir: filepath.Join(vd, "nvd")}, {Name: "github", Dir: filepath.Join(vd, "github")}}})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.ReadFile(res.ArchivePath)
	if code := g.do(t, "POST", "/v1/db/import", "application/octet-stream", string(f), nil); code != 200 {
		t.Fatalf("import = %d", code)
	}
	waitFor(t, "re-matching and re-evaluation", 60*time.Second, func() bool {
		e, err := g.Store.Evaluation(context.Background(), img.Digest, ref, "2c53a13c-1765-11e8-82ef-23527761d060")
		return err == nil && e.DBBuilt.Equal(res.Built)
	})
	e, _ := g.Store.Evaluation(context.Background(), img.Digest, ref, "2c53a13c-1765-11e8-82ef-23527761d060")
	var v policy.Verdict
	json.Unmarshal(e.Result, &v)
	for _, f := range v.Findings {
		if f.Gate == "vulnerabilities" && f.Trigger == "package" {
			t.Fatalf("a vulnerability finding survived a DB without Debian data: %s", f.Message)
		}
	}
	var vulns api.VulnerabilityList
	g.get(t, "/v1/images/"+url.PathEscape(img.Digest)+"/vulnerabilities", &vulns)
	if len(vulns.Vulnerabilities) != 0 {
		t.Errorf("stored matches were not replaced: %d remain", len(vulns.Vulnerabilities))
	}
}

// TestSharedImages analyses the shared Debian images through a registry
// and checks (1) parity: the (vulnerability, package, version) set the gate
// stores equals what grype's own library returns for the same image and DB,
// computed here; (2) the default bundle's evaluation against golden files
// (go test ./gate -run SharedImages -update).
func TestSharedImages(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses the 60 MB shared images")
	}
	g := startGate(t, nil)
	g.Verdicts.Now = func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }
	// a gate without the layer cache catalogs every image whole
	plain := startGate(t, func(c *Config) { c.LayerCacheSize = 0 })
	plain.Verdicts.Now = g.Verdicts.Now
	host := testRegistry(t)
	shared, _ := vulndbtest.SharedDir()
	dockerfile, _ := os.ReadFile(filepath.Join(shared, "images", "bookworm-app.Dockerfile"))
	for _, tc := range []struct{ image, dockerfile string }{{"bullseye-minbase", ""}, {"bookworm-app", string(dockerfile)}} {
		t.Run(tc.image, func(t *testing.T) {
			ref := host + "/golden/" + tc.image + ":latest"
			push(t, ref, sharedImage(t, tc.image))
			sub, err := g.c.SubmitImage(context.Background(), api.SubmitImageRequest{Ref: ref, Dockerfile: tc.dockerfile})
			if err != nil {
				t.Fatal(err)
			}
			img, err := g.c.WaitAnalyzed(context.Background(), sub.Digest, time.Minute, nil)
			if err != nil || img.Status != api.StatusAnalyzed {
				t.Fatalf("analysis: %v %+v", err, img)
			}
			want := grypeMatches(t, g.VulnDB.Status().Path, filepath.Join(shared, "images", tc.image+".docker.tar"))
			compareMatches(t, g, img.Digest, want)
			sameVerdictFromStore(t, g, img.Digest)

			// the image plus one small layer, as a pipeline builds it:
			// the pull does not download the base layers, whose tars
			// are cached, and the matches are the same
			plus, err := mutate.AppendLayers(sharedImage(t, tc.image), layerWith(t, map[string]string{"etc/build-info": "built\n"}))
			if err != nil {
				t.Fatal(err)
			}
			push(t, ref+"-plus", plus)
			next := g.submitAndWait(t, ref+"-plus")
			if next.Status != api.StatusAnalyzed || next.Digest == img.Digest {
				t.Fatalf("analysis of the image plus a layer: %+v", next)
			}
			compareMatches(t, g, next.Digest, want)

			// the plus image's SBOM comes from the image's (the layer
			// adds nothing syft looks for): the packages, matches and
			// verdict are a whole catalog's
			whole := plain.submitAndWait(t, ref+"-plus")
			if whole.Status != api.StatusAnalyzed || whole.Digest != next.Digest {
				t.Fatalf("analysis of the image plus a layer without the layer cache: %+v", whole)
			}
			for _, path := range []string{"/packages", "/vulnerabilities?type=all"} {
				var got, want any
				g.get(t, "/v1/images/"+url.PathEscape(next.Digest)+path, &got)
				plain.get(t, "/v1/images/"+url.PathEscape(next.Digest)+path, &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s of the image plus a layer differ from a whole catalog's", path)
				}
			}
			plusTag := "docker.io/buildgate/" + tc.image + ":plus"
			if got, want := g.check(t, next.Digest, plusTag), plain.check(t, next.Digest, plusTag); !reflect.DeepEqual(got, want) {
				t.Errorf("the verdict on the image plus a layer differs from a whole catalog's:\n%+v\n%+v", got, want)
			}

			v := g.check(t, img.Digest, "docker.io/buildgate/"+tc.image+":latest")
			gotJSON, _ := json.MarshalIndent(v, "", "  ")
			golden := filepath.Join("testdata", "golden", "default-"+tc.image+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, append(gotJSON, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantJSON, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(wantJSON), bytes.TrimSpace(gotJSON)) {
				t.Errorf("evaluation differs from %s (run with -update after checking the change)", golden)
			}
		})
	}
}

// sameVerdictFromStore: the verdict the gate stored after analysing
// digest, evaluated from the analysis in memory, is the one the stored
// analysis gives, and from the same inputs (a check answers from it).
func sameVerdictFromStore(t *testing.T, g *testGate, digest string) {
	t.Helper()
	ctx := context.Background()
	rec, err := g.Store.ActivePolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := g.Store.Image(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	tag := "" // the verdict of an image without tags is the digest's
	if len(img.Tags) > 0 {
		tag = img.Tags[0]
	}
	var atAnalysis *buildgate.StoredEvaluation
	waitFor(t, "the verdict evaluated after the analysis", time.Minute, func() bool {
		atAnalysis, err = g.Store.Evaluation(ctx, digest, tag, rec.ID)
		return err == nil
	})
	g.Verdicts.Reevaluate(ctx, digest) // from the stored analysis
	fromStore, err := g.Store.Evaluation(ctx, digest, tag, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var x, y policy.Verdict
	if err := errors.Join(json.Unmarshal(atAnalysis.Result, &x), json.Unmarshal(fromStore.Result, &y)); err != nil {
		t.Fatal(err)
	}
	x.EvaluatedAt, y.EvaluatedAt = time.Time{}, time.Time{} // the gate's clock may run
	if fromStore.Inputs != atAnalysis.Inputs || !reflect.DeepEqual(x, y) {
		t.Errorf("the verdict evaluated after the analysis differs from the stored analysis's (inputs %s, %s):\n%s\n%s",
			atAnalysis.Inputs, fromStore.Inputs, atAnalysis.Result, fromStore.Result)
	}
}

// compareMatches fails t unless the matches the gate stores for digest
// are want, grype's.
func compareMatches(t *testing.T, g *testGate, digest string, want map[string]bool) {
	t.Helper()
	var vulns api.VulnerabilityList
	g.get(t, "/v1/images/"+url.PathEscape(digest)+"/vulnerabilities?type=all", &vulns)
	got := map[string]bool{}
	for _, v := range vulns.Vulnerabilities {
		got[v.ID+" "+v.PackageName+" "+v.PackageVersion] = true
	}
	if len(want) == 0 || !maps.Equal(got, want) {
		var missing, extra []string
		for k := range want {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		for k := range got {
			if !want[k] {
				extra = append(extra, k)
			}
		}
		t.Errorf("the gate's matches differ from grype's (%d vs %d): missing %v, extra %v", len(got), len(want), missing, extra)
	}
}

// grypeMatches runs grype's library as its CLI does on an image archive,
// against the DB at dbPath.
func grypeMatches(t *testing.T, dbPath, archive string) map[string]bool {
	t.Helper()
	rd, err := v6.NewReader(v6.Config{DBDirPath: filepath.Dir(dbPath)})
	if err != nil {
		t.Fatal(err)
	}
	vp := v6.NewVulnerabilityProvider(rd)
	defer vp.Close()
	packages, pkgCtx, _, err := pkg.Provide("docker-archive:"+archive, vulndb.ProviderConfig())
	if err != nil {
		t.Fatal(err)
	}
	vm := grype.VulnerabilityMatcher{
		VulnerabilityProvider: vp,
		Matchers:              matcher.NewDefaultMatchers(vulndb.MatcherConfig()),
		IgnoreRules:           vulndb.IgnoreRules(),
	}
	remaining, _, err := vm.FindMatchesContext(context.Background(), packages, pkgCtx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range remaining.Sorted() {
		out[m.Vulnerability.ID+" "+m.Package.Name+" "+m.Package.Version] = true
	}
	return out
}
