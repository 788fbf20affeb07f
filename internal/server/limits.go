package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Limits bounds what a request may send and how long it may take to send
// it. Every limit names the gate serve flag that changes it, so a refusal
// can say how to lift it.
type Limits struct {
	// Body is the largest body of every route but the three below (JSON
	// and YAML documents, console forms): --max-body-size.
	Body int64
	// Upload is the largest image archive POST /v1/images/upload takes:
	// --max-upload-size.
	Upload int64
	// SBOM is the largest document POST /v1/sboms takes: --max-sbom-size.
	SBOM int64
	// DBImport is the largest archive POST /v1/db/import takes:
	// --max-db-import-size.
	DBImport int64
	// ConcurrentUploads caps uploads, SBOMs and DB imports in progress at
	// once: --max-concurrent-uploads.
	ConcurrentUploads int
	// UploadTimeout is how long the body of an upload may take to arrive
	// (other bodies are bounded by the server's read timeout):
	// --upload-timeout.
	UploadTimeout time.Duration
}

// DefaultLimits returns the limits of gate serve's defaults.
func DefaultLimits() Limits {
	return Limits{
		Body: 1 << 20, Upload: 8 << 30, SBOM: 256 << 20, DBImport: 2 << 30,
		ConcurrentUploads: 4, UploadTimeout: time.Hour,
	}
}

// routeLimit is the body limit of one route and the flag that sets it.
type routeLimit struct {
	max   int64
	flag  string
	types []string // accepted media types; a "+json" entry matches any ...+json
	// own: the handler bounds the body itself and answers one over max
	// (an admission review is always answered with an AdmissionReview).
	own bool
}

var (
	jsonTypes      = []string{"application/json", "+json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
	archiveTypes   = []string{"application/x-tar", "application/tar", "application/octet-stream", "application/gzip", "application/x-gzip", "application/zstd"}
	sbomMediaTypes = []string{"application/json", "+json", "application/xml", "text/xml", "+xml", "text/spdx"}
)

// limitOf returns the limit of the request's route.
func (l Limits) limitOf(path string) routeLimit {
	switch path {
	case "/v1/images/upload":
		return routeLimit{max: l.Upload, flag: "--max-upload-size", types: archiveTypes}
	case "/v1/sboms":
		return routeLimit{max: l.SBOM, flag: "--max-sbom-size", types: sbomMediaTypes}
	case "/v1/db/import":
		return routeLimit{max: l.DBImport, flag: "--max-db-import-size", types: archiveTypes}
	case "/v1/admission/review":
		return routeLimit{max: MaxAdmissionReview, types: jsonTypes, own: true}
	}
	return routeLimit{max: l.Body, flag: "--max-body-size", types: jsonTypes}
}

// SetLimits replaces the request limits (DefaultLimits until called); call
// it before serving.
func (s *Server) SetLimits(l Limits) {
	s.limits = l
	n := max(l.ConcurrentUploads, 1)
	s.uploads = make(chan struct{}, n)
}

// BodyTooLargeError is the error of a body over its route's limit.
type BodyTooLargeError struct {
	Limit int64
	Flag  string
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("the request body is larger than the limit of this route, %d bytes (%s); the gate's operator can raise it with gate serve %s", e.Limit, mebibytes(e.Limit), e.Flag)
}

func mebibytes(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

type limitKey struct{}

// limitedBody is a body cut at its route's limit that remembers crossing it.
type limitedBody struct {
	io.ReadCloser
	err *BodyTooLargeError
	hit bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.hit = true
		return n, b.err
	}
	return n, err
}

// BodyTooLarge returns the limit error when the request's body crossed its
// route's limit while a handler read it, else nil. Error answers check it
// first, so a body cut short is answered 413 whatever the handler made of
// the truncated document.
func BodyTooLarge(r *http.Request) *BodyTooLargeError {
	if b, ok := r.Context().Value(limitKey{}).(*limitedBody); ok && b.hit {
		return b.err
	}
	return nil
}

// bound is the first middleware of every request: it refuses a declared
// body over the route's limit before reading any of it, cuts the body at
// the limit, and refuses API writes whose content type a cross-site page
// could send.
func (s *Server) bound(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		rl := s.limits.limitOf(r.URL.Path)
		if err := checkContentType(r, rl.types); err != nil {
			return err
		}
		if rl.own {
			return next(c)
		}
		if r.ContentLength > rl.max {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, (&BodyTooLargeError{rl.max, rl.flag}).Error())
		}
		if r.Body != nil && r.Body != http.NoBody {
			b := &limitedBody{ReadCloser: http.MaxBytesReader(c.Response().Writer, r.Body, rl.max), err: &BodyTooLargeError{rl.max, rl.flag}}
			r.Body = b
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), limitKey{}, b)))
		}
		return next(c)
	}
}

// uploadSlot holds one of the --max-concurrent-uploads slots while an
// upload runs, and refuses the upload when none is free; the upload's body
// may then take --upload-timeout to arrive. It runs after authentication,
// so only callers with a token hold slots or long deadlines.
func (s *Server) uploadSlot(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		select {
		case s.uploads <- struct{}{}:
			defer func() { <-s.uploads }()
			if s.limits.UploadTimeout > 0 {
				// The server's read timeout suits JSON bodies; an
				// authenticated upload gets its own deadline. The error
				// only says the connection cannot have one (a recorder).
				_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(s.limits.UploadTimeout))
			}
			return next(c)
		default:
			c.Response().Header().Set("Retry-After", "10")
			return echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf(
				"%d uploads (images, SBOMs, DB imports) are already in progress, the most the gate takes at once; retry later, or raise the cap with gate serve --max-concurrent-uploads", cap(s.uploads)))
		}
	}
}

// stateChanging reports whether a method writes.
func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// checkContentType refuses an API write whose body is not of one of the
// route's types. A page on another origin can make a browser send only
// application/x-www-form-urlencoded, multipart/form-data or text/plain
// without asking the gate first (a CORS preflight, which the gate never
// grants), so requiring JSON, YAML or an archive type keeps cross-site
// writes out whatever credentials the browser holds. The console's forms
// carry CSRF tokens instead; probes take no body.
func checkContentType(r *http.Request, types []string) error {
	p := r.URL.Path
	if !stateChanging(r.Method) || p == "/ui" || strings.HasPrefix(p, "/ui/") {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 && r.Method != http.MethodPost {
		// DELETE and an empty PUT: a browser sends neither across sites
		// without a preflight.
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, t := range types {
			if mt == t || (strings.HasPrefix(t, "+") && strings.HasSuffix(mt, t)) {
				return nil
			}
		}
	}
	if ct == "" && r.ContentLength == 0 && bearerOnly(r) {
		// An empty POST (activate, test a channel) with a Bearer token: a
		// browser never attaches one by itself.
		return nil
	}
	shown := ct
	if shown == "" {
		shown = "none"
	}
	return echo.NewHTTPError(http.StatusUnsupportedMediaType, fmt.Sprintf(
		"Content-Type %s is not accepted for %s %s: send one of %s (API writes must not look like a browser form)",
		shown, r.Method, p, strings.Join(typeNames(types), ", ")))
}

func bearerOnly(r *http.Request) bool {
	return bearer(r.Header.Get("Authorization")) != ""
}

func typeNames(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		if strings.HasPrefix(t, "+") {
			t = "application/*" + t
		}
		out[i] = t
	}
	return out
}
