package anchore

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/server"
)

// registryRecord is Anchore's registry record; it never holds the password.
type registryRecord struct {
	Registry       string `json:"registry"`
	RegistryName   string `json:"registry_name"`
	RegistryUser   string `json:"registry_user"`
	RegistryType   string `json:"registry_type"`
	RegistryVerify bool   `json:"registry_verify"`
	CreatedAt      string `json:"created_at"`
	LastUpdated    string `json:"last_updated"`
	UserID         string `json:"userId"`
}

func toRegistryRecord(c *buildgate.RegistryCredential) registryRecord {
	return registryRecord{
		Registry: c.Registry, RegistryName: c.Name, RegistryUser: c.Username, RegistryType: c.Type,
		RegistryVerify: c.VerifyTLS, CreatedAt: isoTime(c.CreatedAt), LastUpdated: isoTime(c.UpdatedAt), UserID: userID,
	}
}

// registryRequest is the body of POST /registries and PUT /registries/{R}.
type registryRequest struct {
	Registry       string          `json:"registry"`
	RegistryUser   string          `json:"registry_user"`
	RegistryPass   string          `json:"registry_pass"`
	RegistryType   *string         `json:"registry_type"`
	RegistryVerify json.RawMessage `json:"registry_verify"`
	RegistryName   *string         `json:"registry_name"`
}

// credential turns the request into a record: the type defaults to
// docker_v2 and TLS verification to on; registry_verify may be a JSON
// boolean or a string ("True", "false").
func (r registryRequest) credential() (buildgate.RegistryCredential, error) {
	c := buildgate.RegistryCredential{Registry: strings.TrimSpace(r.Registry), Username: r.RegistryUser, VerifyTLS: true}
	if r.RegistryType != nil {
		c.Type = *r.RegistryType
	}
	if r.RegistryName != nil {
		c.Name = *r.RegistryName
	}
	v := strings.TrimSpace(string(r.RegistryVerify))
	if v != "" && v != "null" {
		var b bool
		if err := json.Unmarshal(r.RegistryVerify, &b); err != nil {
			var s string
			if json.Unmarshal(r.RegistryVerify, &s) != nil {
				return c, buildgate.Errorf(buildgate.EINVALID, "registry_verify must be true or false, not %s", v)
			}
			switch strings.ToLower(s) {
			case "true", "1", "yes":
				b = true
			case "false", "0", "no":
			default:
				return c, buildgate.Errorf(buildgate.EINVALID, "registry_verify must be true or false, not %q", s)
			}
		}
		c.VerifyTLS = b
	}
	return c, nil
}

// registries returns the credential service or a 501 when the gate has
// none.
func (a *API) registries() (Registries, error) {
	if a.cfg.Registries == nil {
		return nil, server.Errorf(http.StatusNotImplemented, "registry credentials are not available on this gate")
	}
	return a.cfg.Registries, nil
}

// registryParam returns the registry named by the rest of the path: one
// segment with / and : escaped (%2F, %3A), as anchore-cli sends it, or
// several segments.
func registryParam(c echo.Context) (string, error) {
	raw := c.Param("*")
	v, err := url.PathUnescape(raw)
	if err != nil || strings.TrimSpace(v) == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "invalid registry %q", raw)
	}
	return v, nil
}

func (a *API) addRegistry(c echo.Context) error {
	regs, err := a.registries()
	if err != nil {
		return err
	}
	validate, err := boolParam(c, "validate", true)
	if err != nil {
		return err
	}
	var req registryRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	cred, err := req.credential()
	if err != nil {
		return err
	}
	rec, err := regs.Add(c.Request().Context(), cred, req.RegistryPass, validate)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []registryRecord{toRegistryRecord(rec)})
}

func (a *API) updateRegistry(c echo.Context) error {
	regs, err := a.registries()
	if err != nil {
		return err
	}
	name, err := registryParam(c)
	if err != nil {
		return err
	}
	validate, err := boolParam(c, "validate", true)
	if err != nil {
		return err
	}
	var req registryRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	cred, err := req.credential()
	if err != nil {
		return err
	}
	rec, err := regs.Update(c.Request().Context(), name, cred, req.RegistryPass, validate)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []registryRecord{toRegistryRecord(rec)})
}

func (a *API) listRegistries(c echo.Context) error {
	regs, err := a.registries()
	if err != nil {
		return err
	}
	list, err := regs.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]registryRecord, 0, len(list))
	for i := range list {
		out = append(out, toRegistryRecord(&list[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getRegistry(c echo.Context) error {
	regs, err := a.registries()
	if err != nil {
		return err
	}
	name, err := registryParam(c)
	if err != nil {
		return err
	}
	rec, err := regs.Get(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []registryRecord{toRegistryRecord(rec)})
}

func (a *API) deleteRegistry(c echo.Context) error {
	regs, err := a.registries()
	if err != nil {
		return err
	}
	name, err := registryParam(c)
	if err != nil {
		return err
	}
	if err := regs.Delete(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
