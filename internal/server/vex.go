package server

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
)

// VEX is the VEX side of the service layer (analysis.Verdicts).
type VEX interface {
	AddVEX(ctx context.Context, name, scope string, data []byte) (*buildgate.VEXDocument, error)
	VEXDocuments(ctx context.Context) ([]buildgate.VEXDocument, error)
	DeleteVEX(ctx context.Context, id string) error
	CheckVEX(ctx context.Context, digest, tag, policyID, baseline string, doc []byte) (*policy.Verdict, error)
	ExportVEX(ctx context.Context, digest, tag, policyID string) ([]byte, error)
}

// RouteVEX adds the VEX routes: POST, GET /v1/vex and DELETE
// /v1/vex/{id} (admin: they change every verdict), POST
// /v1/images/{digest}/check (a check with one run's VEX document) and GET
// /v1/images/{digest}/vex (the verdict's decisions as OpenVEX).
func (s *Server) RouteVEX(v VEX) {
	v1 := s.v1
	h := vexHandlers{v: v}
	write := require(buildgate.ActWritePolicies)
	v1.POST("/vex", h.create, write)
	v1.GET("/vex", h.list, require(buildgate.ActReadPolicies))
	v1.DELETE("/vex/:id", h.delete, write)
	v1.POST("/images/:digest/check", h.check, require(buildgate.ActReadImages))
	v1.GET("/images/:digest/vex", h.export, require(buildgate.ActReadImages))
}

type vexHandlers struct{ v VEX }

// vexBody reads a VEX document sent as the request body.
func vexBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if tooBig := BodyTooLarge(c.Request()); tooBig != nil {
			return nil, tooBig
		}
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the VEX document: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the request has no VEX document")
	}
	return b, nil
}

func toAPIVEX(d *buildgate.VEXDocument) api.VEXDocument {
	return api.VEXDocument{ID: d.ID, Name: d.Name, Scope: d.Scope, Format: d.Format, Statements: d.Statements, CreatedAt: d.CreatedAt}
}

func (h vexHandlers) create(c echo.Context) error {
	b, err := vexBody(c)
	if err != nil {
		return err
	}
	d, err := h.v.AddVEX(c.Request().Context(), c.QueryParam("name"), c.QueryParam("scope"), b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAPIVEX(d))
}

func (h vexHandlers) list(c echo.Context) error {
	ds, err := h.v.VEXDocuments(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.VEXDocumentList{Documents: []api.VEXDocument{}}
	for i := range ds {
		out.Documents = append(out.Documents, toAPIVEX(&ds[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (h vexHandlers) delete(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := h.v.DeleteVEX(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h vexHandlers) check(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	b, err := vexBody(c)
	if err != nil {
		return err
	}
	v, err := h.v.CheckVEX(c.Request().Context(), d, c.QueryParam("tag"), c.QueryParam("policy"), c.QueryParam("baseline"), b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h vexHandlers) export(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	doc, err := h.v.ExportVEX(c.Request().Context(), d, c.QueryParam("tag"), c.QueryParam("policy"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/json", doc)
}
