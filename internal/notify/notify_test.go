package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/notify"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
	"github.com/buildgate/buildgate/internal/secret"
)

var msg = buildgate.Message{
	Event: "policy_eval_failed", Title: "Policy evaluation failed: docker.io/team/app:1",
	Text:       "docker.io/team/app:1 fails policy default (version 1) with 3 stop findings.",
	Fields:     []buildgate.MessageField{{Name: "Digest", Value: "sha256:abc"}, {Name: "Findings", Value: "stop a\nstop b"}},
	Body:       []byte(`{"type":"policy_eval_failed","delivery_id":"d1"}`),
	DeliveryID: "d1",
}

func TestSign(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style vector.
	got := notify.Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !notify.Verify([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"), want) ||
		notify.Verify([]byte("other"), []byte("The quick brown fox jumps over the lazy dog"), want) {
		t.Error("Verify disagrees with Sign")
	}
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantErr   bool
		permanent bool
	}{
		{"accepted", 200, false, false},
		{"no content", 204, false, false},
		{"server error is retried", 503, true, false},
		{"rate limit is retried", 429, true, false},
		{"gone is permanent", 410, true, true},
		{"redirect is not followed", 302, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var body []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, body = r, must(io.ReadAll(r.Body))
				if tt.status == 302 {
					w.Header().Set("Location", "http://elsewhere.invalid/")
				}
				w.WriteHeader(tt.status)
				w.Write([]byte("answer"))
			}))
			defer srv.Close()
			res, err := notify.Webhook{}.Send(context.Background(), buildgate.Channel{Name: "w", URL: srv.URL + "/x"}, secret.Secret("s3cret"), msg)
			if (err != nil) != tt.wantErr || notify.IsPermanent(err) != tt.permanent {
				t.Fatalf("err = %v (permanent %v), want error %v permanent %v", err, notify.IsPermanent(err), tt.wantErr, tt.permanent)
			}
			if res.StatusCode != tt.status || (tt.status != 204 && res.Answer != "answer") {
				t.Errorf("result = %+v", res)
			}
			if got.Header.Get(notify.SignatureHeader) != notify.Sign([]byte("s3cret"), body) || string(body) != string(msg.Body) {
				t.Errorf("signature %q over %s", got.Header.Get(notify.SignatureHeader), body)
			}
			if got.Header.Get(notify.DeliveryHeader) != "d1" || got.Header.Get(notify.EventHeader) != "policy_eval_failed" {
				t.Errorf("headers = %v", got.Header)
			}
		})
	}
}

func TestSlack(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body = must(io.ReadAll(r.Body))
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	hook := srv.URL + "/services/T000/B000/XXXXSECRET"
	if _, err := (notify.Slack{}).Send(context.Background(), buildgate.Channel{Name: "s"}, secret.Secret(hook), msg); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Fields []struct{ Type, Text string } `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Text != msg.Title || len(m.Blocks) != 4 || m.Blocks[0].Type != "header" || m.Blocks[0].Text.Text != msg.Title ||
		m.Blocks[1].Text.Type != "mrkdwn" || len(m.Blocks[2].Fields) != 2 || m.Blocks[3].Type != "context" {
		t.Fatalf("slack message = %s", body)
	}

	// A refused connection's error does not quote the webhook URL.
	srv.Close()
	_, err := (notify.Slack{}).Send(context.Background(), buildgate.Channel{Name: "s"}, secret.Secret(hook), msg)
	if err == nil || strings.Contains(err.Error(), "XXXXSECRET") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmail(t *testing.T) {
	srv := notifytest.NewSMTPServer(t, "gate@example.com", "smtp-pass-123")
	ch := buildgate.Channel{
		Name: "mail", Type: buildgate.ChannelEmail, SMTPHost: srv.Host, SMTPPort: srv.Port, TLS: buildgate.SMTPStartTLS,
		CACert: srv.CACert, Username: "gate@example.com", From: "gate@example.com", To: []string{"sec@example.com", "ops@example.com"},
	}
	e := notify.Email{Now: func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.Send(ctx, ch, "smtp-pass-123", msg)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 250 {
		t.Errorf("result = %+v", res)
	}
	mails := srv.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.User != "gate@example.com" || m.From != "gate@example.com" || len(m.To) != 2 {
		t.Errorf("mail = %+v", m)
	}
	head, body, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	for _, h := range []string{"Subject: Policy evaluation failed: docker.io/team/app:1", "X-Buildgate-Delivery: d1", "To: sec@example.com, ops@example.com"} {
		if !strings.Contains(head, h) {
			t.Errorf("headers lack %q:\n%s", h, head)
		}
	}
	text := string(must(io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))))
	if !strings.Contains(text, msg.Text) || !strings.Contains(text, "Digest: sha256:abc") {
		t.Errorf("body = %q", text)
	}

	tests := []struct {
		name      string
		mutate    func(*buildgate.Channel)
		password  string
		permanent bool
	}{
		{"wrong password", func(*buildgate.Channel) {}, "nope", true},
		{"untrusted certificate", func(c *buildgate.Channel) { c.CACert = "" }, "smtp-pass-123", false},
		{"no STARTTLS on a TLS-less port is refused, not sent in clear", func(c *buildgate.Channel) { c.TLS = buildgate.SMTPNone }, "smtp-pass-123", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ch
			tt.mutate(&c)
			_, err := e.Send(ctx, c, secret.Secret(tt.password), msg)
			if err == nil || notify.IsPermanent(err) != tt.permanent {
				t.Fatalf("err = %v (permanent %v)", err, notify.IsPermanent(err))
			}
			if strings.Contains(err.Error(), "smtp-pass-123") {
				t.Errorf("error holds the password: %v", err)
			}
		})
	}
	if len(srv.Mails()) != 1 {
		t.Errorf("failed sends delivered mail: %d", len(srv.Mails()))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
