package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
)

// Admission manages admission rules and lists decisions
// (admission.Service).
type Admission interface {
	CreateRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error)
	Rules(ctx context.Context) ([]buildgate.AdmissionRule, error)
	DeleteRule(ctx context.Context, id string) error
	Decisions(ctx context.Context, f buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error)
}

// admissionForm is the admission page's data.
type admissionForm struct {
	Rules     []buildgate.AdmissionRule
	Decisions []buildgate.AdmissionDecision
	Modes     []string
	// Form holds what was typed when a rule was refused.
	Form map[string]string
}

func (c *Console) admissionPage(ec echo.Context, status int, errMsg string, form map[string]string) error {
	if c.cfg.Admission == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not answer admission reviews.")
	}
	ctx := ec.Request().Context()
	rules, err := c.cfg.Admission.Rules(ctx)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	ds, err := c.cfg.Admission.Decisions(ctx, buildgate.AdmissionDecisionFilter{Namespace: ec.QueryParam("namespace"), Limit: 100})
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	if form == nil {
		form = map[string]string{"mode": buildgate.AdmissionPolicy, "on_error": buildgate.OnErrorDeny, "wait": "8s", "position": strconv.Itoa(len(rules))}
	}
	p := c.newPage(ec, "Admission", "runtime", admissionForm{Rules: rules, Decisions: ds, Modes: buildgate.AdmissionModes(), Form: form})
	p.Error = errMsg
	return c.render(ec, status, "admission", p)
}

func (c *Console) admission(ec echo.Context) error {
	return c.admissionPage(ec, http.StatusOK, "", nil)
}

// admissionRuleFromForm reads the rule form: namespaces separated by
// commas or spaces, labels as key=value pairs.
func admissionRuleFromForm(form map[string]string) (buildgate.AdmissionRule, string) {
	r := buildgate.AdmissionRule{
		Name: form["name"], Mode: form["mode"], Policy: form["policy"], OnError: form["on_error"],
		Scope: buildgate.AdmissionScope{Registry: form["registry"], Repository: form["repository"], Tag: form["tag"]},
	}
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	}
	r.Namespaces = split(form["namespaces"])
	for _, kv := range split(form["namespace_labels"]) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return r, "The namespace label " + strconv.Quote(kv) + " is not key=value."
		}
		if r.NamespaceLabels == nil {
			r.NamespaceLabels = map[string]string{}
		}
		r.NamespaceLabels[k] = v
	}
	if form["wait"] != "" {
		d, err := time.ParseDuration(form["wait"])
		if err != nil || d <= 0 {
			return r, "The wait " + strconv.Quote(form["wait"]) + " is not a positive duration such as 8s."
		}
		r.Wait = d
	}
	if form["position"] != "" {
		n, err := strconv.Atoi(form["position"])
		if err != nil {
			return r, "The position " + strconv.Quote(form["position"]) + " is not a number."
		}
		r.Position = n
	}
	return r, ""
}

func (c *Console) addAdmissionRule(ec echo.Context) error {
	if c.cfg.Admission == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not answer admission reviews.")
	}
	form := map[string]string{}
	for _, k := range []string{"name", "namespaces", "namespace_labels", "registry", "repository", "tag", "mode", "policy", "wait", "on_error", "position"} {
		form[k] = strings.TrimSpace(ec.FormValue(k))
	}
	r, problem := admissionRuleFromForm(form)
	if problem != "" {
		return c.admissionPage(ec, http.StatusBadRequest, "The rule was not added: "+problem, form)
	}
	if _, err := c.cfg.Admission.CreateRule(ec.Request().Context(), r); err != nil {
		return c.admissionPage(ec, statusOf(err), "The rule was not added: "+buildgate.ErrorMessage(err), form)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/admission?notice=Rule+added.")
}

func (c *Console) deleteAdmissionRule(ec echo.Context) error {
	if c.cfg.Admission == nil {
		return c.fail(ec, http.StatusNotFound, "This gate does not answer admission reviews.")
	}
	if err := c.cfg.Admission.DeleteRule(ec.Request().Context(), ec.Param("id")); err != nil {
		return c.admissionPage(ec, statusOf(err), buildgate.ErrorMessage(err), nil)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/admission?notice="+url.QueryEscape("Rule deleted."))
}
