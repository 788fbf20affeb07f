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
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// releaseArchive is a gate-action release archive holding script as the binary.
func releaseArchive(t *testing.T, script string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name, body string
		mode       int64
	}{{"gate-action", script, 0o755}, {"LICENSE", "Apache License 2.0\n", 0o644}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestDownloadVerifiesTheChecksum(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the fake release serves linux/amd64 only")
	}
	archive := releaseArchive(t, "#!/bin/sh\necho released gate-action\n")
	good := fmt.Sprintf("%x  gate-action_v1.2.3_linux_amd64.tar.gz\n%x  gate-action_v1.2.3_darwin_arm64.tar.gz\n",
		sha256.Sum256(archive), sha256.Sum256([]byte("other")))
	tests := []struct {
		name, version, sums string
		wantCode            int
		want                string
	}{
		{"verified", "v1.2.3", good, 0, "verified"},
		{"checksum mismatch", "v1.2.3", strings.Replace(good, fmt.Sprintf("%x", sha256.Sum256(archive))[:8], "00000000", 1), 2, "checksum mismatch for gate-action_v1.2.3_linux_amd64.tar.gz"},
		{"not in SHA256SUMS", "v1.2.3", "abc  other.tar.gz\n", 2, "lists no gate-action_v1.2.3_linux_amd64.tar.gz"},
		{"no such release", "v9.9.9", good, 2, "cannot download"},
		{"not a version", "../../etc", good, 2, "is not a release tag like v1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v1.2.3/SHA256SUMS":
					w.Write([]byte(tt.sums))
				case "/v1.2.3/gate-action_v1.2.3_linux_amd64.tar.gz":
					w.Write(archive)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			dir := t.TempDir()
			output := filepath.Join(dir, "output")
			cmd := exec.Command("bash", "download.sh", tt.version)
			cmd.Env = append(os.Environ(), "BUILDGATE_RELEASE_URL="+srv.URL, "BUILDGATE_ACTION_CACHE="+filepath.Join(dir, "cache"), "GITHUB_OUTPUT="+output)
			got, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(string(got), tt.want) {
				t.Fatalf("download.sh %s: exit %d, output %q; want exit %d and %q", tt.version, code, got, tt.wantCode, tt.want)
			}
			outputs, _ := os.ReadFile(output)
			if tt.wantCode != 0 {
				if len(outputs) != 0 {
					t.Errorf("a failed download wrote outputs %q", outputs)
				}
				return
			}
			bin := strings.TrimPrefix(strings.TrimSpace(string(outputs)), "bin=")
			run, err := exec.Command(bin).Output()
			if err != nil || string(run) != "released gate-action\n" {
				t.Errorf("the downloaded %s said %q, %v", bin, run, err)
			}
		})
	}
}
