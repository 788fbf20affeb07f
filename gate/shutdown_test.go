package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/catalog"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/registry"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestSIGTERMDuringRematch stores many SBOMs, imports a newer DB, stops
// the gate with SIGTERM while it re-matches them, and asserts that the
// process exits within its shutdown grace period and that the next start
// finishes the re-match, skipping the images already done.
func TestSIGTERMDuringRematch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	const images = 30
	const grace = 5 * time.Second
	data := t.TempDir()
	if _, err := importDB(t, data); err != nil {
		t.Fatal(err)
	}
	newer := newerDB(t)
	docs := sbomVariants(t, "bullseye-dpkgonly", images)

	addr := freePort(t)
	args := []string{"serve", "--addr", addr, "--data", data, "--db-update-url", "", "--workers", "1",
		"--log-level", "info", "--shutdown-grace", grace.String()}
	firstLog := logFile(t, "first.log")
	first := gateProcessLogging(t, firstLog, args...)
	c := client.New("http://"+addr, testToken, nil)
	waitReady(t, c)
	ctx := context.Background()
	var digests []string
	for i, doc := range docs {
		b, err := c.Raw(ctx, http.MethodPost, "/v1/sboms", bytes.NewReader(doc), "application/json")
		if err != nil {
			t.Fatalf("uploading sbom %d: %v", i, err)
		}
		var img api.Image
		if err := json.Unmarshal(b, &img); err != nil {
			t.Fatalf("decoding %q: %v", b, err)
		}
		digests = append(digests, img.Digest)
	}
	slices.Sort(digests) // the order re-matches go in
	archive, err := os.ReadFile(newer.ArchivePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Raw(ctx, http.MethodPost, "/v1/db/import", bytes.NewReader(archive), "application/gzip"); err != nil {
		t.Fatalf("importing the newer DB: %v", err)
	}
	matchedNewer := func(d string) bool {
		v, err := c.Vulnerabilities(ctx, d, "all")
		return err == nil && v.DBBuilt != nil && v.DBBuilt.Equal(newer.Built)
	}
	waitFor(t, "the re-match to start", time.Minute, func() bool { return matchedNewer(digests[0]) })
	if matchedNewer(digests[len(digests)-1]) {
		t.Fatal("the re-match ended before SIGTERM: store more images")
	}

	start := time.Now()
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gate exited with %v after SIGTERM; want 0", err)
		}
	case <-time.After(grace + 30*time.Second):
		t.Fatalf("gate still running %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	}
	if took := time.Since(start); took > grace {
		t.Errorf("gate took %s to exit after SIGTERM; the grace period is %s", took.Round(time.Millisecond), grace)
	} else {
		t.Logf("gate exited %s after SIGTERM", took.Round(time.Millisecond))
	}
	if log := readLog(t, firstLog); !strings.Contains(log, "re-match interrupted") {
		t.Fatalf("the first gate's log does not say the re-match was interrupted:\n%s", log)
	}

	secondLog := logFile(t, "second.log")
	gateProcessLogging(t, secondLog, args...)
	waitReady(t, c)
	waitFor(t, "every image re-matched against the newer DB", 2*time.Minute, func() bool {
		for _, d := range digests {
			if !matchedNewer(d) {
				return false
			}
		}
		return true
	})
	var log string
	done := regexp.MustCompile(`msg="re-matched stored SBOMs".* images=(\d+)`)
	waitFor(t, "the second gate to report the re-match done", time.Minute, func() bool {
		log = readLog(t, secondLog)
		return done.MatchString(log)
	})
	n, _ := strconv.Atoi(done.FindStringSubmatch(log)[1])
	if n <= 0 || n >= images {
		t.Errorf("the second gate re-matched %d images; want those the first left (between 1 and %d)", n, images-1)
	}
}

// newerDB builds the shared vulnerability data into a DB one day newer
// than the one importDB imports.
func newerDB(t *testing.T) *vulndb.BuildResult {
	t.Helper()
	cfg, err := vulndbtest.BuildConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timestamp = vulndbtest.Timestamp.Add(24 * time.Hour)
	r, err := vulndb.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sbomVariants catalogs a shared image and returns n copies of its
// syft-json SBOM, each naming a different source so each has its own
// digest.
func sbomVariants(t *testing.T, name string, n int) [][]byte {
	t.Helper()
	dir, err := vulndbtest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if _, err := registry.New(registry.DefaultConfig()).ImportArchive(filepath.Join(dir, "images", name+".docker.tar"), layout); err != nil {
		t.Fatal(err)
	}
	r, err := catalog.Catalog(context.Background(), layout, catalog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.SBOM, &doc); err != nil {
		t.Fatal(err)
	}
	src, ok := doc["source"].(map[string]any)
	if !ok {
		t.Fatalf("the syft-json document has no source object")
	}
	out := make([][]byte, 0, n)
	for i := range n {
		src["name"] = fmt.Sprintf("%s-%d", name, i)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func waitReady(t *testing.T, c *client.Client) {
	t.Helper()
	waitFor(t, "the gate", 30*time.Second, func() bool {
		_, err := c.DBStatus(context.Background())
		return err == nil
	})
}

func logFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readLog(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
