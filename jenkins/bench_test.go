package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/step/steptest"
)

// Limits of a step binary (docs/benchmarks.md).
const (
	maxStrippedSize = 20 << 20
	maxStartup      = 50 * time.Millisecond
)

var (
	builtMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// stripped builds a main package of the module as it ships, with go
// build -ldflags '-s -w', once per test binary.
func stripped(tb testing.TB, pkg string) string {
	tb.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "gate-jenkins-")
		if err != nil {
			tb.Fatal(err)
		}
		builtDir = dir
	}
	bin, err := steptest.Build(pkg, builtDir, "-ldflags", "-s -w")
	if err != nil {
		tb.Fatal(err)
	}
	built[pkg] = bin
	return bin
}

func removeBuilt() {
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
}

func TestStrippedSize(t *testing.T) {
	fi, err := os.Stat(stripped(t, "./jenkins"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gate-jenkins stripped: %d bytes (%.1f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() >= maxStrippedSize {
		t.Errorf("gate-jenkins is %d bytes stripped, want < %d", fi.Size(), maxStrippedSize)
	}
}

// startupToFirstRequest starts the binary against a gate that answers
// nothing useful and returns the time from exec to the gate receiving
// the first request.
func startupToFirstRequest(tb testing.TB, bin string) time.Duration {
	tb.Helper()
	got := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- time.Now():
		default:
		}
		http.Error(w, `{"error":{"code":"invalid","message":"benchmark"}}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	cmd := exec.Command(bin, "--image", "registry.example/app:1", "--out", tb.TempDir())
	cmd.Env = []string{"GATE_URL=" + srv.URL, "GATE_TOKEN=bench"}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer cmd.Wait()
	select {
	case at := <-got:
		return at.Sub(start)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		tb.Fatal("no request within 10s")
	}
	return 0
}

// TestStartupToFirstRequest takes the best of several runs, interleaved
// with a bare net/http binary (testdata/baseline): on a machine so busy
// that even the baseline is slow, what counts is the difference.
// BenchmarkStartupToFirstRequest reports the mean and the median.
func TestStartupToFirstRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	bin, base := stripped(t, "./jenkins"), stripped(t, "./jenkins/testdata/baseline")
	var runs, baseRuns []time.Duration
	for range 9 {
		runs = append(runs, startupToFirstRequest(t, bin))
		baseRuns = append(baseRuns, startupToFirstRequest(t, base))
	}
	slices.Sort(runs)
	slices.Sort(baseRuns)
	t.Logf("startup to first request: gate-jenkins min %s, median %s; net/http baseline min %s, median %s",
		runs[0], runs[len(runs)/2], baseRuns[0], baseRuns[len(baseRuns)/2])
	if runs[0] >= maxStartup && runs[0]-baseRuns[0] >= maxStartup/3 {
		t.Errorf("startup to first request takes at least %s (the baseline %s), want < %s", runs[0], baseRuns[0], maxStartup)
	}
}

func BenchmarkStartupToFirstRequest(b *testing.B) {
	for _, bc := range []struct{ name, pkg string }{
		{"gate-jenkins", "./jenkins"},
		{"net-http-baseline", "./jenkins/testdata/baseline"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bin := stripped(b, bc.pkg)
			var runs []time.Duration
			for b.Loop() {
				runs = append(runs, startupToFirstRequest(b, bin))
			}
			var total time.Duration
			for _, d := range runs {
				total += d
			}
			slices.Sort(runs)
			b.ReportMetric(float64(total.Microseconds())/1000/float64(len(runs)), "ms-mean/first-request")
			b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "ms-median/first-request")
		})
	}
}
