// Package server is buildgate's HTTP edge, on echo: the /v1 routes, bearer
// token auth with roles, error mapping, health, readiness and metrics.
// Only this package maps error codes to HTTP statuses.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/api"
)

// Images is the submission side of the analysis service.
type Images interface {
	Submit(ctx context.Context, req analysis.SubmitRequest) (*buildgate.Image, error)
	// SubmitWithAuth submits with registry credentials of this submission
	// alone, never stored.
	SubmitWithAuth(ctx context.Context, req analysis.SubmitRequest, auth analysis.PullAuth) (*buildgate.Image, error)
	Wake()
}

// Store is what the server reads and deletes directly.
type Store interface {
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	ListImages(ctx context.Context, tag string, status buildgate.Status) ([]buildgate.Image, error)
	DeleteImage(ctx context.Context, digest string) error
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	TokenByHash(ctx context.Context, hash string) (*buildgate.Token, error)
	QueueDepth(ctx context.Context) (queued, analyzing int, err error)
	// Ping checks that the database answers, for /readyz.
	Ping(ctx context.Context) error
}

// VulnDB is the vulnerability DB as the server sees it.
type VulnDB interface {
	Ready() bool
	Status() api.DBStatus
	// Import validates an archive and swaps it in.
	Import(ctx context.Context, r io.Reader) error
}

// SBOMs converts stored syft-json SBOMs to other formats.
type SBOMs interface {
	Convert(syftJSON []byte, format string) ([]byte, error)
}

// Server is the HTTP server.
type Server struct {
	echo    *echo.Echo
	images  Images
	store   Store
	db      VulnDB
	sboms   SBOMs
	log     *slog.Logger
	metrics *Metrics
	v1      *echo.Group
	limits  Limits
	uploads chan struct{} // one slot per upload in progress
	// Version is the gate's version, for reports.
	Version string
	// MetricsPublic serves /metrics without a token (gate serve
	// --metrics-public); otherwise it needs one that may read metrics.
	MetricsPublic bool
	// AfterImport runs after a DB import succeeds, before the answer: it
	// requests the re-match of stored SBOMs and must return quickly (the
	// re-match itself runs in the gate's background work). It may be nil.
	AfterImport func(ctx context.Context) error
	// BasicChallenge adds a Basic challenge to the 401s of the Anchore
	// Jenkins plugin's HTTP client (see Challenge); off by default.
	BasicChallenge bool
	// Warm, when set, is closed once the gate has built what every
	// analysis uses (the cataloger's license scanner): /readyz answers
	// 503 until then, so that the first analysis does not pay for it.
	Warm <-chan struct{}
	// Draining, when set, is closed when the gate stops serving: requests
	// that wait for something (GET /v1/images/{digest}?wait=) answer at
	// once, so that shutting down does not wait for them.
	Draining <-chan struct{}
	// Changes, when set, wakes the requests waiting for an image's status
	// when this gate stores one (see Changes); without it they read the
	// image every imagePoll.
	Changes *Changes
	// poll, when not zero, replaces imagePoll (tests).
	poll time.Duration
}

// New builds the server and its routes.
func New(images Images, store Store, db VulnDB, sboms SBOMs, metrics *Metrics, log *slog.Logger) *Server {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{echo: e, images: images, store: store, db: db, sboms: sboms, log: log, metrics: metrics}
	e.HTTPErrorHandler = s.handleError
	s.SetLimits(DefaultLimits())
	if metrics != nil {
		metrics.countUploads(func() int { return len(s.uploads) })
	}
	e.Pre(s.bound)
	e.Use(s.logRequests)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(metrics.Handler()), s.metricsAuth)
	e.GET("/debug/pprof/*", echo.WrapHandler(profiles()), s.authenticate, require(buildgate.ActProfile))

	v1 := e.Group("/v1", s.authenticate)
	s.v1 = v1
	read := require(buildgate.ActReadImages)
	v1.POST("/images", s.submitImage, require(buildgate.ActSubmitImages))
	v1.GET("/images", s.listImages, read)
	v1.GET("/images/:digest", s.getImage, read)
	v1.DELETE("/images/:digest", s.deleteImage, require(buildgate.ActDeleteImages))
	v1.GET("/images/:digest/vulnerabilities", s.vulnerabilities, read)
	v1.GET("/images/:digest/packages", s.packages, read)
	v1.GET("/images/:digest/sbom", s.sbom, read)
	v1.GET("/images/:digest/metadata", s.metadata, read)
	v1.GET("/images/:digest/files", s.files, read)
	v1.GET("/images/:digest/secrets", s.secrets, read)
	v1.GET("/db", s.dbStatus, read)
	v1.POST("/db/import", s.dbImport, require(buildgate.ActImportDB), s.uploadSlot)
	return s
}

// Echo returns the echo instance, for other route sets to join.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// profiles serves Go's runtime profiles (go tool pprof URL): the index,
// named profiles (heap, goroutine, allocs...), CPU profile and trace. The
// command line is not served: it may hold secrets.
func profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// metricsAuth asks /metrics for a token unless MetricsPublic.
func (s *Server) metricsAuth(next echo.HandlerFunc) echo.HandlerFunc {
	auth := s.authenticate(require(buildgate.ActReadMetrics)(next))
	return func(c echo.Context) error {
		if s.MetricsPublic {
			return next(c)
		}
		return auth(c)
	}
}

func (s *Server) readyz(c echo.Context) error {
	if !s.db.Ready() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "no vulnerability database loaded"})
	}
	if s.Warm != nil {
		select {
		case <-s.Warm:
		default:
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "preparing the cataloger"})
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("the store does not answer", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "the store does not answer"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// logRequests logs each request without its headers (they carry tokens).
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		path := c.Request().URL.Path
		if path == "/healthz" || path == "/readyz" || path == "/metrics" {
			return nil
		}
		s.log.Debug("request", "method", c.Request().Method, "path", path,
			"status", c.Response().Status, "duration", time.Since(start).Round(time.Microsecond))
		return nil
	}
}

// HTTPStatus returns the HTTP status that answers err, by its code
// (buildgate.ErrorCode): the one table that /v1, the Anchore subset and the
// console answer errors with.
func HTTPStatus(err error) int {
	if status, ok := statusOf[buildgate.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

var statusOf = map[string]int{
	buildgate.EINVALID:      http.StatusBadRequest,
	buildgate.ENOTFOUND:     http.StatusNotFound,
	buildgate.ECONFLICT:     http.StatusConflict,
	buildgate.EUNAUTHORIZED: http.StatusUnauthorized,
	buildgate.EFORBIDDEN:    http.StatusForbidden,
	buildgate.EINTERNAL:     http.StatusInternalServerError,
	buildgate.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// Unavailable returns err as EUNAVAILABLE when it is an internal error and
// the store does not answer now: a request that failed because the
// database went away answers 503 (send it again), not 500. Other errors
// come back unchanged.
func (s *Server) Unavailable(ctx context.Context, err error) error {
	if buildgate.ErrorCode(err) != buildgate.EINTERNAL || errors.As(err, new(*echo.HTTPError)) {
		return err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if perr := s.store.Ping(pctx); perr != nil {
		s.log.Warn("a request failed while the store does not answer", "err", err, "ping", perr)
		return buildgate.Errorf(buildgate.EUNAVAILABLE, "the gate's store does not answer; try again shortly")
	}
	return err
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	r := ErrorReply(c, err, s.log, s.BasicChallenge, func(err error) error { return s.Unavailable(c.Request().Context(), err) })
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(r.Status) // the client is gone if this fails; nothing left to tell it
		return
	}
	_ = c.JSON(r.Status, api.ErrorResponse{Error: api.ErrorBody{Code: r.Code, Message: r.Message}})
}

// digestParam returns the :digest path parameter, unescaped.
func digestParam(c echo.Context) (string, error) { return pathParam(c, "digest") }
