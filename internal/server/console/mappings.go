package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// addMapping puts a new mapping first in the bundle's ordered list (the
// first matching mapping wins); "move up" reorders it.
func (c *Console) addMapping(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	v := func(k string) string { return strings.TrimSpace(ec.FormValue(k)) }
	form, _ := ec.FormParams()
	m := policy.Mapping{ID: newID(), Name: v("name"), Registry: v("registry"), Repository: v("repository"),
		Image:     policy.ImageSelector{Type: v("image_type"), Value: v("image_value")},
		PolicyIDs: form["policy_ids"], AllowlistIDs: form["allowlist_ids"]}
	if m.AllowlistIDs == nil {
		m.AllowlistIDs = []string{}
	}
	b.Mappings = append([]policy.Mapping{m}, b.Mappings...)
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), "Mapping refused: "+buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Mapping+added+first.")
}

func (c *Console) deleteMapping(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	out := b.Mappings[:0]
	for _, m := range b.Mappings {
		if m.ID != ec.FormValue("mapping_id") {
			out = append(out, m)
		}
	}
	b.Mappings = out
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Mapping+removed.")
}

func (c *Console) moveMappingUp(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	for i := 1; i < len(b.Mappings); i++ {
		if b.Mappings[i].ID == ec.FormValue("mapping_id") {
			b.Mappings[i-1], b.Mappings[i] = b.Mappings[i], b.Mappings[i-1]
			break
		}
	}
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Mapping+moved+up.")
}
