package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

const tokenPrefix = "bg_"

// NewToken returns a new random API token and the hash to store for it.
func NewToken() (secret, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashToken(secret)
}

// HashToken returns the hex SHA-256 of a token, the form tokens are stored
// in. Tokens are 256-bit random values, so a fast hash is enough.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

const tokenKey = "buildgate.token"

// bearer reads the token from an Authorization header.
func bearer(header string) string {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(rest)
}

func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		secret := bearer(c.Request().Header.Get("Authorization"))
		if secret == "" {
			if t := clientCertToken(c.Request()); t != nil {
				c.Set(tokenKey, t)
				return next(c)
			}
			return buildgate.Errorf(buildgate.EUNAUTHORIZED, "missing bearer token: send Authorization: Bearer <token>")
		}
		t, err := s.store.TokenByHash(c.Request().Context(), HashToken(secret))
		if err != nil {
			return err // "invalid token", or the token's expiry
		}
		c.Set(tokenKey, t)
		return next(c)
	}
}

// clientCertToken maps a client certificate the TLS handshake verified
// against the gate's --tls-client-ca to the admission role: the
// Kubernetes API server may authenticate with one instead of a token.
func clientCertToken(r *http.Request) *buildgate.Token {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	cert := r.TLS.VerifiedChains[0][0]
	return &buildgate.Token{ID: "client-cert", Name: "client certificate " + cert.Subject.CommonName, Role: buildgate.RoleAdmission}
}

// require lets through tokens whose role may do a (buildgate.Role.Can, the one
// table every face of the gate asks).
func require(a buildgate.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			t, _ := c.Get(tokenKey).(*buildgate.Token)
			if err := buildgate.Allow(t, a); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// Challenge sets the WWW-Authenticate header of a 401. It is always a
// Bearer challenge: a Basic one makes a browser prompt for credentials and
// then send them on its own, to any request any page makes to the gate.
// With legacyBasic (gate serve --anchore-basic-challenge) a Basic challenge
// is added for one client only, the Anchore Jenkins plugin, whose Apache
// HttpClient sends its credentials only when challenged: a request that
// names that client and carries none of the headers every browser sends.
func Challenge(h http.Header, r *http.Request, legacyBasic bool) {
	h.Set("WWW-Authenticate", `Bearer realm="buildgate"`)
	if legacyBasic && strings.HasPrefix(r.Header.Get("User-Agent"), "Apache-HttpClient/") &&
		r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Mode") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
		h.Add("WWW-Authenticate", `Basic realm="buildgate"`)
	}
}

// may reports whether the request's token may do a.
func may(c echo.Context, a buildgate.Action) bool {
	t, _ := c.Get(tokenKey).(*buildgate.Token)
	return t != nil && t.Role.Can(a)
}
