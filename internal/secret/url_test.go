package secret_test

import (
	"strings"
	"testing"

	"github.com/buildgate/buildgate/internal/secret"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "https://grype.anchore.io/databases/v6/latest.json", want: "https://grype.anchore.io/databases/v6/latest.json"},
		{name: "userinfo", in: "https://mirror:s3cr3t-pass@db.example/v6/", want: "https://[REDACTED]@db.example/v6/"},
		{name: "query token", in: "https://db.example/latest.json?token=abcd1234&x=1", want: "https://db.example/latest.json?token=[REDACTED]&x=[REDACTED]"},
		{name: "file", in: "file:///srv/db/latest.json", want: "file:///srv/db/latest.json"},
		{name: "empty", in: "", want: ""},
		{name: "unparsable", in: "https://a b:%zz@host", want: "[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := secret.RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestURLSecretsRedactDerivedMessages(t *testing.T) {
	u := "https://mirror:p%40ss-word-9@db.example/v6/latest.json?X-Amz-Signature=deadbeefcafe&token=tok%2Fen-42"
	msg := `reading listing https://mirror:p%40ss-word-9@db.example/v6/latest.json?X-Amz-Signature=deadbeefcafe&token=tok%2Fen-42: ` +
		`GET https://mirror:***@db.example/v6/archive.tar.zst?X-Amz-Signature=deadbeefcafe: password p@ss-word-9, token tok/en-42`
	got := secret.Redact(msg, secret.URLSecrets(u)...)
	for _, leak := range []string{"p%40ss-word-9", "p@ss-word-9", "deadbeefcafe", "tok%2Fen-42", "tok/en-42"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q survives in %q", leak, got)
		}
	}
	if !strings.Contains(got, "db.example/v6/latest.json") {
		t.Errorf("the redacted message lost the host and path: %q", got)
	}
}
