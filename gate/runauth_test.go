package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/registry/registrytest"
)

// TestRegistryCredentialsPerRun runs Debian's docker-registry with TLS and
// htpasswd: the gate's stored record for it holds its CA and a password
// that no longer works, so only the credentials sent with a submission
// can pull. They do; the stored credentials are unchanged, and the
// password is nowhere in the gate's log, its database files or its
// answers.
func TestRegistryCredentialsPerRun(t *testing.T) {
	const user, pass = "ci-job", "run-ONLY-pa55-7c1d9e"
	d := registrytest.StartDistribution(t, map[string]string{user: pass, "admin": "admin-password-1"})
	ref := registrytest.Push(t, d.Host, "private/app:v1", user, pass, randomImage(t), d.Cert.Transport())
	var logs syncBuffer
	g := startRegistryGate(t, "", true, &logs)
	ctx := context.Background()
	var answers []string

	stale := api.RegistryRequest{Registry: d.Host, Username: "admin", Password: "expired-admin-password", CACert: string(d.Cert.CertPEM)}
	if st, b := g.regCall(t, "POST", "/v1/registries?validate=false", stale, nil); st != http.StatusCreated {
		t.Fatalf("POST /v1/registries = %d %s", st, b)
	}
	stored := func() (any, any) {
		recs, err := g.Store.ListRegistries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := g.Store.RegistrySecrets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return recs, sealed
	}
	recsBefore, sealedBefore := stored()

	if st, b := g.regCall(t, "POST", "/v1/images", api.SubmitImageRequest{Ref: ref}, &answers); st != http.StatusBadRequest || !strings.Contains(errorMessage(b), "refused access") {
		t.Fatalf("submit with the stale stored credentials = %d %s", st, b)
	}
	wrong := api.SubmitImageRequest{Ref: ref, RegistryAuth: &api.RegistryAuth{Username: user, Password: "not-" + pass}}
	if st, b := g.regCall(t, "POST", "/v1/images", wrong, &answers); st != http.StatusBadRequest || !strings.Contains(errorMessage(b), "refused access") {
		t.Fatalf("submit with a wrong run password = %d %s", st, b)
	}
	st, b := g.regCall(t, "POST", "/v1/images", api.SubmitImageRequest{Ref: ref, RegistryAuth: &api.RegistryAuth{Username: user, Password: pass}}, &answers)
	if st != http.StatusAccepted {
		t.Fatalf("submit with the run's credentials = %d %s", st, b)
	}
	var img api.Image
	if err := json.Unmarshal(b, &img); err != nil {
		t.Fatal(err)
	}
	done, err := g.c.WaitAnalyzed(ctx, img.Digest, time.Minute, nil)
	if err != nil || done.Status != api.StatusAnalyzed {
		t.Fatalf("the analysis with the run's credentials: %v %+v", err, done)
	}
	g.regCall(t, "GET", "/v1/images/"+img.Digest, nil, &answers)
	g.regCall(t, "GET", "/v1/images", nil, &answers)
	g.regCall(t, "GET", "/v1/registries", nil, &answers)

	recsAfter, sealedAfter := stored()
	if !reflect.DeepEqual(recsBefore, recsAfter) || !reflect.DeepEqual(sealedBefore, sealedAfter) {
		t.Fatalf("the stored credentials changed:\n%+v %v\n%+v %v", recsBefore, sealedBefore, recsAfter, sealedAfter)
	}
	if storedPassword(t, g, d.Host) != stale.Password {
		t.Fatal("the stored password is not the stale one any more")
	}
	g.Close()

	secrets := []string{pass, "not-" + pass, base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	out := logs.String()
	if !strings.Contains(out, "image queued with a registry authorization of its own") {
		t.Fatalf("the log lacks the submission:\n%s", out)
	}
	for _, f := range []string{"buildgate.db", "buildgate.db-wal", "buildgate.db-shm"} {
		b, err := os.ReadFile(filepath.Join(g.Config.DataDir, f))
		if err != nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds the run's password", f)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Error("the gate's log holds the run's password")
		}
		for _, a := range answers {
			if strings.Contains(a, s) {
				t.Errorf("an answer holds the run's password: %s", a)
			}
		}
	}
}
