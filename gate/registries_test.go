package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/registry/registrytest"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server"
)

// syncBuffer collects a gate's log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRegistryGate runs a gate on dir (a new temporary directory when
// empty), with a vulnerability DB when withDB, logging at debug level to
// logs when it is not nil.
func startRegistryGate(t *testing.T, dir string, withDB bool, logs io.Writer) *testGate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	if dir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.DBUpdateURL = ""
	cfg.AdminToken = testToken
	// The test registries, webhooks and fake ECR listen on 127.0.0.1.
	cfg.AllowPrivateNetworks = "127.0.0.0/8"
	if withDB {
		if _, err := importDB(t, cfg.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	if logs == nil {
		logs = io.Discard
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testGate{Main: m, c: client.New(m.URL, testToken, nil)}
}

// regCall sends a request with the admin token (or token) and returns the
// status and the body; every body is kept in answers when it is not nil.
func (g *testGate) regCall(t *testing.T, method, path string, body any, answers *[]string, token ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, g.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	tok := testToken
	if len(token) > 0 {
		tok = token[0]
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if answers != nil {
		*answers = append(*answers, string(b))
	}
	return resp.StatusCode, b
}

func errorMessage(b []byte) string {
	var er api.ErrorResponse
	json.Unmarshal(b, &er)
	return er.Error.Message
}

func boolp(b bool) *bool { return &b }

// jsonKey is a GCP service account key file's JSON (the key is not real).
const jsonKey = `{
  "type": "service_account",
  "project_id": "my-project",
  "private_key_id": "0123456789abcdef0123456789abcdef01234567",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-not-a-real-key\n-----END PRIVATE KEY-----\n",
  "client_email": "puller@my-project.iam.gserviceaccount.com",
  "client_id": "123456789012345678901",
  "token_uri": "https://oauth2.googleapis.com/token"
}`

func TestRegistriesAPI(t *testing.T) {
	g := startRegistryGate(t, "", false, nil)

	// A path prefix, with ?validate=false: no registry is asked.
	st, b := g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{
		Registry: "gcr.io/my-project", Username: "_json_key", Password: jsonKey, Name: "gcr project",
	}, nil)
	if st != http.StatusCreated {
		t.Fatalf("POST = %d %s", st, b)
	}
	if bytes.Contains(b, []byte("private_key")) || bytes.Contains(b, []byte(`"password"`)) {
		t.Fatalf("the answer holds the key: %s", b)
	}
	var rec api.Registry
	json.Unmarshal(b, &rec)
	if rec.Registry != "gcr.io/my-project" || rec.Type != buildgate.RegistryTypeDockerV2 || !rec.VerifyTLS || rec.PasswordSetAt.IsZero() || rec.Name != "gcr project" {
		t.Fatalf("record %+v", rec)
	}
	for _, p := range []string{"/v1/registries/gcr.io/my-project", "/v1/registries/gcr.io%2Fmy-project"} {
		if st, b := g.regCall(t, "GET", p, nil, nil); st != http.StatusOK || !bytes.Contains(b, []byte(`"gcr.io/my-project"`)) {
			t.Fatalf("GET %s = %d %s", p, st, b)
		}
	}

	// Docker Hub's aliases are one registry.
	st, b = g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{
		Registry: "index.docker.io", Username: "hubuser", Password: "hub-password", VerifyTLS: boolp(false),
	}, nil)
	json.Unmarshal(b, &rec)
	if st != http.StatusCreated || rec.Registry != "docker.io" || rec.VerifyTLS {
		t.Fatalf("POST index.docker.io = %d %s", st, b)
	}
	set := rec.PasswordSetAt
	for _, alias := range []string{"docker.io", "registry-1.docker.io"} {
		if st, _ := g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: alias, Username: "x", Password: "y"}, nil); st != http.StatusConflict {
			t.Fatalf("POST %s again = %d, want 409", alias, st)
		}
	}
	if st, b := g.regCall(t, "GET", "/v1/registries/registry-1.docker.io", nil, nil); st != http.StatusOK || !bytes.Contains(b, []byte(`"registry":"docker.io"`)) {
		t.Fatalf("GET by alias = %d %s", st, b)
	}

	// PUT without a password keeps it and when it was set.
	time.Sleep(10 * time.Millisecond)
	st, b = g.regCall(t, "PUT", "/v1/registries/docker.io?validate=false", api.RegistryRequest{Username: "renamed"}, nil)
	json.Unmarshal(b, &rec)
	if st != http.StatusOK || rec.Username != "renamed" || !rec.PasswordSetAt.Equal(set) || rec.VerifyTLS {
		t.Fatalf("PUT keeping the password = %d %s", st, b)
	}
	creds, _ := g.Registries.Credentials(context.Background())
	for _, c := range creds {
		if c.Registry == "docker.io" && string(c.Password) != "hub-password" {
			t.Fatal("PUT without a password lost the stored one")
		}
	}
	st, b = g.regCall(t, "PUT", "/v1/registries/docker.io?validate=false", api.RegistryRequest{Password: "new-hub-password"}, nil)
	json.Unmarshal(b, &rec)
	if st != http.StatusOK || !rec.PasswordSetAt.After(set) {
		t.Fatalf("PUT with a password = %d %s", st, b)
	}
	if st, b := g.regCall(t, "PUT", "/v1/registries/docker.io?validate=false", api.RegistryRequest{Registry: "quay.io"}, nil); st != http.StatusBadRequest || !strings.Contains(errorMessage(b), "cannot change") {
		t.Fatalf("PUT renaming = %d %s", st, b)
	}
	if st, _ := g.regCall(t, "PUT", "/v1/registries/quay.io?validate=false", api.RegistryRequest{Password: "x"}, nil); st != http.StatusNotFound {
		t.Fatalf("PUT of an unknown registry = %d", st)
	}

	var list api.RegistryList
	_, b = g.regCall(t, "GET", "/v1/registries", nil, nil)
	json.Unmarshal(b, &list)
	if len(list.Registries) != 2 || list.Registries[0].Registry != "docker.io" || list.Registries[1].Registry != "gcr.io/my-project" {
		t.Fatalf("list %s", b)
	}

	// Admin only.
	secretTok, hash := server.NewToken()
	if err := g.Store.CreateToken(context.Background(), buildgate.Token{ID: "ci-registries", Name: "ci", Role: buildgate.RoleCI, CreatedAt: time.Now()}, hash); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"GET /v1/registries", "GET /v1/registries/docker.io", "POST /v1/registries", "PUT /v1/registries/docker.io", "DELETE /v1/registries/docker.io"} {
		method, path, _ := strings.Cut(m, " ")
		if st, _ := g.regCall(t, method, path, "{}", nil, secretTok); st != http.StatusForbidden {
			t.Errorf("%s with a ci token = %d, want 403", m, st)
		}
	}

	if st, _ := g.regCall(t, "DELETE", "/v1/registries/gcr.io/my-project", nil, nil); st != http.StatusNoContent {
		t.Fatalf("DELETE = %d", st)
	}
	if st, _ := g.regCall(t, "GET", "/v1/registries/gcr.io/my-project", nil, nil); st != http.StatusNotFound {
		t.Fatalf("GET after DELETE = %d", st)
	}
	if st, _ := g.regCall(t, "DELETE", "/v1/registries/gcr.io/my-project", nil, nil); st != http.StatusNotFound {
		t.Fatalf("DELETE again = %d", st)
	}
}

// TestRegistriesBadInput: each bad record is a 400 with the reason, and
// nothing is stored.
func TestRegistriesBadInput(t *testing.T) {
	g := startRegistryGate(t, "", false, nil)
	srv := registrytest.NewExactAuthServer(t, "alice", "right-password")
	ca := string(registrytest.SelfSigned(t).CertPEM)
	const keyText = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name  string
		query string
		body  any
		want  []string
		never string
	}{
		{name: "unknown type", body: api.RegistryRequest{Registry: "quay.io", Username: "u", Password: "p", Type: "gcr"}, want: []string{`unknown registry type "gcr"`, "docker_v2", "awsecr"}},
		{name: "empty host", body: api.RegistryRequest{Registry: " ", Username: "u", Password: "p"}, want: []string{"registry is required", "such as ghcr.io"}},
		{name: "scheme", body: api.RegistryRequest{Registry: "https://registry.example.com/v2/", Username: "u", Password: "p"}, want: []string{"scheme", `as "registry.example.com"`}},
		{name: "api path", body: api.RegistryRequest{Registry: "registry.example.com/v2", Username: "u", Password: "p"}, want: []string{"API path", `as "registry.example.com"`}},
		{name: "trailing slash", body: api.RegistryRequest{Registry: "gcr.io/my-project/", Username: "u", Password: "p"}, want: []string{"ends with /", `as "gcr.io/my-project"`}},
		{name: "path on awsecr", body: api.RegistryRequest{Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com/team", Type: "awsecr", Username: "AKID", Password: "p"}, want: []string{"whole host", `as "123456789012.dkr.ecr.us-east-1.amazonaws.com"`}},
		{name: "bad host", body: api.RegistryRequest{Registry: "bad_host!:99", Username: "u", Password: "p"}, want: []string{"not a valid host"}},
		{name: "uppercase path", body: api.RegistryRequest{Registry: "gcr.io/My-Project", Username: "u", Password: "p"}, want: []string{"not a repository path"}},
		{name: "no username", body: api.RegistryRequest{Registry: "quay.io", Password: "p"}, want: []string{"username is required"}},
		{name: "no password", body: api.RegistryRequest{Registry: "quay.io", Username: "u"}, want: []string{"password is required"}},
		{name: "ecr without secret", body: api.RegistryRequest{Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Type: "awsecr", Username: "AKID"}, want: []string{"secret access key"}},
		{name: "json key not json", body: api.RegistryRequest{Registry: "gcr.io", Username: "_json_key", Password: `{"type": "service_account", "private_key": "SECRETKEYMATERIAL` + "\x01"}, want: []string{"invalid JSON key", "not valid JSON"}, never: "SECRETKEYMATERIAL"},
		{name: "json key incomplete", body: api.RegistryRequest{Registry: "gcr.io", Username: "_json_key", Password: `{"type": "service_account", "project_id": "p"}`}, want: []string{"invalid JSON key", "client_email, private_key"}},
		{name: "json key base64 not base64", body: api.RegistryRequest{Registry: "gcr.io", Username: "_json_key_base64", Password: "%%%"}, want: []string{"invalid JSON key", "not base64"}},
		{name: "ca not pem", body: api.RegistryRequest{Registry: "quay.io", Username: "u", Password: "p", CACert: "just some text"}, want: []string{"ca_cert is not PEM"}},
		{name: "ca is a key", body: api.RegistryRequest{Registry: "quay.io", Username: "u", Password: "p", CACert: keyText}, want: []string{`"PRIVATE KEY"`, "only CERTIFICATE"}, never: "MIGHAgEAMBMG"},
		{name: "ca with trailing junk", body: api.RegistryRequest{Registry: "quay.io", Username: "u", Password: "p", CACert: ca + "junk"}, want: []string{"not PEM after"}},
		{name: "body not json", body: `{"registry": "quay.io", "password": "pw-in-broken-json`, want: []string{"invalid JSON body"}, never: "pw-in-broken-json"},
		{name: "verify_tls not bool", body: `{"registry": "quay.io", "username": "u", "password": "p", "verify_tls": "no"}`, want: []string{"verify_tls must be a bool"}},
		{name: "validate not bool", query: "?validate=maybe", body: api.RegistryRequest{Registry: "quay.io", Username: "u", Password: "p"}, want: []string{"validate must be true or false"}},
		{name: "credentials refused", body: api.RegistryRequest{Registry: srv.Host, Username: "alice", Password: "wrong-password"}, want: []string{"registry " + srv.Host, `refused the credentials of "alice"`, "authentication required"}, never: "wrong-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			if q == "" && tt.name != "credentials refused" {
				q = "?validate=false"
			}
			st, b := g.regCall(t, "POST", "/v1/registries"+q, tt.body, nil)
			msg := errorMessage(b)
			if st != http.StatusBadRequest {
				t.Fatalf("POST = %d %s, want 400", st, b)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if tt.never != "" && strings.Contains(string(b), tt.never) {
				t.Errorf("the answer quotes the secret: %s", b)
			}
		})
	}
	_, b := g.regCall(t, "GET", "/v1/registries", nil, nil)
	if !bytes.Equal(bytes.TrimSpace(b), []byte(`{"registries":[]}`)) {
		t.Fatalf("bad input was stored: %s", b)
	}
	if sec, err := g.Store.RegistrySecrets(context.Background()); err != nil || len(sec) != 0 {
		t.Fatalf("secrets stored: %d, %v", len(sec), err)
	}
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRegistriesGCRJSONKeyAndQuayRobot: a GCR JSON key and a Quay robot
// account go through registries that check the exact username and
// password; each is validated at add time, then an image pulls and is
// analysed.
func TestRegistriesGCRJSONKeyAndQuayRobot(t *testing.T) {
	g := startRegistryGate(t, "", true, nil)
	tests := []struct {
		name, user, pass, prefix string
	}{
		{name: "gcr json key", user: "_json_key", pass: jsonKey, prefix: "/my-project"},
		{name: "gcr json key base64", user: "_json_key_base64", pass: base64.StdEncoding.EncodeToString([]byte(jsonKey)), prefix: "/other-project"},
		{name: "quay robot", user: "myorg+ci_robot", pass: "QUAYROBOTTOKEN0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", prefix: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := registrytest.NewExactAuthServer(t, tt.user, tt.pass)
			repo := "myorg/app:v1"
			if tt.prefix != "" {
				repo = strings.TrimPrefix(tt.prefix, "/") + "/app:v1"
			}
			ref := registrytest.Push(t, srv.Host, repo, tt.user, tt.pass, randomImage(t), nil)
			if st, b := g.regCall(t, "POST", "/v1/registries", api.RegistryRequest{Registry: srv.Host + tt.prefix, Username: tt.user, Password: tt.pass}, nil); st != http.StatusCreated {
				t.Fatalf("POST (validated) = %d %s", st, b)
			}
			img := g.submitAndWait(t, ref)
			if img.Status != api.StatusAnalyzed {
				t.Fatalf("status %s: %s", img.Status, img.Error)
			}
			if len(srv.Users()) == 0 {
				t.Fatal("the registry accepted nothing")
			}
			for _, u := range srv.Users() {
				if u != tt.user {
					t.Fatalf("the registry accepted user %q, want exactly %q", u, tt.user)
				}
			}
		})
	}
}

// TestRegistriesRealDistribution runs Debian's docker-registry with
// htpasswd (bcrypt) and TLS on 127.0.0.1: a private image pulls with stored
// credentials and the registry's CA, fails clearly with wrong ones, and
// validation catches bad credentials at add time.
func TestRegistriesRealDistribution(t *testing.T) {
	const user, pass = "alice", "Tr0ub4dor&3-registry"
	d := registrytest.StartDistribution(t, map[string]string{user: pass, "bob": "bobs-password"})
	registrytest.Push(t, d.Host, "private/dpkg:v1", user, pass, sharedImage(t, "bullseye-dpkgonly"), d.Cert.Transport())
	ref := d.Host + "/private/dpkg:v1"
	g := startRegistryGate(t, "", true, nil)
	ctx := context.Background()

	submit := func() (int, string) {
		st, b := g.regCall(t, "POST", "/v1/images", api.SubmitImageRequest{Ref: ref, Force: true}, nil)
		return st, errorMessage(b)
	}
	if st, msg := submit(); st != http.StatusBadRequest || !strings.Contains(msg, d.Host) || !strings.Contains(msg, "TLS certificate is not trusted") {
		t.Fatalf("submit with no record = %d %q", st, msg)
	}

	good := api.RegistryRequest{Registry: d.Host, Username: user, Password: pass, CACert: string(d.Cert.CertPEM)}
	wrong := good
	wrong.Password = "not-" + pass
	st, b := g.regCall(t, "POST", "/v1/registries", wrong, nil)
	t.Logf("POST with a wrong password: %d %s", st, errorMessage(b))
	if msg := errorMessage(b); st != http.StatusBadRequest || !strings.Contains(msg, "registry "+d.Host) ||
		!strings.Contains(msg, `refused the credentials of "alice"`) || !strings.Contains(msg, "HTTP 401") {
		t.Fatalf("POST with a wrong password = %d %q", st, msg)
	}
	noCA := good
	noCA.CACert = ""
	if st, b := g.regCall(t, "POST", "/v1/registries", noCA, nil); st != http.StatusBadRequest || !strings.Contains(errorMessage(b), "TLS certificate is not trusted") {
		t.Fatalf("POST without the CA = %d %s", st, b)
	}
	if recs, _ := g.Registries.List(ctx); len(recs) != 0 {
		t.Fatalf("refused records were stored: %+v", recs)
	}

	if st, b := g.regCall(t, "POST", "/v1/registries", good, nil); st != http.StatusCreated {
		t.Fatalf("POST = %d %s", st, b)
	}
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("status %s: %s", img.Status, img.Error)
	}
	pkgs, err := g.c.Packages(ctx, img.Digest)
	if err != nil || len(pkgs.Packages) == 0 {
		t.Fatalf("packages of the private image: %v, %v", pkgs, err)
	}

	// Stored credentials that went wrong: the pull fails clearly.
	if st, b := g.regCall(t, "PUT", "/v1/registries/"+d.Host+"?validate=false", api.RegistryRequest{Password: "expired-" + pass}, nil); st != http.StatusOK {
		t.Fatalf("PUT = %d %s", st, b)
	}
	st, msg := submit()
	t.Logf("submit with a wrong stored password: %d %s", st, msg)
	if st != http.StatusBadRequest || !strings.Contains(msg, "registry "+d.Host+" refused access") || !strings.Contains(msg, "UNAUTHORIZED") {
		t.Fatalf("submit with a wrong stored password = %d %q", st, msg)
	}
	// Another user's valid credentials, and verify_tls false instead of the CA.
	if st, b := g.regCall(t, "PUT", "/v1/registries/"+d.Host, api.RegistryRequest{Username: "bob", Password: "bobs-password", VerifyTLS: boolp(false)}, nil); st != http.StatusOK {
		t.Fatalf("PUT bob without verification = %d %s", st, b)
	}
	if st, msg := submit(); st != http.StatusAccepted {
		t.Fatalf("submit as bob with verify_tls false = %d %q", st, msg)
	}
}

// TestSecretsNeverLeak runs a gate with credentials through adds (refused
// and accepted), reads, updates, a submission and an analysis, and greps
// every log line, every HTTP answer, the metrics and the SQLite files for
// the passwords.
func TestSecretsNeverLeak(t *testing.T) {
	const user, pass = "leaky", "pa55-NEVER-SHOW-ME-9f8e7d"
	const wrongPass = "wrong-NEVER-SHOW-ME-1a2b3c"
	var logs syncBuffer
	g := startRegistryGate(t, "", true, &logs)
	srv := registrytest.NewExactAuthServer(t, user, pass)
	ref := registrytest.Push(t, srv.Host, "team/app:v1", user, pass, randomImage(t), nil)
	var answers []string

	g.regCall(t, "POST", "/v1/registries", api.RegistryRequest{Registry: srv.Host, Username: user, Password: wrongPass}, &answers)
	g.regCall(t, "POST", "/v1/registries", `{"registry": "`+srv.Host+`", "password": "`+wrongPass+`\q"}`, &answers)
	if st, b := g.regCall(t, "POST", "/v1/registries", api.RegistryRequest{Registry: srv.Host, Username: user, Password: pass}, &answers); st != http.StatusCreated {
		t.Fatalf("POST = %d %s", st, b)
	}
	g.regCall(t, "POST", "/v1/registries", api.RegistryRequest{Registry: srv.Host, Username: user, Password: pass}, &answers)
	g.regCall(t, "GET", "/v1/registries", nil, &answers)
	g.regCall(t, "GET", "/v1/registries/"+srv.Host, nil, &answers)
	g.regCall(t, "PUT", "/v1/registries/"+srv.Host, api.RegistryRequest{Password: pass}, &answers)
	g.regCall(t, "PUT", "/v1/registries/"+srv.Host, api.RegistryRequest{Password: wrongPass}, &answers)
	img := g.submitAndWait(t, ref)
	if img.Status != api.StatusAnalyzed {
		t.Fatalf("status %s: %s", img.Status, img.Error)
	}
	g.regCall(t, "GET", "/v1/images/"+img.Digest, nil, &answers)
	g.regCall(t, "PUT", "/v1/registries/"+srv.Host+"?validate=false", api.RegistryRequest{Password: wrongPass}, &answers)
	g.regCall(t, "POST", "/v1/images", api.SubmitImageRequest{Ref: ref, Force: true}, &answers)
	g.regCall(t, "GET", "/v1/images", nil, &answers)
	mreq, _ := http.NewRequest(http.MethodGet, g.URL+"/metrics", nil)
	mreq.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answers = append(answers, string(metrics))
	g.regCall(t, "DELETE", "/v1/registries/"+srv.Host, nil, &answers)
	g.Close()

	secrets := []string{pass, wrongPass, base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)), base64.StdEncoding.EncodeToString([]byte(user + ":" + wrongPass))}
	out := logs.String()
	if !strings.Contains(out, "registry credentials added") || !strings.Contains(out, "level=DEBUG") {
		t.Fatalf("the log lacks what the test ran: %s", out)
	}
	var files []string
	for _, f := range []string{"buildgate.db", "buildgate.db-wal", "buildgate.db-shm", secret.KeyFileName} {
		b, err := os.ReadFile(filepath.Join(g.Config.DataDir, f))
		if err == nil {
			files = append(files, string(b))
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds a secret")
		}
		for _, a := range answers {
			if strings.Contains(a, s) {
				t.Errorf("an HTTP answer holds a secret: %s", a)
			}
		}
		for i, f := range files {
			if strings.Contains(f, s) {
				t.Errorf("data file %d holds a secret", i)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(g.Config.DataDir, secret.KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
}

// runRotate runs the rotation as `gate secrets rotate` does.
func runRotate(t *testing.T, dir, newKeyFile string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := rotateSecrets(context.Background(), dir, newKeyFile, os.Getenv(secret.EnvKey), &out)
	return out.String(), err
}

func storedPassword(t *testing.T, g *testGate, registry string) string {
	t.Helper()
	creds, err := g.Registries.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.Registry == registry {
			return string(c.Password)
		}
	}
	return ""
}

func TestSecretsRotate(t *testing.T) {
	dir := t.TempDir()
	g := startRegistryGate(t, dir, false, nil)
	for _, r := range []string{"a.example", "b.example/team"} {
		if st, b := g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: r, Username: "u", Password: "pw-of-" + r}, nil); st != http.StatusCreated {
			t.Fatalf("POST = %d %s", st, b)
		}
	}
	g.Close()
	oldKey, err := secret.ReadKeyFile(filepath.Join(dir, secret.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}

	// Through the command line, as a user runs it.
	if err := run(context.Background(), []string{"secrets", "rotate", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	newKey, err := secret.ReadKeyFile(filepath.Join(dir, secret.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(oldKey, newKey) {
		t.Fatal("the key file still holds the old key")
	}
	if _, err := os.Stat(filepath.Join(dir, secret.NextKeyFileName)); !os.IsNotExist(err) {
		t.Fatal("secret.key.next was left behind")
	}
	if fi, _ := os.Stat(filepath.Join(dir, secret.KeyFileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file mode %04o", fi.Mode().Perm())
	}
	g2 := startRegistryGate(t, dir, false, nil)
	if got := storedPassword(t, g2, "b.example/team"); got != "pw-of-b.example/team" {
		t.Fatalf("after rotation the password opens as %q", got)
	}
	all, _ := g2.Store.RegistrySecrets(context.Background())
	oldSealer, _ := secret.NewSealer(oldKey)
	for r, s := range all {
		if id, _ := secret.SealedKeyID(s); id != secret.KeyID(newKey) {
			t.Errorf("%s is sealed under %s, want the new key %s", r, id, secret.KeyID(newKey))
		}
		if _, err := oldSealer.Open(s, secret.RegistryPassword(r)); err == nil {
			t.Errorf("the old key still opens %s", r)
		}
	}
	g2.Close()

	// An explicit new key file, and a key from GATE_SECRET_KEY.
	keyFile := filepath.Join(t.TempDir(), "next.key")
	out, err := runRotate(t, dir, keyFile)
	if err != nil || !strings.Contains(out, "re-sealed 2 secrets") {
		t.Fatalf("rotate: %q, %v", out, err)
	}
	given, err := secret.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := secret.ReadKeyFile(filepath.Join(dir, secret.KeyFileName)); !bytes.Equal(cur, given) {
		t.Fatal("--new-key-file's key was not installed")
	}
	t.Setenv(secret.EnvKey, base64.StdEncoding.EncodeToString(given))
	if _, err := runRotate(t, dir, ""); err == nil || !strings.Contains(err.Error(), "--new-key-file") {
		t.Fatalf("rotate of an env key without --new-key-file: %v", err)
	}
	envNext := filepath.Join(t.TempDir(), "env-next.key")
	out, err = runRotate(t, dir, envNext)
	if err != nil || !strings.Contains(out, "set "+secret.EnvKey) {
		t.Fatalf("rotate of an env key: %q, %v", out, err)
	}
	envKey, _ := secret.ReadKeyFile(envNext)
	t.Setenv(secret.EnvKey, base64.StdEncoding.EncodeToString(envKey))
	g3 := startRegistryGate(t, dir, false, nil)
	if got := storedPassword(t, g3, "a.example"); got != "pw-of-a.example" {
		t.Fatalf("after an env rotation the password opens as %q", got)
	}
}
