package console

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

func (c *Console) registries(ec echo.Context) error {
	return c.registriesPage(ec, http.StatusOK, "", nil)
}

func (c *Console) registriesPage(ec echo.Context, status int, errMsg string, form map[string]string) error {
	recs, err := c.cfg.Registries.List(ec.Request().Context())
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	if form == nil {
		form = map[string]string{"type": "docker_v2", "verify_tls": "on", "validate": "on"}
	}
	p := c.newPage(ec, "Registry Credentials", "registries", map[string]any{"Registries": recs, "Form": form})
	p.Error = errMsg
	return c.render(ec, status, "registries", p)
}

func (c *Console) addRegistry(ec echo.Context) error {
	form := map[string]string{}
	for _, k := range []string{"registry", "name", "type", "username", "verify_tls", "validate", "ca_cert"} {
		form[k] = strings.TrimSpace(ec.FormValue(k))
	}
	password := ec.FormValue("password")
	username := form["username"]
	if fh, err := ec.FormFile("json_key"); err == nil && fh.Size > 0 {
		f, err := fh.Open()
		if err != nil {
			return c.registriesPage(ec, http.StatusBadRequest, err.Error(), form)
		}
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		if err != nil {
			return c.registriesPage(ec, http.StatusBadRequest, err.Error(), form)
		}
		username, password = "_json_key", string(b)
	}
	cred := buildgate.RegistryCredential{Registry: form["registry"], Name: form["name"], Type: form["type"],
		Username: username, VerifyTLS: form["verify_tls"] == "on", CACert: form["ca_cert"]}
	if _, err := c.cfg.Registries.Add(ec.Request().Context(), cred, password, form["validate"] == "on"); err != nil {
		return c.registriesPage(ec, statusOf(err), "Credentials refused: "+buildgate.ErrorMessage(err), form)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/registries?notice=Registry+added.")
}

func (c *Console) deleteRegistry(ec echo.Context) error {
	if err := c.cfg.Registries.Delete(ec.Request().Context(), ec.FormValue("registry")); err != nil {
		return c.registriesPage(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/registries?notice=Registry+removed.")
}

func (c *Console) editRegistryPage(ec echo.Context) error {
	rec, err := c.cfg.Registries.Get(ec.Request().Context(), ec.QueryParam("registry"))
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	form := map[string]string{"registry": rec.Registry, "name": rec.Name, "type": rec.Type, "username": rec.Username, "validate": "on"}
	if rec.VerifyTLS {
		form["verify_tls"] = "on"
	}
	return c.registryEditor(ec, http.StatusOK, "", form)
}

func (c *Console) registryEditor(ec echo.Context, status int, errMsg string, form map[string]string) error {
	p := c.newPage(ec, "Edit registry "+form["registry"], "registries", map[string]any{"Form": form})
	p.Error = errMsg
	return c.render(ec, status, "registry", p)
}

// editRegistry replaces a record's fields (PUT semantics of the service:
// an empty password, username, name or CA certificate keeps the stored one).
func (c *Console) editRegistry(ec echo.Context) error {
	form := map[string]string{}
	for _, k := range []string{"registry", "name", "type", "username", "verify_tls", "validate", "ca_cert"} {
		form[k] = strings.TrimSpace(ec.FormValue(k))
	}
	cred := buildgate.RegistryCredential{Registry: form["registry"], Name: form["name"], Type: form["type"],
		Username: form["username"], VerifyTLS: form["verify_tls"] == "on", CACert: form["ca_cert"]}
	if _, err := c.cfg.Registries.Update(ec.Request().Context(), form["registry"], cred, ec.FormValue("password"), form["validate"] == "on"); err != nil {
		return c.registryEditor(ec, statusOf(err), "Credentials refused: "+buildgate.ErrorMessage(err), form)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/registries?notice=Registry+updated.")
}

// validateRegistry logs in to the registry with the stored credentials now
// (the service's Update with nothing changed and validate on) and shows
// the registry's answer.
func (c *Console) validateRegistry(ec echo.Context) error {
	ctx := ec.Request().Context()
	rec, err := c.cfg.Registries.Get(ctx, ec.FormValue("registry"))
	if err != nil {
		return c.registriesPage(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	if _, err := c.cfg.Registries.Update(ctx, rec.Registry, buildgate.RegistryCredential{VerifyTLS: rec.VerifyTLS}, "", true); err != nil {
		return c.registriesPage(ec, statusOf(err), "Validation of "+rec.Registry+" failed: "+buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/registries?notice="+url.QueryEscape("The registry "+rec.Registry+" accepted the stored credentials."))
}
