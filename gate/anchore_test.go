package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/server/anchore"
)

// The Anchore v1 subset, replayed as anchore-cli 0.9.4 and the Anchore and
// Sysdig Jenkins plugins send it (shared/contracts/anchore-v1.md), against
// a real gate analysing ../shared/images/bullseye-minbase.

// anchoreClient sends requests to one base path with one way of
// authenticating, as one Anchore client does.
type anchoreClient struct {
	g    *testGate
	base string
	auth func(*http.Request)
}

type anchoreReply struct {
	status int
	header http.Header
	body   []byte
}

func anchoreBasic(token, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(token, password) }
}

func anchoreBearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// do sends method base+path; body is nil, a string sent as is, or a
// value sent as JSON (also on GET, as anchore-cli's fallback does).
func (a anchoreClient) do(t *testing.T, method, path string, body any) anchoreReply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, a.g.URL+a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.auth != nil {
		a.auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return anchoreReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// ok fails unless the anchoreReply is a success (anchore-cli: 200..298) and
// decodes it into out.
func (r anchoreReply) ok(t *testing.T, what string, out any) {
	t.Helper()
	if r.status < 200 || r.status > 298 {
		t.Fatalf("%s = %d %s", what, r.status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s: decoding %s: %v", what, r.body, err)
		}
	}
}

// anchoreError is Anchore's error answer.
type anchoreError struct {
	Message  string `json:"message"`
	HTTPCode int    `json:"httpcode"`
	Detail   struct {
		ErrorCodes []string `json:"error_codes"`
	} `json:"detail"`
}

// failed checks an Anchore error answer and returns its message.
func (r anchoreReply) failed(t *testing.T, what string, status int) string {
	t.Helper()
	var e anchoreError
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != status || e.HTTPCode != status || e.Message == "" || e.Detail.ErrorCodes == nil {
		t.Fatalf("%s = %d %s, want Anchore's error with %d", what, r.status, r.body, status)
	}
	if status == 401 {
		r.challenged(t, what, false)
	}
	return e.Message
}

// challenged fails unless the reply is a 401 challenging Bearer, and Basic
// exactly when basic is set.
func (r anchoreReply) challenged(t *testing.T, what string, basic bool) {
	t.Helper()
	want := []string{`Bearer realm="buildgate"`}
	if basic {
		want = append(want, `Basic realm="buildgate"`)
	}
	if got := r.header.Values("WWW-Authenticate"); r.status != 401 || !slices.Equal(got, want) {
		t.Fatalf("%s = %d challenging %q, want 401 challenging %q", what, r.status, got, want)
	}
}

// jenkinsPlugin sends requests as the Anchore Jenkins plugin's Apache
// HttpClient does: its User-Agent, then auth (nil: none).
func jenkinsPlugin(auth func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("User-Agent", "Apache-HttpClient/4.5.14 (Java/17.0.12)")
		if auth != nil {
			auth(r)
		}
	}
}

// The fields of Anchore's records that clients read.
type anchoreImage struct {
	ImageDigest    string            `json:"imageDigest"`
	ParentDigest   string            `json:"parentDigest"`
	AnalysisStatus string            `json:"analysis_status"`
	ImageStatus    string            `json:"image_status"`
	ImageType      string            `json:"image_type"`
	AnalyzedAt     *string           `json:"analyzed_at"`
	CreatedAt      string            `json:"created_at"`
	LastUpdated    string            `json:"last_updated"`
	Annotations    map[string]string `json:"annotations"`
	ImageContent   *struct {
		Metadata *struct {
			DockerfileMode *string `json:"dockerfile_mode"`
			Distro         *string `json:"distro"`
			DistroVersion  *string `json:"distro_version"`
			ImageSize      *int64  `json:"image_size"`
			Arch           *string `json:"arch"`
			LayerCount     *int    `json:"layer_count"`
		} `json:"metadata"`
	} `json:"image_content"`
	ImageDetail []struct {
		ImageID       string  `json:"imageId"`
		FullTag       string  `json:"fulltag"`
		FullDigest    string  `json:"fulldigest"`
		Digest        string  `json:"digest"`
		Registry      string  `json:"registry"`
		Repo          string  `json:"repo"`
		Tag           string  `json:"tag"`
		TagDetectedAt string  `json:"tag_detected_at"`
		CreatedAt     string  `json:"created_at"`
		LastUpdated   string  `json:"last_updated"`
		Dockerfile    *string `json:"dockerfile"`
	} `json:"image_detail"`
}

type anchoreCVSS struct {
	BaseScore           float64 `json:"base_score"`
	ExploitabilityScore float64 `json:"exploitability_score"`
	ImpactScore         float64 `json:"impact_score"`
}

type anchoreVulns struct {
	ImageDigest       string `json:"imageDigest"`
	VulnerabilityType string `json:"vulnerability_type"`
	Vulnerabilities   []struct {
		Vuln           string `json:"vuln"`
		Package        string `json:"package"`
		PackageName    string `json:"package_name"`
		PackageVersion string `json:"package_version"`
		PackageType    string `json:"package_type"`
		PackagePath    string `json:"package_path"`
		Severity       string `json:"severity"`
		Fix            string `json:"fix"`
		URL            string `json:"url"`
		Feed           string `json:"feed"`
		FeedGroup      string `json:"feed_group"`
		NVDData        *[]struct {
			ID     string      `json:"id"`
			CVSSv2 anchoreCVSS `json:"cvss_v2"`
			CVSSv3 anchoreCVSS `json:"cvss_v3"`
		} `json:"nvd_data"`
		VendorData *[]json.RawMessage `json:"vendor_data"`
	} `json:"vulnerabilities"`
}

// anchoreCheck is /check's answer: [{digest: {fulltag: [entry]}}].
type anchoreCheck []map[string]map[string][]struct {
	PolicyID       string          `json:"policyId"`
	Status         string          `json:"status"`
	LastEvaluation string          `json:"last_evaluation"`
	Detail         json.RawMessage `json:"detail"`
}

type anchoreCheckDetail struct {
	Policy struct {
		ID       string `json:"id"`
		Policies []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"policies"`
	} `json:"policy"`
	Result struct {
		ImageID           string                     `json:"image_id"`
		Tag               string                     `json:"tag"`
		FinalAction       string                     `json:"final_action"`
		FinalActionReason string                     `json:"final_action_reason"`
		Result            map[string]json.RawMessage `json:"result"`
	} `json:"result"`
}

type anchoreTable struct {
	Result struct {
		Header      []string `json:"header"`
		RowCount    int      `json:"row_count"`
		Rows        [][]any  `json:"rows"`
		FinalAction string   `json:"final_action"`
	} `json:"result"`
}

// entry returns the one evaluation of a /check answer for digest and tag.
func (c anchoreCheck) entry(t *testing.T, digest, tag string) (policyID, status, last string, detail json.RawMessage) {
	t.Helper()
	if len(c) != 1 || len(c[0][digest][tag]) != 1 {
		t.Fatalf("check answer lacks [{%s: {%s: [...]}}]: %+v", digest, tag, c)
	}
	e := c[0][digest][tag][0]
	return e.PolicyID, e.Status, e.LastEvaluation, e.Detail
}

// table returns the evaluation table of a detailed /check answer.
func (d anchoreCheckDetail) table(t *testing.T) anchoreTable {
	t.Helper()
	raw, ok := d.Result.Result[d.Result.ImageID]
	if !ok {
		t.Fatalf("detail.result.result lacks the image id %q: %v", d.Result.ImageID, d.Result.Result)
	}
	var tb anchoreTable
	if err := json.Unmarshal(raw, &tb); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tb.Result.Header, []string{"Image_Id", "Repo_Tag", "Trigger_Id", "Gate", "Trigger", "Check_Output", "Gate_Action", "Whitelisted", "Policy_Id"}) {
		t.Fatalf("header = %v", tb.Result.Header)
	}
	if tb.Result.RowCount != len(tb.Result.Rows) {
		t.Fatalf("row_count %d, %d rows", tb.Result.RowCount, len(tb.Result.Rows))
	}
	for _, r := range tb.Result.Rows {
		if len(r) != 9 {
			t.Fatalf("row with %d columns: %v", len(r), r)
		}
	}
	return tb
}

var anchoreTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func checkAnchoreTime(t *testing.T, what, s string) {
	t.Helper()
	if !anchoreTimeRE.MatchString(s) {
		t.Errorf("%s = %q, want ISO-8601 with Z", what, s)
	}
}

func anchoreToken(t *testing.T, g *testGate, name string, role buildgate.Role) string {
	t.Helper()
	secret := "bg_test_" + name + "_token"
	if err := g.Store.CreateToken(context.Background(), buildgate.Token{ID: name, Name: name, Role: role, CreatedAt: time.Now().UTC()}, server.HashToken(secret)); err != nil {
		t.Fatal(err)
	}
	return secret
}

// anchoreWait polls GET /images/{digest} as `anchore-cli image wait` does
// until the analysis ends.
func anchoreWait(t *testing.T, c anchoreClient, digest string) anchoreImage {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var imgs []anchoreImage
		c.do(t, "GET", "/images/"+url.PathEscape(digest)+"?history=false", nil).ok(t, "image wait", &imgs)
		if len(imgs) != 1 {
			t.Fatalf("image get by digest = %d records", len(imgs))
		}
		if s := imgs[0].AnalysisStatus; s == "analyzed" || s == "analysis_failed" {
			return imgs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s", digest, imgs[0].AnalysisStatus)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// anchoreFindingKey identifies a finding or a table row for comparisons.
func anchoreFindingKey(triggerID, gate, trigger, message, action, policyID string) string {
	return strings.Join([]string{triggerID, gate, trigger, message, action, policyID}, "|")
}

// sameAnchoreVerdict checks that a detailed /check answer says what the gate's
// own /v1 check says for the same image, bundle and tag.
func sameAnchoreVerdict(t *testing.T, c anchoreCheck, v *policy.Verdict, digest, tag string) {
	t.Helper()
	pid, status, last, raw := c.entry(t, digest, tag)
	var d anchoreCheckDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if pid != v.BundleID || status != v.Status() || d.Result.FinalAction != v.FinalAction.String() ||
		d.Result.FinalActionReason != v.Reason.Anchore() || d.Result.Tag != v.Tag {
		t.Errorf("anchore check %s %s %s %s %s, /v1 check %s %s %s %s %s", pid, status, d.Result.FinalAction, d.Result.FinalActionReason, d.Result.Tag,
			v.BundleID, v.Status(), v.FinalAction, v.Reason.Anchore(), v.Tag)
	}
	checkAnchoreTime(t, "last_evaluation", last)
	tb := d.table(t)
	if tb.Result.FinalAction != v.PolicyFinalAction.String() {
		t.Errorf("table final_action %s, /v1 policy_final_action %s", tb.Result.FinalAction, v.PolicyFinalAction)
	}
	var rows, findings []string
	for _, r := range tb.Result.Rows {
		rows = append(rows, anchoreFindingKey(fmt.Sprint(r[2]), fmt.Sprint(r[3]), fmt.Sprint(r[4]), fmt.Sprint(r[5]), fmt.Sprint(r[6]), fmt.Sprint(r[8])))
		if r[0] != d.Result.ImageID || r[1] != tag {
			t.Errorf("row names image %v tag %v, want %s %s", r[0], r[1], d.Result.ImageID, tag)
		}
	}
	for _, f := range v.Findings {
		findings = append(findings, anchoreFindingKey(f.TriggerID, f.Gate, f.Trigger, f.Message, f.Effective().String(), f.PolicyID))
	}
	sort.Strings(rows)
	sort.Strings(findings)
	if !slices.Equal(rows, findings) {
		t.Errorf("rows differ from the /v1 findings:\nrows     %v\nfindings %v", rows, findings)
	}
}

const anchoreDockerfile = "FROM debian:bullseye-slim\nRUN apt-get update\nCMD [\"bash\"]\n"

func TestAnchoreAPI(t *testing.T) {
	g := startGate(t, func(c *Config) { c.HTTP.AnchoreBasicChallenge = true })
	host := testRegistry(t)
	tag := host + "/team/minbase:1.0"
	push(t, tag, sharedImage(t, "bullseye-minbase"))
	ciToken := anchoreToken(t, g, "ci", buildgate.RoleCI)

	// anchore-cli: ANCHORE_CLI_URL=.../api/scanning/v1/anchore,
	// ANCHORE_CLI_USER=<token>, the password empty (sent as "" or None).
	cli := anchoreClient{g, anchore.Prefix, anchoreBasic(ciToken, "None")}
	cliV1 := anchoreClient{g, "/v1", anchoreBasic(ciToken, "")}
	admin := anchoreClient{g, anchore.Prefix, anchoreBasic(testToken, "None")}
	adminV1 := anchoreClient{g, "/v1", anchoreBasic(testToken, "")}
	ours := anchoreClient{g, "/v1", anchoreBearer(testToken)}
	var digest, defaultPolicy string

	t.Run("ping, version probe and the 401 challenge", func(t *testing.T) {
		for _, c := range []anchoreClient{cli, cliV1} {
			for _, p := range []string{"", "/"} {
				var v string
				c.do(t, "GET", p, nil).ok(t, "ping "+c.base+p, &v)
				if v != "v1" {
					t.Errorf("ping %s = %q", c.base+p, v)
				}
			}
		}
		for _, p := range []string{"/swagger.json", anchore.Prefix + "/swagger.json", "/v1/swagger.json"} {
			var sw struct {
				Info struct{ Version string } `json:"info"`
			}
			anchoreClient{g, "", nil}.do(t, "GET", p, nil).ok(t, p, &sw)
			if sw.Info.Version != "0.1.20" {
				t.Errorf("%s info.version = %q", p, sw.Info.Version)
			}
		}
		anchoreClient{g, anchore.Prefix, nil}.do(t, "GET", "/images", nil).failed(t, "no credentials", 401)
		anchoreClient{g, anchore.Prefix, anchoreBasic("nope", "None")}.do(t, "GET", "/images", nil).failed(t, "bad token", 401)
		// Only Bearer is challenged, so no browser ever prompts for a
		// token it would then send on its own; with
		// --anchore-basic-challenge the Jenkins plugin's client (and only
		// it) is challenged with Basic too.
		anchoreClient{g, "/v1", nil}.do(t, "POST", "/images", map[string]string{"tag": tag}).challenged(t, "a bare add", false)
		anchoreClient{g, "/v1", nil}.do(t, "GET", "/images", nil).challenged(t, "/v1/images without credentials", false)
		anchoreClient{g, "/v1", jenkinsPlugin(nil)}.do(t, "POST", "/images", map[string]string{"tag": tag}).challenged(t, "Jenkins' first add", true)
		anchoreClient{g, anchore.Prefix, jenkinsPlugin(nil)}.do(t, "GET", "/images", nil).challenged(t, "Jenkins' first list", true)
		fromPage := func(r *http.Request) {
			jenkinsPlugin(nil)(r)
			r.Header.Set("Sec-Fetch-Mode", "no-cors")
		}
		anchoreClient{g, "/v1", fromPage}.do(t, "GET", "/images", nil).challenged(t, "a browser naming the plugin's client", false)
	})

	t.Run("image add, get, wait, list", func(t *testing.T) {
		var added []anchoreImage
		cli.do(t, "POST", "/images?autosubscribe=True", map[string]any{
			"tag": tag, "dockerfile": base64.StdEncoding.EncodeToString([]byte(anchoreDockerfile)),
			"annotations": map[string]string{"build": "42", "team": "core"},
		}).ok(t, "image add", &added)
		if len(added) != 1 || !strings.HasPrefix(added[0].ImageDigest, "sha256:") {
			t.Fatalf("image add = %+v, want a list of one record", added)
		}
		rec := added[0]
		digest = rec.ImageDigest
		if rec.AnalysisStatus != "not_analyzed" && rec.AnalysisStatus != "analyzing" {
			t.Errorf("analysis_status after add = %s", rec.AnalysisStatus)
		}
		if rec.Annotations["build"] != "42" || rec.ImageStatus != "active" || rec.ImageType != "docker" {
			t.Errorf("record after add = %+v", rec)
		}
		if len(rec.ImageDetail) != 1 || rec.ImageDetail[0].FullTag != tag {
			t.Fatalf("image_detail after add = %+v", rec.ImageDetail)
		}

		// While the analysis runs, /check and /vuln answer 404 and name the status.
		var now []anchoreImage
		cli.do(t, "GET", "/images/"+digest, nil).ok(t, "image get", &now)
		if now[0].AnalysisStatus != "analyzed" {
			msg := cli.do(t, "GET", "/images/"+digest+"/check?history=false&detail=true&tag="+tag, nil).failed(t, "check while analysing", 404)
			if !strings.HasPrefix(msg, "image is not analyzed - analysis_status: ") {
				t.Errorf("check while analysing: %q", msg)
			}
			msg = cli.do(t, "GET", "/images/"+digest+"/vuln/all", nil).failed(t, "vuln while analysing", 404)
			if !strings.HasPrefix(msg, "image is not analyzed - analysis_status: ") {
				t.Errorf("vuln while analysing: %q", msg)
			}
		}

		got := anchoreWait(t, cli, digest)
		if got.AnalysisStatus != "analyzed" {
			t.Fatalf("analysis_status = %s", got.AnalysisStatus)
		}

		// image get by tag (URL-encoded, as requests sends it), and the
		// fallback with the tag in a GET body.
		for name, r := range map[string]anchoreReply{
			"fulltag":     cli.do(t, "GET", "/images?fulltag="+url.QueryEscape(tag)+"&history=false", nil),
			"body":        cli.do(t, "GET", "/images?history=false", map[string]string{"tag": tag}),
			"raw fulltag": cliV1.do(t, "GET", "/images?fulltag="+tag+"&history=false", nil),
			"raw digest":  cli.do(t, "GET", "/images/"+digest+"?history=false", nil),
			"/v1 encoded": cliV1.do(t, "GET", "/images/"+url.PathEscape(digest)+"?history=false", nil),
		} {
			var imgs []anchoreImage
			r.ok(t, "image get by "+name, &imgs)
			if len(imgs) != 1 || imgs[0].ImageDigest != digest {
				t.Errorf("image get by %s = %+v", name, imgs)
			}
		}
		var none []anchoreImage
		cli.do(t, "GET", "/images?fulltag=docker.io/nosuch:latest&history=false", nil).ok(t, "unknown tag", &none)
		if none == nil || len(none) != 0 {
			t.Errorf("unknown tag = %v, want []", none)
		}
		cli.do(t, "GET", "/images/sha256%3A"+strings.Repeat("0", 64), nil).failed(t, "unknown digest", 404)

		// Every field the clients read.
		if got.ParentDigest == "" || got.ImageStatus != "active" || got.ImageType != "docker" || got.Annotations["team"] != "core" {
			t.Errorf("record = %+v", got)
		}
		checkAnchoreTime(t, "created_at", got.CreatedAt)
		checkAnchoreTime(t, "last_updated", got.LastUpdated)
		if got.AnalyzedAt == nil {
			t.Error("analyzed_at is null")
		} else {
			checkAnchoreTime(t, "analyzed_at", *got.AnalyzedAt)
		}
		m := got.ImageContent.Metadata
		if m == nil || m.DockerfileMode == nil || *m.DockerfileMode != "Actual" || m.Distro == nil || *m.Distro != "debian" ||
			m.DistroVersion == nil || *m.DistroVersion != "11" || m.ImageSize == nil || *m.ImageSize <= 0 ||
			m.Arch == nil || *m.Arch != "amd64" || m.LayerCount == nil || *m.LayerCount < 1 {
			t.Errorf("image_content.metadata = %+v", m)
		}
		d := got.ImageDetail[0]
		reg, repo, _ := strings.Cut(strings.TrimSuffix(tag, ":1.0"), "/")
		if len(d.ImageID) != 64 || d.FullTag != tag || d.FullDigest != reg+"/"+repo+"@"+digest || d.Digest != digest ||
			d.Registry != reg || d.Repo != repo || d.Tag != "1.0" || d.Dockerfile == nil {
			t.Errorf("image_detail[0] = %+v", d)
		} else if df, _ := base64.StdEncoding.DecodeString(*d.Dockerfile); string(df) != anchoreDockerfile {
			t.Errorf("image_detail[0].dockerfile = %q", df)
		}
		for what, s := range map[string]string{"tag_detected_at": d.TagDetectedAt, "detail created_at": d.CreatedAt, "detail last_updated": d.LastUpdated} {
			checkAnchoreTime(t, what, s)
		}
		var byID []anchoreImage
		cli.do(t, "GET", "/images/by_id/"+d.ImageID, nil).ok(t, "image get by id", &byID)
		if len(byID) != 1 || byID[0].ImageDigest != digest {
			t.Errorf("image get by id = %+v", byID)
		}

		var list []anchoreImage
		cli.do(t, "GET", "/images", nil).ok(t, "image list", &list)
		if len(list) != 1 || list[0].ImageDigest != digest {
			t.Errorf("image list = %+v", list)
		}
	})
	if digest == "" {
		t.FailNow()
	}
	enc := url.PathEscape(digest)

	t.Run("image vuln", func(t *testing.T) {
		var types []string
		cli.do(t, "GET", "/images/"+enc+"/vuln", nil).ok(t, "vuln types", &types)
		if !slices.Equal(types, []string{"os", "non-os", "all"}) {
			t.Errorf("vuln types = %v", types)
		}
		var osv, all, nonOS anchoreVulns
		cli.do(t, "GET", "/images/"+enc+"/vuln/os?vendor_only=True", nil).ok(t, "vuln os", &osv)
		cli.do(t, "GET", "/images/"+digest+"/vuln/all?vendor_only=False", nil).ok(t, "vuln all", &all)
		cli.do(t, "GET", "/images/"+enc+"/vuln/non-os?vendor_only=false", nil).ok(t, "vuln non-os", &nonOS)
		if osv.ImageDigest != digest || osv.VulnerabilityType != "os" || len(osv.Vulnerabilities) == 0 || nonOS.Vulnerabilities == nil {
			t.Fatalf("vuln os: %s %s %d", osv.ImageDigest, osv.VulnerabilityType, len(osv.Vulnerabilities))
		}
		scored := false
		for _, v := range osv.Vulnerabilities {
			if v.Vuln == "" || v.Package != v.PackageName+"-"+v.PackageVersion || v.PackageType != "dpkg" || v.PackagePath == "" ||
				!slices.Contains([]string{"Critical", "High", "Medium", "Low", "Negligible", "Unknown"}, v.Severity) ||
				v.Fix == "" || v.URL == "" || v.Feed != "vulnerabilities" || v.FeedGroup != "debian:11" || v.NVDData == nil || v.VendorData == nil {
				t.Fatalf("os vulnerability = %+v", v)
			}
			if len(*v.NVDData) > 0 && (*v.NVDData)[0].CVSSv3.BaseScore > 0 && strings.HasPrefix((*v.NVDData)[0].ID, "CVE-") {
				scored = true
			}
		}
		if !scored {
			t.Error("no vulnerability has an NVD CVSS v3 score")
		}
		// vendor_only=False lists what the gate's own API lists.
		var v1 api.VulnerabilityList
		ours.do(t, "GET", "/images/"+enc+"/vulnerabilities?type=all", nil).ok(t, "/v1 vulnerabilities", &v1)
		var a, b []string
		for _, v := range all.Vulnerabilities {
			a = append(a, v.Vuln+" "+v.PackageName+" "+v.PackageVersion)
		}
		for _, v := range v1.Vulnerabilities {
			b = append(b, v.ID+" "+v.PackageName+" "+v.PackageVersion)
		}
		sort.Strings(a)
		sort.Strings(b)
		if !slices.Equal(a, b) || len(all.Vulnerabilities) < len(osv.Vulnerabilities) {
			t.Errorf("vuln all (%d) differs from /v1 vulnerabilities (%d)", len(a), len(b))
		}
		cli.do(t, "GET", "/images/"+enc+"/vuln/nope", nil).failed(t, "unknown vuln type", 404)
	})

	t.Run("image content", func(t *testing.T) {
		var types []string
		cli.do(t, "GET", "/images/"+enc+"/content", nil).ok(t, "content types", &types)
		if !slices.Equal(types, []string{"os", "files", "npm", "gem", "python", "java", "go"}) {
			t.Errorf("content types = %v", types)
		}
		var osc struct {
			ImageDigest string `json:"imageDigest"`
			ContentType string `json:"content_type"`
			Content     []struct {
				Package  string    `json:"package"`
				Version  string    `json:"version"`
				Licenses *[]string `json:"licenses"`
				Type     string    `json:"type"`
				Size     string    `json:"size"`
				Origin   string    `json:"origin"`
			} `json:"content"`
		}
		cli.do(t, "GET", "/images/"+enc+"/content/os", nil).ok(t, "content os", &osc)
		if osc.ImageDigest != digest || osc.ContentType != "os" || len(osc.Content) < 50 {
			t.Fatalf("content os: %s %s %d packages", osc.ImageDigest, osc.ContentType, len(osc.Content))
		}
		for _, p := range osc.Content {
			if p.Package == "" || p.Version == "" || p.Licenses == nil || p.Type != "dpkg" || p.Size == "" || p.Origin == "" {
				t.Fatalf("os package = %+v", p)
			}
		}
		var files struct {
			Content []struct {
				Filename string  `json:"filename"`
				Size     int64   `json:"size"`
				Mode     string  `json:"mode"`
				Type     string  `json:"type"`
				LinkDest *string `json:"linkdest"`
				SHA256   *string `json:"sha256"`
			} `json:"content"`
		}
		cli.do(t, "GET", "/images/"+enc+"/content/files", nil).ok(t, "content files", &files)
		var sawFile, sawLink bool
		for _, f := range files.Content {
			if f.Filename == "/etc/debian_version" && f.Type == "file" && f.SHA256 != nil && len(*f.SHA256) == 64 && f.Size > 0 && regexp.MustCompile(`^0[0-7]{4}$`).MatchString(f.Mode) {
				sawFile = true
			}
			if f.Type == "slink" && f.LinkDest != nil && *f.LinkDest != "" {
				sawLink = true
			}
		}
		if !sawFile || !sawLink {
			t.Errorf("content files: /etc/debian_version with sha256 and mode %v, a symlink with linkdest %v", sawFile, sawLink)
		}
		for _, typ := range []string{"npm", "gem", "python", "java", "go"} {
			var c struct {
				ContentType string             `json:"content_type"`
				Content     *[]json.RawMessage `json:"content"`
			}
			cli.do(t, "GET", "/images/"+enc+"/content/"+typ, nil).ok(t, "content "+typ, &c)
			if c.ContentType != typ || c.Content == nil {
				t.Errorf("content %s = %+v", typ, c)
			}
		}
	})

	t.Run("evaluate check equals the /v1 check", func(t *testing.T) {
		var c anchoreCheck
		// anchore-cli sends the tag as it is, not URL-encoded.
		cli.do(t, "GET", "/images/"+digest+"/check?history=false&detail=true&tag="+tag, nil).ok(t, "evaluate check --detail", &c)
		v := g.check(t, digest, tag)
		defaultPolicy = v.BundleID
		if v.FinalAction != policy.ActionStop {
			t.Fatalf("the default bundle lets bullseye-minbase through: %s", v.FinalAction)
		}
		sameAnchoreVerdict(t, c, v, digest, tag)
		_, status, _, raw := c.entry(t, digest, tag)
		var d anchoreCheckDetail
		json.Unmarshal(raw, &d)
		if status != "fail" || len(d.Policy.Policies) == 0 || d.Policy.Policies[0].ID == "" || d.Policy.Policies[0].Name == "" {
			t.Errorf("check status %s, detail.policy.policies %+v", status, d.Policy.Policies)
		}
		for _, r := range d.table(t).Result.Rows {
			if r[7] != false {
				t.Errorf("Whitelisted = %v under the default bundle", r[7])
			}
		}
		// Without --detail, detail is {}; --policy names a bundle.
		var brief anchoreCheck
		cli.do(t, "GET", "/images/"+enc+"/check?history=false&detail=false&tag="+tag+"&policyId="+defaultPolicy, nil).ok(t, "evaluate check", &brief)
		pid, status, _, raw := brief.entry(t, digest, tag)
		if pid != defaultPolicy || status != "fail" || string(raw) != "{}" {
			t.Errorf("check without detail = %s %s %s", pid, status, raw)
		}
		cli.do(t, "GET", "/images/"+enc+"/check?tag="+tag+"&policyId=nosuch", nil).failed(t, "unknown policy", 404)
	})

	t.Run("both clients on the colliding /v1 routes", func(t *testing.T) {
		// POST /v1/images: "tag" (Anchore) or "ref" (ours).
		var list []anchoreImage
		cliV1.do(t, "POST", "/images", map[string]string{"tag": tag}).ok(t, "anchore add on /v1", &list)
		var one api.Image
		if r := ours.do(t, "POST", "/images", map[string]string{"ref": tag}); r.status != 202 {
			t.Fatalf("our add on /v1 = %d %s", r.status, r.body)
		} else {
			r.ok(t, "our add", &one)
		}
		if len(list) != 1 || list[0].ImageDigest != digest || one.Digest != digest || one.Status != api.StatusAnalyzed {
			t.Errorf("adds: anchore %+v, ours %+v", list, one)
		}
		// An Anchore client with a Bearer token is still Anchore by its body.
		anchoreClient{g, "/v1", anchoreBearer(testToken)}.do(t, "POST", "/images", map[string]string{"tag": tag}).ok(t, "anchore add with bearer", &list)

		// GET /v1/images, /v1/images/{d}: Basic (Anchore) or Bearer (ours).
		var imgs api.ImageList
		cliV1.do(t, "GET", "/images", nil).ok(t, "anchore list on /v1", &list)
		ours.do(t, "GET", "/images", nil).ok(t, "our list", &imgs)
		if len(list) != 1 || len(imgs.Images) != 1 || imgs.Images[0].Digest != digest {
			t.Errorf("lists: anchore %d, ours %+v", len(list), imgs)
		}
		cliV1.do(t, "GET", "/images/"+enc, nil).ok(t, "anchore get on /v1", &list)
		ours.do(t, "GET", "/images/"+enc, nil).ok(t, "our get", &one)
		if list[0].ImageDigest != digest || one.Digest != digest {
			t.Errorf("gets: %+v %+v", list, one)
		}

		// GET /v1/images/{d}/check: Anchore's parameters, or Basic, make
		// it Anchore's even with a Bearer token.
		var c anchoreCheck
		anchoreClient{g, "/v1", anchoreBearer(ciToken)}.do(t, "GET", "/images/"+enc+"/check?history=false&detail=true&tag="+tag, nil).ok(t, "anchore check with bearer", &c)
		sameAnchoreVerdict(t, c, g.check(t, digest, tag), digest, tag)
		cliV1.do(t, "GET", "/images/"+enc+"/check?tag="+url.QueryEscape(tag), nil).ok(t, "anchore check with basic", &c)
		c.entry(t, digest, tag)
		var v policy.Verdict
		ours.do(t, "GET", "/images/"+enc+"/check?tag="+url.QueryEscape(tag), nil).ok(t, "our check", &v)
		if v.BundleID != defaultPolicy || len(v.Findings) == 0 {
			t.Errorf("our check = %s %d findings", v.BundleID, len(v.Findings))
		}

		// /v1/policies: Basic (Anchore) or Bearer (ours).
		var recs []map[string]any
		adminV1.do(t, "GET", "/policies?detail=False", nil).ok(t, "anchore policy list on /v1", &recs)
		var pl api.PolicyList
		ours.do(t, "GET", "/policies", nil).ok(t, "our policy list", &pl)
		if len(recs) != 1 || recs[0]["policyId"] != defaultPolicy || len(pl.Policies) != 1 || pl.Policies[0].ID != defaultPolicy {
			t.Errorf("policy lists: anchore %v, ours %+v", recs, pl)
		}

		// /v1/registries: registry_user (Anchore) or username (ours).
		var regs []map[string]any
		anchoreClient{g, "/v1", anchoreBearer(testToken)}.do(t, "POST", "/registries?validate=False", map[string]any{
			"registry": "anchore.example.com", "registry_user": "u", "registry_pass": "p", "registry_type": "docker_v2", "registry_verify": true,
		}).ok(t, "anchore registry add on /v1", &regs)
		var reg api.Registry
		if r := ours.do(t, "POST", "/registries?validate=false", map[string]any{"registry": "ours.example.com", "username": "u", "password": "p"}); r.status != 201 && r.status != 200 {
			t.Fatalf("our registry add = %d %s", r.status, r.body)
		} else {
			r.ok(t, "our registry add", &reg)
		}
		if len(regs) != 1 || regs[0]["registry"] != "anchore.example.com" || reg.Registry != "ours.example.com" {
			t.Errorf("registry adds: anchore %v, ours %+v", regs, reg)
		}
		adminV1.do(t, "GET", "/registries", nil).ok(t, "anchore registry list on /v1", &regs)
		var rl api.RegistryList
		ours.do(t, "GET", "/registries", nil).ok(t, "our registry list", &rl)
		if len(regs) != 2 || len(rl.Registries) != 2 {
			t.Errorf("registry lists: anchore %d, ours %d", len(regs), len(rl.Registries))
		}
		for _, r := range []string{"anchore.example.com", "ours.example.com"} {
			adminV1.do(t, "DELETE", "/registries/"+r, nil).ok(t, "registry del", nil)
		}
	})

	t.Run("Anchore Jenkins plugin", func(t *testing.T) {
		// The plugin talks to Anchore Engine's /v1 with Apache HttpClient and
		// no auth cache: each request goes out bare, meets the Basic
		// challenge (--anchore-basic-challenge), and is sent again with the
		// token as user name.
		jenkinsTag := host + "/team/jenkins:7"
		push(t, jenkinsTag, sharedImage(t, "bullseye-dpkgonly"))
		send := func(method, path string, body any) anchoreReply {
			t.Helper()
			anchoreClient{g, "/v1", jenkinsPlugin(nil)}.do(t, method, path, body).challenged(t, "bare "+method+" "+path, true)
			return anchoreClient{g, "/v1", jenkinsPlugin(anchoreBasic(ciToken, ""))}.do(t, method, path, body)
		}
		var added []anchoreImage
		send("POST", "/images", map[string]string{"tag": jenkinsTag}).ok(t, "add", &added)
		d := added[0].ImageDigest
		var c anchoreCheck
		polls := 0
		for deadline := time.Now().Add(3 * time.Minute); ; polls++ {
			r := send("GET", "/images/"+d+"/check?tag="+jenkinsTag+"&detail=true", nil)
			if r.status == 200 {
				r.ok(t, "check", &c)
				break
			}
			if msg := r.failed(t, "check while analysing", 404); !strings.HasPrefix(msg, "image is not analyzed - analysis_status: ") {
				t.Fatalf("check while analysing: %q", msg)
			}
			if time.Now().After(deadline) {
				t.Fatal("the check never answered 200")
			}
			time.Sleep(300 * time.Millisecond)
		}
		_, status, _, raw := c.entry(t, d, jenkinsTag)
		var detail anchoreCheckDetail
		json.Unmarshal(raw, &detail)
		tb := detail.table(t)
		col := map[string]int{}
		for i, h := range tb.Result.Header {
			col[h] = i
		}
		stops := 0
		for _, r := range tb.Result.Rows {
			if r[col["Gate_Action"]] == "stop" {
				stops++
			}
			if r[col["Gate"]] == "" || r[col["Trigger"]] == "" || r[col["Check_Output"]] == "" {
				t.Errorf("row = %v", r)
			}
		}
		if (stops > 0) != (status == "fail") {
			t.Errorf("status %s with %d stop rows", status, stops)
		}
		sameAnchoreVerdict(t, c, g.check(t, d, jenkinsTag), d, jenkinsTag)
		var vulns anchoreVulns
		send("GET", "/images/"+d+"/vuln/all", nil).ok(t, "vuln all", &vulns)
		if len(vulns.Vulnerabilities) == 0 {
			t.Error("no vulnerabilities for the dpkg-only image")
		}
		for _, v := range vulns.Vulnerabilities {
			if v.Vuln == "" || v.Severity == "" || v.Package == "" || v.Fix == "" || v.URL == "" || v.NVDData == nil || v.VendorData == nil {
				t.Fatalf("vulnerability = %+v", v)
			}
		}
		t.Logf("the check answered 200 after %d polls", polls)
	})

	t.Run("Sysdig Secure plugin", func(t *testing.T) {
		// Bearer auth under /api/scanning/v1/anchore; force re-analyses the
		// image with the Dockerfile; the plugin reads detail.policy.policies[].
		sysdig := anchoreClient{g, anchore.Prefix, anchoreBearer(ciToken)}
		sysdigTag := host + "/team/jenkins:7"
		dockerfile := "FROM debian:bullseye\nEXPOSE 22\nCMD [\"sshd\"]\n"
		var added []anchoreImage
		sysdig.do(t, "POST", "/images?force=true", map[string]string{
			"tag": sysdigTag, "dockerfile": base64.StdEncoding.EncodeToString([]byte(dockerfile)),
		}).ok(t, "add", &added)
		if len(added) != 1 || added[0].AnalysisStatus != "not_analyzed" {
			t.Fatalf("forced add = %+v, want the image queued again", added)
		}
		d := added[0].ImageDigest
		var c anchoreCheck
		for deadline := time.Now().Add(3 * time.Minute); ; {
			r := sysdig.do(t, "GET", "/images/"+d+"/check?tag="+sysdigTag+"&detail=true", nil)
			if r.status == 200 {
				r.ok(t, "check", &c)
				break
			}
			r.failed(t, "check while analysing", 404)
			if time.Now().After(deadline) {
				t.Fatal("the check never answered 200")
			}
			time.Sleep(300 * time.Millisecond)
		}
		_, status, _, raw := c.entry(t, d, sysdigTag)
		var detail anchoreCheckDetail
		json.Unmarshal(raw, &detail)
		names := map[string]string{}
		for _, p := range detail.Policy.Policies {
			names[p.ID] = p.Name
		}
		tb := detail.table(t)
		sawExpose := false
		for _, r := range tb.Result.Rows {
			if names[fmt.Sprint(r[8])] == "" {
				t.Errorf("row's Policy_Id %v is not in detail.policy.policies %v", r[8], names)
			}
			if r[3] == "dockerfile" && r[4] == "exposed_ports" && r[6] == "stop" {
				sawExpose = true
			}
		}
		if status != "fail" || !sawExpose {
			t.Errorf("status %s; the Dockerfile's EXPOSE 22 stopped it: %v", status, sawExpose)
		}
		sameAnchoreVerdict(t, c, g.check(t, d, sysdigTag), d, sysdigTag)
		var vulns anchoreVulns
		sysdig.do(t, "GET", "/images/"+d+"/vuln/all", nil).ok(t, "vuln all", &vulns)
		if vulns.ImageDigest != d || len(vulns.Vulnerabilities) == 0 {
			t.Errorf("vuln all: %s %d", vulns.ImageDigest, len(vulns.Vulnerabilities))
		}
	})

	t.Run("policy add, list, get, activate, del", func(t *testing.T) {
		v := g.check(t, digest, tag)
		var waived string
		for _, f := range v.Findings {
			if f.Action == policy.ActionStop {
				waived = f.TriggerID
				break
			}
		}
		bundle := map[string]any{
			"id": "anchore-test", "name": "anchore test", "comment": "", "version": "1_0",
			"policies": []any{map[string]any{
				"id": "p1", "name": "high and above", "comment": "", "version": "1_0",
				"rules": []any{map[string]any{"id": "r1", "gate": "vulnerabilities", "trigger": "package", "action": "STOP",
					"params": []any{
						map[string]string{"name": "package_type", "value": "all"},
						map[string]string{"name": "severity_comparison", "value": ">="},
						map[string]string{"name": "severity", "value": "medium"},
					}}},
			}},
			"whitelists": []any{map[string]any{"id": "w1", "name": "accepted", "version": "1_0", "comment": "",
				"items": []any{map[string]string{"id": "i1", "gate": "vulnerabilities", "trigger_id": waived}}}},
			"mappings": []any{map[string]any{"id": "m1", "name": "all", "registry": "*", "repository": "*",
				"image": map[string]string{"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []string{"w1"}}},
			"whitelisted_images": []any{}, "blacklisted_images": []any{},
		}
		type record struct {
			PolicyID     string          `json:"policyId"`
			Active       bool            `json:"active"`
			Name         string          `json:"name"`
			PolicySource string          `json:"policy_source"`
			CreatedAt    string          `json:"created_at"`
			LastUpdated  string          `json:"last_updated"`
			PolicyBundle json.RawMessage `json:"policybundle"`
		}
		var added record
		admin.do(t, "POST", "/policies?detail=True", bundle).ok(t, "policy add", &added)
		if added.PolicyID != "anchore-test" || added.Active || added.Name != "anchore test" || added.PolicySource != "local" || len(added.PolicyBundle) == 0 {
			t.Errorf("policy add = %+v", added)
		}
		checkAnchoreTime(t, "created_at", added.CreatedAt)
		checkAnchoreTime(t, "last_updated", added.LastUpdated)
		cli.do(t, "POST", "/policies?detail=True", bundle).failed(t, "ci adds a policy", 403)
		cli.do(t, "GET", "/policies?detail=False", nil).failed(t, "ci lists policies", 403)

		var list []record
		admin.do(t, "GET", "/policies?detail=False", nil).ok(t, "policy list", &list)
		if len(list) != 2 || list[0].PolicyBundle != nil || list[1].PolicyBundle != nil {
			t.Errorf("policy list = %+v", list)
		}
		// policy activate: GET the record with its bundle, PUT it back with active: true.
		var got []map[string]any
		admin.do(t, "GET", "/policies/anchore-test?detail=True", nil).ok(t, "policy get", &got)
		if len(got) != 1 || got[0]["policybundle"] == nil {
			t.Fatalf("policy get = %v", got)
		}
		got[0]["active"] = true
		admin.do(t, "PUT", "/policies/anchore-test", got[0]).ok(t, "policy activate", nil)
		admin.do(t, "GET", "/policies?detail=False", nil).ok(t, "policy list", &list)
		for _, p := range list {
			if p.Active != (p.PolicyID == "anchore-test") {
				t.Errorf("after activate: %s active %v", p.PolicyID, p.Active)
			}
		}
		var mine api.Policy
		ours.do(t, "GET", "/policies/anchore-test", nil).ok(t, "our policy get", &mine)
		if mine.Version != 1 || !mine.Active {
			t.Errorf("activation stored a new version or did not activate: %+v", mine)
		}

		var c anchoreCheck
		cli.do(t, "GET", "/images/"+digest+"/check?history=false&detail=true&tag="+tag, nil).ok(t, "check", &c)
		after := g.check(t, digest, tag)
		if after.BundleID != "anchore-test" {
			t.Fatalf("the /v1 check uses %s", after.BundleID)
		}
		sameAnchoreVerdict(t, c, after, digest, tag)
		_, _, _, raw := c.entry(t, digest, tag)
		var d anchoreCheckDetail
		json.Unmarshal(raw, &d)
		sawWaived := false
		for _, r := range d.table(t).Result.Rows {
			if w, ok := r[7].(map[string]any); ok {
				sawWaived = r[2] == waived && r[6] == "go" && w["whitelist_id"] == "w1" && w["whitelist_name"] == "accepted" && w["matched_rule_id"] == "i1"
			}
		}
		if !sawWaived {
			t.Errorf("no row for %s with Whitelisted {whitelist_name, whitelist_id, matched_rule_id}", waived)
		}

		msg := admin.do(t, "DELETE", "/policies/anchore-test", nil).failed(t, "deleting the active policy", 400)
		if !strings.Contains(msg, "active") {
			t.Errorf("deleting the active policy: %q", msg)
		}
		admin.do(t, "DELETE", "/policies/"+defaultPolicy, nil).ok(t, "policy del", nil)
		admin.do(t, "GET", "/policies/"+defaultPolicy+"?detail=False", nil).failed(t, "deleted policy", 404)
	})

	t.Run("registry add, update, list, get, del", func(t *testing.T) {
		const pass, newPass = "s3cret-registry-pass", "n3w-registry-pass"
		type record struct {
			Registry       string `json:"registry"`
			RegistryName   string `json:"registry_name"`
			RegistryUser   string `json:"registry_user"`
			RegistryType   string `json:"registry_type"`
			RegistryVerify bool   `json:"registry_verify"`
			CreatedAt      string `json:"created_at"`
			LastUpdated    string `json:"last_updated"`
		}
		noSecret := func(r anchoreReply) anchoreReply {
			t.Helper()
			if strings.Contains(string(r.body), pass) || strings.Contains(string(r.body), newPass) || strings.Contains(string(r.body), "registry_pass") {
				t.Fatalf("a registry answer carries the password: %s", r.body)
			}
			return r
		}
		var recs []record
		// anchore-cli registry add localhost:5000/team robot PASS --insecure --skip-validate --registry-name "team registry"
		noSecret(admin.do(t, "POST", "/registries?validate=False", map[string]any{
			"registry": "localhost:5000/team", "registry_user": "robot", "registry_pass": pass,
			"registry_type": "docker_v2", "registry_verify": false, "registry_name": "team registry",
		})).ok(t, "registry add", &recs)
		if len(recs) != 1 || recs[0].Registry != "localhost:5000/team" || recs[0].RegistryName != "team registry" ||
			recs[0].RegistryUser != "robot" || recs[0].RegistryType != "docker_v2" || recs[0].RegistryVerify {
			t.Fatalf("registry add = %+v", recs)
		}
		checkAnchoreTime(t, "created_at", recs[0].CreatedAt)
		checkAnchoreTime(t, "last_updated", recs[0].LastUpdated)
		// --registry-type awsecr
		noSecret(admin.do(t, "POST", "/registries?validate=False", map[string]any{
			"registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "registry_user": "AKIAEXAMPLEKEY", "registry_pass": pass,
			"registry_type": "awsecr", "registry_verify": true, "registry_name": nil,
		})).ok(t, "registry add awsecr", &recs)
		if recs[0].RegistryType != "awsecr" || !recs[0].RegistryVerify {
			t.Errorf("awsecr add = %+v", recs)
		}
		// The name is one path segment with / and : encoded.
		name := url.PathEscape("localhost:5000/team")
		name = strings.NewReplacer(":", "%3A", "/", "%2F").Replace(name)
		noSecret(admin.do(t, "PUT", "/registries/"+name+"?validate=False", map[string]any{
			"registry": "localhost:5000/team", "registry_user": "robot2", "registry_pass": newPass,
			"registry_type": "docker_v2", "registry_verify": true, "registry_name": "team registry",
		})).ok(t, "registry update", &recs)
		if recs[0].RegistryUser != "robot2" || !recs[0].RegistryVerify {
			t.Errorf("registry update = %+v", recs)
		}
		noSecret(admin.do(t, "GET", "/registries/"+name, nil)).ok(t, "registry get", &recs)
		if len(recs) != 1 || recs[0].RegistryUser != "robot2" {
			t.Errorf("registry get = %+v", recs)
		}
		noSecret(admin.do(t, "GET", "/registries", nil)).ok(t, "registry list", &recs)
		if len(recs) != 2 {
			t.Errorf("registry list = %+v", recs)
		}
		cli.do(t, "GET", "/registries", nil).failed(t, "ci lists registries", 403)
		cli.do(t, "POST", "/registries?validate=False", map[string]any{"registry": "x.example.com", "registry_user": "u", "registry_pass": "p"}).failed(t, "ci adds a registry", 403)
		admin.do(t, "POST", "/registries?validate=False", map[string]any{"registry": "https://x.example.com", "registry_user": "u", "registry_pass": "p"}).failed(t, "registry with a scheme", 400)
		admin.do(t, "DELETE", "/registries/"+name, nil).ok(t, "registry del", nil)
		admin.do(t, "DELETE", "/registries/123456789012.dkr.ecr.us-east-1.amazonaws.com", nil).ok(t, "registry del", nil)
		admin.do(t, "GET", "/registries/"+name, nil).failed(t, "deleted registry", 404)
	})

	t.Run("subscription list and activate", func(t *testing.T) {
		type sub struct {
			ID     string `json:"subscription_id"`
			Key    string `json:"subscription_key"`
			Type   string `json:"subscription_type"`
			Active bool   `json:"active"`
		}
		var subs []sub
		cli.do(t, "GET", "/subscriptions", nil).ok(t, "subscription list", &subs)
		byKey := map[string]map[string]bool{}
		for _, s := range subs {
			if s.ID == "" {
				t.Errorf("subscription without an id: %+v", s)
			}
			if byKey[s.Key] == nil {
				byKey[s.Key] = map[string]bool{}
			}
			byKey[s.Key][s.Type] = s.Active
		}
		// The CLI's autosubscribe=True came with a ci token: it added the
		// image and its subscriptions, all off (issue 12, finding 10: ci
		// activates no subscription through any face). The Jenkins
		// plugin's tag has its subscriptions, all off.
		want := map[string]bool{"tag_update": false, "policy_eval": false, "vuln_update": false, "analysis_update": false}
		if !maps.Equal(byKey[tag], want) {
			t.Errorf("subscriptions of %s after ci's autosubscribe = %v", tag, byKey[tag])
		}
		// The same add by admin turns tag_update on.
		admin.do(t, "POST", "/images?autosubscribe=True", map[string]any{"tag": tag}).ok(t, "admin image add", nil)
		cli.do(t, "GET", "/subscriptions", nil).ok(t, "subscription list", &subs)
		for _, s := range subs {
			if s.Key == tag && s.Type == "tag_update" && !s.Active {
				t.Errorf("admin's autosubscribe left tag_update off")
			}
		}
		if jt := host + "/team/jenkins:7"; len(byKey[jt]) != 4 || byKey[jt]["tag_update"] {
			t.Errorf("subscriptions of %s = %v", jt, byKey[jt])
		}
		// anchore-cli subscription activate vuln_update TAG
		cli.do(t, "GET", "/subscriptions?subscription_key="+url.QueryEscape(tag)+"&subscription_type=vuln_update", nil).ok(t, "subscription get", &subs)
		if len(subs) != 1 || subs[0].Type != "vuln_update" || subs[0].Active {
			t.Fatalf("subscription get = %+v", subs)
		}
		body := map[string]any{"active": true, "subscription_key": tag, "subscription_type": "vuln_update"}
		cli.do(t, "PUT", "/subscriptions/"+subs[0].ID, body).failed(t, "ci activates", 403)
		admin.do(t, "PUT", "/subscriptions/"+subs[0].ID, body).ok(t, "subscription activate", nil)
		cli.do(t, "GET", "/subscriptions?subscription_key="+url.QueryEscape(tag)+"&subscription_type=vuln_update", nil).ok(t, "subscription get", &subs)
		if len(subs) != 1 || !subs[0].Active {
			t.Errorf("after activate: %+v", subs)
		}
	})

	t.Run("system status and feeds", func(t *testing.T) {
		var st struct {
			ServiceStates []struct {
				ServiceName   string `json:"servicename"`
				HostID        string `json:"hostid"`
				BaseURL       string `json:"base_url"`
				Status        bool   `json:"status"`
				StatusMessage string `json:"status_message"`
				ServiceDetail struct {
					Version   string `json:"version"`
					DBVersion string `json:"db_version"`
					Up        bool   `json:"up"`
				} `json:"service_detail"`
			} `json:"service_states"`
		}
		cli.do(t, "GET", "/system", nil).ok(t, "system status", &st)
		if len(st.ServiceStates) == 0 {
			t.Fatal("no service states")
		}
		for _, s := range st.ServiceStates {
			if s.ServiceName == "" || s.BaseURL == "" || !s.Status || s.StatusMessage == "" || !s.ServiceDetail.Up || s.ServiceDetail.Version == "" {
				t.Errorf("service state = %+v", s)
			}
		}
		var feeds []struct {
			Name         string  `json:"name"`
			Enabled      bool    `json:"enabled"`
			LastFullSync *string `json:"last_full_sync"`
			Groups       []struct {
				Name        string  `json:"name"`
				Enabled     bool    `json:"enabled"`
				LastSync    *string `json:"last_sync"`
				RecordCount int     `json:"record_count"`
			} `json:"groups"`
		}
		cli.do(t, "GET", "/system/feeds", nil).ok(t, "system feeds list", &feeds)
		var db api.DBStatus
		ours.do(t, "GET", "/db", nil).ok(t, "db status", &db)
		if len(feeds) == 0 || len(feeds) != len(db.Providers) {
			t.Fatalf("%d feeds for %d providers", len(feeds), len(db.Providers))
		}
		for i, f := range feeds {
			p := db.Providers[i]
			if f.Name != p.Name || !f.Enabled || f.LastFullSync == nil || len(f.Groups) == 0 {
				t.Errorf("feed = %+v for provider %+v", f, p)
				continue
			}
			gr := f.Groups[0]
			if gr.RecordCount != p.Records || gr.RecordCount == 0 || gr.LastSync == nil || !gr.Enabled {
				t.Errorf("feed %s group = %+v for provider %+v", f.Name, gr, p)
			}
			if p.DateCaptured != nil && *gr.LastSync != p.DateCaptured.UTC().Format("2006-01-02T15:04:05Z") {
				t.Errorf("feed %s last_sync %s, provider captured %s", f.Name, *gr.LastSync, p.DateCaptured)
			}
		}
	})

	t.Run("a failed analysis stops the waiting", func(t *testing.T) {
		bad := truncatingRegistry(t)
		big := make([]byte, 64<<10)
		for i := range big {
			big[i] = byte(i*7919 + i/251)
		}
		img, err := mutate.AppendLayers(sharedImage(t, "bullseye-dpkgonly"), layerWith(t, map[string]string{"data.bin": string(big)}))
		if err != nil {
			t.Fatal(err)
		}
		badTag := bad + "/bad/truncated:v1"
		push(t, badTag, img)
		var added []anchoreImage
		cli.do(t, "POST", "/images?autosubscribe=False", map[string]string{"tag": badTag}).ok(t, "add", &added)
		d := added[0].ImageDigest
		if got := anchoreWait(t, cli, d); got.AnalysisStatus != "analysis_failed" {
			t.Fatalf("analysis_status = %s", got.AnalysisStatus)
		}
		for _, p := range []string{"/check?history=false&detail=true&tag=" + badTag, "/vuln/all", "/content/os"} {
			if msg := cli.do(t, "GET", "/images/"+d+p, nil).failed(t, p, 404); msg != "image is not analyzed - analysis_status: analysis_failed" {
				t.Errorf("%s: %q", p, msg)
			}
		}
	})

	t.Run("image del", func(t *testing.T) {
		var imgs []anchoreImage
		cli.do(t, "GET", "/images?fulltag="+url.QueryEscape(host+"/team/jenkins:7"), nil).ok(t, "image get", &imgs)
		d := url.PathEscape(imgs[0].ImageDigest)
		cli.do(t, "DELETE", "/images/"+d, nil).failed(t, "ci deletes", 403)
		var del map[string]string
		admin.do(t, "DELETE", "/images/"+d+"?force=True", nil).ok(t, "image del", &del)
		if del["digest"] != imgs[0].ImageDigest || del["status"] != "deleting" || del["detail"] != "" {
			t.Errorf("image del = %v", del)
		}
		cli.do(t, "GET", "/images/"+d, nil).failed(t, "deleted image", 404)
		if code := g.get(t, "/v1/images/"+d, nil); code != 404 {
			t.Errorf("the deleted image is still in the gate's API: %d", code)
		}
	})
}
