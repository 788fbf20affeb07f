package server

import (
	"context"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
)

// Tokens keeps API token records.
type Tokens interface {
	CreateToken(ctx context.Context, t buildgate.Token, hash string) error
	ListTokens(ctx context.Context) ([]buildgate.Token, error)
	RevokeToken(ctx context.Context, id string) (*buildgate.Token, error)
}

// maxTokenName bounds a token's name.
const maxTokenName = 100

// NewTokenRecord checks a token's name, role and lifetime (0: no expiry)
// and returns its record, created at now, with a new id.
func NewTokenRecord(name string, role buildgate.Role, ttl time.Duration, now time.Time) (buildgate.Token, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return buildgate.Token{}, buildgate.Errorf(buildgate.EINVALID, "a token needs a name")
	case len(name) > maxTokenName:
		return buildgate.Token{}, buildgate.Errorf(buildgate.EINVALID, "a token's name is at most %d bytes", maxTokenName)
	case !role.Valid():
		return buildgate.Token{}, buildgate.Errorf(buildgate.EINVALID, "invalid role %q: want admin or ci", role)
	case ttl < 0:
		return buildgate.Token{}, buildgate.Errorf(buildgate.EINVALID, "invalid expiry %s: want a positive duration, or none for a token that does not expire", ttl)
	}
	t := buildgate.Token{ID: buildgate.NewID(), Name: name, Role: role, CreatedAt: now.UTC()}
	if ttl > 0 {
		e := now.UTC().Add(ttl)
		t.ExpiresAt = &e
	}
	return t, nil
}

// minAdminTokenBits is the entropy a supplied admin token must carry, by
// the estimate of tokenBits: 32 random bytes in hex or base64 score well
// above it; words, repeats and short strings do not.
const minAdminTokenBits = 160

// CheckSuppliedToken refuses a token an operator supplies (gate serve
// --admin-token) unless it carries about 32 random bytes: at least 43
// characters whose estimated entropy is at least 160 bits.
func CheckSuppliedToken(secret string) error {
	const how = "generate one with `openssl rand -base64 32` (or -hex 32), or leave --admin-token empty and the gate prints a generated one"
	if n := len(secret); n < 43 {
		return buildgate.Errorf(buildgate.EINVALID, "--admin-token (GATE_ADMIN_TOKEN) is %d characters: it must carry at least 32 random bytes (43 base64 or 64 hex characters); %s", n, how)
	}
	if bits := tokenBits(secret); bits < minAdminTokenBits {
		return buildgate.Errorf(buildgate.EINVALID, "--admin-token (GATE_ADMIN_TOKEN) looks guessable (about %.0f bits of entropy, at least %d needed): %s", bits, minAdminTokenBits, how)
	}
	return nil
}

// tokenBits estimates a string's entropy as its length times the Shannon
// entropy of its character frequencies, so repeats and small alphabets
// score low.
func tokenBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h * float64(n)
}

// RouteTokens adds /v1/tokens: list, create (the secret is answered once)
// and revoke, for tokens that may manage tokens.
func (s *Server) RouteTokens(tokens Tokens, now func() time.Time) {
	h := tokenHandlers{tokens: tokens, now: now}
	manage := require(buildgate.ActManageTokens)
	s.v1.GET("/tokens", h.list, manage)
	s.v1.POST("/tokens", h.create, manage)
	s.v1.DELETE("/tokens/:id", h.revoke, manage)
}

type tokenHandlers struct {
	tokens Tokens
	now    func() time.Time
}

func toToken(t buildgate.Token) api.Token {
	return api.Token{ID: t.ID, Name: t.Name, Role: string(t.Role), CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt}
}

func (h tokenHandlers) list(c echo.Context) error {
	ts, err := h.tokens.ListTokens(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]api.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, toToken(t))
	}
	return c.JSON(http.StatusOK, out)
}

func (h tokenHandlers) create(c echo.Context) error {
	var req api.CreateTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return buildgate.Errorf(buildgate.EINVALID, "invalid expires_in %q: want a positive Go duration such as \"720h\", or none", req.ExpiresIn)
		}
		ttl = d
	}
	t, err := NewTokenRecord(req.Name, buildgate.Role(req.Role), ttl, h.now())
	if err != nil {
		return err
	}
	secret, hash := NewToken()
	if err := h.tokens.CreateToken(c.Request().Context(), t, hash); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, api.CreatedToken{Token: toToken(t), Secret: secret})
}

func (h tokenHandlers) revoke(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := h.tokens.RevokeToken(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
