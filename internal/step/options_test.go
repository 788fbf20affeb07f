package step_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/step"
	"github.com/buildgate/buildgate/internal/step/steptest"
)

// TestCACert: a gate behind a certificate of a private CA is reached with
// --ca-cert, and refused without it.
func TestCACert(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error": {"code": "unauthorized", "message": "bad token"}}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	env := map[string]string{"GATE_URL": srv.URL, "GATE_TOKEN": "bg_some_token"}

	r := runStep(t, env, "--image", "registry.example/app:1")
	wantLine(t, r, step.ExitError, "buildgate: ERROR: gate unreachable at "+srv.URL, "certificate")
	env["GATE_CA_CERT"] = ca
	r = runStep(t, env, "--image", "registry.example/app:1")
	wantLine(t, r, step.ExitError, "buildgate: ERROR: the gate at "+srv.URL+" refused the token (401")
	r = runStep(t, env, "--image", "registry.example/app:1", "--ca-cert", filepath.Join(t.TempDir(), "missing.pem"))
	wantLine(t, r, step.ExitError, "buildgate: ERROR: bad flags: --ca-cert: open ")
	os.WriteFile(ca, []byte("not a certificate\n"), 0o644)
	r = runStep(t, env, "--image", "registry.example/app:1")
	wantLine(t, r, step.ExitError, "buildgate: ERROR: bad flags: --ca-cert "+ca+": no PEM certificate in it")
}

// TestForceAndSubscribe: --force analyses a known image again, and
// --subscribe subscribes its tag with an admin token, and only says why
// not with a ci token.
func TestForceAndSubscribe(t *testing.T) {
	t.Parallel()
	g := steptest.Shared(t)
	reg := steptest.NewRegistry(t)
	ref := reg.Push(t, "team/subscribed:1", unique(t))

	r := runStep(t, gateEnv(g), "--image", ref, "--subscribe")
	wantLine(t, r, step.ExitPass, "buildgate: PASS: ")
	if !strings.Contains(r.stdout, "not subscribed to updates of "+ref+": the token may not (subscriptions need a token of role admin)") {
		t.Errorf("no line saying why the ci token did not subscribe:\n%s", r.stdout)
	}
	digest := between(r.stdout, "submitted "+ref+" as ", " (")
	first := g.Image(t, digest).AnalyzedAt

	admin := map[string]string{"GATE_URL": g.URL, "GATE_TOKEN": steptest.AdminToken}
	r = runStep(t, admin, "--image", ref, "--subscribe", "--force")
	wantLine(t, r, step.ExitPass, "buildgate: PASS: ")
	if !strings.Contains(r.stdout, "subscribed to updates of "+ref+"\n") || !strings.Contains(r.stdout, "submitted "+ref+" as "+digest+" (queued)") {
		t.Errorf("not subscribed, or not analysed again:\n%s", r.stdout)
	}
	if again := g.Image(t, digest).AnalyzedAt; first == nil || again == nil || !again.After(*first) {
		t.Errorf("analysed at %v, then %v: --force did not analyse again", first, again)
	}
	var subs api.SubscriptionList
	if err := g.Admin().Do(context.Background(), http.MethodGet, "/v1/subscriptions", nil, &subs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range subs.Subscriptions {
		if s.Key == ref && s.Type == "tag_update" && s.Active {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d active tag_update subscriptions of %s: %+v", n, ref, subs.Subscriptions)
	}
	// Subscribing again is fine.
	r = runStep(t, admin, "--image", ref, "--subscribe")
	if !strings.Contains(r.stdout, "subscribed to updates of "+ref+"\n") {
		t.Errorf("subscribing again:\n%s", r.stdout)
	}
}
