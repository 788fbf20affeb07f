package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

type readyDB struct{ VulnDB }

func (readyDB) Ready() bool { return true }

type pingStore struct{ Store }

func (pingStore) Ping(context.Context) error { return nil }

// TestReadyzWaitsForWarm: /readyz answers 503 until the gate is warm.
func TestReadyzWaitsForWarm(t *testing.T) {
	s := New(nil, pingStore{}, readyDB{}, nil, NewMetrics(nil, nil), slog.New(slog.DiscardHandler))
	warm := make(chan struct{})
	s.Warm = warm
	get := func() int {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the gate is warm = %d, want 503", code)
	}
	close(warm)
	if code := get(); code != http.StatusOK {
		t.Errorf("/readyz once warm = %d, want 200", code)
	}
}
