// Package harbor serves the Harbor Scanner Adapter API, v1.1 and v1.2
// (shared/contracts/harbor/), on the gate's own queue and store: an admin
// registers https://GATE/harbor as a scanner in Harbor, and Harbor calls
//
//	GET  /harbor/api/v1/metadata               the scanner and its capabilities
//	POST /harbor/api/v1/scan                   queue an artifact; 202 {"id"}
//	GET  /harbor/api/v1/scan/{id}/report       302 + Refresh-After until done,
//	                                           then the vulnerability or SBOM report
//
// with the Bearer token it is configured with (a gate token; scanning
// needs a role that may submit images, reading reports one that may read
// them: the ci role does both).
//
// The scan request carries a short-lived registry authorization. It is
// handed to the analysis service (analysis.Service.SubmitAuthorized), which
// holds it in memory for the one pull of that image, sends it to that
// registry host only, and never stores, logs or answers it; a scan whose
// gate restarted before the pull fails saying so.
//
// A scan id is the artifact's digest ("sha256-<hex>"): the report is the
// stored analysis of that digest, so any replica answers it, and a report
// outlives the process that accepted the scan.
//
// Errors are the spec's {"error": {"message"}} as
// application/vnd.scanner.adapter.error+json; version=1.0.
package harbor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server"
)

// Prefix is the base path Harbor is given: Harbor appends /api/v1/...
const Prefix = "/harbor"

// MIME types of the spec.
const (
	mimeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mimeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

	mimeVulnReport       = "application/vnd.security.vulnerability.report; version=1.1"
	mimeHarborVulnReport = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	mimeSBOMReport       = "application/vnd.security.sbom.report+json; version=1.0"

	mimeSPDX      = "application/spdx+json"
	mimeCycloneDX = "application/vnd.cyclonedx+json"

	mimeMetadata10   = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	mimeMetadata11   = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	mimeScanRequest  = "application/vnd.scanner.adapter.scan.request+json"
	mimeScanResponse = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	mimeError        = "application/vnd.scanner.adapter.error+json; version=1.0"
)

// consumes are the artifact types the gate scans.
var consumes = []string{mimeOCIManifest, mimeDockerManifest}

// produces are the report types the gate answers, in the order a 400 names
// them.
var produces = []string{mimeVulnReport, mimeHarborVulnReport, mimeSBOMReport}

// sbomFormats maps the SBOM media types Harbor asks for to the gate's
// export formats.
var sbomFormats = map[string]string{mimeSPDX: "spdx-json", mimeCycloneDX: "cyclonedx-json"}

// Images queues images to be pulled with an authorization of their own.
type Images interface {
	SubmitAuthorized(ctx context.Context, req analysis.AuthorizedRequest) (*buildgate.Image, error)
}

// Store is what the reports are read from.
type Store interface {
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	TokenByHash(ctx context.Context, hash string) (*buildgate.Token, error)
}

// SBOMs converts stored syft-json SBOMs (server.SBOMs).
type SBOMs interface {
	Convert(syftJSON []byte, format string) ([]byte, error)
}

// VulnDB reports the vulnerability DB, for its build time.
type VulnDB interface {
	Status() api.DBStatus
}

// Config is what the Harbor API is built on.
type Config struct {
	Images Images
	Store  Store
	SBOMs  SBOMs
	DB     VulnDB
	// Version is the gate's version, the scanner's version.
	Version string
	// RefreshAfter is the Refresh-After of a report not ready yet; 0
	// means 5 seconds.
	RefreshAfter time.Duration
	Log          *slog.Logger
	// Unavailable, when set, turns an error met while the store does not
	// answer into a 503 (server.Server.Unavailable).
	Unavailable func(ctx context.Context, err error) error
}

// API is the Harbor scanner adapter API mounted on an echo instance.
type API struct {
	cfg Config
}

// Route mounts the API on e under Prefix.
func Route(e *echo.Echo, cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RefreshAfter <= 0 {
		cfg.RefreshAfter = 5 * time.Second
	}
	a := &API{cfg: cfg}
	// Refusals before routing (a body over its limit) answer the spec's
	// error shape under Prefix too.
	gateErrors := e.HTTPErrorHandler
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if p := c.Request().URL.Path; p == Prefix || strings.HasPrefix(p, Prefix+"/") {
			_ = a.handle(func(echo.Context) error { return err })(c) // handle writes the answer itself
			return
		}
		gateErrors(err, c)
	}
	g := e.Group(Prefix + "/api/v1")
	g.GET("/metadata", a.handle(a.metadata), a.auth(buildgate.ActReadImages))
	g.POST("/scan", a.handle(a.scan), a.auth(buildgate.ActSubmitImages))
	g.GET("/scan/:id/report", a.handle(a.report), a.auth(buildgate.ActReadImages))
	e.RouteNotFound(Prefix+"/*", a.handle(func(c echo.Context) error {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no such path: %s %s (the Harbor scanner adapter API is GET %s/api/v1/metadata, POST %[3]s/api/v1/scan and GET %[3]s/api/v1/scan/{id}/report)",
			c.Request().Method, c.Request().URL.Path, Prefix)
	}))
	return a
}

// auth authenticates the Bearer token Harbor is configured with and lets
// through tokens whose role may do act.
func (a *API) auth(act buildgate.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return a.handle(func(c echo.Context) error {
			scheme, tok, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
			tok = strings.TrimSpace(tok)
			if !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return buildgate.Errorf(buildgate.EUNAUTHORIZED, "missing bearer token: register the scanner in Harbor with the authorization Bearer and a gate token")
			}
			t, err := a.cfg.Store.TokenByHash(c.Request().Context(), server.HashToken(tok))
			if err != nil {
				return err
			}
			if err := buildgate.Allow(t, act); err != nil {
				return err
			}
			return next(c)
		})
	}
}

type errorResponse struct {
	Error errorMessage `json:"error"`
}

type errorMessage struct {
	Message string `json:"message"`
}

// handle answers a handler's error in the spec's shape.
func (a *API) handle(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := h(c)
		if err == nil || c.Response().Committed {
			return nil
		}
		var unavailable func(error) error
		if a.cfg.Unavailable != nil {
			unavailable = func(err error) error { return a.cfg.Unavailable(c.Request().Context(), err) }
		}
		r := server.ErrorReply(c, err, a.cfg.Log, false, unavailable)
		return writeJSON(c, r.Status, mimeError, errorResponse{Error: errorMessage{Message: r.Message}})
	}
}

func writeJSON(c echo.Context, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, contentType, b)
}

// sameType reports whether the media types a and b are the same type with
// the same version parameter, spacing and case aside.
func sameType(a, b string) bool {
	ta, pa, err := mime.ParseMediaType(a)
	if err != nil {
		return false
	}
	tb, pb, err := mime.ParseMediaType(b)
	return err == nil && ta == tb && pa["version"] == pb["version"]
}

// accepts returns the first of offers an Accept header names, "" when it
// names none. An absent Accept, or */*, takes the first offer.
func accepts(header string, offers ...string) string {
	if strings.TrimSpace(header) == "" {
		return offers[0]
	}
	for _, part := range splitAccept(header) {
		if t, _, err := mime.ParseMediaType(part); err == nil && t == "*/*" {
			return offers[0]
		}
		for _, o := range offers {
			if sameType(part, o) {
				return o
			}
		}
	}
	return ""
}

// splitAccept splits an Accept header at the commas between media types
// (a version parameter holds none).
func splitAccept(h string) []string {
	var out []string
	for _, p := range strings.Split(h, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type scanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

func (a *API) scanner() scanner {
	return scanner{Name: "buildgate", Vendor: "buildgate", Version: a.cfg.Version}
}

type capability struct {
	Type                 string         `json:"type,omitempty"`
	ConsumesMimeTypes    []string       `json:"consumes_mime_types"`
	ProducesMimeTypes    []string       `json:"produces_mime_types"`
	AdditionalAttributes map[string]any `json:"additional_attributes,omitempty"`
}

type metadata struct {
	Scanner      scanner           `json:"scanner"`
	Capabilities []capability      `json:"capabilities"`
	Properties   map[string]string `json:"properties"`
}

// metadata answers the scanner's metadata: v1.1 (with the SBOM capability)
// unless Harbor asks for v1.0, which knows only vulnerability reports.
func (a *API) metadata(c echo.Context) error {
	version := accepts(c.Request().Header.Get("Accept"), mimeMetadata11, mimeMetadata10, "application/json")
	if version == "application/json" {
		version = mimeMetadata11
	}
	if version == "" {
		return buildgate.Errorf(buildgate.EINVALID, "the scanner's metadata is served as %s or %s, not %q", mimeMetadata11, mimeMetadata10, c.Request().Header.Get("Accept"))
	}
	m := metadata{
		Scanner: a.scanner(),
		Capabilities: []capability{
			{Type: "vulnerability", ConsumesMimeTypes: consumes, ProducesMimeTypes: []string{mimeVulnReport, mimeHarborVulnReport}},
			{Type: "sbom", ConsumesMimeTypes: consumes, ProducesMimeTypes: []string{mimeSBOMReport},
				AdditionalAttributes: map[string]any{"sbom_media_types": []string{mimeSPDX, mimeCycloneDX}}},
		},
		Properties: map[string]string{"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"},
	}
	if version == mimeMetadata10 {
		m.Capabilities = m.Capabilities[:1]
		m.Capabilities[0].Type = ""
	}
	if built := a.cfg.DB.Status().Built; built != nil {
		m.Properties["harbor.scanner-adapter/vulnerability-database-updated-at"] = built.UTC().Format(time.RFC3339Nano)
	}
	return writeJSON(c, http.StatusOK, version, m)
}

type artifact struct {
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
}

// scanRequest is Harbor's scan request. Its authorization is a Secret, so
// nothing that prints the request prints it.
type scanRequest struct {
	Registry struct {
		URL           string        `json:"url"`
		Authorization secret.Secret `json:"authorization"`
	} `json:"registry"`
	Artifact            artifact `json:"artifact"`
	EnabledCapabilities []struct {
		Type              string   `json:"type"`
		ProducesMimeTypes []string `json:"produces_mime_types"`
		Parameters        *struct {
			SBOMMediaTypes []string `json:"sbom_media_types"`
		} `json:"parameters"`
	} `json:"enabled_capabilities"`
}

// maxScanRequest bounds a scan request's body.
const maxScanRequest = 64 << 10

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// scan queues the artifact and answers its scan id.
func (a *API) scan(c echo.Context) error {
	ct := c.Request().Header.Get("Content-Type")
	if !sameType(ct, mimeScanRequest+"; version=1.1") && !sameType(ct, mimeScanRequest+"; version=1.0") && !sameType(ct, "application/json") {
		return buildgate.Errorf(buildgate.EINVALID, "a scan request is %s; version=1.1 (or 1.0) JSON, not %q", mimeScanRequest, ct)
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxScanRequest+1))
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "reading the scan request: %v", err)
	}
	if len(body) > maxScanRequest {
		return buildgate.Errorf(buildgate.EINVALID, "the scan request is larger than %d bytes", maxScanRequest)
	}
	var req scanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "the scan request is not valid JSON of the spec's ScanRequest: %v", jsonError(err))
	}
	areq, err := checkScan(&req)
	if err != nil {
		return err
	}
	img, err := a.cfg.Images.SubmitAuthorized(c.Request().Context(), areq)
	if err != nil {
		return err
	}
	a.cfg.Log.Info("harbor scan accepted", "digest", img.Digest, "registry", areq.Auth.Host, "repository", req.Artifact.Repository, "status", img.Status)
	return writeJSON(c, http.StatusAccepted, mimeScanResponse, map[string]string{"id": scanID(areq.Digest)})
}

// jsonError describes a decoding error without quoting the document (it
// holds the authorization).
func jsonError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "a syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return "field " + typ.Field + " must be a JSON " + typ.Type.Kind().String()
	}
	return "it cannot be read"
}

// checkScan validates a scan request (422 for a bad field, 501 for what
// the gate cannot scan) and makes the authorized submission of it.
func checkScan(req *scanRequest) (analysis.AuthorizedRequest, error) {
	invalid := func(format string, args ...any) (analysis.AuthorizedRequest, error) {
		return analysis.AuthorizedRequest{}, server.Errorf(http.StatusUnprocessableEntity, format, args...)
	}
	u, err := url.Parse(strings.TrimSpace(req.Registry.URL))
	switch {
	case req.Registry.URL == "":
		return invalid("registry.url is required: the base URL of the registry holding the artifact")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return invalid("registry.url %q is not a registry's base URL: want https://host[:port]", secret.RedactURL(req.Registry.URL))
	}
	host := strings.ToLower(u.Host)
	scheme, cred, _ := strings.Cut(string(req.Registry.Authorization), " ")
	switch {
	case req.Registry.Authorization == "":
		return invalid("registry.authorization is required: the gate pulls the artifact with the authorization Harbor sends, and only with it")
	case strings.TrimSpace(cred) == "" || (!strings.EqualFold(scheme, "Basic") && !strings.EqualFold(scheme, "Bearer")):
		return invalid(`registry.authorization must be "Basic <base64 user:password>" or "Bearer <token>"`)
	}
	repo, digest := req.Artifact.Repository, req.Artifact.Digest
	switch {
	case repo == "":
		return invalid("artifact.repository is required")
	case digest == "":
		return invalid("artifact.digest is required")
	case !digestRE.MatchString(digest):
		return invalid("artifact.digest %q is not a sha256 digest (sha256: and 64 lowercase hex digits)", digest)
	}
	ref := host + "/" + repo + "@" + digest
	named, err := reference.ParseNamed(ref)
	if err != nil || reference.Domain(named) != host {
		return invalid("artifact.repository %q of registry %s is not a valid image reference (lowercase path components; a registry host needs a dot or a port to be told from a path)", repo, host)
	}
	if mt := req.Artifact.MimeType; mt != "" && !sameType(mt, mimeOCIManifest) && !sameType(mt, mimeDockerManifest) {
		return analysis.AuthorizedRequest{}, server.Errorf(http.StatusNotImplemented, "the gate scans image manifests (%s), not %q", strings.Join(consumes, ", "), mt)
	}
	for _, cp := range req.EnabledCapabilities {
		var ours []string
		switch cp.Type {
		case "vulnerability":
			ours = []string{mimeVulnReport, mimeHarborVulnReport}
		case "sbom":
			ours = []string{mimeSBOMReport}
			if cp.Parameters != nil {
				for _, f := range cp.Parameters.SBOMMediaTypes {
					if _, ok := sbomFormats[f]; !ok {
						return analysis.AuthorizedRequest{}, server.Errorf(http.StatusNotImplemented, "the gate makes SBOMs as %s and %s, not %q", mimeSPDX, mimeCycloneDX, f)
					}
				}
			}
		default:
			return analysis.AuthorizedRequest{}, server.Errorf(http.StatusNotImplemented, "the gate has no %q capability (it has vulnerability and sbom)", cp.Type)
		}
		for _, p := range cp.ProducesMimeTypes {
			if !containsType(ours, p) {
				return analysis.AuthorizedRequest{}, server.Errorf(http.StatusNotImplemented, "the %s capability produces %s, not %q", cp.Type, strings.Join(ours, ", "), p)
			}
		}
	}
	return analysis.AuthorizedRequest{
		PullRef: ref, Digest: digest,
		Auth: analysis.PullAuth{Host: host, Authorization: req.Registry.Authorization, PlainHTTP: u.Scheme == "http"},
	}, nil
}

func containsType(list []string, t string) bool {
	for _, l := range list {
		if sameType(l, t) {
			return true
		}
	}
	return false
}

// scanID is the scan id of a digest: "sha256-<hex>".
func scanID(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// digestOf reads a scan id back.
func digestOf(id string) (string, bool) {
	d := strings.Replace(id, "-", ":", 1)
	return d, digestRE.MatchString(d)
}

// report answers the report Accept names, 302 with Refresh-After while
// the analysis runs, and 500 with the failure when it failed.
func (a *API) report(c echo.Context) error {
	accept := c.Request().Header.Get("Accept")
	kind := accepts(accept, produces...)
	if kind == "" {
		return buildgate.Errorf(buildgate.EINVALID, "the gate produces no report of type %q; it produces %s", accept, strings.Join(produces, ", "))
	}
	format := ""
	if kind == mimeSBOMReport {
		mt := c.QueryParam("sbom_media_type")
		var ok bool
		if format, ok = sbomFormats[mt]; !ok {
			return buildgate.Errorf(buildgate.EINVALID, "an SBOM report needs the query parameter sbom_media_type=%s or %s (got %q)", mimeSPDX, mimeCycloneDX, mt)
		}
	}
	id := c.Param("id")
	digest, ok := digestOf(id)
	if !ok {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no scan %q: a scan id is sha256-<hex>, as POST /scan answers", id)
	}
	ctx := c.Request().Context()
	img, err := a.cfg.Store.Image(ctx, digest)
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no scan %q: the gate has no image %s (deleted since?)", id, digest)
	}
	if err != nil {
		return err
	}
	switch img.Status {
	case buildgate.StatusQueued, buildgate.StatusAnalyzing:
		c.Response().Header().Set("Refresh-After", strconv.Itoa(int(a.cfg.RefreshAfter.Round(time.Second)/time.Second)))
		return c.NoContent(http.StatusFound)
	case buildgate.StatusFailed:
		return server.Errorf(http.StatusInternalServerError, "the scan of %s failed: %s", digest, img.Error)
	}
	an, err := a.cfg.Store.Analysis(ctx, digest)
	if err != nil {
		return err
	}
	art := artifact{Digest: digest}
	if kind == mimeSBOMReport {
		doc, err := a.cfg.SBOMs.Convert(an.SBOM, format)
		if err != nil {
			return err
		}
		mt := c.QueryParam("sbom_media_type")
		return writeJSON(c, http.StatusOK, kind, sbomReport{
			GeneratedAt: an.MatchedAt.UTC(), Artifact: art, Scanner: a.scanner(), MediaType: mt, SBOM: doc,
		})
	}
	return writeJSON(c, http.StatusOK, kind, vulnerabilityReport(an, art, a.scanner()))
}
