package step

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/policy"
)

// callTimeout bounds one API call (not an upload): a gate that does not
// answer is retried or reported rather than waited on until --timeout.
const callTimeout = time.Minute

// maxDockerfileSize bounds the Dockerfile, which travels in a header for
// uploads.
const maxDockerfileSize = 256 << 10

// session is one step's conversation with the gate.
type session struct {
	cfg  Config
	base string
	c    *client.Client
	http *http.Client
	out  io.Writer
	// bodyErr is the error reading an upload's body, so that a local
	// failure is not reported as the gate's.
	bodyErr atomic.Pointer[error]
}

func newSession(cfg Config, hc *http.Client, out io.Writer) *session {
	base := strings.TrimRight(cfg.GateURL, "/")
	return &session{cfg: cfg, base: base, c: client.New(base, string(cfg.Token), hc), http: hc, out: out}
}

func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(s.out, "buildgate: "+format+"\n", args...)
}

// httpClient is cfg.HTTPClient, else a client trusting cfg.CACert's
// certificates besides the system's.
func httpClient(cfg Config) (*http.Client, error) {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", cfg.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// call runs one API call with callTimeout.
func call[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return f(ctx)
}

// retryable reports whether a gate answer is worth sending again: too many
// requests, or the gate (or a proxy in front of it) temporarily down.
func retryable(err error) (*client.Error, bool) {
	var e *client.Error
	if !errors.As(err, &e) {
		return nil, false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return e, true
	}
	return e, false
}

// withRetry sends a request again while the gate answers 429 or 502-504,
// honouring Retry-After, up to five times.
func (s *session) withRetry(ctx context.Context, what string, f func() (*api.Image, error)) (*api.Image, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		img, err := f()
		e, again := retryable(err)
		if err == nil || !again || attempt == 5 {
			return img, err
		}
		wait := max(delay, e.RetryAfter)
		s.printf("the gate answered %d while %s; trying again in %s", e.Status, what, wait.Round(time.Second))
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// submitRegistry asks the gate to pull and analyse a registry image.
func (s *session) submitRegistry(ctx context.Context, ref, dockerfile string) (*api.Image, error) {
	req := api.SubmitImageRequest{
		Ref: ref, Tag: s.cfg.Tag, Dockerfile: dockerfile, Annotations: s.cfg.Annotations, Force: s.cfg.Force,
		Platform: s.cfg.Platform, RegistryAuth: s.cfg.RegistryAuth.wire(),
	}
	stop := s.progressWhile(func(elapsed time.Duration) {
		s.printf("submitting %s: the gate is resolving it (%s)", ref, elapsed.Round(time.Second))
	})
	defer stop()
	return s.withRetry(ctx, "submitting "+ref, func() (*api.Image, error) {
		return call(ctx, func(ctx context.Context) (*api.Image, error) { return s.c.SubmitImage(ctx, req) })
	})
}

// uploadQuery is the query of POST /v1/images/upload and /v1/sboms.
func (s *session) uploadQuery() string {
	q := url.Values{}
	if s.cfg.Tag != "" {
		q.Set("tag", s.cfg.Tag)
	}
	if s.cfg.Force {
		q.Set("force", "true")
	}
	for _, k := range sortedKeys(s.cfg.Annotations) {
		q.Add("annotation", k+"="+s.cfg.Annotations[k])
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// submitLocal streams a local image to the gate.
func (s *session) submitLocal(ctx context.Context, src source, dockerfile string) (*api.Image, error) {
	return s.withRetry(ctx, "uploading "+src.describe(), func() (*api.Image, error) {
		body, size, err := src.open(ctx, s.cfg.DockerHost)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return s.post(ctx, "/v1/images/upload"+s.uploadQuery(), body, size, "application/x-tar", dockerfile, "uploading "+src.describe())
	})
}

// submitSBOM sends an SBOM document; the gate answers with the analysed
// image.
func (s *session) submitSBOM(ctx context.Context, path, dockerfile string) (*api.Image, error) {
	return s.withRetry(ctx, "sending the SBOM", func() (*api.Image, error) {
		body, size, err := openSBOM(path)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return s.post(ctx, "/v1/sboms"+s.uploadQuery(), body, size, "application/json", dockerfile, "")
	})
}

// post sends a raw body, with the Dockerfile in X-Buildgate-Dockerfile,
// and decodes the image record the gate answers with. With what set it
// prints how much was sent at every progress interval.
func (s *session) post(ctx context.Context, path string, body io.Reader, size int64, contentType, dockerfile, what string) (*api.Image, error) {
	cr := &countingReader{r: body, s: s}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, cr)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+string(s.cfg.Token))
	if dockerfile != "" {
		req.Header.Set("X-Buildgate-Dockerfile", base64.StdEncoding.EncodeToString([]byte(dockerfile)))
	}
	if what != "" {
		stop := s.progressWhile(func(elapsed time.Duration) {
			s.printf("%s: %s sent (%s)", what, mebibytes(cr.n.Load()), elapsed.Round(time.Second))
		})
		defer stop()
	}
	resp, err := s.http.Do(req)
	if err != nil {
		if be := s.bodyErr.Load(); be != nil {
			return nil, *be
		}
		return nil, fmt.Errorf("calling the gate (POST %s): %w", strings.SplitN(path, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, gateError(resp)
	}
	var img api.Image
	if err := json.NewDecoder(resp.Body).Decode(&img); err != nil {
		return nil, fmt.Errorf("decoding the gate's answer: %w", err)
	}
	return &img, nil
}

// gateError reads an error answer like internal/client does.
func gateError(resp *http.Response) error {
	e := &client.Error{Status: resp.StatusCode, Code: api.CodeInternal, Message: http.StatusText(resp.StatusCode)}
	var er api.ErrorResponse
	if b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)); json.Unmarshal(b, &er) == nil && er.Error.Message != "" {
		e.Code, e.Message = er.Error.Code, er.Error.Message
	}
	if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(sec) * time.Second
	}
	return e
}

// countingReader counts what was read and keeps the first read error.
type countingReader struct {
	r io.Reader
	n atomic.Int64
	s *session
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF {
		c.s.bodyErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func mebibytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// progressWhile calls f every progress interval until the returned stop
// is called.
func (s *session) progressWhile(f func(elapsed time.Duration)) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f(time.Since(start))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// unreachableFor is how long the gate may stay unreachable, or keep
// answering 5xx, while the step waits before the step gives up.
const unreachableFor = time.Minute

// wait asks for the image until it is analysed or failed. The gate holds
// each answer until the image's status changes (?wait=, up to the next
// progress line), so the verdict is seen as soon as it is stored; after
// an early answer with nothing changed (a gate that does not wait) it
// backs off from half a second to five seconds. It waits longer when the
// gate sends Retry-After, retries 429, 5xx and an unreachable gate for up
// to unreachableFor in a row, and prints a progress line at least every
// ProgressInterval.
func (s *session) wait(ctx context.Context, digest string, start time.Time, status *string) (*api.Image, error) {
	interval := s.cfg.ProgressInterval
	lastLine := time.Now()
	delay := 500 * time.Millisecond
	var failingSince time.Time
	for {
		window := min(client.LongPoll, time.Until(lastLine.Add(interval)))
		asked := time.Now()
		img, err := call(ctx, func(ctx context.Context) (*api.Image, error) { return s.c.ImageWaiting(ctx, digest, window) })
		next := delay
		note := ""
		e, again := retryable(err)
		switch {
		case err == nil:
			failingSince = time.Time{}
			if img.Status == api.StatusAnalyzed || img.Status == api.StatusFailed {
				*status = img.Status
				return img, nil
			}
			if img.Status != *status || (window > 0 && time.Since(asked) >= window/2) {
				next = 0 // the gate waited, or something changed: ask again now
			}
			*status = img.Status
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case again || (e != nil && e.Status >= 500) || (e == nil && isTransport(err)):
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > unreachableFor {
				return nil, err
			}
			if e != nil {
				next = max(next, e.RetryAfter)
				note = fmt.Sprintf("; the gate answered %d", e.Status)
			} else {
				note = "; the gate is unreachable, retrying"
			}
		default:
			return nil, err
		}
		// Sleep until the next poll, printing progress lines on time.
		pollAt := time.Now().Add(next)
		for {
			lineAt := lastLine.Add(interval)
			if !lineAt.Before(pollAt) {
				if err := sleep(ctx, time.Until(pollAt)); err != nil {
					return nil, err
				}
				break
			}
			if err := sleep(ctx, time.Until(lineAt)); err != nil {
				return nil, err
			}
			s.printf("%s %s (%s%s)", progressVerb(*status), digest, time.Since(start).Round(time.Second), note)
			lastLine = time.Now()
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func progressVerb(status string) string {
	if status == api.StatusQueued {
		return "queued"
	}
	return "analyzing"
}

// isTransport reports whether err is a failure to talk to the gate at all.
func isTransport(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &oe)
}

// check fetches the verdict, its findings compared with bl when it is
// not nil; with a VEX document the gate applies it to this check alone.
func (s *session) check(ctx context.Context, digest, tag string, bl *baseline, vex json.RawMessage) (*policy.Verdict, error) {
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	if bl != nil {
		q.Set("baseline", bl.digest)
	}
	if s.cfg.Policy != "" {
		q.Set("policy", s.cfg.Policy)
	}
	path := "/v1/images/" + url.PathEscape(digest) + "/check"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	v, err := call(ctx, func(ctx context.Context) (*policy.Verdict, error) {
		var v policy.Verdict
		if vex != nil {
			// The gate applies the document to this check only.
			return &v, s.c.Do(ctx, http.MethodPost, path, vex, &v)
		}
		return &v, s.c.Do(ctx, http.MethodGet, path, nil, &v)
	})
	if err == nil && bl != nil {
		if v.Baseline == nil {
			return nil, fmt.Errorf("the gate did not compare the findings with the baseline %s: is it older than the step?", bl.digest)
		}
		v.Baseline.Ref = bl.ref
	}
	return v, err
}

// subscribe subscribes a tag to tag updates; an existing subscription is
// fine.
func (s *session) subscribe(ctx context.Context, tag string) error {
	active := true
	body := api.SubscriptionRequest{Key: tag, Type: "tag_update", Active: &active}
	_, err := call(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.c.Do(ctx, http.MethodPost, "/v1/subscriptions", body, nil)
	})
	var ge *client.Error
	if errors.As(err, &ge) && ge.Status == http.StatusConflict {
		return nil
	}
	return err
}

// readVEX reads the --vex document, nil when none is given.
func readVEX(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the VEX document: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("the VEX document %s is not JSON (OpenVEX or CycloneDX JSON)", path)
	}
	return b, nil
}

func (s *session) vulnerabilities(ctx context.Context, digest string) (*api.VulnerabilityList, error) {
	return call(ctx, func(ctx context.Context) (*api.VulnerabilityList, error) {
		return s.c.Vulnerabilities(ctx, digest, "all")
	})
}

func (s *session) metadata(ctx context.Context, digest string) (*api.Metadata, error) {
	return call(ctx, func(ctx context.Context) (*api.Metadata, error) {
		var m api.Metadata
		return &m, s.c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest)+"/metadata", nil, &m)
	})
}
