// Package anchore serves the subset of Anchore Engine's v1 API that
// anchore-cli 0.9.4 and the Anchore and Sysdig Jenkins plugins call
// (shared/contracts/anchore-v1.md), on the gate's own store and services:
// an image added through it is the same image the gate's /v1 API serves.
//
// The routes live under Prefix (/api/scanning/v1/anchore, where Sysdig
// Secure served them). Anchore Engine itself served them under /v1, where
// the gate's own API also lives, so a pre-routing dispatcher decides, for
// each request under /v1, which API answers it:
//
//  1. Only the Anchore API has a route for the method and path (ping,
//     swagger.json, /images/{d}/vuln, /content, /images/by_id, /system, and
//     /registries or /subscriptions while the gate's API has none): Anchore.
//  2. Only the gate's API has one (or neither has): the gate's API.
//  3. Both have one (POST|GET /v1/images, GET|DELETE /v1/images/{d},
//     GET /v1/images/{d}/check, /v1/policies...): Anchore when the request
//     is Anchore-shaped, else the gate's API. A request is Anchore-shaped
//     when it sends HTTP Basic credentials (the gate's API takes only
//     Bearer tokens; anchore-cli and the Anchore plugin always send Basic),
//     a query parameter only Anchore clients send (history, detail,
//     policyId, autosubscribe, fulltag, vendor_only, subscription_key,
//     subscription_type), or a JSON body in Anchore's spelling (on
//     /v1/images a "tag" and no "ref"; elsewhere registry_user,
//     registry_pass, registry_type, registry_verify, policybundle, policyId,
//     subscription_key or subscription_type).
//
// The body is looked at only after the request's token verifies, and then
// only its first few KiB (maxPeek), walked token by token for top-level
// keys; the handler reads the body intact. A request without a valid token
// is routed on its method, path, headers and query alone, and its handler
// answers 401 before reading anything.
//
// The dispatcher rewrites an Anchore request's path from /v1 to Prefix, so
// one handler serves both base paths and the two route trees never clash,
// whatever order routes are registered in.
//
// Errors are Anchore's {"message", "httpcode", "detail": {"error_codes"}}.
// A 401 carries a Bearer challenge only (server.Challenge): a Basic one
// would have browsers prompt and then send the token on their own.
package anchore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/server"
)

// Prefix is the base path of the Anchore API; /v1 serves it too (see the
// package comment).
const Prefix = "/api/scanning/v1/anchore"

// apiVersion is the Anchore API version anchore-cli 0.9.4 reads from
// swagger.json.
const apiVersion = "0.1.20"

// Images submits images for analysis.
type Images interface {
	Submit(ctx context.Context, req analysis.SubmitRequest) (*buildgate.Image, error)
}

// Store is what the Anchore API reads and writes directly.
type Store interface {
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	ListImages(ctx context.Context, tag string, status buildgate.Status) ([]buildgate.Image, error)
	DeleteImage(ctx context.Context, digest string) error
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	ImageMetadata(ctx context.Context, digest string) (*buildgate.Metadata, error)
	ImageOrigin(ctx context.Context, digest string) (*buildgate.Origin, error)
	TokenByHash(ctx context.Context, hash string) (*buildgate.Token, error)

	Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error)
	ListPolicies(ctx context.Context) ([]buildgate.PolicyRecord, error)
	DeletePolicy(ctx context.Context, id string) error

	EnsureSubscriptions(ctx context.Context, key string, types, activate []string) error
	AddSubscription(ctx context.Context, key, typ string, active bool) (*buildgate.Subscription, error)
	Subscription(ctx context.Context, id string) (*buildgate.Subscription, error)
	ListSubscriptions(ctx context.Context, key, typ string) ([]buildgate.Subscription, error)
	SetSubscriptionActive(ctx context.Context, id string, active bool) (*buildgate.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
}

// Verdicts stores policy bundles and evaluates images against them; the
// gate's /v1 check uses the same service, so verdicts agree.
type Verdicts interface {
	Save(ctx context.Context, id string, data []byte, activate bool) (*buildgate.PolicyRecord, error)
	Activate(ctx context.Context, id string) error
	Check(ctx context.Context, digest, tag, policyID string) (*policy.Verdict, error)
}

// Registries stores registry credentials. The password never comes back.
type Registries interface {
	Add(ctx context.Context, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Update(ctx context.Context, registry string, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Get(ctx context.Context, registry string) (*buildgate.RegistryCredential, error)
	List(ctx context.Context) ([]buildgate.RegistryCredential, error)
	Delete(ctx context.Context, registry string) error
}

// VulnDB reports the vulnerability DB, for /system/feeds.
type VulnDB interface {
	Status() api.DBStatus
}

// Config is what the Anchore API is built on.
type Config struct {
	Images   Images
	Store    Store
	Verdicts Verdicts
	// Registries may be nil: the registry routes then answer 501.
	Registries Registries
	DB         VulnDB
	// Version is the gate's version, reported by /system.
	Version string
	// BasicChallenge adds a Basic challenge for the Anchore Jenkins
	// plugin (server.Challenge).
	BasicChallenge bool
	Log            *slog.Logger
	// Unavailable, when set, turns an error met while the store does not
	// answer into a 503 (server.Server.Unavailable).
	Unavailable func(ctx context.Context, err error) error
}

// API is the Anchore v1 API mounted on an echo instance.
type API struct {
	cfg Config
	e   *echo.Echo

	once   sync.Once
	routes map[string]bool // "METHOD /path" of every real route
}

// Route mounts the Anchore API on e under Prefix, under /v1 through the
// dispatcher, and serves /swagger.json at the host root. Register every
// other route on e before serving: the dispatcher reads the route table
// once, at the first request.
func Route(e *echo.Echo, cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &API{cfg: cfg, e: e}
	e.Pre(a.dispatch)
	// Refusals before routing (a body over its limit, a content type a
	// browser form could send) answer Anchore's error under Prefix too.
	gateErrors := e.HTTPErrorHandler
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if p := c.Request().URL.Path; p == Prefix || strings.HasPrefix(p, Prefix+"/") {
			_ = a.handle(func(echo.Context) error { return err })(c) // handle writes the answer itself
			return
		}
		gateErrors(err, c)
	}
	e.GET("/swagger.json", a.swagger)

	g := e.Group(Prefix)
	read, submit := a.auth(buildgate.ActReadImages), a.auth(buildgate.ActSubmitImages)
	readPolicies, writePolicies := a.auth(buildgate.ActReadPolicies), a.auth(buildgate.ActWritePolicies)
	registries := a.auth(buildgate.ActManageRegistries)
	readSubs, writeSubs := a.auth(buildgate.ActReadSubscriptions), a.auth(buildgate.ActWriteSubscriptions)
	route := func(method, path string, h func(echo.Context) error, m ...echo.MiddlewareFunc) {
		g.Add(method, path, a.handle(h), m...)
	}
	route(http.MethodGet, "", a.ping)
	route(http.MethodGet, "/", a.ping)
	route(http.MethodGet, "/swagger.json", a.swagger)

	route(http.MethodPost, "/images", a.addImage, submit)
	route(http.MethodGet, "/images", a.listImages, read)
	route(http.MethodGet, "/images/by_id/:id", a.imageByID, read)
	route(http.MethodGet, "/images/:digest", a.getImage, read)
	route(http.MethodDelete, "/images/:digest", a.deleteImage, a.auth(buildgate.ActDeleteImages))
	route(http.MethodGet, "/images/:digest/vuln", a.vulnTypes, read)
	route(http.MethodGet, "/images/:digest/vuln/:type", a.vulnerabilities, read)
	route(http.MethodGet, "/images/:digest/content", a.contentTypes, read)
	route(http.MethodGet, "/images/:digest/content/:type", a.content, read)
	route(http.MethodGet, "/images/:digest/check", a.check, read)

	route(http.MethodPost, "/policies", a.addPolicy, writePolicies)
	route(http.MethodGet, "/policies", a.listPolicies, readPolicies)
	route(http.MethodGet, "/policies/:id", a.getPolicy, readPolicies)
	route(http.MethodPut, "/policies/:id", a.updatePolicy, writePolicies)
	route(http.MethodDelete, "/policies/:id", a.deletePolicy, writePolicies)

	route(http.MethodPost, "/registries", a.addRegistry, registries)
	route(http.MethodGet, "/registries", a.listRegistries, registries)
	route(http.MethodGet, "/registries/*", a.getRegistry, registries)
	route(http.MethodPut, "/registries/*", a.updateRegistry, registries)
	route(http.MethodDelete, "/registries/*", a.deleteRegistry, registries)

	route(http.MethodGet, "/subscriptions", a.listSubscriptions, readSubs)
	route(http.MethodPost, "/subscriptions", a.addSubscription, writeSubs)
	route(http.MethodGet, "/subscriptions/:id", a.getSubscription, readSubs)
	route(http.MethodPut, "/subscriptions/:id", a.updateSubscription, writeSubs)
	route(http.MethodDelete, "/subscriptions/:id", a.deleteSubscription, writeSubs)

	route(http.MethodGet, "/system", a.system, read)
	route(http.MethodGet, "/system/feeds", a.feeds, read)

	g.RouteNotFound("/*", a.handle(func(c echo.Context) error {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no such path: %s %s", c.Request().Method, c.Request().URL.Path)
	}))
	return a
}

// anchoreParams are query parameters that only Anchore clients send.
var anchoreParams = []string{"history", "detail", "policyId", "autosubscribe", "fulltag", "vendor_only", "subscription_key", "subscription_type"}

// anchoreBodyKeys are top-level JSON body fields in Anchore's spelling.
var anchoreBodyKeys = []string{"registry_user", "registry_pass", "registry_type", "registry_verify", "policybundle", "policyId", "subscription_key", "subscription_type"}

// maxPeek bounds how much of a body the dispatcher looks at for top-level
// keys: Anchore's distinguishing keys come first in what its clients send.
const maxPeek = 8 << 10

// maxBody bounds a JSON body the Anchore handlers decode; the server's
// per-route limit (--max-body-size) is normally lower and answers first.
const maxBody = 16 << 20

// dispatch sends Anchore requests under /v1 to the Anchore routes by
// rewriting their path to Prefix (see the package comment for the rule).
func (a *API) dispatch(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		path := echo.GetPath(r)
		if path != "/v1" && !strings.HasPrefix(path, "/v1/") {
			return next(c)
		}
		anchorePath := Prefix + strings.TrimPrefix(path, "/v1")
		if a.routed(r, anchorePath) && (!a.routed(r, path) || a.anchoreShaped(r)) {
			r.URL.Path = Prefix + strings.TrimPrefix(r.URL.Path, "/v1")
			if r.URL.RawPath != "" {
				r.URL.RawPath = anchorePath
			}
		}
		return next(c)
	}
}

// routed reports whether a real route (not a catch-all 404) serves the
// request's method at path.
func (a *API) routed(r *http.Request, path string) bool {
	a.once.Do(func() {
		a.routes = map[string]bool{}
		for _, rt := range a.e.Routes() {
			if rt.Method != echo.RouteNotFound {
				a.routes[rt.Method+" "+rt.Path] = true
			}
		}
	})
	c := a.e.NewContext(r, nil)
	a.e.Router().Find(r.Method, path, c)
	return a.routes[r.Method+" "+c.Path()]
}

// anchoreShaped reports whether a request that both APIs could serve comes
// from an Anchore client. It reads the body only once the request's token
// verifies.
func (a *API) anchoreShaped(r *http.Request) bool {
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Basic") {
		return true
	}
	q := r.URL.Query()
	for _, p := range anchoreParams {
		if q.Has(p) {
			return true
		}
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	if !a.verified(r) {
		return false
	}
	keys, replay := topLevelKeys(r.Body, maxPeek)
	r.Body = readCloser{replay, r.Body}
	if r.URL.Path == "/v1/images" && keys["tag"] && !keys["ref"] {
		return true
	}
	for _, k := range anchoreBodyKeys {
		if keys[k] {
			return true
		}
	}
	return false
}

// verified reports whether the request carries a token the store knows.
func (a *API) verified(r *http.Request) bool {
	secret := credential(r.Header.Get("Authorization"))
	if secret == "" {
		return false
	}
	_, err := a.cfg.Store.TokenByHash(r.Context(), server.HashToken(secret))
	return err == nil
}

// topLevelKeys reads at most limit bytes of body and returns the keys of
// the top-level JSON object seen in them, walking the document token by
// token without building any value, and a reader that replays the whole
// body, intact, from its first byte. A body that is not a JSON object, or
// whose keys lie past the limit, yields the keys seen before the stop.
func topLevelKeys(body io.Reader, limit int64) (map[string]bool, io.Reader) {
	var seen bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(io.LimitReader(body, limit), &seen))
	keys := map[string]bool{}
	replay := func() io.Reader { return io.MultiReader(bytes.NewReader(seen.Bytes()), body) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return keys, replay()
	}
	for {
		t, err := dec.Token()
		if err != nil {
			return keys, replay()
		}
		k, ok := t.(string)
		if !ok { // the closing brace
			return keys, replay()
		}
		keys[k] = true
		if skipValue(dec) != nil {
			return keys, replay()
		}
	}
}

// skipValue reads one JSON value token by token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

const tokenKey = "anchore.token"

// credential reads the token from HTTP Basic (the token is the user name;
// the password, empty or "None", is ignored) or from a Bearer header.
func credential(header string) string {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(b), ":")
		return user
	}
	return ""
}

// auth authenticates the request and lets through tokens whose role may
// do act (buildgate.Role.Can, the table every face of the gate asks).
func (a *API) auth(act buildgate.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return a.handle(func(c echo.Context) error {
			secret := credential(c.Request().Header.Get("Authorization"))
			if secret == "" {
				return buildgate.Errorf(buildgate.EUNAUTHORIZED, "Unauthorized: send the API token as the Basic user name or as a Bearer token")
			}
			t, err := a.cfg.Store.TokenByHash(c.Request().Context(), server.HashToken(secret))
			if err != nil {
				if buildgate.ErrorCode(err) == buildgate.EUNAUTHORIZED {
					return buildgate.Errorf(buildgate.EUNAUTHORIZED, "Unauthorized: %s", buildgate.ErrorMessage(err))
				}
				return err
			}
			if err := buildgate.Allow(t, act); err != nil {
				return buildgate.Errorf(buildgate.EFORBIDDEN, "Not authorized: %s", buildgate.ErrorMessage(err))
			}
			c.Set(tokenKey, t)
			return next(c)
		})
	}
}

// errorBody is Anchore's error answer.
type errorBody struct {
	Message  string      `json:"message"`
	HTTPCode int         `json:"httpcode"`
	Detail   errorDetail `json:"detail"`
}

type errorDetail struct {
	ErrorCodes []string `json:"error_codes"`
}

// handle answers a handler's error in Anchore's shape.
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
		r := server.ErrorReply(c, err, a.cfg.Log, a.cfg.BasicChallenge, unavailable)
		return c.JSON(r.Status, errorBody{Message: r.Message, HTTPCode: r.Status, Detail: errorDetail{ErrorCodes: []string{}}})
	}
}

func (a *API) ping(c echo.Context) error { return c.JSON(http.StatusOK, "v1") }

func (a *API) swagger(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"swagger":  "2.0",
		"info":     map[string]string{"title": "buildgate: Anchore Engine API subset", "version": apiVersion},
		"basePath": "/v1",
	})
}

// boolParam reads a query boolean as Anchore clients send it: True, False,
// true, false (also 1, 0, yes, no). Absent means def.
func boolParam(c echo.Context, name string, def bool) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no", "none":
		return false, nil
	}
	return false, buildgate.Errorf(buildgate.EINVALID, "query parameter %s=%q is not a boolean (want True or False)", name, v)
}

// pathParam returns a path parameter, unescaped (digests arrive raw and as
// sha256%3A..., registry names with %2F and %3A).
func pathParam(c echo.Context, name string) (string, error) {
	raw := c.Param(name)
	v, err := url.PathUnescape(raw)
	if err != nil || v == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "invalid %s %q", name, raw)
	}
	return v, nil
}

// decodeBody reads a JSON body into v.
func decodeBody(c echo.Context, v any) error {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBody+1))
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "reading the body: %v", err)
	}
	if len(b) > maxBody {
		return buildgate.Errorf(buildgate.EINVALID, "the body is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return buildgate.Errorf(buildgate.EINVALID, "the request has no JSON body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: %v", err)
	}
	return nil
}

// isoTime formats a time as Anchore does: ISO-8601 in UTC with a Z.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func isoTimePtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := isoTime(*t)
	return &s
}
