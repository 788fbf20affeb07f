package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
)

// Registries is the registry-credential service (analysis.Registries).
type Registries interface {
	Add(ctx context.Context, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Update(ctx context.Context, registry string, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error)
	Get(ctx context.Context, registry string) (*buildgate.RegistryCredential, error)
	List(ctx context.Context) ([]buildgate.RegistryCredential, error)
	Delete(ctx context.Context, registry string) error
}

// maxRegistryBody bounds a registry request (a CA bundle and a JSON key).
const maxRegistryBody = 2 << 20

// RouteRegistries adds the admin routes of /v1/registries. The registry in
// the path may hold slashes (a path prefix), escaped or not.
func (s *Server) RouteRegistries(r Registries) {
	admin := require(buildgate.ActManageRegistries)
	h := registryHandlers{r: r}
	s.v1.POST("/registries", h.create, admin)
	s.v1.GET("/registries", h.list, admin)
	s.v1.GET("/registries/*", h.get, admin)
	s.v1.PUT("/registries/*", h.update, admin)
	s.v1.DELETE("/registries/*", h.delete, admin)
}

type registryHandlers struct{ r Registries }

// registryParam returns the registry named by the path after
// /v1/registries/, unescaped.
func registryParam(c echo.Context) (string, error) {
	raw := c.Param("*")
	v, err := url.PathUnescape(raw)
	if err != nil || strings.TrimSpace(v) == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "the path must name a registry: /v1/registries/{host[/path prefix]}")
	}
	return v, nil
}

// decodeRegistry reads a registry request. Its errors never quote the
// body, which holds a secret.
func decodeRegistry(c echo.Context) (api.RegistryRequest, error) {
	var req api.RegistryRequest
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxRegistryBody+1))
	if err != nil {
		return req, buildgate.Errorf(buildgate.EINVALID, "reading the request body: %v", err)
	}
	if len(b) > maxRegistryBody {
		return req, buildgate.Errorf(buildgate.EINVALID, "the request body is larger than %d bytes", maxRegistryBody)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return req, buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: syntax error at byte %d", se.Offset)
		case errors.As(err, &te):
			return req, buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: %s must be a %s, not a %s", te.Field, te.Type, te.Value)
		}
		return req, buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: want an object {registry, username, password, type, verify_tls, ca_cert, name}")
	}
	return req, nil
}

func toCredential(req api.RegistryRequest) buildgate.RegistryCredential {
	verify := true
	if req.VerifyTLS != nil {
		verify = *req.VerifyTLS
	}
	return buildgate.RegistryCredential{
		Registry: req.Registry, Name: req.Name, Username: req.Username, Type: req.Type,
		VerifyTLS: verify, CACert: req.CACert,
	}
}

func toRegistry(c *buildgate.RegistryCredential) api.Registry {
	return api.Registry{
		Registry: c.Registry, Name: c.Name, Username: c.Username, Type: c.Type, VerifyTLS: c.VerifyTLS,
		CACert: c.CACert, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, PasswordSetAt: c.PasswordSetAt,
	}
}

// validateParam reads ?validate=; the default is to validate.
func validateParam(c echo.Context) (bool, error) {
	switch strings.ToLower(c.QueryParam("validate")) {
	case "", "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, buildgate.Errorf(buildgate.EINVALID, "validate must be true or false, not %q", c.QueryParam("validate"))
}

func (h registryHandlers) create(c echo.Context) error {
	validate, err := validateParam(c)
	if err != nil {
		return err
	}
	req, err := decodeRegistry(c)
	if err != nil {
		return err
	}
	rec, err := h.r.Add(c.Request().Context(), toCredential(req), req.Password, validate)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toRegistry(rec))
}

func (h registryHandlers) update(c echo.Context) error {
	reg, err := registryParam(c)
	if err != nil {
		return err
	}
	validate, err := validateParam(c)
	if err != nil {
		return err
	}
	req, err := decodeRegistry(c)
	if err != nil {
		return err
	}
	cred := toCredential(req)
	if req.VerifyTLS == nil {
		// Absent, verify_tls keeps its stored value.
		cur, err := h.r.Get(c.Request().Context(), reg)
		if err != nil {
			return err
		}
		cred.VerifyTLS = cur.VerifyTLS
	}
	rec, err := h.r.Update(c.Request().Context(), reg, cred, req.Password, validate)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRegistry(rec))
}

func (h registryHandlers) list(c echo.Context) error {
	recs, err := h.r.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.RegistryList{Registries: []api.Registry{}}
	for i := range recs {
		out.Registries = append(out.Registries, toRegistry(&recs[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (h registryHandlers) get(c echo.Context) error {
	reg, err := registryParam(c)
	if err != nil {
		return err
	}
	rec, err := h.r.Get(c.Request().Context(), reg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRegistry(rec))
}

func (h registryHandlers) delete(c echo.Context) error {
	reg, err := registryParam(c)
	if err != nil {
		return err
	}
	if err := h.r.Delete(c.Request().Context(), reg); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
