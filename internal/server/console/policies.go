package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

const maxBundleSize = 16 << 20

func (c *Console) policies(ec echo.Context) error {
	recs, err := c.cfg.Store.ListPolicies(ec.Request().Context())
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	return c.render(ec, http.StatusOK, "policies", c.newPage(ec, "Scanning Policies", "policies", recs))
}

type policyData struct {
	Rec      *buildgate.PolicyRecord
	Bundle   *policy.Bundle
	Gates    []policy.GateDef
	EditPol  string // the policy the rule form adds to
	Trigger  *policy.TriggerDef
	GateName string
	TrigKey  string
	Values   map[string]string
	Action   string
	Today    string
}

func (c *Console) loadBundle(ec echo.Context) (*buildgate.PolicyRecord, *policy.Bundle, error) {
	id, _ := url.PathUnescape(ec.Param("id"))
	rec, err := c.cfg.Store.Policy(ec.Request().Context(), id)
	if err != nil {
		return nil, nil, err
	}
	b, err := policy.ParseBundle(rec.Bundle)
	if err != nil {
		return nil, nil, err
	}
	return rec, b, nil
}

func findTrigger(key string) (string, *policy.TriggerDef) {
	g, t, ok := strings.Cut(key, "/")
	if !ok {
		return "", nil
	}
	for _, gd := range policy.Definitions() {
		if gd.Name != g {
			continue
		}
		for i := range gd.Triggers {
			if gd.Triggers[i].Name == t {
				return g, &gd.Triggers[i]
			}
		}
	}
	return "", nil
}

func (c *Console) policyPage(ec echo.Context) error {
	return c.policyPageWith(ec, http.StatusOK, "", nil)
}

func (c *Console) policyPageWith(ec echo.Context, status int, errMsg string, values map[string]string) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	d := &policyData{Rec: rec, Bundle: b, Gates: policy.Definitions(), Values: values,
		EditPol: ec.QueryParam("policy"), TrigKey: ec.QueryParam("trigger"), Action: "WARN",
		Today: c.cfg.Now().UTC().Format("2006-01-02")}
	if values != nil {
		d.EditPol, d.TrigKey, d.Action = values["policy_id"], values["trigger"], values["action"]
	}
	if d.EditPol == "" && len(b.Policies) > 0 {
		d.EditPol = b.Policies[0].ID
	}
	d.GateName, d.Trigger = findTrigger(d.TrigKey)
	if d.Values == nil {
		d.Values = map[string]string{}
	}
	p := c.newPage(ec, "Policy "+rec.Name, "policies", d)
	p.Error = errMsg
	return c.render(ec, status, "policy", p)
}

// saveBundle stores an edited bundle through the service (which validates
// it exactly as PUT /v1/policies/{id} does).
func (c *Console) saveBundle(ec echo.Context, rec *buildgate.PolicyRecord, b *policy.Bundle) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = c.cfg.Policies.Save(ec.Request().Context(), rec.ID, data, rec.Active)
	return err
}

func (c *Console) addRule(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	form, _ := ec.FormParams()
	values := map[string]string{}
	for k, v := range form {
		if len(v) > 0 {
			values[k] = v[0]
		}
	}
	gate, trig := findTrigger(values["trigger"])
	if trig == nil {
		return c.policyPageWith(ec, http.StatusBadRequest, "Choose a gate and trigger.", values)
	}
	rule := policy.Rule{ID: newID(), Gate: gate, Trigger: trig.Name, Action: strings.ToUpper(values["action"])}
	for _, pd := range trig.Params {
		v := strings.TrimSpace(values["param_"+pd.Name])
		if pd.Type == policy.TypeList {
			if vs := form["param_"+pd.Name]; len(vs) > 1 {
				v = strings.Join(vs, ",")
			}
		}
		if v != "" {
			rule.Params = append(rule.Params, policy.Param{Name: pd.Name, Value: v})
		}
	}
	found := false
	for i := range b.Policies {
		if b.Policies[i].ID == values["policy_id"] {
			b.Policies[i].Rules = append(b.Policies[i].Rules, rule)
			found = true
		}
	}
	if !found {
		return c.policyPageWith(ec, http.StatusBadRequest, "Choose a policy of this bundle.", values)
	}
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), "Rule refused: "+buildgate.ErrorMessage(err), values)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice="+url.QueryEscape("Rule added ("+gate+" / "+trig.Name+", "+rule.Action+")."))
}

func (c *Console) deleteRule(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	pid, rid := ec.FormValue("policy_id"), ec.FormValue("rule_id")
	for i := range b.Policies {
		if b.Policies[i].ID != pid {
			continue
		}
		rules := b.Policies[i].Rules[:0]
		for _, r := range b.Policies[i].Rules {
			if r.ID != rid {
				rules = append(rules, r)
			}
		}
		b.Policies[i].Rules = rules
	}
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Rule+removed.")
}

func (c *Console) addAllowlistItem(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	item := policy.AllowlistItem{ID: newID(), Gate: strings.TrimSpace(ec.FormValue("gate")),
		TriggerID: strings.TrimSpace(ec.FormValue("trigger_id")), Reason: strings.TrimSpace(ec.FormValue("reason"))}
	if exp := strings.TrimSpace(ec.FormValue("expires_on")); exp != "" {
		t, err := time.Parse("2006-01-02", exp)
		if err != nil {
			return c.policyPageWith(ec, http.StatusBadRequest, "Expiry must be a date (YYYY-MM-DD).", nil)
		}
		item.ExpiresOn = t.Add(24*time.Hour - time.Second).UTC().Format(time.RFC3339)
	}
	if item.Gate == "" || item.TriggerID == "" {
		return c.policyPageWith(ec, http.StatusBadRequest, "An allowlist item needs a gate and a trigger id.", nil)
	}
	found := false
	for i := range b.Allowlists {
		if b.Allowlists[i].ID == ec.FormValue("allowlist_id") {
			b.Allowlists[i].Items = append(b.Allowlists[i].Items, item)
			found = true
		}
	}
	if !found {
		return c.policyPageWith(ec, http.StatusBadRequest, "Choose an allowlist of this bundle.", nil)
	}
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), "Allowlist item refused: "+buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Allowlist+item+added.")
}

func (c *Console) deleteAllowlistItem(ec echo.Context) error {
	rec, b, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	for i := range b.Allowlists {
		if b.Allowlists[i].ID != ec.FormValue("allowlist_id") {
			continue
		}
		items := b.Allowlists[i].Items[:0]
		for _, it := range b.Allowlists[i].Items {
			if it.ID != ec.FormValue("item_id") {
				items = append(items, it)
			}
		}
		b.Allowlists[i].Items = items
	}
	if err := c.saveBundle(ec, rec, b); err != nil {
		return c.policyPageWith(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Allowlist+item+removed.")
}

func (c *Console) activatePolicy(ec echo.Context) error {
	id, _ := url.PathUnescape(ec.Param("id"))
	if err := c.cfg.Policies.Activate(ec.Request().Context(), id); err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies?notice=Policy+activated.")
}

func (c *Console) confirmDeletePolicy(ec echo.Context) error {
	rec, _, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	return c.render(ec, http.StatusOK, "confirm", c.newPage(ec, "Delete policy "+rec.Name, "policies", rec))
}

func (c *Console) deletePolicy(ec echo.Context) error {
	id, _ := url.PathUnescape(ec.Param("id"))
	if err := c.cfg.Store.DeletePolicy(ec.Request().Context(), id); err != nil {
		p := c.newPage(ec, "Scanning Policies", "policies", nil)
		recs, _ := c.cfg.Store.ListPolicies(ec.Request().Context())
		p.Data = recs
		p.Error = "Delete refused: " + buildgate.ErrorMessage(err)
		return c.render(ec, statusOf(err), "policies", p)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies?notice=Policy+deleted.")
}

func (c *Console) exportPolicy(ec echo.Context) error {
	rec, _, err := c.loadBundle(ec)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, rec.Bundle, "", "  "); err != nil {
		buf.Reset()
		buf.Write(rec.Bundle)
	}
	ec.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "policy-"+rec.ID+".json"))
	return ec.Blob(http.StatusOK, "application/json", buf.Bytes())
}

func (c *Console) importPolicy(ec echo.Context) error {
	fail := func(status int, msg string) error {
		p := c.newPage(ec, "Scanning Policies", "policies", nil)
		recs, _ := c.cfg.Store.ListPolicies(ec.Request().Context())
		p.Data = recs
		p.Error = "Import refused: " + msg
		return c.render(ec, status, "policies", p)
	}
	fh, err := ec.FormFile("bundle")
	if err != nil {
		return fail(http.StatusBadRequest, "choose a bundle file (JSON or YAML)")
	}
	f, err := fh.Open()
	if err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBundleSize+1))
	if err != nil || len(data) > maxBundleSize {
		return fail(http.StatusBadRequest, "the file is unreadable or larger than 16 MiB")
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return fail(http.StatusBadRequest, "the file is neither JSON nor valid YAML: "+err.Error())
		}
		if data, err = json.Marshal(v); err != nil {
			return fail(http.StatusBadRequest, err.Error())
		}
	}
	rec, err := c.cfg.Policies.Save(ec.Request().Context(), "", data, ec.FormValue("activate") == "on")
	if err != nil {
		return fail(statusOf(err), buildgate.ErrorMessage(err))
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/policies/"+url.PathEscape(rec.ID)+"?notice=Bundle+imported.")
}

// newID returns a random id in the UUID shape Anchore's bundles use.
func newID() string {
	id := buildgate.NewID()
	return id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
}
