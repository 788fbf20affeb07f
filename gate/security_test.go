package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
)

// The attacks of issue 12, part A, against a real gate: anonymous bodies,
// oversized bodies, uploads beyond the cap, multipart sign-ins and slow
// clients. Each is refused and leaves what is stored as it was.

// filler is an endless body of one byte.
type filler byte

func (f filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// rawReply is what rawRequest got back.
type rawReply struct {
	status int
	header http.Header
	body   string
	sent   int64 // body bytes the connection accepted before the answer
}

// rawRequest sends a request over its own TCP connection, writing body
// (chunked when size is -1) until the gate answers, and returns the answer
// and how much of the body the connection took. Unlike http.Client it
// reads an answer that comes before the whole body is sent.
func rawRequest(t *testing.T, base, method, path string, header http.Header, body io.Reader, size int64) rawReply {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, u.Host)
	header.Write(&head)
	if size >= 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", size)
	} else {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	}
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var w io.Writer = conn
		var cw io.WriteCloser
		if size < 0 {
			cw = httputil.NewChunkedWriter(conn)
			w = cw
		}
		buf := make([]byte, 32<<10)
		for {
			n, rerr := body.Read(buf)
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					return
				}
				sent.Add(int64(n))
			}
			if rerr != nil {
				break
			}
		}
		if cw != nil {
			cw.Close()
			io.WriteString(conn, "\r\n")
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	n := sent.Load()
	conn.Close()
	<-done
	return rawReply{status: resp.StatusCode, header: resp.Header, body: string(b), sent: n}
}

func bearerHeader(token, contentType string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return h
}

// allocated runs f and returns how many bytes the whole process allocated
// meanwhile (gate and test alike).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAnonymousBodiesAreNotRead is finding 2: 40 POSTs of 16 MiB at once,
// with no token or a wrong one, to routes both APIs serve. Each is
// answered 401 without the gate reading or decoding the body.
func TestAnonymousBodiesAreNotRead(t *testing.T) {
	g := startGate(t, nil)
	const n, size = 40, 16 << 20
	replies := make([]rawReply, n)
	alloc := allocated(func() {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				h := bearerHeader("", "application/json")
				switch i % 3 {
				case 1:
					h.Set("Authorization", "Bearer bg_not_a_token")
				case 2:
					h.Set("Authorization", "Basic Ym9ndXM6") // bogus:
				}
				// An Anchore-looking body the dispatcher would have
				// decoded whole: {"tag": "aaaa...."}.
				body := io.MultiReader(strings.NewReader(`{"tag": "`), io.LimitReader(filler('a'), size), strings.NewReader(`"}`))
				path := []string{"/v1/images", "/v1/policies", "/v1/registries"}[i%3]
				sz := int64(-1) // chunked: no Content-Length to refuse up front
				if i%2 == 1 {
					sz = size + 11
				}
				replies[i] = rawRequest(t, g.URL, http.MethodPost, path, h, body, sz)
			})
		}
		wg.Wait()
	})
	var sent int64
	for i, r := range replies {
		if r.status != http.StatusUnauthorized && r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("request %d = %d %s, want 401 (or 413 for a declared oversized body)", i, r.status, r.body)
		}
		sent += r.sent
	}
	t.Logf("%d anonymous POSTs of 16 MiB: the process allocated %.1f MiB in all; the sockets took %.1f MiB of the %d MiB offered",
		n, float64(alloc)/(1<<20), float64(sent)/(1<<20), n*size>>20)
	// Reading and unmarshalling them, as the dispatcher did, allocates
	// more than 2 x 16 MiB per request.
	if alloc > 64<<20 {
		t.Errorf("the process allocated %d MiB answering %d anonymous requests, want under 64 MiB", alloc>>20, n)
	}
	var list api.ImageList
	if g.get(t, "/v1/images", &list); len(list.Images) != 0 {
		t.Errorf("images after the refused requests: %+v", list.Images)
	}
}

// TestBodyLimits is finding 7 and the per-route limits: a 200 MB
// Dockerfile in POST /v1/images, an SBOM, a DB archive and an image archive
// over their limits are refused with 413 naming the flag, whether the body
// declares its size or not, and nothing is stored.
func TestBodyLimits(t *testing.T) {
	g := startGate(t, func(c *Config) {
		c.HTTP.MaxSBOMSize = 256 << 10
		c.HTTP.MaxDBImportSize = 512 << 10
		c.HTTP.MaxUploadSize = 768 << 10
	})
	var dbBefore api.DBStatus
	g.get(t, "/v1/db", &dbBefore)
	dockerfile := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"ref": "registry.example/team/app:1", "dockerfile": "`), io.LimitReader(filler('A'), 200<<20), strings.NewReader(`"}`))
	}
	tests := []struct {
		name, path, contentType string
		body                    func() io.Reader
		size                    int64
		flag                    string
	}{
		{"200 MB Dockerfile, declared", "/v1/images", "application/json", dockerfile, 200<<20 + 57, "--max-body-size"},
		{"200 MB Dockerfile, chunked", "/v1/images", "application/json", dockerfile, -1, "--max-body-size"},
		{"Anchore add with a 200 MB Dockerfile", "/api/scanning/v1/anchore/images", "application/json", dockerfile, -1, "--max-body-size"},
		{"Anchore add with a 200 MB Dockerfile, declared", "/api/scanning/v1/anchore/images", "application/json", dockerfile, 200<<20 + 57, "--max-body-size"},
		{"a policy of 2 MiB", "/v1/policies", "application/yaml", func() io.Reader { return io.LimitReader(filler('#'), 2<<20) }, -1, "--max-body-size"},
		{"an SBOM over its limit", "/v1/sboms?tag=team/app:1", "application/json", func() io.Reader {
			return io.MultiReader(strings.NewReader(`{"bomFormat": "CycloneDX", "specVersion": "1.5", "x": "`), io.LimitReader(filler('b'), 300<<10), strings.NewReader(`"}`))
		}, -1, "--max-sbom-size"},
		{"a DB archive over its limit", "/v1/db/import", "application/gzip", func() io.Reader { return io.LimitReader(filler(0), 600<<10) }, -1, "--max-db-import-size"},
		{"an image archive over its limit", "/v1/images/upload?tag=team/app:1", "application/x-tar", func() io.Reader { return io.LimitReader(filler(0), 1<<20) }, 1 << 20, "--max-upload-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rawReply
			alloc := allocated(func() {
				r = rawRequest(t, g.URL, http.MethodPost, tt.path, bearerHeader(testToken, tt.contentType), tt.body(), tt.size)
			})
			if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, tt.flag) {
				t.Fatalf("= %d %s, want 413 naming %s", r.status, r.body, tt.flag)
			}
			if strings.HasPrefix(tt.path, "/api/scanning/v1/anchore/") && !strings.Contains(r.body, `"httpcode":413`) {
				t.Errorf("the Anchore API answered %s, not Anchore's error", r.body)
			}
			t.Logf("413 after the gate took %d KiB; the process allocated %d KiB", r.sent>>10, alloc>>10)
			if alloc > 32<<20 {
				t.Errorf("answering it allocated %d MiB", alloc>>20)
			}
		})
	}
	var list api.ImageList
	if g.get(t, "/v1/images", &list); len(list.Images) != 0 {
		t.Errorf("images after the refused requests: %+v", list.Images)
	}
	var policies api.PolicyList
	g.get(t, "/v1/policies", &policies)
	if len(policies.Policies) != 1 {
		t.Errorf("policies after the refused requests: %+v", policies.Policies)
	}
	var dbAfter api.DBStatus
	if g.get(t, "/v1/db", &dbAfter); !dbAfter.Ready || dbAfter.Built == nil || dbBefore.Built == nil || !dbAfter.Built.Equal(*dbBefore.Built) {
		t.Errorf("DB after the refused import = %+v, was %+v", dbAfter, dbBefore)
	}
	// Within the limit, a JSON body still works.
	if code := g.do(t, "POST", "/v1/images", "application/json", `{"ref": "no-such-host.invalid/team/app:1", "dockerfile": "FROM scratch"}`, nil); code != http.StatusBadRequest {
		t.Errorf("a small submit = %d, want the 400 of an unknown host", code)
	}
}

// TestUploadCap holds the one upload slot with a DB import that does not
// finish; a second upload is refused 429 with Retry-After naming the cap,
// and once the first ends uploads are taken again.
func TestUploadCap(t *testing.T) {
	g := startGate(t, func(c *Config) { c.HTTP.MaxConcurrentUploads = 1 })
	u, _ := url.Parse(g.URL)
	slow, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// A DB import that never finishes holds the slot (uploads, SBOMs and
	// imports share the cap). The second request is sent once it does: sent
	// before, it may take the slot first, and the import is refused.
	fmt.Fprintf(slow, "POST /v1/db/import HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/gzip\r\nContent-Length: %d\r\n\r\n", u.Host, testToken, 10<<20)
	slow.Write([]byte{0x1f, 0x8b})
	waitFor(t, "the import to hold the upload slot", time.Minute, func() bool {
		return metrics(t, g.URL)["buildgate_uploads_in_progress"] == 1
	})

	second := func() rawReply {
		return rawRequest(t, g.URL, http.MethodPost, "/v1/sboms?tag=team/app:1", bearerHeader(testToken, "application/json"), strings.NewReader(`{}`), 2)
	}
	r := second()
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "--max-concurrent-uploads") {
		slow.SetReadDeadline(time.Now().Add(time.Second))
		answer, _ := io.ReadAll(slow)
		t.Fatalf("an upload beyond the cap = %d %v %s, want 429 with Retry-After naming --max-concurrent-uploads (the held upload got %q)", r.status, r.header, r.body, answer)
	}
	slow.Close()
	for deadline := time.Now().Add(time.Minute); ; {
		if r = second(); r.status != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	if r.status == http.StatusTooManyRequests {
		t.Fatalf("the slot was not freed when the upload ended: %s", r.body)
	}
}

// dirBytes is the size of every file under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestLoginTakesOnlySmallForms is finding 3: a multipart sign-in with a
// 64 MiB file part is refused unread and nothing lands in $TMPDIR; so is
// a large URL-encoded one. A real sign-in still works.
func TestLoginTakesOnlySmallForms(t *testing.T) {
	g := startGate(t, nil)
	// $TMPDIR is where net/http spools multipart file parts; the gate's
	// data directory stays out of it.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := dirBytes(t, tmp)

	multipartBody := func() (io.Reader, string) {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			mw.WriteField("csrf", "x")
			fw, _ := mw.CreateFormFile("token", "big.bin")
			io.Copy(fw, io.LimitReader(filler('z'), 64<<20))
			mw.Close()
			pw.Close()
		}()
		return pr, mw.FormDataContentType()
	}
	for _, size := range []int64{-1, 64<<20 + 400} {
		body, ct := multipartBody()
		r := rawRequest(t, g.URL, http.MethodPost, "/ui/login", http.Header{"Content-Type": {ct}, "Cookie": {"bg_login_csrf=x"}}, body, size)
		if r.status != http.StatusUnsupportedMediaType && r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("multipart sign-in (size %d) = %d %s, want 415 or 413", size, r.status, r.body)
		}
		t.Logf("multipart sign-in (size %d): %d after the gate took %d KiB", size, r.status, r.sent>>10)
	}
	big := io.MultiReader(strings.NewReader("csrf=x&token="), io.LimitReader(filler('t'), 1<<20))
	r := rawRequest(t, g.URL, http.MethodPost, "/ui/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"bg_login_csrf=x"}}, big, -1)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1 MiB URL-encoded sign-in = %d %s, want 413", r.status, r.body)
	}
	if after := dirBytes(t, tmp); after != before {
		t.Errorf("$TMPDIR grew from %d to %d bytes", before, after)
	} else {
		t.Logf("$TMPDIR: %d bytes before, %d after", before, after)
	}

	// The sign-in page's own form still signs in.
	jar := &cookieJar{}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(g.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csrf := jar.value("bg_login_csrf")
	resp, err = c.PostForm(g.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || jar.value("bg_session") == "" {
		t.Errorf("sign-in = %d, session %q", resp.StatusCode, jar.value("bg_session"))
	}
}

// cookieJar keeps cookies whatever their path, for one host.
type cookieJar struct {
	mu sync.Mutex
	c  map[string]*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.c == nil {
		j.c = map[string]*http.Cookie{}
	}
	for _, c := range cs {
		j.c[c.Name] = c
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.c {
		if c.MaxAge >= 0 && c.Value != "" {
			out = append(out, c)
		}
	}
	return out
}

func (j *cookieJar) value(name string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c := j.c[name]; c != nil && c.MaxAge >= 0 {
		return c.Value
	}
	return ""
}

// TestSlowClientsAreCut: a client that never finishes its headers, or its
// JSON body, has its connection closed after the read-header and read
// timeouts; a stalled upload after the upload timeout, never before.
func TestSlowClientsAreCut(t *testing.T) {
	const uploadTimeout = 5 * time.Second
	g := startGate(t, func(c *Config) {
		c.HTTP.ReadHeaderTimeout = 300 * time.Millisecond
		c.HTTP.ReadTimeout = 600 * time.Millisecond
		c.HTTP.UploadTimeout = uploadTimeout
	})
	u, _ := url.Parse(g.URL)
	tests := []struct {
		name, send string
		atLeast    time.Duration
	}{
		{"headers never end", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 0},
		{"the body never ends", fmt.Sprintf("POST /v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ref\": ", testToken), 0},
		{"an upload stalls", fmt.Sprintf("POST /v1/images/upload?tag=team/app:1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-tar\r\nContent-Length: 100000\r\n\r\nabc", testToken), uploadTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			io.WriteString(conn, tt.send)
			// The gate closes the connection; the test's own deadline is
			// only a backstop.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			_, err = io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the gate kept the connection open for a minute")
			}
			took := time.Since(start)
			if took < tt.atLeast {
				t.Errorf("closed after %s, before the %s it should have had", took, tt.atLeast)
			}
			t.Logf("closed after %s", took.Round(time.Millisecond))
		})
	}
	if code := g.get(t, "/healthz", nil); code != 200 {
		t.Errorf("healthz after slow clients = %d", code)
	}
}

// TestConfigRefusesBadLimits: a zero or negative limit is refused at start
// naming the flag.
func TestConfigRefusesBadLimits(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*HTTPConfig)
		flag   string
	}{
		{"body", func(c *HTTPConfig) { c.MaxBodySize = 0 }, "--max-body-size"},
		{"uploads", func(c *HTTPConfig) { c.MaxConcurrentUploads = -1 }, "--max-concurrent-uploads"},
		{"read timeout", func(c *HTTPConfig) { c.ReadTimeout = 0 }, "--read-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultHTTPConfig()
			tt.mutate(&c)
			if err := c.validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("validate = %v, want an error naming %s", err, tt.flag)
			}
		})
	}
	if err := defaultHTTPConfig().validate(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	m := &Main{Config: DefaultConfig()}
	m.Config.DataDir = t.TempDir()
	m.Config.HTTP.MaxSBOMSize = -5
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--max-sbom-size") {
		m.Close()
		t.Errorf("Open with a negative SBOM limit = %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.Config.DataDir, "buildgate.db")); err == nil {
		t.Error("a refused configuration created the store")
	}
	m = &Main{Config: DefaultConfig()}
	m.Config.DataDir = t.TempDir()
	m.Config.LayerCacheSize = -1
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--layer-cache-size") {
		m.Close()
		t.Errorf("Open with a negative layer cache size = %v", err)
	}
}
