package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/admission"
	"github.com/buildgate/buildgate/internal/api"
)

// Admission is the admission use case (admission.Service).
type Admission interface {
	Review(ctx context.Context, req admission.Request) admission.Response
	CreateRule(ctx context.Context, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error)
	UpdateRule(ctx context.Context, id string, r buildgate.AdmissionRule) (*buildgate.AdmissionRule, error)
	Rule(ctx context.Context, id string) (*buildgate.AdmissionRule, error)
	Rules(ctx context.Context) ([]buildgate.AdmissionRule, error)
	DeleteRule(ctx context.Context, id string) error
	Decisions(ctx context.Context, f buildgate.AdmissionDecisionFilter) ([]buildgate.AdmissionDecision, error)
}

// RouteAdmission adds POST /v1/admission/review (the admission role: the
// Kubernetes API server), /v1/admission/rules (admin) and GET
// /v1/admission/decisions (admin).
func (s *Server) RouteAdmission(a Admission) {
	v1 := s.v1
	admin := require(buildgate.ActManageAdmission)
	h := admissionHandlers{a: a}
	v1.POST("/admission/review", h.review, require(buildgate.ActReviewAdmission))
	v1.POST("/admission/rules", h.createRule, admin)
	v1.GET("/admission/rules", h.listRules, admin)
	v1.GET("/admission/rules/:id", h.getRule, admin)
	v1.PUT("/admission/rules/:id", h.updateRule, admin)
	v1.DELETE("/admission/rules/:id", h.deleteRule, admin)
	v1.GET("/admission/decisions", h.listDecisions, admin)
}

type admissionHandlers struct{ a Admission }

// ToAdmissionRule converts a rule request to the domain type.
func ToAdmissionRule(r api.AdmissionRuleRequest) (buildgate.AdmissionRule, error) {
	var wait time.Duration
	if r.Wait != "" {
		var err error
		if wait, err = time.ParseDuration(r.Wait); err != nil || wait <= 0 {
			return buildgate.AdmissionRule{}, buildgate.Errorf(buildgate.EINVALID, "wait %q is not a positive duration such as 8s", r.Wait)
		}
	}
	return buildgate.AdmissionRule{
		Name: r.Name, Namespaces: r.Namespaces, NamespaceLabels: r.NamespaceLabels,
		Scope: buildgate.AdmissionScope{Registry: r.Scope.Registry, Repository: r.Scope.Repository, Tag: r.Scope.Tag},
		Mode:  r.Mode, Policy: r.Policy, Wait: wait, OnError: r.OnError, Position: r.Position,
	}, nil
}

func toAPIAdmissionRule(r *buildgate.AdmissionRule) api.AdmissionRule {
	ns := r.Namespaces
	if ns == nil {
		ns = []string{}
	}
	labels := r.NamespaceLabels
	if labels == nil {
		labels = map[string]string{}
	}
	return api.AdmissionRule{
		ID: r.ID, Name: r.Name, Namespaces: ns, NamespaceLabels: labels,
		Scope: api.AdmissionScope{Registry: r.Scope.Registry, Repository: r.Scope.Repository, Tag: r.Scope.Tag},
		Mode:  r.Mode, Policy: r.Policy, Wait: r.Wait.String(), OnError: r.OnError, Position: r.Position,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// ToAPIAdmissionDecision converts a decision to its wire form.
func ToAPIAdmissionDecision(d buildgate.AdmissionDecision) api.AdmissionDecision {
	imgs := make([]api.AdmissionImage, 0, len(d.Images))
	for _, i := range d.Images {
		imgs = append(imgs, api.AdmissionImage{
			Container: i.Container, Kind: i.Kind, Image: i.Image, Digest: i.Digest, Tag: i.Tag, Status: i.Status,
			Verdict: i.Verdict, Policy: i.Policy, Allowed: i.Allowed, Message: i.Message, Rule: i.Rule, Mode: i.Mode,
		})
	}
	return api.AdmissionDecision{
		ID: d.ID, CreatedAt: d.CreatedAt, UID: d.UID, Cluster: d.Cluster, Namespace: d.Namespace, Kind: d.Kind,
		Name: d.Name, Operation: d.Operation, User: d.User, Images: imgs, Allowed: d.Allowed, WouldDeny: d.WouldDeny,
		Message: d.Message, Warnings: d.Warnings, RuleID: d.RuleID, RuleName: d.RuleName, Mode: d.Mode,
	}
}

func (h admissionHandlers) createRule(c echo.Context) error {
	var req api.AdmissionRuleRequest
	if err := decodeAlertBody(c, &req); err != nil {
		return err
	}
	r, err := ToAdmissionRule(req)
	if err != nil {
		return err
	}
	out, err := h.a.CreateRule(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAPIAdmissionRule(out))
}

func (h admissionHandlers) updateRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req api.AdmissionRuleRequest
	if err := decodeAlertBody(c, &req); err != nil {
		return err
	}
	r, err := ToAdmissionRule(req)
	if err != nil {
		return err
	}
	out, err := h.a.UpdateRule(c.Request().Context(), id, r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIAdmissionRule(out))
}

func (h admissionHandlers) getRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	r, err := h.a.Rule(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIAdmissionRule(r))
}

func (h admissionHandlers) listRules(c echo.Context) error {
	rules, err := h.a.Rules(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.AdmissionRuleList{Rules: []api.AdmissionRule{}}
	for i := range rules {
		out.Rules = append(out.Rules, toAPIAdmissionRule(&rules[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (h admissionHandlers) deleteRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := h.a.DeleteRule(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h admissionHandlers) listDecisions(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	f := buildgate.AdmissionDecisionFilter{Cluster: c.QueryParam("cluster"), Namespace: c.QueryParam("namespace"), Limit: limit}
	if v := c.QueryParam("allowed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return buildgate.Errorf(buildgate.EINVALID, "allowed must be true or false, not %q", v)
		}
		f.Allowed = &b
	}
	ds, err := h.a.Decisions(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := api.AdmissionDecisionList{Decisions: []api.AdmissionDecision{}}
	for _, d := range ds {
		out.Decisions = append(out.Decisions, ToAPIAdmissionDecision(d))
	}
	return c.JSON(http.StatusOK, out)
}
