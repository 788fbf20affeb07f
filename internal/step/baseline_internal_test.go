package step

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
)

func TestFinalFrom(t *testing.T) {
	tests := map[string]string{
		"FROM debian:11\n": "debian:11",
		"FROM --platform=linux/amd64 debian:11 AS base\nRUN true\n":              "debian:11",
		"FROM golang:1.22 AS build\nFROM alpine:3.19\nCOPY --from=build /x /x\n": "alpine:3.19",
		"FROM debian:12 AS base\nFROM base AS run\nFROM run\n":                   "debian:12",
		"FROM golang:1.22 AS build\nFROM scratch\n":                              "",
		"ARG BASE=debian:11\nFROM ${BASE}\n":                                     "",
		"# no FROM\nRUN true\n":                                                  "",
		"":                                                                       "",
	}
	for df, want := range tests {
		if got := finalFrom(df); got != want {
			t.Errorf("finalFrom(%q) = %q, want %q", df, got, want)
		}
	}
}

// TestLastImage: the target branch's image analysed last, among those
// that carry every annotation, even from a gate that ignores the filter.
func TestLastImage(t *testing.T) {
	at := func(h int) *time.Time {
		t := time.Date(2026, 3, 1, h, 0, 0, 0, time.UTC)
		return &t
	}
	main := map[string]string{"ci.repo": "a", "ci.ref": "main"}
	images := []api.Image{
		{Digest: "sha256:old", Annotations: main, AnalyzedAt: at(1)},
		{Digest: "sha256:other-branch", Annotations: map[string]string{"ci.repo": "a", "ci.ref": "dev"}, AnalyzedAt: at(5)},
		{Digest: "sha256:new", Annotations: map[string]string{"ci.repo": "a", "ci.ref": "main", "x": "y"}, AnalyzedAt: at(3)},
		{Digest: "sha256:none", AnalyzedAt: at(4)},
	}
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		json.NewEncoder(w).Encode(api.ImageList{Images: images}) // every image: the filter is ignored
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.GateURL, cfg.Token = srv.URL, "tok"
	s := newSession(cfg, srv.Client(), io.Discard)
	img, err := s.lastImage(context.Background(), main)
	if err != nil || img == nil || img.Digest != "sha256:new" {
		t.Fatalf("lastImage = %+v, %v; want sha256:new", img, err)
	}
	if query != "annotation=ci.ref%3Dmain&annotation=ci.repo%3Da&status=analyzed" {
		t.Errorf("query %q", query)
	}
	if img, err := s.lastImage(context.Background(), map[string]string{"ci.ref": "release"}); img != nil || err != nil {
		t.Errorf("lastImage of a branch without images = %+v, %v", img, err)
	}
}
