// Package client is a Go client of buildgate's /v1 API. It imports only the
// standard library and internal/api, so CI step binaries stay small.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate/internal/api"
)

// Client talks to one gate.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the gate at baseURL (e.g. http://127.0.0.1:8080)
// that authenticates with token. A nil httpClient means a client with a
// one-minute timeout.
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: time.Minute}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: httpClient}
}

// Error is an error answer of the gate.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
}

// Error returns the gate's message with its status.
func (e *Error) Error() string {
	return fmt.Sprintf("gate answered %d %s: %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is a gate error with the code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (unless out is nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	ct := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.send(ctx, method, path, r, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // drained for reuse; the answer is not wanted
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
	}
	return nil
}

// Raw sends a request with a raw body and returns the answer's body.
func (c *Client) Raw(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the gate (%s %s): %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode, Code: api.CodeInternal, Message: http.StatusText(resp.StatusCode)}
		var er api.ErrorResponse
		if b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)); json.Unmarshal(b, &er) == nil && er.Error.Message != "" {
			e.Code, e.Message = er.Error.Code, er.Error.Message
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, e
	}
	return resp, nil
}

// SubmitImage asks the gate to analyse an image in a registry.
func (c *Client) SubmitImage(ctx context.Context, req api.SubmitImageRequest) (*api.Image, error) {
	var img api.Image
	return &img, c.Do(ctx, http.MethodPost, "/v1/images", req, &img)
}

// Image returns an image record.
func (c *Client) Image(ctx context.Context, digest string) (*api.Image, error) {
	var img api.Image
	return &img, c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest), nil, &img)
}

// Vulnerabilities lists an analysed image's vulnerabilities of a type
// (os, non-os or all).
func (c *Client) Vulnerabilities(ctx context.Context, digest, typ string) (*api.VulnerabilityList, error) {
	var out api.VulnerabilityList
	return &out, c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest)+"/vulnerabilities?type="+url.QueryEscape(typ), nil, &out)
}

// Packages lists an analysed image's packages.
func (c *Client) Packages(ctx context.Context, digest string) (*api.PackageList, error) {
	var out api.PackageList
	return &out, c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest)+"/packages", nil, &out)
}

// DBStatus returns the gate's vulnerability DB status.
func (c *Client) DBStatus(ctx context.Context) (*api.DBStatus, error) {
	var out api.DBStatus
	return &out, c.Do(ctx, http.MethodGet, "/v1/db", nil, &out)
}

// Progress is called while WaitAnalyzed waits.
type Progress func(img *api.Image, elapsed time.Duration)

// LongPoll is how long WaitAnalyzed asks the gate to hold one answer
// (GET /v1/images/{digest}?wait=).
const LongPoll = 20 * time.Second

// WaitAnalyzed waits until an image is analyzed or failed and calls
// progress at least every interval. It asks the gate to answer when the
// image's status changes (?wait=), so it sees a verdict as soon as it is
// stored. When an answer comes back early with nothing changed (a gate
// that does not wait), or the gate fails, it asks again after a delay
// backing off from one to five seconds (longer when the gate sends
// Retry-After).
func (c *Client) WaitAnalyzed(ctx context.Context, digest string, interval time.Duration, progress Progress) (*api.Image, error) {
	start := time.Now()
	lastReport := time.Time{}
	delay := time.Second
	var last string
	for {
		window := LongPoll
		if progress != nil && !lastReport.IsZero() {
			window = min(window, max(0, interval-time.Since(lastReport)))
		}
		asked := time.Now()
		img, err := c.ImageWaiting(ctx, digest, window)
		pause := time.Duration(0)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 500 {
				return nil, err
			}
			pause = max(delay, e.RetryAfter)
		} else {
			if img.Status == api.StatusAnalyzed || img.Status == api.StatusFailed {
				return img, nil
			}
			if progress != nil && time.Since(lastReport) >= interval {
				progress(img, time.Since(start))
				lastReport = time.Now()
			}
			if img.Status == last && window > 0 && time.Since(asked) < window/2 {
				pause = delay // the gate did not wait
			}
			last = img.Status
		}
		if pause == 0 {
			continue
		}
		if progress != nil {
			pause = min(pause, max(time.Millisecond, interval-time.Since(lastReport)))
		}
		select {
		case <-ctx.Done():
			return img, ctx.Err()
		case <-time.After(pause):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// ImageWaiting is Image with ?wait=: the gate answers when the image's
// status changes or after wait (a gate older than the parameter answers
// at once). A wait of 0 or less is Image.
func (c *Client) ImageWaiting(ctx context.Context, digest string, wait time.Duration) (*api.Image, error) {
	if wait <= 0 {
		return c.Image(ctx, digest)
	}
	var img api.Image
	return &img, c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest)+"?wait="+wait.String(), nil, &img)
}
