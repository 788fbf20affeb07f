// Package console is buildgate's web console: server-rendered pages
// (html/template, embedded) on the gate's echo instance, signed in with an
// API token kept in a server-side session. Every read and write goes
// through the same service layer as /v1; pages work without JavaScript.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/secret"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Images submits images for analysis (analysis.Service).
type Images interface {
	Submit(ctx context.Context, req analysis.SubmitRequest) (*buildgate.Image, error)
}

// Store is what the console reads directly.
type Store interface {
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	ListImages(ctx context.Context, tag string, status buildgate.Status) ([]buildgate.Image, error)
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	TokenByHash(ctx context.Context, hash string) (*buildgate.Token, error)
	Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error)
	ActivePolicy(ctx context.Context) (*buildgate.PolicyRecord, error)
	ListPolicies(ctx context.Context) ([]buildgate.PolicyRecord, error)
	DeletePolicy(ctx context.Context, id string) error
	Evaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error)
	// Sessions live in the store: any replica serves any signed-in
	// request, and a restart signs nobody out.
	SaveConsoleSession(ctx context.Context, s buildgate.ConsoleSession) error
	ConsoleSession(ctx context.Context, idHash string) (*buildgate.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, idHash string) error
}

// Policies saves, activates and checks policy bundles (analysis.Verdicts).
type Policies interface {
	Save(ctx context.Context, id string, data []byte, activate bool) (*buildgate.PolicyRecord, error)
	Activate(ctx context.Context, id string) error
	Check(ctx context.Context, digest, tag, policyID string) (*policy.Verdict, error)
}

// Registries keeps registry credentials (analysis.Registries).
type Registries interface {
	Add(ctx context.Context, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Update(ctx context.Context, registry string, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Get(ctx context.Context, registry string) (*buildgate.RegistryCredential, error)
	List(ctx context.Context) ([]buildgate.RegistryCredential, error)
	Delete(ctx context.Context, registry string) error
}

// Config is what the console needs.
type Config struct {
	Images     Images
	Store      Store
	Policies   Policies
	Registries Registries
	// Alerts manages alerts and channels; nil leaves the Alerts tab read-only
	// through /v1.
	Alerts Alerts
	// Admission manages admission rules and decisions; nil hides the page.
	Admission Admission
	// API serves /v1 (the gate's own handler): downloads go through it with
	// the session's token.
	API http.Handler
	// HashToken hashes a token secret as the store keeps it.
	HashToken func(string) string
	Log       *slog.Logger
	// SessionTTL bounds a session's life (default 12h).
	SessionTTL time.Duration
	// Now is the gate's clock (default: the wall clock).
	Now func() time.Time
	// Unavailable, when set, turns an error met while the store does not
	// answer into a 503 (server.Server.Unavailable).
	Unavailable func(ctx context.Context, err error) error
}

// Console is the mounted console.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
}

// session is a signed-in session. Its id is the cookie's value and is
// never stored: the store finds the session by the id's hash and keeps
// the API token sealed under a key derived from the id, and the CSRF
// token is derived from the id too. Any replica with the cookie serves
// the session; the store alone opens nothing.
type session struct {
	idHash string
	key    []byte
	csrf   string
	secret string // the API token, opened for this request only
}

// newSession derives a session's store key, sealing key and CSRF token
// from its id.
func newSession(id string) *session {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, []byte(id))
		m.Write([]byte("buildgate console " + label))
		return m.Sum(nil)
	}
	return &session{
		idHash: hex.EncodeToString(derive("session id")),
		key:    derive("token key"),
		csrf:   base64.RawURLEncoding.EncodeToString(derive("csrf")),
	}
}

// sealer seals and opens the session's API token.
func (s *session) sealer() (*secret.Sealer, error) { return secret.NewSealer(s.key) }

// record is what the sealed token is bound to: its row of the store.
func (s *session) record() secret.Record {
	return secret.Record{Table: "console_sessions", Column: "token_sealed", ID: s.idHash}
}

const (
	sessionCookie = "bg_session"
	loginCookie   = "bg_login_csrf"
	ctxToken      = "console.token"
	ctxSession    = "console.session"
)

// Route mounts the console at / and /ui/ on e.
func Route(e *echo.Echo, cfg Config) *Console {
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Unavailable == nil {
		cfg.Unavailable = func(_ context.Context, err error) error { return err }
	}
	c := &Console{cfg: cfg, pages: parsePages()}
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/ui/") })
	e.GET("/ui", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/ui/") })
	e.GET("/ui/static/*", echo.WrapHandler(http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))))
	e.GET("/ui/login", c.loginPage)
	e.POST("/ui/login", c.login)
	g := e.Group("/ui", c.authenticate)
	read, submit := c.require(buildgate.ActReadImages), c.require(buildgate.ActSubmitImages)
	readPolicies, writePolicies := c.require(buildgate.ActReadPolicies), c.require(buildgate.ActWritePolicies)
	alerts, registries := c.require(buildgate.ActManageAlerts), c.require(buildgate.ActManageRegistries)
	g.POST("/logout", c.logout)
	g.GET("/", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/ui/repositories") })
	g.GET("/repositories", c.repositories, read)
	g.POST("/scan", c.scan, submit)
	g.GET("/images/:digest", c.imagePage, read)
	g.GET("/images/:digest/status", c.imageStatus, read)
	g.GET("/images/:digest/download/:kind", c.download, read)
	g.GET("/policies", c.policies, readPolicies)
	g.POST("/policies/import", c.importPolicy, writePolicies)
	g.GET("/policies/:id", c.policyPage, readPolicies)
	g.GET("/policies/:id/export", c.exportPolicy, readPolicies)
	g.POST("/policies/:id/activate", c.activatePolicy, writePolicies)
	g.POST("/policies/:id/rules", c.addRule, writePolicies)
	g.POST("/policies/:id/rules/delete", c.deleteRule, writePolicies)
	g.POST("/policies/:id/allowlist", c.addAllowlistItem, writePolicies)
	g.POST("/policies/:id/allowlist/delete", c.deleteAllowlistItem, writePolicies)
	g.POST("/policies/:id/mappings", c.addMapping, writePolicies)
	g.POST("/policies/:id/mappings/delete", c.deleteMapping, writePolicies)
	g.POST("/policies/:id/mappings/up", c.moveMappingUp, writePolicies)
	g.GET("/policies/:id/delete", c.confirmDeletePolicy, writePolicies)
	g.POST("/policies/:id/delete", c.deletePolicy, writePolicies)
	g.GET("/runtime", c.runtime, read)
	admission := c.require(buildgate.ActManageAdmission)
	g.GET("/admission", c.admission, admission)
	g.POST("/admission/rules", c.addAdmissionRule, admission)
	g.POST("/admission/rules/:id/delete", c.deleteAdmissionRule, admission)
	g.GET("/alerts", c.alertsIndex, alerts)
	g.GET("/alerts/new", c.newAlert, alerts)
	g.POST("/alerts", c.saveAlert, alerts)
	g.GET("/alerts/:id", c.alertPage, alerts)
	g.POST("/alerts/:id", c.saveAlert, alerts)
	g.POST("/alerts/:id/delete", c.deleteAlert, alerts)
	g.POST("/channels", c.addChannel, alerts)
	g.POST("/channels/:id/delete", c.deleteChannel, alerts)
	g.POST("/channels/:id/test", c.testChannel, alerts)
	g.GET("/registries", c.registries, registries)
	g.POST("/registries", c.addRegistry, registries)
	g.POST("/registries/delete", c.deleteRegistry, registries)
	g.GET("/registries/edit", c.editRegistryPage, registries)
	g.POST("/registries/edit", c.editRegistry, registries)
	g.POST("/registries/validate", c.validateRegistry, registries)
	return c
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func secureCookie(ec echo.Context) bool {
	return ec.Request().TLS != nil || ec.Request().Header.Get("X-Forwarded-Proto") == "https"
}

func (c *Console) setCookie(ec echo.Context, name, value, path string, maxAge int) {
	ec.SetCookie(&http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureCookie(ec)})
}

func (c *Console) loginPage(ec echo.Context) error {
	tok := randomString()
	c.setCookie(ec, loginCookie, tok, "/ui/login", 600)
	return c.render(ec, http.StatusOK, "login", &page{Title: "Sign in", CSRF: tok, Next: safeNext(ec.QueryParam("next"))})
}

// safeNext keeps redirects after sign-in inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/ui/repositories"
	}
	return next
}

// maxLoginForm bounds the sign-in form: a CSRF token, a token and a path.
const maxLoginForm = 8 << 10

// login signs in. Nothing of the body is parsed before it is known to be a
// small URL-encoded form: a multipart body (whose file parts net/http would
// spool to disk) or a large one is refused unread.
func (c *Console) login(ec echo.Context) error {
	r := ec.Request()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return ec.String(http.StatusUnsupportedMediaType, "sign-in takes an application/x-www-form-urlencoded form (the sign-in page's), not "+strconv.Quote(r.Header.Get("Content-Type"))+"\n")
	}
	if r.ContentLength > maxLoginForm {
		return ec.String(http.StatusRequestEntityTooLarge, fmt.Sprintf("the sign-in form is larger than %d bytes\n", maxLoginForm))
	}
	r.Body = http.MaxBytesReader(ec.Response().Writer, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ec.String(http.StatusRequestEntityTooLarge, fmt.Sprintf("the sign-in form is larger than %d bytes\n", maxLoginForm))
		}
		return ec.String(http.StatusBadRequest, "the sign-in form is malformed: "+err.Error()+"\n")
	}
	ck, err := ec.Cookie(loginCookie)
	form := ec.FormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		return c.render(ec, http.StatusForbidden, "login", &page{Title: "Sign in", Error: "The sign-in form expired; try again.", CSRF: c.freshLoginToken(ec)})
	}
	secret := strings.TrimSpace(ec.FormValue("token"))
	next := safeNext(ec.FormValue("next"))
	t, err := c.cfg.Store.TokenByHash(ec.Request().Context(), c.cfg.HashToken(secret))
	if secret == "" || err != nil {
		msg := "Invalid token."
		if err != nil && buildgate.ErrorCode(err) != buildgate.EUNAUTHORIZED && buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
			msg = "Signing in failed: " + buildgate.ErrorMessage(err)
		}
		return c.render(ec, http.StatusUnauthorized, "login", &page{Title: "Sign in", Error: msg, CSRF: c.freshLoginToken(ec), Next: next})
	}
	id := randomString()
	if err := c.saveSession(ec.Request().Context(), newSession(id), secret); err != nil {
		c.cfg.Log.Error("console sign-in: storing the session", "err", err)
		err = c.cfg.Unavailable(ec.Request().Context(), err)
		return c.render(ec, statusOf(err), "login", &page{Title: "Sign in", Error: "Signing in failed: " + buildgate.ErrorMessage(err), CSRF: c.freshLoginToken(ec), Next: next})
	}
	c.setCookie(ec, loginCookie, "", "/ui/login", -1)
	c.setCookie(ec, sessionCookie, id, "/", int(c.cfg.SessionTTL.Seconds()))
	c.cfg.Log.Info("console sign-in", "token", t.Name, "role", t.Role)
	return ec.Redirect(http.StatusSeeOther, next)
}

func (c *Console) freshLoginToken(ec echo.Context) string {
	tok := randomString()
	c.setCookie(ec, loginCookie, tok, "/ui/login", 600)
	return tok
}

// saveSession stores s, signed in with the API token secret, sealed.
func (c *Console) saveSession(ctx context.Context, s *session, secret string) error {
	sealer, err := s.sealer()
	if err != nil {
		return err
	}
	sealed, err := sealer.Seal([]byte(secret), s.record())
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	return c.cfg.Store.SaveConsoleSession(ctx, buildgate.ConsoleSession{IDHash: s.idHash, SealedToken: sealed, CreatedAt: now, ExpiresAt: now.Add(c.cfg.SessionTTL)})
}

// openSession finds the session of the cookie id and opens its token; it
// is not found when the store has no such session or cannot open it.
func (c *Console) openSession(ctx context.Context, id string) (*session, error) {
	s := newSession(id)
	cs, err := c.cfg.Store.ConsoleSession(ctx, s.idHash)
	if err != nil {
		return nil, err
	}
	sealer, err := s.sealer()
	if err != nil {
		return nil, err
	}
	plain, err := sealer.Open(cs.SealedToken, s.record())
	if err != nil {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "the console session cannot be opened: %v", err)
	}
	s.secret = string(plain)
	return s, nil
}

func (c *Console) logout(ec echo.Context) error {
	if ck, err := ec.Cookie(sessionCookie); err == nil {
		if err := c.cfg.Store.DeleteConsoleSession(ec.Request().Context(), newSession(ck.Value).idHash); err != nil {
			return c.fail(ec, statusOf(err), "Signing out failed: "+buildgate.ErrorMessage(err))
		}
	}
	c.setCookie(ec, sessionCookie, "", "/", -1)
	return ec.Redirect(http.StatusSeeOther, "/ui/login")
}

// authenticate finds the session, checks the token is still valid (a
// revoked token ends its sessions) and, on writes, the CSRF token.
func (c *Console) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		toLogin := func() error {
			ec.Response().Header().Set("Cache-Control", "no-store")
			if ec.Request().Method != http.MethodGet {
				return ec.Redirect(http.StatusSeeOther, "/ui/login")
			}
			return ec.Redirect(http.StatusSeeOther, "/ui/login?next="+url.QueryEscape(ec.Request().URL.RequestURI()))
		}
		ck, err := ec.Cookie(sessionCookie)
		if err != nil {
			return toLogin()
		}
		ctx := ec.Request().Context()
		s, err := c.openSession(ctx, ck.Value)
		if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
			return toLogin()
		}
		if err != nil {
			err = c.cfg.Unavailable(ctx, err)
			return c.fail(ec, statusOf(err), "Reading the session failed: "+buildgate.ErrorMessage(err))
		}
		t, err := c.cfg.Store.TokenByHash(ctx, c.cfg.HashToken(s.secret))
		if code := buildgate.ErrorCode(err); code == buildgate.EUNAUTHORIZED || code == buildgate.ENOTFOUND {
			// A revoked or expired token ends its sessions.
			if err := c.cfg.Store.DeleteConsoleSession(ctx, s.idHash); err != nil {
				c.cfg.Log.Error("ending the session of a revoked token", "err", err)
			}
			return toLogin()
		}
		if err != nil {
			err = c.cfg.Unavailable(ctx, err)
			return c.fail(ec, statusOf(err), "Checking the session's token failed: "+buildgate.ErrorMessage(err))
		}
		if ec.Request().Method != http.MethodGet && ec.Request().Method != http.MethodHead {
			form := ec.FormValue("csrf")
			if form == "" || subtle.ConstantTimeCompare([]byte(form), []byte(s.csrf)) != 1 {
				return c.fail(ec, http.StatusForbidden, "The form's CSRF token is missing or wrong; reload the page and try again.")
			}
		}
		ec.Set(ctxToken, t)
		ec.Set(ctxSession, s)
		ec.Response().Header().Set("Cache-Control", "no-store")
		return next(ec)
	}
}

// require lets through sessions whose token may do a (buildgate.Role.Can, the
// table every face of the gate asks).
func (c *Console) require(a buildgate.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			t, _ := ec.Get(ctxToken).(*buildgate.Token)
			if err := buildgate.Allow(t, a); err != nil {
				return c.fail(ec, http.StatusForbidden, "This page needs an admin token: "+buildgate.ErrorMessage(err)+".")
			}
			return next(ec)
		}
	}
}

// page is what every template receives.
type page struct {
	Title string
	Nav   string
	Token *buildgate.Token
	Admin bool
	// Can says what the signed-in token may do, by action name (see
	// buildgate.Action): templates show only the forms it may use.
	Can    map[string]bool
	CSRF   string
	Error  string
	Notice string
	Next   string
	Data   any
}

func (c *Console) newPage(ec echo.Context, title, nav string, data any) *page {
	p := &page{Title: title, Nav: nav, Data: data, Notice: ec.QueryParam("notice")}
	if t, _ := ec.Get(ctxToken).(*buildgate.Token); t != nil {
		p.Token = t
		p.Admin = t.Role == buildgate.RoleAdmin
		p.Can = map[string]bool{}
		for _, a := range buildgate.Actions() {
			p.Can[string(a)] = t.Role.Can(a)
		}
	}
	if s, _ := ec.Get(ctxSession).(*session); s != nil {
		p.CSRF = s.csrf
	}
	return p
}

func (c *Console) fail(ec echo.Context, status int, msg string) error {
	if status == http.StatusServiceUnavailable {
		ec.Response().Header().Set("Retry-After", "5")
	}
	p := c.newPage(ec, http.StatusText(status), "", nil)
	p.Error = msg
	return c.render(ec, status, "error", p)
}

func (c *Console) render(ec echo.Context, status int, name string, p *page) error {
	t := c.pages[name]
	var sb strings.Builder
	if err := t.ExecuteTemplate(&sb, "layout", p); err != nil {
		c.cfg.Log.Error("console template", "page", name, "err", err)
		return ec.String(http.StatusInternalServerError, "rendering the page failed")
	}
	h := ec.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	return ec.HTML(status, sb.String())
}

var funcs = template.FuncMap{
	"short": func(d string) string {
		if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
			return d[:i+13]
		}
		return d
	},
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "—"
	},
	"lower":  strings.ToLower,
	"upper":  strings.ToUpper,
	"join":   strings.Join,
	"pathq":  url.PathEscape,
	"query":  url.QueryEscape,
	"eq2":    func(a, b string) bool { return a == b },
	"has":    func(list []string, s string) bool { return contains(list, s) },
	"bytes":  humanBytes,
	"action": func(a policy.Action) string { return strings.ToUpper(a.String()) },
	"list":   func(s ...string) []string { return s },
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parsePages() map[string]*template.Template {
	names := []string{"login", "error", "repositories", "image", "policies", "policy", "confirm", "registries", "runtime", "alerts", "alert", "registry", "admission"}
	out := map[string]*template.Template{}
	for _, n := range names {
		out[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return out
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
