package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckContentType(t *testing.T) {
	l := DefaultLimits()
	tests := []struct {
		name, method, path, contentType, auth, body string
		ok                                          bool
	}{
		{"JSON", "POST", "/v1/images", "application/json", "Bearer t", "{}", true},
		{"JSON with a charset", "POST", "/api/scanning/v1/anchore/policies", "application/json; charset=utf-8", "Basic dDo=", "{}", true},
		{"a +json type", "POST", "/v1/images", "application/vnd.buildgate+json", "Bearer t", "{}", true},
		{"YAML", "PUT", "/v1/policies/p", "application/yaml", "Bearer t", "id: p", true},
		{"text/plain", "POST", "/api/scanning/v1/anchore/policies", "text/plain", "Basic dDo=", "{}", false},
		{"a form", "POST", "/v1/policies", "application/x-www-form-urlencoded", "Bearer t", "a=b", false},
		{"multipart", "POST", "/v1/sboms", "multipart/form-data; boundary=x", "Bearer t", "--x", false},
		{"no type with a body", "POST", "/v1/images", "", "Bearer t", "{}", false},
		{"an unparsable type", "POST", "/v1/images", "application/json;;;=", "Bearer t", "{}", false},
		{"an empty POST with Basic", "POST", "/api/scanning/v1/anchore/images", "", "Basic dDo=", "", false},
		{"an empty POST with Bearer", "POST", "/v1/policies/p/activate", "", "Bearer t", "", true},
		{"an empty DELETE", "DELETE", "/api/scanning/v1/anchore/images/sha256:x", "", "Basic dDo=", "", true},
		{"an archive upload", "POST", "/v1/images/upload", "application/x-tar", "Bearer t", "x", true},
		{"JSON is no archive", "POST", "/v1/db/import", "application/json", "Bearer t", "x", false},
		{"a DB archive", "POST", "/v1/db/import", "application/gzip", "Bearer t", "x", true},
		{"an SPDX tag-value SBOM", "POST", "/v1/sboms", "text/spdx", "Bearer t", "x", true},
		{"a CycloneDX XML SBOM", "POST", "/v1/sboms", "application/vnd.cyclonedx+xml", "Bearer t", "<x/>", true},
		{"GET takes anything", "GET", "/v1/images", "text/plain", "", "{}", true},
		{"the console has CSRF tokens", "POST", "/ui/policies/import", "multipart/form-data; boundary=x", "", "--x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body == "" {
				r = httptest.NewRequest(tt.method, tt.path, http.NoBody)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			err := checkContentType(r, l.limitOf(tt.path).types)
			if (err == nil) != tt.ok {
				t.Fatalf("checkContentType = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "send one of") {
				t.Errorf("the refusal does not say what to send: %v", err)
			}
		})
	}
}

func TestBodyTooLargeNamesTheFlag(t *testing.T) {
	l := DefaultLimits()
	for path, flag := range map[string]string{
		"/v1/images": "--max-body-size", "/v1/images/upload": "--max-upload-size",
		"/v1/sboms": "--max-sbom-size", "/v1/db/import": "--max-db-import-size",
	} {
		rl := l.limitOf(path)
		msg := (&BodyTooLargeError{rl.max, rl.flag}).Error()
		if !strings.Contains(msg, flag) {
			t.Errorf("%s: %q does not name %s", path, msg, flag)
		}
	}
	if got := (&BodyTooLargeError{1 << 20, "--max-body-size"}).Error(); !strings.Contains(got, "1 MiB") {
		t.Errorf("the 1 MiB limit reads %q", got)
	}
}
