package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// templateScript is the script of the template's .buildgate-scan job.
func templateScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("gate.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl map[string]struct {
		Script []string `yaml:"script"`
	}
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	job, ok := tpl[".buildgate-scan"]
	if !ok || len(job.Script) != 1 {
		t.Fatalf(".buildgate-scan has script %v, want one block", job.Script)
	}
	return job.Script[0]
}

func gitlabArchive(t *testing.T, script string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "gate-gitlab", Mode: 0o755, Size: int64(len(script))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(script))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestTemplateDownloadsARelease(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the fake release serves linux/amd64 only")
	}
	for _, tool := range []string{"curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s", tool)
		}
	}
	archive := gitlabArchive(t, "#!/bin/sh\necho released gate-gitlab\n")
	sum := fmt.Sprintf("%x", sha256.Sum256(archive))
	tests := []struct {
		name     string
		sums     string
		wantCode int
		want     string
	}{
		{"verified", sum + "  gate-gitlab_v1.2.3_linux_amd64.tar.gz\n", 0, "released gate-gitlab"},
		{"checksum mismatch", strings.Repeat("0", 64) + "  gate-gitlab_v1.2.3_linux_amd64.tar.gz\n", 2, "checksum mismatch for gate-gitlab_v1.2.3_linux_amd64.tar.gz"},
		{"not listed", sum + "  other.tar.gz\n", 2, "checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v1.2.3/SHA256SUMS":
					w.Write([]byte(tt.sums))
				case "/v1.2.3/gate-gitlab_v1.2.3_linux_amd64.tar.gz":
					w.Write(archive)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			cmd := exec.Command("sh", "-c", templateScript(t))
			cmd.Dir = t.TempDir()
			cmd.Env = []string{"PATH=/usr/bin:/bin", "BUILDGATE_VERSION=v1.2.3", "BUILDGATE_RELEASE_URL=" + srv.URL}
			got, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(string(got), tt.want) {
				t.Errorf("template script: exit %d, output %q; want exit %d and %q", code, got, tt.wantCode, tt.want)
			}
		})
	}
}
