package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/notify/notifytest"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store/postgres"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// replicas starts n `gate serve` processes on one PostgreSQL database, each
// with its own data directory and DB, and waits until each answers.
func replicas(t testing.TB, n int, pgURL string, extra ...string) ([]*client.Client, []string, []*exec.Cmd) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "secret.key")
	if err := secret.WriteKeyFile(key, secret.NewKey()); err != nil {
		t.Fatal(err)
	}
	var clients []*client.Client
	var args [][]string
	var bases []string
	var cmds []*exec.Cmd
	for range n {
		data := t.TempDir()
		if _, err := importDB(t, data); err != nil {
			t.Fatal(err)
		}
		addr := freePort(t)
		a := append([]string{"serve", "--addr", addr, "--data", data, "--store", pgURL, "--secret-key-file", key,
			"--db-update-url", "", "--log-level", "warn", "--allow-private-networks", "127.0.0.0/8"}, extra...)
		args = append(args, a)
		bases = append(bases, "http://"+addr)
		clients = append(clients, client.New("http://"+addr, testToken, nil))
	}
	// Start them together: their migrations meet the advisory lock.
	for _, a := range args {
		cmds = append(cmds, gateProcess(t, a...))
	}
	for i, c := range clients {
		waitFor(t, fmt.Sprintf("replica %d", i), time.Minute, func() bool {
			_, err := c.DBStatus(context.Background())
			return err == nil
		})
	}
	return clients, bases, cmds
}

// metrics reads /metrics: each sample's value by its name and labels
// ("buildgate_analyses_total{outcome=\"analyzed\"}").
func metrics(t testing.TB, base string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", base, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndex(line, " ")
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// analysesTotal reads buildgate_analyses_total by outcome from /metrics.
func analysesTotal(t testing.TB, base string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for k, v := range metrics(t, base) {
		if outcome, ok := strings.CutPrefix(k, "buildgate_analyses_total{"); ok {
			out[outcome[strings.Index(outcome, `"`)+1:strings.LastIndex(outcome, `"`)]] += int(v)
		}
	}
	return out
}

// TestReplicasShareOneQueue: three gates on one PostgreSQL and one
// registry; 50 clients submit 20 distinct images spread over the replicas
// and wait for verdicts on another replica. No request fails, and the
// replicas' buildgate_analyses_total sum to exactly one analysis per image.
func TestReplicasShareOneQueue(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	srv := startPostgres(t)
	reg := testRegistry(t)
	var refs []string
	for i := range 20 {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/team/app:v%d", reg, i)
		push(t, ref, img)
		refs = append(refs, ref)
	}
	clients, bases, _ := replicas(t, 3, srv.NewDatabase(t), "--workers", "2")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var errs atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := clients[i%3].SubmitImage(ctx, api.SubmitImageRequest{Ref: refs[i%20]})
			if err != nil {
				errs.Add(1)
				t.Errorf("client %d submitting: %v", i, err)
				return
			}
			done, err := clients[(i+1)%3].WaitAnalyzed(ctx, img.Digest, 200*time.Millisecond, nil)
			if err != nil || done.Status != api.StatusAnalyzed {
				errs.Add(1)
				t.Errorf("client %d waiting: %+v %v", i, done, err)
			}
		}()
	}
	wg.Wait()
	sum := map[string]int{}
	for _, b := range bases {
		for k, v := range analysesTotal(t, b) {
			sum[k] += v
		}
	}
	t.Logf("errors %d; analyses over the replicas: %v", errs.Load(), sum)
	if errs.Load() != 0 || sum["analyzed"] != 20 || sum["failed"] != 0 {
		t.Fatalf("errors %d, analyses %v: want 0 errors and each of the 20 images analysed once", errs.Load(), sum)
	}
}

// holdingRegistry serves one image, ref, whose blobs it holds back while
// hold is set (as it is at first), counting the requests it held.
func holdingRegistry(t testing.TB) (ref string, hold *atomic.Bool, blobRequests *atomic.Int32) {
	t.Helper()
	hold, blobRequests = new(atomic.Bool), new(atomic.Int32)
	r := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet && hold.Load() {
			blobRequests.Add(1)
			for hold.Load() {
				select {
				case <-req.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		r.ServeHTTP(w, req)
	}))
	t.Cleanup(rs.Close)
	ref = strings.TrimPrefix(rs.URL, "http://") + "/team/app:v1"
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	push(t, ref, img)
	hold.Store(true)
	return ref, hold, blobRequests
}

// TestReplicaKilledMidAnalysis: the replica analysing an image is killed;
// the other takes the job when the lease runs out and the client, asking
// the live replica, gets its verdict.
func TestReplicaKilledMidAnalysis(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	srv := startPostgres(t)
	ref, hold, blobRequests := holdingRegistry(t)
	pgURL := srv.NewDatabase(t)
	// Only the first replica runs workers until it holds the job.
	clients, _, cmds := replicas(t, 1, pgURL, "--workers", "1", "--job-lease", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sub, err := clients[0].SubmitImage(ctx, api.SubmitImageRequest{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first replica to start pulling", time.Minute, func() bool { return blobRequests.Load() > 0 })
	second, secondBase, _ := replicas(t, 1, pgURL, "--workers", "1", "--job-lease", "3s")
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hold.Store(false)
	done, err := second[0].WaitAnalyzed(ctx, sub.Digest, 200*time.Millisecond, nil)
	if err != nil || done.Status != api.StatusAnalyzed {
		t.Fatalf("after the kill: %+v %v", done, err)
	}
	if n := analysesTotal(t, secondBase[0])["analyzed"]; n != 1 {
		t.Fatalf("the live replica analysed %d images, want the one the dead replica held", n)
	}
}

// TestUploadAnalysedByAnotherReplica: an archive is uploaded to a replica
// whose one worker is busy, and that replica is killed; another replica,
// which never saw the upload, analyses it from the store, and the stored
// upload is deleted then.
func TestUploadAnalysedByAnotherReplica(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	srv := startPostgres(t)
	ref, hold, blobRequests := holdingRegistry(t)
	pgURL := srv.NewDatabase(t)
	st, err := postgres.Open(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := func() []string {
		t.Helper()
		ids, err := st.UploadIDs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	first, _, cmds := replicas(t, 1, pgURL, "--workers", "1", "--job-lease", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := first[0].SubmitImage(ctx, api.SubmitImageRequest{Ref: ref}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first replica's worker to start pulling", time.Minute, func() bool { return blobRequests.Load() > 0 })

	shared, _ := vulndbtest.SharedDir()
	f, err := os.Open(filepath.Join(shared, "images", "bullseye-dpkgonly.docker.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := first[0].Raw(ctx, http.MethodPost, "/v1/images/upload?tag=team/uploaded:v1", f, "application/x-tar")
	if err != nil {
		t.Fatal(err)
	}
	var up api.Image
	if err := json.Unmarshal(b, &up); err != nil || up.Status != api.StatusQueued {
		t.Fatalf("upload answered %s (%v), want the image queued", b, err)
	}
	if ids := stored(); len(ids) != 1 || !strings.HasPrefix(ids[0], strings.ReplaceAll(up.Digest, ":", "-")+"-") {
		t.Fatalf("stored uploads after the upload: %v, want the one of %s", ids, up.Digest)
	}
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hold.Store(false)

	second, _, _ := replicas(t, 1, pgURL, "--workers", "1", "--job-lease", "3s")
	done, err := second[0].WaitAnalyzed(ctx, up.Digest, 200*time.Millisecond, nil)
	if err != nil || done.Status != api.StatusAnalyzed {
		t.Fatalf("the upload on the live replica: %+v %v", done, err)
	}
	waitFor(t, "the stored upload to be deleted", time.Minute, func() bool { return len(stored()) == 0 })
}

// TestReplicasShareOneDB: three gates on one PostgreSQL hold stored
// SBOMs; a newer DB imported on one reaches all three (GET /v1/db), every
// SBOM is matched against it, and the re-match ran once in the cluster:
// the replicas' buildgate_rematches_total sum to one per SBOM.
func TestReplicasShareOneDB(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	const sboms = 30
	srv := startPostgres(t)
	newer := newerDB(t)
	docs := sbomVariants(t, "bullseye-dpkgonly", sboms)
	clients, bases, _ := replicas(t, 3, srv.NewDatabase(t), "--db-sync-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var digests []string
	for i, doc := range docs {
		b, err := clients[i%3].Raw(ctx, http.MethodPost, "/v1/sboms", bytes.NewReader(doc), "application/json")
		if err != nil {
			t.Fatalf("uploading sbom %d: %v", i, err)
		}
		var img api.Image
		if err := json.Unmarshal(b, &img); err != nil {
			t.Fatalf("decoding %q: %v", b, err)
		}
		digests = append(digests, img.Digest)
	}
	archive, err := os.ReadFile(newer.ArchivePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients[1].Raw(ctx, http.MethodPost, "/v1/db/import", bytes.NewReader(archive), "application/gzip"); err != nil {
		t.Fatalf("importing the newer DB on replica 1: %v", err)
	}
	start := time.Now()
	for i, c := range clients {
		waitFor(t, fmt.Sprintf("replica %d to load the newer DB", i), time.Minute, func() bool {
			s, err := c.DBStatus(ctx)
			return err == nil && s.Built != nil && s.Built.Equal(newer.Built)
		})
	}
	t.Logf("every replica reports the DB built %s %s after the import", newer.Built.Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	for i, d := range digests {
		waitFor(t, fmt.Sprintf("sbom %d matched against the newer DB", i), time.Minute, func() bool {
			v, err := clients[(i+2)%3].Vulnerabilities(ctx, d, "all")
			return err == nil && v.DBBuilt != nil && v.DBBuilt.Equal(newer.Built)
		})
	}
	rematched := func() (sum float64, each []float64) {
		for _, b := range bases {
			n := metrics(t, b)["buildgate_rematches_total"]
			sum += n
			each = append(each, n)
		}
		return sum, each
	}
	waitFor(t, "the re-match counts", time.Minute, func() bool { sum, _ := rematched(); return sum >= sboms })
	sum, each := rematched()
	t.Logf("SBOMs re-matched by each replica: %v", each)
	if sum != sboms {
		t.Fatalf("the replicas re-matched %v SBOMs (%v), want each of the %d once", sum, each, sboms)
	}
}

// TestReplicasDeliverOnce: two gates on one PostgreSQL share an outbox of
// webhook deliveries that failed while the receiver was down; when it
// comes up, each delivery reaches it once, from whichever replica claimed
// it, and is recorded delivered with one successful attempt.
func TestReplicasDeliverOnce(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	const hookSecret = "whsec-replicas-0123456789"
	const n = 12
	srv := startPostgres(t)
	recv := notifytest.NewStoppedReceiver(t, hookSecret)
	// Slow answers keep each send in flight while the other replica
	// looks for due deliveries.
	recv.Delay = time.Second
	clients, bases, _ := replicas(t, 2, srv.NewDatabase(t), "--tag-poll-interval", "0",
		"--delivery-retry", "200ms", "--delivery-retry-max", "1s")
	g := &testGate{Main: &Main{URL: bases[0]}, c: clients[0]}
	ch := g.webhookChannel(t, "replicas", recv.URL, hookSecret)
	var a api.Alert
	g.mustCall(t, "POST", "/v1/alerts", map[string]any{"name": "unscanned", "triggers": []map[string]string{{"type": "unscanned_image"}},
		"channels": []string{ch}}, &a, 201)
	var containers []map[string]string
	for i := range n {
		containers = append(containers, map[string]string{"namespace": "ns", "pod": fmt.Sprintf("p%d", i), "container": "c", "image": fmt.Sprintf("registry.invalid/team/app%d:1", i)})
	}
	var res api.InventoryResult
	g.mustCall(t, "POST", "/v1/runtime/inventory", map[string]any{"cluster": "c1", "containers": containers}, &res, 200)
	if res.Unscanned != n {
		t.Fatalf("inventory = %+v", res)
	}
	var ds api.DeliveryList
	waitFor(t, "failed attempts while the receiver is down", time.Minute, func() bool {
		g.mustCall(t, "GET", "/v1/alerts/"+a.ID+"/deliveries", nil, &ds, 200)
		failed := 0
		for _, d := range ds.Deliveries {
			if d.Status == "pending" && d.Attempts >= 1 && d.LastError != "" {
				failed++
			}
		}
		return failed == n
	})

	recv.Start(t)
	waitFor(t, "every delivery delivered", 2*time.Minute, func() bool {
		g.mustCall(t, "GET", "/v1/alerts/"+a.ID+"/deliveries", nil, &ds, 200)
		delivered := 0
		for _, d := range ds.Deliveries {
			if d.Status == "delivered" {
				delivered++
			}
		}
		return delivered == n
	})
	seen := map[string]int{}
	for _, r := range received(t, recv, "") {
		seen[r.DeliveryID]++
	}
	for _, d := range ds.Deliveries {
		ok := 0
		for _, at := range d.AttemptLog {
			if at.OK {
				ok++
			}
		}
		if seen[d.ID] != 1 || ok != 1 {
			t.Errorf("delivery %s reached the receiver %d times, %d successful attempts recorded; want once", d.ID, seen[d.ID], ok)
		}
	}
	if len(seen) != n {
		t.Fatalf("the receiver saw %d deliveries, want %d: %v", len(seen), n, seen)
	}
}

// consoleUser is a browser on the console: its cookie jar gives every
// gate on 127.0.0.1 its session (cookies are per host, not per port), and
// it follows no redirect.
type consoleUser struct {
	t   *testing.T
	jar *cookiejar.Jar
	c   *http.Client
}

func newConsoleUser(t *testing.T) *consoleUser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleUser{t: t, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page GETs a page and returns its status and body.
func (u *consoleUser) page(base, path string) (int, string) {
	u.t.Helper()
	resp, err := u.c.Get(base + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signIn signs in with the admin token through the sign-in form.
func (u *consoleUser) signIn(base string) {
	u.t.Helper()
	_, login := u.page(base, "/ui/login")
	resp, err := u.c.PostForm(base+"/ui/login", url.Values{"token": {testToken}, "csrf": {csrfOf(login)}})
	if err != nil {
		u.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/repositories" {
		u.t.Fatalf("sign-in on %s = %d %s", base, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// csrfOf returns the CSRF token of a console page's forms.
func csrfOf(body string) string {
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestReplicasShareConsoleSessions: a user signs in to the console on
// replica A and is signed in on replica B, with the same CSRF token; A is
// killed and started again and the user is still signed in there; signing
// out on B signs out everywhere.
func TestReplicasShareConsoleSessions(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("starts gate processes")
	}
	srv := startPostgres(t)
	clients, bases, cmds := replicas(t, 2, srv.NewDatabase(t))
	u := newConsoleUser(t)
	u.signIn(bases[0])
	signedIn := func(name, base string) string {
		t.Helper()
		code, body := u.page(base, "/ui/repositories")
		if code != http.StatusOK || csrfOf(body) == "" {
			t.Fatalf("GET /ui/repositories on %s = %d; want the page of a signed-in user", name, code)
		}
		return csrfOf(body)
	}
	csrf := signedIn("A", bases[0])
	if got := signedIn("B", bases[1]); got != csrf {
		t.Fatalf("B's CSRF token differs from A's")
	}

	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmds[0].Wait()
	gateProcess(t, cmds[0].Args[1:]...)
	waitFor(t, "A to start again", time.Minute, func() bool { _, err := clients[0].DBStatus(context.Background()); return err == nil })
	if got := signedIn("A restarted", bases[0]); got != csrf {
		t.Fatalf("the restarted A's CSRF token differs")
	}

	aURL, _ := url.Parse(bases[0])
	session := u.jar.Cookies(aURL)
	resp, err := u.c.PostForm(bases[1]+"/ui/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("sign-out on B = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	u.jar.SetCookies(aURL, session) // the cookie B cleared, sent again
	if code, _ := u.page(bases[0], "/ui/repositories"); code != http.StatusSeeOther {
		t.Fatalf("after signing out on B, A answers the old session with %d, want a redirect to sign in", code)
	}
}

// BenchmarkReplicas is P3 on one replica and on three sharing one
// PostgreSQL: 50 clients submit 20 new images (bullseye-minbase plus one
// small layer each, so each is a real analysis) spread over the replicas,
// and wait for their verdicts on another replica. It reports the time to
// the last verdict (s/op) and verdicts per minute; any failed request or
// an image analysed other than once fails it. make bench runs it with
// -benchtime 1x.
func BenchmarkReplicas(b *testing.B) {
	pgtest.Skip(b)
	srv := startPostgres(b)
	reg := testRegistry(b)
	base := sharedImage(b, "bullseye-minbase")
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			clients, bases, _ := replicas(b, n, srv.NewDatabase(b))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			images := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				refs := make([]string, 20)
				for j := range refs {
					layer, err := random.Layer(1024, types.DockerLayer)
					if err != nil {
						b.Fatal(err)
					}
					img, err := mutate.AppendLayers(base, layer)
					if err != nil {
						b.Fatal(err)
					}
					refs[j] = fmt.Sprintf("%s/p3/app:r%d-%d-%d", reg, n, i, j)
					push(b, refs[j], img)
				}
				images += len(refs)
				b.StartTimer()
				var errs atomic.Int32
				var wg sync.WaitGroup
				for c := range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						img, err := clients[c%n].SubmitImage(ctx, api.SubmitImageRequest{Ref: refs[c%len(refs)]})
						if err == nil {
							img, err = clients[(c+1)%n].WaitAnalyzed(ctx, img.Digest, 200*time.Millisecond, nil)
						}
						if err != nil || img.Status != api.StatusAnalyzed {
							errs.Add(1)
							b.Errorf("client %d: %v", c, err)
						}
					}()
				}
				wg.Wait()
				if errs.Load() != 0 {
					b.Fatalf("%d of 50 clients got no verdict", errs.Load())
				}
			}
			b.StopTimer()
			sum := map[string]int{}
			for _, base := range bases {
				for k, v := range analysesTotal(b, base) {
					sum[k] += v
				}
			}
			if sum["analyzed"] != images || sum["failed"] != 0 {
				b.Fatalf("analyses over the replicas %v: want each of the %d images analysed once", sum, images)
			}
			b.ReportMetric(float64(images)/b.Elapsed().Minutes(), "verdicts/min")
		})
	}
}
