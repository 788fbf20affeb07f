package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/secret"
)

func (s *Server) submitImage(c echo.Context) error {
	var req api.SubmitImageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	sub := analysis.SubmitRequest{
		Ref: req.Ref, Tag: req.Tag, Dockerfile: req.Dockerfile, Annotations: req.Annotations, Force: req.Force,
		BindTag: may(c, buildgate.ActBindTags), Platform: req.Platform,
	}
	var img *buildgate.Image
	var err error
	if a := req.RegistryAuth; a != nil {
		if a.Username == "" || a.Password == "" || strings.Contains(a.Username, ":") {
			return buildgate.Errorf(buildgate.EINVALID, "registry_auth needs a username (without \":\") and a password")
		}
		basic := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
		img, err = s.images.SubmitWithAuth(c.Request().Context(), sub, analysis.PullAuth{Authorization: secret.Secret("Basic " + basic)})
	} else {
		img, err = s.images.Submit(c.Request().Context(), sub)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toImage(img))
}

func decodeJSON(c echo.Context, v any) error {
	if err := c.Bind(v); err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: %s", bindMessage(err))
	}
	return nil
}

func bindMessage(err error) string {
	if he, ok := err.(*echo.HTTPError); ok {
		if he.Internal != nil {
			return he.Internal.Error()
		}
		return fmt.Sprint(he.Message)
	}
	return err.Error()
}

func (s *Server) listImages(c echo.Context) error {
	status := buildgate.Status(c.QueryParam("status"))
	switch status {
	case "", buildgate.StatusQueued, buildgate.StatusAnalyzing, buildgate.StatusAnalyzed, buildgate.StatusFailed:
	default:
		return buildgate.Errorf(buildgate.EINVALID, "unknown status %q (want queued, analyzing, analyzed or failed)", status)
	}
	want := map[string]string{}
	for _, a := range c.QueryParams()["annotation"] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return buildgate.Errorf(buildgate.EINVALID, "annotation %q: want key=value", a)
		}
		want[k] = v
	}
	imgs, err := s.store.ListImages(c.Request().Context(), c.QueryParam("tag"), status)
	if err != nil {
		return err
	}
	out := api.ImageList{Images: make([]api.Image, 0, len(imgs))}
	for i := range imgs {
		if hasAnnotations(imgs[i].Annotations, want) {
			out.Images = append(out.Images, toImage(&imgs[i]))
		}
	}
	return c.JSON(http.StatusOK, out)
}

// hasAnnotations reports whether have holds every annotation of want
// with the same value.
func hasAnnotations(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// MaxImageWait bounds GET /v1/images/{digest}?wait=, under the clients'
// one-minute timeout; imagePoll is how often a waiting request reads the
// image again (its status may change on another replica).
const (
	MaxImageWait = 30 * time.Second
	imagePoll    = 50 * time.Millisecond
)

// getImage answers the image. With ?wait=DURATION (at most MaxImageWait)
// it answers when the image's status changes, or it is analysed or
// failed, or the wait is over, whichever comes first: a pipeline waiting
// for its verdict sees it at once, without polling.
func (s *Server) getImage(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	wait, err := waitParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	img, err := s.store.Image(ctx, d)
	if err != nil {
		return err
	}
	if wait > 0 && !img.Status.Terminal() {
		if img, err = s.awaitChange(ctx, img, wait); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, toImage(img))
}

// awaitChange reads img again every imagePoll, and whenever this gate
// stores a status (s.Changes), until its status changes, wait has passed
// or the gate is draining, and returns it as last read.
func (s *Server) awaitChange(ctx context.Context, img *buildgate.Image, wait time.Duration) (*buildgate.Image, error) {
	done := time.NewTimer(wait)
	defer done.Stop()
	poll := s.poll
	if poll == 0 {
		poll = imagePoll
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for from := img.Status; img.Status == from; {
		changed := s.Changes.next()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.Draining:
			return img, nil
		case <-done.C:
			return img, nil
		case <-tick.C:
		case <-changed:
		}
		next, err := s.store.Image(ctx, img.Digest)
		if err != nil {
			return nil, err
		}
		img = next
	}
	return img, nil
}

// Changes wakes the requests waiting for an image's status to change
// when this gate stores one, so that a pipeline sees its verdict as soon
// as it is stored rather than at its request's next read; a status
// another replica stores is read at the next imagePoll. A nil *Changes
// wakes nothing.
type Changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// Notify wakes the requests waiting now.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// next returns a channel closed at the next Notify.
func (c *Changes) next() <-chan struct{} {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// waitParam reads ?wait=, a Go duration such as 20s; it is 0 when absent
// and at most MaxImageWait.
func waitParam(c echo.Context) (time.Duration, error) {
	v := c.QueryParam("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, buildgate.Errorf(buildgate.EINVALID, "wait must be a duration such as 20s, not %q", v)
	}
	return min(d, MaxImageWait), nil
}

func (s *Server) deleteImage(c echo.Context) error {
	d, err := digestParam(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteImage(c.Request().Context(), d); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// analysisOf returns the analysis of an analysed image, or a conflict
// naming the image's status.
func (s *Server) analysisOf(c echo.Context) (*buildgate.Analysis, error) {
	d, err := digestParam(c)
	if err != nil {
		return nil, err
	}
	img, err := s.store.Image(c.Request().Context(), d)
	if err != nil {
		return nil, err
	}
	if img.Status != buildgate.StatusAnalyzed {
		msg := fmt.Sprintf("image %s is not analyzed (status: %s)", d, img.Status)
		if img.Error != "" {
			msg += ": " + img.Error
		}
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "%s", msg)
	}
	return s.store.Analysis(c.Request().Context(), d)
}

// typeFilter reads ?type=os|non-os|all (default all) and returns a test on
// package types.
func typeFilter(c echo.Context, extra bool) (string, func(typ string) bool, error) {
	t := c.QueryParam("type")
	switch t {
	case "", "all":
		return "all", func(string) bool { return true }, nil
	case "os":
		return t, buildgate.IsOSType, nil
	case "non-os":
		return t, func(typ string) bool { return !buildgate.IsOSType(typ) }, nil
	}
	if extra && !strings.ContainsAny(t, " /") {
		// a package type such as npm or go-module
		return t, func(typ string) bool { return typ == t }, nil
	}
	return "", nil, buildgate.Errorf(buildgate.EINVALID, "unknown type %q (want os, non-os or all)", t)
}

func (s *Server) vulnerabilities(c echo.Context) error {
	t, keep, err := typeFilter(c, false)
	if err != nil {
		return err
	}
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	out := api.VulnerabilityList{Digest: a.Digest, Type: t, Vulnerabilities: []api.Vulnerability{}}
	if !a.DBBuilt.IsZero() {
		out.DBBuilt = &a.DBBuilt
	}
	for _, m := range a.Matches {
		if keep(m.PackageType) {
			out.Vulnerabilities = append(out.Vulnerabilities, toVulnerability(m))
		}
	}
	sort.SliceStable(out.Vulnerabilities, func(i, j int) bool {
		x, y := out.Vulnerabilities[i], out.Vulnerabilities[j]
		if sx, sy := buildgate.SeverityOf(x.Severity), buildgate.SeverityOf(y.Severity); sx != sy {
			return sx > sy
		}
		if x.ID != y.ID {
			return x.ID < y.ID
		}
		return x.PackageName < y.PackageName
	})
	return c.JSON(http.StatusOK, out)
}

func (s *Server) packages(c echo.Context) error {
	t, keep, err := typeFilter(c, true)
	if err != nil {
		return err
	}
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	out := api.PackageList{Digest: a.Digest, Type: t, Packages: []api.Package{}}
	for _, p := range a.Packages {
		if keep(p.Type) {
			out.Packages = append(out.Packages, api.Package{
				Name: p.Name, Version: p.Version, Type: p.Type, Language: p.Language, Path: p.Path,
				Licenses: nonNil(p.Licenses), PURL: p.PURL, Origin: p.Origin, Size: p.Size,
			})
		}
	}
	return c.JSON(http.StatusOK, out)
}

var sbomTypes = map[string]string{
	"syft-json":      "application/json",
	"cyclonedx-json": "application/vnd.cyclonedx+json",
	"spdx-json":      "application/spdx+json",
}

func (s *Server) sbom(c echo.Context) error {
	format := c.QueryParam("format")
	if format == "" {
		format = "syft-json"
	}
	ct, ok := sbomTypes[format]
	if !ok {
		return buildgate.Errorf(buildgate.EINVALID, "unknown SBOM format %q (want syft-json, cyclonedx-json or spdx-json)", format)
	}
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	body := a.SBOM
	if format != "syft-json" {
		if body, err = s.sboms.Convert(a.SBOM, format); err != nil {
			return err
		}
	}
	return c.Blob(http.StatusOK, ct, body)
}

func (s *Server) metadata(c echo.Context) error {
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	m := a.Metadata
	out := api.Metadata{
		Digest: a.Digest, Distro: m.Distro, DistroVersion: m.DistroVersion, LikeDistro: m.LikeDistro,
		OS: m.OS, Arch: m.Arch, Size: m.Size, LayerCount: m.LayerCount, User: m.User,
		ExposedPorts: nonNil(m.ExposedPorts), Env: nonNil(m.Env), Labels: m.Labels,
		Entrypoint: m.Entrypoint, Cmd: m.Cmd, WorkingDir: m.WorkingDir, Created: m.Created,
		History: []api.HistoryEntry{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, h := range m.History {
		out.History = append(out.History, api.HistoryEntry{Created: h.Created, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) files(c echo.Context) error {
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	out := api.FileList{Digest: a.Digest, Files: make([]api.File, 0, len(a.Files))}
	for _, f := range a.Files {
		out.Files = append(out.Files, api.File{
			Path: f.Path, Size: f.Size, Mode: modeString(f.Mode), Type: f.Type, LinkDest: f.LinkDest,
			SHA256: f.SHA256, SUID: f.SUID, SGID: f.SGID,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// modeString prints permission bits in octal with setuid (4), setgid (2)
// and sticky (1) in front, as chmod takes them.
func modeString(mode uint32) string {
	const (
		setuid = 1 << 23 // os.ModeSetuid
		setgid = 1 << 22 // os.ModeSetgid
		sticky = 1 << 20 // os.ModeSticky
	)
	special := 0
	if mode&setuid != 0 {
		special |= 4
	}
	if mode&setgid != 0 {
		special |= 2
	}
	if mode&sticky != 0 {
		special |= 1
	}
	return fmt.Sprintf("%d%03o", special, mode&0o777)
}

func (s *Server) secrets(c echo.Context) error {
	a, err := s.analysisOf(c)
	if err != nil {
		return err
	}
	out := api.SecretList{Digest: a.Digest, Secrets: make([]api.Secret, 0, len(a.Secrets))}
	for _, x := range a.Secrets {
		out.Secrets = append(out.Secrets, api.Secret{Rule: x.Rule, Path: x.Path, Line: x.Line})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) dbStatus(c echo.Context) error {
	return c.JSON(http.StatusOK, s.db.Status())
}

func (s *Server) dbImport(c echo.Context) error {
	if err := s.db.Import(c.Request().Context(), c.Request().Body); err != nil {
		return err
	}
	if s.AfterImport != nil {
		if err := s.AfterImport(c.Request().Context()); err != nil {
			return fmt.Errorf("the DB was imported but its re-match could not be requested: %w", err)
		}
	}
	return c.JSON(http.StatusOK, s.db.Status())
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func toImage(img *buildgate.Image) api.Image {
	return api.Image{
		Digest: img.Digest, Tags: nonNil(img.Tags), Labels: img.Labels, Status: string(img.Status), Error: img.Error,
		Source: img.Source, Dockerfile: img.Dockerfile != "", Annotations: orEmptyMap(img.Annotations),
		CreatedAt: img.CreatedAt, UpdatedAt: img.UpdatedAt, AnalyzedAt: img.AnalyzedAt,
	}
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func toVulnerability(m buildgate.Match) api.Vulnerability {
	v := api.Vulnerability{
		ID: m.VulnerabilityID, Severity: m.Severity.String(), Description: m.Description,
		PackageName: m.PackageName, PackageVersion: m.PackageVersion, PackageType: m.PackageType, PackagePath: m.PackagePath,
		FixState: string(m.FixState), FixVersions: nonNil(m.FixVersions), URLs: nonNil(m.URLs), RelatedIDs: m.RelatedIDs,
		CVSS: []api.CVSS{}, KEV: m.KEV, EPSS: m.EPSS, EPSSPercentile: m.EPSSPercentile,
		DataSource: m.DataSource, Namespace: m.Namespace, PublishedAt: m.PublishedAt, FixedAt: m.FixedAt,
	}
	for _, c := range m.CVSS {
		v.CVSS = append(v.CVSS, api.CVSS{Version: c.Version, Vector: c.Vector, Source: c.Source, Type: c.Type,
			BaseScore: c.BaseScore, ExploitabilityScore: c.ExploitabilityScore, ImpactScore: c.ImpactScore})
	}
	return v
}

// Uploads is the upload side of the analysis service.
type Uploads interface {
	SubmitUpload(ctx context.Context, r io.Reader, req analysis.UploadRequest) (*buildgate.Image, error)
	SubmitSBOM(ctx context.Context, r io.Reader, req analysis.UploadRequest) (*buildgate.Image, error)
}

// uploadRequest reads ?tag=, ?force=, ?annotation=k=v (repeatable) and the
// base64 Dockerfile in the X-Buildgate-Dockerfile header.
func uploadRequest(c echo.Context, maxSize int64) (analysis.UploadRequest, error) {
	req := analysis.UploadRequest{Tag: c.QueryParam("tag"), BindTag: may(c, buildgate.ActBindTags), Force: boolParam(c, "force"), MaxSize: maxSize}
	if h := c.Request().Header.Get("X-Buildgate-Dockerfile"); h != "" {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			return req, buildgate.Errorf(buildgate.EINVALID, "X-Buildgate-Dockerfile is not base64: %v", err)
		}
		req.Dockerfile = string(b)
	}
	for _, a := range c.QueryParams()["annotation"] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return req, buildgate.Errorf(buildgate.EINVALID, "annotation %q: want key=value", a)
		}
		if req.Annotations == nil {
			req.Annotations = map[string]string{}
		}
		req.Annotations[k] = v
	}
	return req, nil
}

// RouteUploads adds POST /v1/images/upload (an image archive as the body)
// and POST /v1/sboms (an SBOM document as the body), bounded by the
// Upload and SBOM limits.
func (s *Server) RouteUploads(u Uploads) {
	ci := require(buildgate.ActSubmitImages)
	s.v1.POST("/images/upload", func(c echo.Context) error {
		req, err := uploadRequest(c, s.limits.Upload)
		if err != nil {
			return err
		}
		img, err := u.SubmitUpload(c.Request().Context(), c.Request().Body, req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, toImage(img))
	}, ci, s.uploadSlot)
	s.v1.POST("/sboms", func(c echo.Context) error {
		// The body is cut at the SBOM limit as it arrives (bound), which
		// answers 413 when crossed; no second, silent cut here.
		req, err := uploadRequest(c, 0)
		if err != nil {
			return err
		}
		img, err := u.SubmitSBOM(c.Request().Context(), c.Request().Body, req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, toImage(img))
	}, ci, s.uploadSlot)
}
