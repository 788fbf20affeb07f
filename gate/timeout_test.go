package main

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/buildgate/buildgate/internal/api"
)

func TestAnalysisTimeout(t *testing.T) {
	g := startGate(t, func(c *Config) { c.AnalysisTimeout = 500 * time.Millisecond })
	// A registry that stalls blob downloads.
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(30 * time.Second):
			}
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/slow/app:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusFailed || img.Error != "analysis exceeded --analysis-timeout 500ms during pulling" {
		t.Fatalf("image = %s %q, want failed naming the timeout and the phase", img.Status, img.Error)
	}
}

func TestNotReadyWithoutDB(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.DBUpdateURL, cfg.AdminToken = "127.0.0.1:0", t.TempDir(), "", testToken
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	resp, err := http.Get(m.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without a DB = %d, want 503", resp.StatusCode)
	}
	g := &testGate{Main: m}
	var st api.DBStatus
	if code := g.get(t, "/v1/db", &st); code != 200 || st.Ready {
		t.Fatalf("/v1/db without a DB = %d %+v", code, st)
	}
}
