package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/server/anchore"
)

// emptySBOM is a valid CycloneDX document listing nothing.
const emptySBOM = `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}`

// TestTagSpoofing replays issue 12's finding 5: a ci token posts an empty
// SBOM (and a /v1 submission of another image) under the production tag.
// anchore-cli's `evaluate check <tag>` (GET /images?fulltag=, then the
// image's /check) still finds the image the tag's registry serves and
// still fails; the SBOM keeps the tag as a label.
func TestTagSpoofing(t *testing.T) {
	g := startGate(t, nil)
	host := testRegistry(t)
	tag := host + "/prod/app:release"
	push(t, tag, sharedImage(t, "bullseye-minbase"))
	other := host + "/scratch/empty:1"
	push(t, other, randomImage(t))
	ciToken := anchoreToken(t, g, "spoof-ci", buildgate.RoleCI)
	cli := anchoreClient{g, anchore.Prefix, anchoreBasic(ciToken, "None")}

	var added []anchoreImage
	cli.do(t, "POST", "/images", map[string]any{"tag": tag}).ok(t, "image add", &added)
	prod := added[0].ImageDigest
	anchoreWait(t, cli, prod)

	// evaluate check <tag>: the image the tag points at, then its check.
	evaluate := func(what string) (string, string) {
		t.Helper()
		var imgs []anchoreImage
		cli.do(t, "GET", "/images?fulltag="+url.QueryEscape(tag)+"&history=false", nil).ok(t, what+": image by tag", &imgs)
		if len(imgs) != 1 {
			t.Fatalf("%s: the tag finds %d images", what, len(imgs))
		}
		d := imgs[0].ImageDigest
		var c anchoreCheck
		cli.do(t, "GET", "/images/"+url.PathEscape(d)+"/check?history=false&detail=false&tag="+tag, nil).ok(t, what+": check", &c)
		_, status, _, _ := c.entry(t, d, tag)
		return d, status
	}
	if d, status := evaluate("before"); d != prod || status != "fail" {
		t.Fatalf("before the attack: evaluate check %s = %s on %s, want fail on %s", tag, status, d, prod)
	}

	// The attack: an empty SBOM under the production tag, by ci.
	req, _ := http.NewRequest("POST", g.URL+"/v1/sboms?tag="+url.QueryEscape(tag), strings.NewReader(emptySBOM))
	req.Header.Set("Authorization", "Bearer "+ciToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var spoof api.Image
	json.NewDecoder(resp.Body).Decode(&spoof)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/sboms = %d", resp.StatusCode)
	}
	if !slices.Contains(spoof.Labels, tag) {
		t.Errorf("the ci SBOM's tag is not a label: tags %v, labels %v", spoof.Tags, spoof.Labels)
	}
	// And another image submitted by ci under the production tag.
	status, body := send(t, "POST", g.URL+"/v1/images", ciToken, `{"ref": "`+other+`", "tag": "`+tag+`"}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /v1/images with another tag = %d %s", status, body)
	}
	var otherImg api.Image
	json.Unmarshal([]byte(body), &otherImg)
	if !slices.Contains(otherImg.Labels, tag) {
		t.Errorf("a tag its registry does not serve on %s is not a label: %+v", other, otherImg)
	}

	if d, status := evaluate("after"); d != prod || status != "fail" {
		t.Fatalf("after the attack: evaluate check %s = %s on %s, want fail on %s", tag, status, d, prod)
	}
	var list api.ImageList
	g.get(t, "/v1/images?tag="+url.QueryEscape(tag), &list)
	if len(list.Images) != 1 || list.Images[0].Digest != prod {
		t.Fatalf("/v1/images?tag= after the attack = %+v, want only %s", list, prod)
	}

	// A label counts when nothing is bound to the tag; an admin binds.
	labelOnly := host + "/prod/unpushed:1"
	status, body = send(t, "POST", g.URL+"/v1/sboms?tag="+url.QueryEscape(labelOnly), ciToken, emptySBOM)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/sboms = %d %s", status, body)
	}
	g.get(t, "/v1/images?tag="+url.QueryEscape(labelOnly), &list)
	if len(list.Images) != 1 || list.Images[0].Digest != spoof.Digest {
		t.Fatalf("/v1/images?tag= of a tag with only a label = %+v", list)
	}
	status, body = send(t, "POST", g.URL+"/v1/sboms?tag="+url.QueryEscape(tag), testToken, emptySBOM)
	var bound api.Image
	json.Unmarshal([]byte(body), &bound)
	if status != http.StatusCreated || slices.Contains(bound.Labels, tag) || !slices.Contains(bound.Tags, tag) {
		t.Fatalf("admin's SBOM under the tag = %d %s, want the tag bound", status, body)
	}
}
