package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
	"github.com/buildgate/buildgate/internal/registry"
)

// startGuardedGate runs a gate without a vulnerability DB whose private
// network allowance is allow, logging to logs.
func startGuardedGate(t *testing.T, allow string, logs io.Writer, mutate func(*Config)) *testGate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DBUpdateURL = ""
	cfg.AdminToken = testToken
	cfg.Workers = 1
	cfg.AllowPrivateNetworks = allow
	if mutate != nil {
		mutate(&cfg)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testGate{Main: m, c: client.New(m.URL, testToken, nil)}
}

// countingServer serves h on addr and counts the requests it gets.
func countingServer(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	var n atomic.Int64
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// pushedRegistry is an in-process registry on addr holding team/app:v1.
func pushedRegistry(t *testing.T, addr string) (host string, requests *atomic.Int64) {
	t.Helper()
	srv, n := countingServer(t, addr, ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	host = strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	n.Store(0)
	return host, n
}

func (g *testGate) submitRef(t *testing.T, ref string) (int, string) {
	t.Helper()
	code, b := g.regCall(t, "POST", "/v1/images", api.SubmitImageRequest{Ref: ref}, nil)
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		return code, string(b)
	}
	return code, e.Error.Message
}

// TestSubmitRefusesPrivateDestinations: a submission cannot make the gate
// connect to loopback, link-local (cloud metadata), private or unique-local
// addresses, by literal or by a name resolving there, and a closed port
// answers exactly like a refused address (no port scanning).
func TestSubmitRefusesPrivateDestinations(t *testing.T) {
	logs := &syncBuffer{}
	g := startGuardedGate(t, "", logs, nil)
	host, requests := pushedRegistry(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(host)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedHost := closed.Addr().String()
	closed.Close()

	tests := []struct{ name, host string }{
		{name: "open loopback port", host: host},
		{name: "closed loopback port", host: closedHost},
		{name: "name resolving to loopback", host: "localhost:" + port},
		{name: "cloud metadata", host: "169.254.169.254"},
		{name: "private", host: "10.0.0.1:5000"},
		{name: "private 192.168", host: "192.168.0.1"},
		{name: "unique-local", host: "[fd00::1]:5000"},
	}
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := g.submitRef(t, tt.host+"/team/app:v1")
			if code != http.StatusBadRequest || !strings.Contains(msg, registry.Unreachable) {
				t.Fatalf("submit %s = %d %q, want 400 with %q", tt.host, code, msg, registry.Unreachable)
			}
			answers = append(answers, strings.ReplaceAll(msg, tt.host, "HOST"))
		})
	}
	for i, a := range answers {
		if a != answers[0] {
			t.Errorf("answer %d %q differs from %q: the answers tell addresses apart", i, a, answers[0])
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the loopback registry got %d requests", n)
	}
	for _, kind := range []string{"loopback", "link-local", "private"} {
		if !strings.Contains(logs.String(), "is a "+kind+" address") {
			t.Errorf("the log does not say a %s destination was refused", kind)
		}
	}
	if code, _ := g.submitRef(t, host+"/team/../team/app:v1"); code != http.StatusBadRequest {
		t.Errorf("a reference with a dot segment = %d, want 400", code)
	}
}

// TestSubmitRedirectToLoopbackRefused: a registry in an allowed network
// (127.0.0.2 only, over TLS) that redirects to a name
// resolving to loopback (localhost, the registry on 127.0.0.1) gets
// nowhere: the guard checks the address dialled after DNS, which
// go-containerregistry's own check of IP literals does not. Allowing
// 127.0.0.0/8 lets the same submission through.
func TestSubmitRedirectToLoopbackRefused(t *testing.T) {
	host, requests := pushedRegistry(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(host)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.2: %v", err)
	}
	front := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return // the ping answers here; go-containerregistry takes its scheme from it
		}
		http.Redirect(w, r, "http://localhost:"+port+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})}}
	front.StartTLS()
	t.Cleanup(front.Close)
	frontHost := strings.TrimPrefix(front.URL, "https://")
	// httptest's certificate does not name 127.0.0.2: skip the check for it.
	verify := false
	trust := api.RegistryRequest{Registry: frontHost, Username: "u", Password: "p", VerifyTLS: &verify}

	g := startGuardedGate(t, "127.0.0.2/32", io.Discard, nil)
	g.mustCall(t, "POST", "/v1/registries?validate=false", trust, nil, 201)
	code, msg := g.submitRef(t, frontHost+"/team/app:v1")
	if code != http.StatusBadRequest || !strings.Contains(msg, registry.Unreachable) {
		t.Fatalf("submit through a redirect to localhost = %d %q, want 400", code, msg)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the loopback registry got %d requests through the redirect", n)
	}

	openLogs := &syncBuffer{}
	open := startGuardedGate(t, "127.0.0.0/8,::1/128", openLogs, nil)
	open.mustCall(t, "POST", "/v1/registries?validate=false", trust, nil, 201)
	if code, msg := open.submitRef(t, frontHost+"/team/app:v1"); code/100 != 2 {
		t.Fatalf("submit with 127.0.0.0/8 allowed = %d %q\n%s", code, msg, openLogs)
	}
	if requests.Load() == 0 {
		t.Fatal("the registry behind the redirect was not reached with loopback allowed")
	}
}

// TestRegistryAnswerNotEchoed: what a registry answers goes to the log,
// never into the caller's 400.
func TestRegistryAnswerNotEchoed(t *testing.T) {
	const body = "INTERNAL-SERVICE-SECRET-7f3a"
	srv, _ := countingServer(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		http.Error(w, body, http.StatusInternalServerError)
	}))
	logs := &syncBuffer{}
	g := startGuardedGate(t, "127.0.0.0/8", logs, nil)
	code, msg := g.submitRef(t, strings.TrimPrefix(srv.URL, "http://")+"/team/app:v1")
	if code != http.StatusBadRequest || strings.Contains(msg, body) || !strings.Contains(msg, "HTTP 500") {
		t.Fatalf("submit = %d %q, want 400 naming HTTP 500 without the body", code, msg)
	}
	if !strings.Contains(logs.String(), body) {
		t.Errorf("the log does not keep the registry's answer")
	}
}

// TestWebhookToLoopbackRefused: a channel cannot make the gate post to
// its own networks; the test delivery says why and how to allow it.
func TestWebhookToLoopbackRefused(t *testing.T) {
	recv := notifytest.NewReceiver(t, "whsec-guard-0123456789")
	for _, allow := range []string{"", "127.0.0.0/8"} {
		g := startGuardedGate(t, allow, io.Discard, nil)
		var ch api.Channel
		g.mustCall(t, "POST", "/v1/channels", map[string]any{"name": "hook", "type": "webhook", "url": recv.URL, "secret": "whsec-guard-0123456789"}, &ch, 201)
		var res api.ChannelTestResult
		g.mustCall(t, "POST", "/v1/channels/"+ch.ID+"/test", nil, &res, 200)
		if allow == "" {
			if res.OK || !strings.Contains(res.Error, "--allow-private-networks") || len(recv.Requests()) != 0 {
				t.Fatalf("test of a loopback webhook = %+v, %d requests; want refused", res, len(recv.Requests()))
			}
			continue
		}
		if !res.OK || len(recv.Requests()) != 1 {
			t.Fatalf("test with loopback allowed = %+v, %d requests", res, len(recv.Requests()))
		}
	}
}

// TestDBUpdateURLGuarded: the DB update URL goes through the same guard,
// and its credentials (userinfo, query token) are in no answer (/v1/db,
// the Anchore /system) and no log line.
func TestDBUpdateURLGuarded(t *testing.T) {
	const pass, token = "PASS-db-9137", "DBTOKEN-4242"
	srv, requests := countingServer(t, "127.0.0.1:0", http.NotFoundHandler())
	logs := &syncBuffer{}
	g := startGuardedGate(t, "", logs, func(c *Config) {
		c.DBUpdateURL = "http://mirror:" + pass + "@" + strings.TrimPrefix(srv.URL, "http://") + "/v6/latest.json?token=" + token
		c.DBUpdateInterval = time.Hour
	})
	var st api.DBStatus
	waitFor(t, "the first update attempt", time.Minute, func() bool {
		g.get(t, "/v1/db", &st)
		return st.LastUpdateAttempt != nil
	})
	if !strings.Contains(st.LastUpdateError, "--allow-private-networks") || requests.Load() != 0 {
		t.Fatalf("update from a loopback URL: error %q, %d requests; want refused", st.LastUpdateError, requests.Load())
	}
	if want := "http://[REDACTED]@" + strings.TrimPrefix(srv.URL, "http://") + "/v6/latest.json?token=[REDACTED]"; st.UpdateURL != want {
		t.Errorf("update_url = %q, want %q", st.UpdateURL, want)
	}
	var answers []string
	for _, path := range []string{"/v1/db", "/system", "/system/feeds"} {
		_, b := g.regCall(t, "GET", path, nil, nil)
		answers = append(answers, string(b))
	}
	waitFor(t, "the update failure in the log", time.Minute, func() bool { return strings.Contains(logs.String(), "update failed") })
	for _, where := range append(answers, logs.String()) {
		for _, leak := range []string{pass, token} {
			if strings.Contains(where, leak) {
				t.Errorf("%q leaks in %s", leak, where)
			}
		}
	}
}

// TestWebhookURLRedacted: a webhook URL's token is in no answer, and the
// redacted URL sent back on update keeps the real one.
func TestWebhookURLRedacted(t *testing.T) {
	const token = "HOOKTOKEN-5150"
	var got atomic.Value
	recv, _ := countingServer(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RequestURI())
	}))
	g := startGuardedGate(t, "127.0.0.0/8", io.Discard, nil)
	var ch api.Channel
	g.mustCall(t, "POST", "/v1/channels", map[string]any{"name": "hook", "type": "webhook", "url": recv.URL + "/hook?token=" + token, "secret": "whsec-guard-0123456789"}, &ch, 201)
	if ch.URL != recv.URL+"/hook?token=[REDACTED]" {
		t.Errorf("url answered as %q", ch.URL)
	}
	g.mustCall(t, "PUT", "/v1/channels/"+ch.ID, map[string]any{"name": "hook-2", "url": ch.URL}, nil, 200)
	for _, path := range []string{"/v1/channels", "/v1/channels/" + ch.ID} {
		if _, b := g.regCall(t, "GET", path, nil, nil); strings.Contains(string(b), token) {
			t.Errorf("GET %s leaks the token: %s", path, b)
		}
	}
	var res api.ChannelTestResult
	g.mustCall(t, "POST", "/v1/channels/"+ch.ID+"/test", nil, &res, 200)
	if uri, _ := got.Load().(string); !res.OK || uri != "/hook?token="+token {
		t.Fatalf("test after an update with the redacted url = %+v, request %q", res, uri)
	}
	// The URL is sealed at rest: the token is in neither the database file
	// nor its WAL.
	files, _ := filepath.Glob(filepath.Join(g.Config.DataDir, "buildgate.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s holds the webhook url's token in plain text", f)
		}
	}

	// A channel stored before URLs were sealed gets its URL sealed at start.
	old, err := g.Store.CreateChannel(context.Background(), buildgate.Channel{Name: "old", Type: buildgate.ChannelWebhook, URL: recv.URL + "/old?token=" + token}, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := g.Alerts.SealChannelURLs(context.Background()); n != 1 || err != nil {
		t.Fatalf("SealChannelURLs = %d, %v; want the old channel sealed", n, err)
	}
	if sealed, _ := g.Store.ChannelURL(context.Background(), old.ID); sealed == "" || strings.Contains(sealed, token) {
		t.Fatalf("the old channel's url is not sealed: %q", sealed)
	}
	if _, b := g.regCall(t, "GET", "/v1/channels/"+old.ID, nil, nil); strings.Contains(string(b), token) {
		t.Errorf("the old channel leaks its token: %s", b)
	}
	if n, _ := g.Alerts.SealChannelURLs(context.Background()); n != 0 {
		t.Errorf("SealChannelURLs sealed %d channels again", n)
	}
}

// TestAWSECRHostMustBeECR: an awsecr record names an ECR host, or an
// address in an allowed private network, nothing else; nothing is stored
// on refusal.
func TestAWSECRHostMustBeECR(t *testing.T) {
	g := startGuardedGate(t, "", io.Discard, nil)
	for _, host := range []string{"registry.evil.example", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", "127.0.0.1:" + strconv.Itoa(5000)} {
		code, b := g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: host, Type: "awsecr", Username: "awsauto"}, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(b), "not an Amazon ECR host") || !strings.Contains(string(b), "--allow-private-networks") {
			t.Errorf("awsecr record for %s = %d %s, want 400", host, code, b)
		}
	}
	var list api.RegistryList
	g.mustCall(t, "GET", "/v1/registries", nil, &list, 200)
	if len(list.Registries) != 0 {
		t.Errorf("refused records were stored: %+v", list.Registries)
	}
	g.mustCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", Type: "awsecr", Username: "awsauto"}, nil, 201)

	private := startGuardedGate(t, "127.0.0.0/8", io.Discard, nil)
	private.mustCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: "127.0.0.1:5000", Type: "awsecr", Username: "awsauto"}, nil, 201)
}
