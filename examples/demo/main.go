// Command demo shows buildgate's main job end to end, offline: it builds a
// vulnerability DB from ../shared/vulndata with grype's builder, starts
// `gate serve` on embedded SQLite, pushes an image into a local registry,
// submits it, waits with progress, prints a summary, then gates the image
// as a Jenkins build would with the step binary gate-jenkins: the verdict,
// the findings table, exit 1 and the reports it wrote; then again with an
// allowlist that accepts the STOP findings, exit 0. It stops everything it
// started. `make demo` runs it.
package main

import (
	"bufio"
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
	jenkins := flag.String("step", "bin/gate-jenkins", "the Jenkins step binary")
	shared := flag.String("shared", "../shared", "the shared test material")
	img := flag.String("image", "bullseye-minbase", "image under shared/images to scan")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if err := run(*gate, *jenkins, *shared, *img, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(gate, jenkins, shared, imgName string, keep bool) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "buildgate-demo-")
	if err != nil {
		return err
	}
	if keep {
		step("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	data := filepath.Join(work, "data")
	dbOut := filepath.Join(work, "db")

	step("building a vulnerability DB from %s/vulndata with grype's builder", shared)
	vd := filepath.Join(shared, "vulndata")
	args := []string{"db", "build", "--out", dbOut}
	for _, p := range []string{"nvd", "debian", "github", "kev"} {
		args = append(args, "--provider", p+"="+filepath.Join(vd, "workspaces", p))
	}
	args = append(args, "--osv", "govulndb="+filepath.Join(vd, "osv", "govulndb"))
	if err := runCmd(gate, args...); err != nil {
		return err
	}
	archives, _ := filepath.Glob(filepath.Join(dbOut, "vulnerability-db_*.tar.gz"))
	if len(archives) != 1 {
		return fmt.Errorf("expected one archive in %s, found %d", dbOut, len(archives))
	}
	step("importing it into the gate's data directory")
	if err := runCmd(gate, "db", "import", archives[0], "--data", data); err != nil {
		return err
	}

	step("starting a local registry and pushing %s", imgName)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, err := name.ParseReference(host + "/demo/" + imgName + ":latest")
	if err != nil {
		return err
	}
	image, err := tarball.ImageFromPath(filepath.Join(shared, "images", imgName+".docker.tar"), nil)
	if err != nil {
		return fmt.Errorf("loading image: %w", err)
	}
	if err := remote.Write(ref, image); err != nil {
		return fmt.Errorf("pushing image: %w", err)
	}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	token := "bg_demo_" + rand.Text() + rand.Text() // --admin-token needs 32 random bytes
	step("starting gate serve on %s (SQLite in %s)", addr, data)
	// The demo's registry listens on 127.0.0.1: allow loopback.
	srv := exec.Command(gate, "serve", "--addr", addr, "--data", data, "--db-update-url", "", "--log-level", "warn",
		"--allow-private-networks", "127.0.0.0/8")
	srv.Env = append(os.Environ(), "GATE_ADMIN_TOKEN="+token)
	srv.Stdout, srv.Stderr = os.Stdout, os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait() // interrupted on purpose: its exit status says nothing
		step("stopped the gate and the registry")
	}()
	base := "http://" + addr
	if err := waitReady(ctx, base); err != nil {
		return err
	}

	c := client.New(base, token, nil)
	step("submitting %s", ref)
	start := time.Now()
	sub, err := c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref.String()})
	if err != nil {
		return err
	}
	fmt.Printf("    digest %s, status %s\n", sub.Digest, sub.Status)
	done, err := c.WaitAnalyzed(ctx, sub.Digest, 2*time.Second, func(img *api.Image, elapsed time.Duration) {
		fmt.Printf("    %s ... %s\n", img.Status, elapsed.Round(time.Second))
	})
	if err != nil {
		return err
	}
	if done.Status != api.StatusAnalyzed {
		return fmt.Errorf("analysis failed: %s", done.Error)
	}
	step("analysed in %s", time.Since(start).Round(time.Millisecond))
	if err := summarise(ctx, c, done); err != nil {
		return err
	}
	return pipeline(ctx, c, jenkins, base, ref.String(), filepath.Join(work, "workspace"))
}

func summarise(ctx context.Context, c *client.Client, img *api.Image) error {
	pkgs, err := c.Packages(ctx, img.Digest)
	if err != nil {
		return err
	}
	vulns, err := c.Vulnerabilities(ctx, img.Digest, "all")
	if err != nil {
		return err
	}
	byType := map[string]int{}
	for _, p := range pkgs.Packages {
		byType[p.Type]++
	}
	fmt.Printf("\nImage %s (%s)\n", strings.Join(img.Tags, ", "), img.Digest)
	fmt.Printf("\nPackages: %d\n", len(pkgs.Packages))
	for _, t := range sortedKeys(byType) {
		fmt.Printf("  %-12s %5d\n", t, byType[t])
	}
	order := []string{"Critical", "High", "Medium", "Low", "Negligible", "Unknown"}
	bySev := map[string]int{}
	var fixable []api.Vulnerability
	for _, v := range vulns.Vulnerabilities {
		bySev[v.Severity]++
		if v.FixState == "fixed" {
			fixable = append(fixable, v)
		}
	}
	fmt.Printf("\nVulnerabilities: %d (%d fixable)\n", len(vulns.Vulnerabilities), len(fixable))
	for _, s := range order {
		fmt.Printf("  %-12s %5d\n", s, bySev[s])
	}
	// vulnerabilities come sorted by severity, then id
	fmt.Printf("\nTop fixable:\n")
	for i, v := range fixable {
		if i == 10 {
			fmt.Printf("  ... and %d more\n", len(fixable)-10)
			break
		}
		fmt.Printf("  %-9s %-16s %-22s %-24s fixed in %s\n", v.Severity, v.ID, v.PackageName, v.PackageVersion, strings.Join(v.FixVersions, ", "))
	}
	fmt.Println()
	return nil
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func runCmd(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			sc.Scan()
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the gate did not become ready within 30s")
}
