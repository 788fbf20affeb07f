// Command coldscan measures issue 16's analysis goals against the grype CLI
// of the same version (`grype docker-archive:FILE -o json`, same DB), in one
// run, and says PASS or FAIL for each:
//
//   - P1: a cold verdict, submit with force to analyzed at the client, by a
//     fresh gate (its DB already open) that has seen no layer of the image,
//     at most 0.6 times the grype CLI on the same image;
//   - P1b: the same gate then gets a new digest, the image plus one small
//     layer, as a pipeline builds it on a base the gate has analysed: at most
//     0.25 times the grype CLI on that new image;
//   - RSS: the gate's peak resident memory while 50 clients submit 20 images
//     none of whose layers it has seen: at most 500 MiB.
//
// The gate pulls from an in-process registry on 127.0.0.1; grype reads the
// docker archive. Times are medians of -runs runs, grype's and the gate's
// runs interleaved so that both see the same machine load. bench/run.sh
// runs it.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

// The goals of issue 16.
const (
	goalP1     = 0.6
	goalP1b    = 0.25
	goalRSSMiB = 500
)

func main() {
	gate := flag.String("gate", "bin/gate", "the gate binary")
	grype := flag.String("grype", "", "the grype CLI binary")
	archive := flag.String("db", "", "the vulnerability DB archive")
	images := flag.String("images", "../shared/images/bullseye-minbase.docker.tar,../shared/images/bookworm-app.docker.tar",
		"comma-separated docker archives to measure P1 and P1b on")
	runs := flag.Int("runs", 5, "runs of each, the median is reported")
	rssClients := flag.Int("rss-clients", 50, "clients of the RSS measure (0 skips it)")
	rssImages := flag.Int("rss-images", 20, "new images of the RSS measure")
	gateArgs := flag.String("gate-args", "", "more space-separated arguments for gate serve")
	profile := flag.Duration("profile", 0, "in the first run, profile the gate's CPU this long from each submit (P1, P1b) through /debug/pprof into bench/out")
	flag.Parse()
	b := &bench{gate: *gate, grype: *grype, archive: *archive, runs: *runs, gateArgs: strings.Fields(*gateArgs), profile: *profile}
	if err := b.run(strings.Split(*images, ","), *rssClients, *rssImages); err != nil {
		fmt.Fprintln(os.Stderr, "coldscan:", err)
		os.Exit(1)
	}
}

type bench struct {
	gate, grype, archive string
	runs                 int
	gateArgs             []string
	profile              time.Duration

	work string
	host string
	// compressed holds each docker archive with its layers compressed
	compressed map[string]v1.Image
	grypeEnv   []string
	rows       []string
}

func (b *bench) run(images []string, rssClients, rssImages int) error {
	work, err := os.MkdirTemp("", "buildgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b.work = work
	blobs := filepath.Join(work, "registry")
	if err := os.Mkdir(blobs, 0o700); err != nil {
		return err
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs))))
	defer reg.Close()
	b.host = strings.TrimPrefix(reg.URL, "http://")

	// grype gets the same DB, imported once into its cache.
	b.grypeEnv = append(os.Environ(), "GRYPE_DB_CACHE_DIR="+filepath.Join(work, "grype-db"), "GRYPE_DB_AUTO_UPDATE=false",
		"GRYPE_DB_VALIDATE_AGE=false", "GRYPE_CHECK_FOR_APP_UPDATE=false")
	imp := exec.Command(b.grype, "db", "import", b.archive)
	imp.Env, imp.Stderr = b.grypeEnv, os.Stderr
	if err := imp.Run(); err != nil {
		return fmt.Errorf("grype db import: %w", err)
	}

	for _, path := range images {
		if err := b.image(path); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	if rssClients > 0 {
		if err := b.rss(images, rssClients, rssImages); err != nil {
			return fmt.Errorf("peak RSS: %w", err)
		}
	}
	fmt.Println("| goal | image | gate | grype CLI | gate / grype | target | result | CPU: gate / grype CLI |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range b.rows {
		fmt.Println(r)
	}
	fmt.Printf("\nP1, P1b: medians of %d runs, submit (force) to analyzed at the client, against `grype docker-archive:FILE -o json`, same DB;\n"+
		"CPU: the gate process's user+system time over the same span (with the client's polls it answers), grype's whole run\n", b.runs)
	return nil
}

// image measures P1 and P1b on one docker archive.
func (b *bench) image(path string) error {
	base, err := b.compress(path)
	if err != nil {
		return err
	}
	plus, err := plusOneLayer(base, "built by coldscan on "+filepath.Base(path)+"\n")
	if err != nil {
		return err
	}
	stem := strings.TrimSuffix(filepath.Base(path), ".docker.tar")
	baseRef := fmt.Sprintf("%s/bench/%s:base", b.host, stem)
	plusRef := fmt.Sprintf("%s/bench/%s:plus", b.host, stem)
	plusFile := filepath.Join(b.work, stem+"-plus.docker.tar")
	if err := push(baseRef, base); err != nil {
		return err
	}
	if err := push(plusRef, plus); err != nil {
		return err
	}
	tag, _ := name.NewTag(plusRef)
	if err := tarball.WriteToFile(plusFile, tag, plus); err != nil {
		return err
	}

	var grypeBase, grypePlus, cold, warm []time.Duration
	var cpuGrypeBase, cpuGrypePlus, cpuCold, cpuWarm []time.Duration
	for i := range b.runs {
		gb, gbCPU, err := b.timeGrype(path)
		if err != nil {
			return err
		}
		gp, gpCPU, err := b.timeGrype(plusFile)
		if err != nil {
			return err
		}
		// a fresh gate per run: it has seen no layer of the image
		g, err := b.startGate(filepath.Join(b.work, fmt.Sprintf("gate-%s-%d", stem, i)))
		if err != nil {
			return err
		}
		var prof time.Duration
		if i == 0 {
			prof = b.profile
		}
		cpu0, err := g.cpu()
		var c, w, cpu1, cpu2 time.Duration
		if err == nil {
			c, err = g.analyseProfiled(baseRef, prof, fmt.Sprintf("bench/out/%s-p1.pprof", stem))
		}
		if err == nil {
			cpu1, err = g.cpu()
		}
		if err == nil {
			w, err = g.analyseProfiled(plusRef, prof, fmt.Sprintf("bench/out/%s-p1b.pprof", stem))
		}
		if err == nil {
			cpu2, err = g.cpu()
		}
		g.stop()
		if err != nil {
			return err
		}
		grypeBase, grypePlus = append(grypeBase, gb), append(grypePlus, gp)
		cold, warm = append(cold, c), append(warm, w)
		cpuGrypeBase, cpuGrypePlus = append(cpuGrypeBase, gbCPU), append(cpuGrypePlus, gpCPU)
		cpuCold, cpuWarm = append(cpuCold, cpu1-cpu0), append(cpuWarm, cpu2-cpu1)
		fmt.Fprintf(os.Stderr, "%s run %d: grype %s (CPU %s), gate cold %s (CPU %s); plus one layer: grype %s (CPU %s), gate %s (CPU %s)\n", stem, i+1,
			ms(gb), ms(gbCPU), ms(c), ms(cpu1-cpu0), ms(gp), ms(gpCPU), ms(w), ms(cpu2-cpu1))
	}
	b.row("P1 cold verdict", stem, median(cold), median(grypeBase), median(cpuCold), median(cpuGrypeBase), goalP1)
	b.row("P1b base analysed, one new layer", stem+" + 1 layer", median(warm), median(grypePlus), median(cpuWarm), median(cpuGrypePlus), goalP1b)
	return nil
}

// row adds a goal's figures: wall times, which the goal is about, and the
// CPU times, which the machine's load moves less.
func (b *bench) row(goal, img string, gate, grype, gateCPU, grypeCPU time.Duration, target float64) {
	ratio := float64(gate) / float64(grype)
	b.rows = append(b.rows, fmt.Sprintf("| %s | %s | %s | %s | %.2f | ≤ %.2f | %s | %s / %s = %.2f |", goal, img, ms(gate), ms(grype), ratio, target, verdict(ratio <= target),
		ms(gateCPU), ms(grypeCPU), float64(gateCPU)/float64(grypeCPU)))
}

// timeGrype runs the grype CLI on file and returns its wall and CPU time.
func (b *bench) timeGrype(file string) (wall, cpu time.Duration, err error) {
	var stderr bytes.Buffer
	start := time.Now()
	cmd := exec.Command(b.grype, "docker-archive:"+file, "-o", "json")
	cmd.Env, cmd.Stdout, cmd.Stderr = b.grypeEnv, io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("grype: %w: %s", err, stderr.String())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// rss has clients submit images new images, each client one of them, to one
// gate, and reports the gate's peak resident memory.
func (b *bench) rss(paths []string, clients, images int) error {
	var refs []string
	for i := range images {
		path := paths[i%len(paths)]
		img, err := b.compress(path)
		if err != nil {
			return err
		}
		if img, err = renewLayers(img, fmt.Sprintf("rss image %d", i)); err != nil {
			return err
		}
		ref := fmt.Sprintf("%s/bench/rss%d:latest", b.host, i)
		if err := push(ref, img); err != nil {
			return err
		}
		refs = append(refs, ref)
	}
	g, err := b.startGate(filepath.Join(b.work, "gate-rss"))
	if err != nil {
		return err
	}
	defer g.stop()
	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			_, err := g.analyse(refs[i%len(refs)])
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	peak, err := peakRSS(g.cmd.Process.Pid)
	if err != nil {
		return err
	}
	mib := float64(peak) / (1 << 20)
	fmt.Fprintf(os.Stderr, "RSS: %d clients, %d new images analysed in %s, peak %.0f MiB\n", clients, images, ms(time.Since(start)), mib)
	b.rows = append(b.rows, fmt.Sprintf("| peak RSS | %d clients, %d new images | %.0f MiB | | | ≤ %d MiB | %s |",
		clients, images, mib, goalRSSMiB, verdict(mib <= goalRSSMiB)))
	return nil
}

// gate is a running gate serve.
type gate struct {
	cmd         *exec.Cmd
	c           *client.Client
	addr, token string
}

// startGate starts a gate with the DB already imported (the gate keeps its
// DB open, as in production) and waits until it is ready.
func (b *bench) startGate(data string) (*gate, error) {
	imp := exec.Command(b.gate, "db", "import", b.archive, "--data", data)
	imp.Stderr = os.Stderr
	if err := imp.Run(); err != nil {
		return nil, fmt.Errorf("gate db import: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	token := "bg_bench_" + rand.Text() + rand.Text() // --admin-token needs 32 random bytes
	// The bench registry listens on 127.0.0.1: allow loopback.
	args := append([]string{"serve", "--addr", addr, "--data", data, "--db-update-url", "", "--log-level", "warn",
		"--allow-private-networks", "127.0.0.0/8"}, b.gateArgs...)
	srv := exec.Command(b.gate, args...)
	srv.Env = append(os.Environ(), "GATE_ADMIN_TOKEN="+token)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return nil, err
	}
	g := &gate{cmd: srv, c: client.New("http://"+addr, token, nil), addr: addr, token: token}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("gate not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gate) stop() { _ = g.cmd.Process.Signal(os.Interrupt); _ = g.cmd.Wait() }

// analyse submits ref with force and waits for its analysis: the time at
// the client.
func (g *gate) analyse(ref string) (time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	img, err := g.c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref, Force: true})
	if err != nil {
		return 0, err
	}
	done, err := g.c.WaitAnalyzed(ctx, img.Digest, time.Hour, nil)
	if err != nil {
		return 0, err
	}
	if done.Status != api.StatusAnalyzed {
		return 0, fmt.Errorf("analysis of %s failed: %s", ref, done.Error)
	}
	return time.Since(start), nil
}

// analyseProfiled is analyse, with a CPU profile of the gate taken for d
// from the submit (when d is not zero) and written to file.
func (g *gate) analyseProfiled(ref string, d time.Duration, file string) (time.Duration, error) {
	if d == 0 {
		return g.analyse(ref)
	}
	perr := make(chan error, 1)
	go func() { perr <- g.cpuProfile(d, file) }()
	took, err := g.analyse(ref)
	if pe := <-perr; err == nil && pe != nil {
		err = fmt.Errorf("profiling: %w", pe)
	}
	return took, err
}

func (g *gate) cpuProfile(d time.Duration, file string) error {
	req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.addr, int(d.Seconds())), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// compress reads a docker archive and compresses its layers once, in
// memory, so that pushing it does not compress them again.
func (b *bench) compress(path string) (v1.Image, error) {
	if img, ok := b.compressed[path]; ok {
		return img, nil
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, err
	}
	img, err = mapLayers(img, func(l v1.Layer) (v1.Layer, error) {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		blob, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		return layerOf(blob)
	})
	if err != nil {
		return nil, err
	}
	if b.compressed == nil {
		b.compressed = map[string]v1.Image{}
	}
	b.compressed[path] = img
	return img, nil
}

// plusOneLayer adds a layer holding one small file, /etc/build-info.
func plusOneLayer(img v1.Image, content string) (v1.Image, error) {
	blob, err := gzipTar(nil, "etc/build-info", content, true)
	if err != nil {
		return nil, err
	}
	l, err := layerOf(blob)
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, l)
}

// renewLayers gives every layer of img a new diff ID without compressing
// it again: a gzip member with one small file is put before the layer's
// own gzip stream, which decompresses to that file's tar entry followed by
// the layer's tar.
func renewLayers(img v1.Image, mark string) (v1.Image, error) {
	i := 0
	return mapLayers(img, func(l v1.Layer) (v1.Layer, error) {
		i++
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		head, err := gzipTar(nil, fmt.Sprintf("etc/bench-mark-%d", i), mark+"\n", false)
		if err != nil {
			return nil, err
		}
		blob, err := io.ReadAll(io.MultiReader(bytes.NewReader(head), rc))
		if err != nil {
			return nil, err
		}
		return layerOf(blob)
	})
}

// gzipTar returns a gzipped tar of one file, closed (with the tar's end
// marker) or not.
func gzipTar(dst []byte, path, content string, closed bool) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	zw := gzip.NewWriter(buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(tw, content); err != nil {
		return nil, err
	}
	if closed {
		if err := tw.Close(); err != nil {
			return nil, err
		}
	} else if err := tw.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func layerOf(blob []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
}

// mapLayers rebuilds img, its config kept, from its layers mapped by f.
func mapLayers(img v1.Image, f func(v1.Layer) (v1.Layer, error)) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs = nil
	cf.History = nil
	out, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		nl, err := f(l)
		if err != nil {
			return nil, err
		}
		if out, err = mutate.AppendLayers(out, nl); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func push(ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

// cpu is the gate process's user and system CPU time so far.
func (g *gate) cpu() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// the fields after the command name, which is in parentheses
	i := strings.LastIndex(string(raw), ") ")
	f := strings.Fields(string(raw)[i+2:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", g.cmd.Process.Pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", g.cmd.Process.Pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// peakRSS is a process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
