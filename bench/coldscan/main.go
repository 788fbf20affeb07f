// Command coldscan measures buildgate's cold analysis of an image (submit
// to analyzed, at the client) against the grype CLI of the same version on
// the same image, registry and DB, in one run; and the time of a second
// submit of the same digest. bench/run.sh runs it.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

func main() {
	gate := flag.String("gate", "bin/gate", "the gate binary")
	grype := flag.String("grype", "", "the grype CLI binary")
	archive := flag.String("db", "", "the vulnerability DB archive")
	img := flag.String("image", "../shared/images/bullseye-minbase.docker.tar", "image to scan")
	runs := flag.Int("runs", 3, "runs of each")
	flag.Parse()
	if err := run(*gate, *grype, *archive, *img, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "coldscan:", err)
		os.Exit(1)
	}
}

func run(gate, grype, archive, imgPath string, runs int) error {
	work, err := os.MkdirTemp("", "buildgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	image, err := tarball.ImageFromPath(imgPath, nil)
	if err != nil {
		return err
	}

	// grype gets the same DB, imported once into its cache.
	grypeCache := filepath.Join(work, "grype-db")
	grypeEnv := append(os.Environ(), "GRYPE_DB_CACHE_DIR="+grypeCache, "GRYPE_DB_AUTO_UPDATE=false",
		"GRYPE_DB_VALIDATE_AGE=false", "GRYPE_CHECK_FOR_APP_UPDATE=false", "GRYPE_REGISTRY_INSECURE_USE_HTTP=true")
	imp := exec.Command(grype, "db", "import", archive)
	imp.Env, imp.Stderr = grypeEnv, os.Stderr
	if err := imp.Run(); err != nil {
		return fmt.Errorf("grype db import: %w", err)
	}

	var gateTimes, grypeTimes, resubmitTimes []time.Duration
	for i := range runs {
		// A new repository per run: both tools pull every layer afresh.
		ref := fmt.Sprintf("%s/bench/run%d:latest", host, i)
		r, _ := name.ParseReference(ref)
		if err := remote.Write(r, image); err != nil {
			return err
		}

		start := time.Now()
		cmd := exec.Command(grype, "registry:"+ref, "-o", "json", "-q")
		cmd.Env, cmd.Stdout, cmd.Stderr = grypeEnv, io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("grype: %w", err)
		}
		grypeTimes = append(grypeTimes, time.Since(start))

		cold, again, err := gateRun(gate, archive, filepath.Join(work, fmt.Sprintf("gate%d", i)), ref)
		if err != nil {
			return err
		}
		gateTimes = append(gateTimes, cold)
		resubmitTimes = append(resubmitTimes, again)
		fmt.Fprintf(os.Stderr, "run %d: grype %s, gate %s, second submit %s\n", i+1,
			grypeTimes[i].Round(time.Millisecond), cold.Round(time.Millisecond), again.Round(time.Microsecond))
	}
	mg, mq, mr := median(gateTimes), median(grypeTimes), median(resubmitTimes)
	fmt.Printf("| image | gate cold (submit to analyzed) | grype CLI | gate / grype | second submit, same digest |\n|---|---|---|---|---|\n")
	fmt.Printf("| %s | %s | %s | %.2f | %s |\n", filepath.Base(imgPath), mg.Round(time.Millisecond), mq.Round(time.Millisecond),
		float64(mg)/float64(mq), mr.Round(time.Microsecond))
	fmt.Printf("\nmedians of %d runs each; every run pulls the image afresh from an in-process registry on 127.0.0.1\n", runs)
	return nil
}

// gateRun starts a gate with the DB already imported (the gate keeps its DB
// open, as in production), then times a cold submit and a second submit.
func gateRun(gate, archive, data, ref string) (cold, again time.Duration, err error) {
	imp := exec.Command(gate, "db", "import", archive, "--data", data)
	imp.Stderr = os.Stderr
	if err := imp.Run(); err != nil {
		return 0, 0, fmt.Errorf("gate db import: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	addr := l.Addr().String()
	l.Close()
	token := "bg_bench_" + rand.Text() + rand.Text() // --admin-token needs 32 random bytes
	// The bench registry listens on 127.0.0.1: allow loopback.
	srv := exec.Command(gate, "serve", "--addr", addr, "--data", data, "--db-update-url", "", "--log-level", "warn",
		"--allow-private-networks", "127.0.0.0/8")
	srv.Env = append(os.Environ(), "GATE_ADMIN_TOKEN="+token)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("gate not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := client.New("http://"+addr, token, nil)
	ctx := context.Background()
	start := time.Now()
	img, err := c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref})
	if err != nil {
		return 0, 0, err
	}
	done, err := c.WaitAnalyzed(ctx, img.Digest, time.Hour, nil)
	if err != nil {
		return 0, 0, err
	}
	if done.Status != api.StatusAnalyzed {
		return 0, 0, fmt.Errorf("analysis failed: %s", done.Error)
	}
	cold = time.Since(start)
	start = time.Now()
	if _, err := c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref}); err != nil {
		return 0, 0, err
	}
	return cold, time.Since(start), nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
