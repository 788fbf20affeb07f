package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

// The test binary doubles as the gate: with BUILDGATE_RUN_GATE=1 it runs
// the gate command line instead of the tests, so restart tests drive a real
// `gate serve` process, signals included, without building another binary.
func init() {
	if os.Getenv("BUILDGATE_RUN_GATE") == "1" {
		os.Exit(cli(os.Args[1:]))
	}
}

func gateProcess(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return gateProcessLogging(t, os.Stderr, args...)
}

// gateProcessLogging starts a gate process whose log goes to stderr.
func gateProcessLogging(t testing.TB, stderr *os.File, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BUILDGATE_RUN_GATE=1", "GATE_ADMIN_TOKEN="+testToken)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRestartResumesQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	data := t.TempDir()
	if _, err := importDB(t, data); err != nil {
		t.Fatal(err)
	}

	// A registry that holds blob downloads while hold is set, so the first
	// gate is surely mid-analysis when it is killed.
	var hold atomic.Bool
	var blobRequests atomic.Int32
	hold.Store(true)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			blobRequests.Add(1)
			for hold.Load() {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/app:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))
	blobRequests.Store(0)

	addr := freePort(t)
	args := []string{"serve", "--addr", addr, "--data", data, "--db-update-url", "", "--workers", "1", "--log-level", "warn",
		"--allow-private-networks", "127.0.0.0/8", "--job-lease", "3s"}
	first := gateProcess(t, args...)
	c := client.New("http://"+addr, testToken, nil)
	waitFor(t, "the first gate", 30*time.Second, func() bool {
		_, err := c.DBStatus(context.Background())
		return err == nil
	})
	img, err := c.SubmitImage(context.Background(), api.SubmitImageRequest{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the analysis to start pulling", 30*time.Second, func() bool {
		got, err := c.Image(context.Background(), img.Digest)
		return err == nil && got.Status == api.StatusAnalyzing && blobRequests.Load() > 0
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	hold.Store(false)

	gateProcess(t, args...)
	waitFor(t, "the second gate", 30*time.Second, func() bool {
		_, err := c.DBStatus(context.Background())
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done, err := c.WaitAnalyzed(ctx, img.Digest, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != api.StatusAnalyzed {
		t.Fatalf("after restart: %s %q", done.Status, done.Error)
	}
}
