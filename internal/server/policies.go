package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
)

// Policies is the policy side of the service layer.
type Policies interface {
	Save(ctx context.Context, id string, data []byte, activate bool) (*buildgate.PolicyRecord, error)
	Activate(ctx context.Context, id string) error
	Check(ctx context.Context, digest, tag, policyID string) (*policy.Verdict, error)
	CheckBaseline(ctx context.Context, digest, tag, policyID, baseline string) (*policy.Verdict, error)
}

// PolicyStore is what the server reads and deletes directly.
type PolicyStore interface {
	Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error)
	ListPolicies(ctx context.Context) ([]buildgate.PolicyRecord, error)
	PolicyVersions(ctx context.Context, id string) ([]buildgate.PolicyVersion, error)
	DeletePolicy(ctx context.Context, id string) error
}

// maxBundleSize bounds a policy bundle upload.
const maxBundleSize = 16 << 20

// RoutePolicies adds the policy routes and the image check.
func (s *Server) RoutePolicies(p Policies, store PolicyStore) {
	v1 := s.v1
	read, write := require(buildgate.ActReadPolicies), require(buildgate.ActWritePolicies)
	h := policyHandlers{p: p, store: store, images: s.store, version: s.Version}
	v1.POST("/policies", h.create, write)
	v1.GET("/policies", h.list, read)
	v1.GET("/policies/:id", h.get, read)
	v1.PUT("/policies/:id", h.update, write)
	v1.DELETE("/policies/:id", h.delete, write)
	v1.POST("/policies/:id/activate", h.activate, write)
	v1.GET("/policies/:id/versions", h.versions, read)
	v1.GET("/images/:digest/check", h.check, require(buildgate.ActReadImages))
	v1.GET("/images/:digest/report", h.report, require(buildgate.ActReadImages))
}

type policyHandlers struct {
	p       Policies
	store   PolicyStore
	images  Store
	version string
}

// bundleBody reads a bundle as JSON, or as YAML converted to JSON.
func bundleBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBundleSize+1))
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the bundle: %v", err)
	}
	if len(b) > maxBundleSize {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the bundle is larger than %d bytes", maxBundleSize)
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the request has no bundle")
	}
	if strings.Contains(c.Request().Header.Get("Content-Type"), "yaml") || trimmed[0] != '{' {
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return nil, buildgate.Errorf(buildgate.EINVALID, "the bundle is neither JSON nor valid YAML: %v", err)
		}
		if _, ok := v.(map[string]any); !ok {
			return nil, buildgate.Errorf(buildgate.EINVALID, "the bundle must be a JSON or YAML object")
		}
		if b, err = json.Marshal(v); err != nil {
			return nil, buildgate.Errorf(buildgate.EINVALID, "converting the YAML bundle: %v", err)
		}
	}
	return b, nil
}

func boolParam(c echo.Context, name string) bool {
	v := strings.ToLower(c.QueryParam(name))
	return v == "true" || v == "1" || v == "yes"
}

func (h policyHandlers) create(c echo.Context) error {
	b, err := bundleBody(c)
	if err != nil {
		return err
	}
	rec, err := h.p.Save(c.Request().Context(), "", b, boolParam(c, "activate"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toPolicy(rec, true))
}

func (h policyHandlers) update(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := h.store.Policy(c.Request().Context(), id); err != nil {
		return err
	}
	b, err := bundleBody(c)
	if err != nil {
		return err
	}
	rec, err := h.p.Save(c.Request().Context(), id, b, boolParam(c, "activate"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPolicy(rec, true))
}

func (h policyHandlers) list(c echo.Context) error {
	recs, err := h.store.ListPolicies(c.Request().Context())
	if err != nil {
		return err
	}
	out := api.PolicyList{Policies: []api.Policy{}}
	for i := range recs {
		out.Policies = append(out.Policies, toPolicy(&recs[i], false))
	}
	return c.JSON(http.StatusOK, out)
}

func (h policyHandlers) get(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	rec, err := h.store.Policy(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPolicy(rec, true))
}

func (h policyHandlers) delete(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := h.store.DeletePolicy(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h policyHandlers) activate(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := h.p.Activate(c.Request().Context(), id); err != nil {
		return err
	}
	rec, err := h.store.Policy(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPolicy(rec, false))
}

func (h policyHandlers) versions(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	vs, err := h.store.PolicyVersions(c.Request().Context(), id)
	if err != nil {
		return err
	}
	out := api.PolicyVersionList{ID: id, Versions: []api.PolicyVersion{}}
	for _, v := range vs {
		out.Versions = append(out.Versions, api.PolicyVersion{Version: v.Version, CreatedAt: v.CreatedAt, Bundle: v.Bundle})
	}
	return c.JSON(http.StatusOK, out)
}

func (h policyHandlers) check(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	v, err := h.checkQuery(c, d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// checkQuery evaluates the image with the query's tag and policy, and
// compares it with the query's baseline (a digest) when there is one.
func (h policyHandlers) checkQuery(c echo.Context, d string) (*policy.Verdict, error) {
	ctx := c.Request().Context()
	tag, pol := c.QueryParam("tag"), c.QueryParam("policy")
	if b := c.QueryParam("baseline"); b != "" {
		return h.p.CheckBaseline(ctx, d, tag, pol, b)
	}
	return h.p.Check(ctx, d, tag, pol)
}

func toPolicy(rec *buildgate.PolicyRecord, withBundle bool) api.Policy {
	p := api.Policy{ID: rec.ID, Name: rec.Name, Active: rec.Active, Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	if withBundle {
		p.Bundle = rec.Bundle
	}
	return p
}

// pathParam returns a path parameter, unescaped.
func pathParam(c echo.Context, name string) (string, error) {
	v, err := url.PathUnescape(c.Param(name))
	if err != nil || v == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "invalid %s %q", name, c.Param(name))
	}
	return v, nil
}

// report renders the evaluation with the same renderers the CI steps use.
func (h policyHandlers) report(c echo.Context) error {
	format := c.QueryParam("format")
	if format == "" {
		format = report.FormatJSON
	}
	ct := report.ContentType(format)
	if ct == "" {
		return buildgate.Errorf(buildgate.EINVALID, "unknown report format %q (want %s)", format, strings.Join(report.Formats(), ", "))
	}
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v, err := h.checkQuery(c, d)
	if err != nil {
		return err
	}
	img, err := h.images.Image(ctx, d)
	if err != nil {
		return err
	}
	a, err := h.images.Analysis(ctx, d)
	if err != nil {
		return err
	}
	in := report.Input{
		Evaluation: &v.Evaluation,
		Image: report.ImageInfo{
			Digest: d, Tags: img.Tags, Distro: a.Metadata.Distro, DistroVersion: a.Metadata.DistroVersion,
			OS: a.Metadata.OS, Arch: a.Metadata.Arch, Dockerfile: img.Dockerfile,
		},
		Matches: a.Matches, Packages: a.Packages,
		DB:      buildgate.DBInfo{Built: a.DBBuilt},
		Scanner: report.ScannerInfo{Version: h.version, StartTime: img.CreatedAt, EndTime: v.EvaluatedAt},
	}
	var buf bytes.Buffer
	if err := report.Render(format, &buf, in); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, ct, buf.Bytes())
}
